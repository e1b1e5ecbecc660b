//! retrain's own messages: timers on SQS, requests, and the domain events
//! that start the next step. The `kind` field names each; on EventBridge it
//! is the `detail-type`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum Message {
    /// Watch timer of an import task, delivered by SQS after `DelaySeconds`.
    #[serde(rename = "import-watch")]
    ImportWatch(ImportWatch),
    /// Re-run a sweep's lanes later (after `ResourceLimitExceeded` or throttling on launch).
    #[serde(rename = "sweep-tick")]
    SweepTick(SweepTick),
    /// Write the next page of a finished sweep's results (every lane is done).
    #[serde(rename = "sweep-finish")]
    SweepFinish(SweepFinish),
    /// Start a sweep by hand (`aws lambda invoke`, or an EventBridge event with this detail-type).
    #[serde(rename = "start-sweep", alias = "StartSweep")]
    StartSweep(StartSweepRequest),
    /// The import finished: start the sweeps of the pipelines it settled.
    #[serde(rename = "DataImportCompleted")]
    DataImportCompleted(ImportCompleted),
}

// Both a domain event and the message that starts the sweeps: it lives here
// so the message types need no event types; `events` re-exports it.
/// `DataImportCompleted`: the task succeeded; `settled` pipelines start their sweeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ImportCompleted {
    pub file_system_id: String,
    pub task_id: String,
    /// Pipelines whose uploads this import covered.
    pub pipelines: Vec<String>,
    /// Of those, the pipelines that start a sweep now: nothing left pending,
    /// or waiting longer than `import.max_pending_seconds`.
    pub settled: Vec<String>,
}

/// Watch one FSx data repository task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportWatch {
    pub file_system_id: String,
    pub task_id: String,
    /// How many polls came before this one (drives the backoff).
    #[serde(default)]
    pub polls: u32,
    /// Which timer chain this poll belongs to: each link is armed once per
    /// chain, so a duplicated timer message (a lost SendMessage reply) does
    /// not double the chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<u64>,
}

/// Reconcile a sweep's lanes again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepTick {
    pub pipeline: String,
    pub sweep_id: String,
    #[serde(default)]
    pub ticks: u32,
    /// The start of the wait this tick belongs to (a tick of an earlier wait stops its chain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<u64>,
}

/// One page of a finished sweep's job records to read: the results are
/// written page by page, so no invocation reads them all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepFinish {
    pub pipeline: String,
    pub sweep_id: String,
    /// The page number (its observations go to `finish/part-<part>`).
    pub part: u32,
    /// The last job-record key of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_after: Option<String>,
}

/// A manual start of a sweep.
///
/// ```json
/// {"kind": "start-sweep", "pipeline": "churn", "variants": ["v0", "v3"], "reason": "new features", "request_id": "2026-11-25-a"}
/// ```
/// The same `request_id` always names the same sweep, so a retried request starts nothing new.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartSweepRequest {
    pub pipeline: String,
    /// Only these variant ids (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variants: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Idempotency key; without it, the Lambda request id is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// Seconds until the next poll of an import: the interval doubles per poll,
/// capped at `max_lag` (and at SQS's 900), so an import's end is seen at most
/// `max_lag` seconds late however long it ran.
pub fn watch_delay(poll_interval: u32, polls: u32, max_lag: u32) -> u32 {
    let factor = 1u32.checked_shl(polls.min(10)).unwrap_or(u32::MAX);
    poll_interval.saturating_mul(factor).min(max_lag).min(900)
}

/// Seconds until the next relaunch tick of a sweep whose launch was refused:
/// one minute, doubling, capped at SQS's 900.
pub fn tick_delay(ticks: u32) -> u32 {
    let factor = 1u32.checked_shl(ticks.min(10)).unwrap_or(u32::MAX);
    60u32.saturating_mul(factor).min(900)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_delay_backs_off_and_caps() {
        assert_eq!(watch_delay(30, 0, 900), 30);
        assert_eq!(watch_delay(30, 1, 900), 60);
        assert_eq!(watch_delay(30, 3, 900), 240);
        assert_eq!(watch_delay(30, 20, 900), 900);
        assert_eq!(watch_delay(30, 20, 60), 60, "the lag cap bounds the backoff");
        assert_eq!(watch_delay(30, 1, 45), 45);
    }

    #[test]
    fn tick_delay_backs_off_to_the_sqs_cap() {
        assert_eq!(tick_delay(0), 60);
        assert_eq!(tick_delay(1), 120);
        assert_eq!(tick_delay(4), 900);
        assert_eq!(tick_delay(40), 900);
    }

    #[test]
    fn start_sweep_request_round_trips() {
        let json = r#"{"kind":"start-sweep","pipeline":"churn","variants":["v0"],"reason":"r"}"#;
        let m: Message = serde_json::from_str(json).expect("valid");
        let Message::StartSweep(req) = &m else {
            panic!("not a start-sweep: {m:?}")
        };
        assert_eq!(req.pipeline, "churn");
        assert_eq!(req.variants.as_deref(), Some(&["v0".to_owned()][..]));
    }

    #[test]
    fn unknown_fields_in_requests_are_rejected() {
        let json = r#"{"kind":"start-sweep","pipeline":"churn","varients":["v0"]}"#;
        assert!(serde_json::from_str::<Message>(json).is_err());
    }
}
