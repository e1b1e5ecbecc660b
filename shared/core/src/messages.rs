//! retrain's own messages: timers on SQS, requests, and the domain events
//! that start the next step. The `kind` field names each; on EventBridge it
//! is the `detail-type`.

use crate::events::ImportCompleted;
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
    /// Start a sweep by hand (`aws lambda invoke`, or an EventBridge event with this detail-type).
    #[serde(rename = "start-sweep", alias = "StartSweep")]
    StartSweep(StartSweepRequest),
    /// The import finished: start the sweeps of the pipelines it settled.
    #[serde(rename = "DataImportCompleted")]
    DataImportCompleted(ImportCompleted),
}

/// Watch one FSx data repository task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportWatch {
    pub file_system_id: String,
    pub task_id: String,
    /// How many polls came before this one (drives the backoff).
    #[serde(default)]
    pub polls: u32,
}

/// Reconcile a sweep's lanes again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepTick {
    pub pipeline: String,
    pub sweep_id: String,
    #[serde(default)]
    pub ticks: u32,
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

/// Seconds until the next poll of an import: the interval doubles per poll, capped at SQS's 900.
pub fn watch_delay(poll_interval: u32, polls: u32) -> u32 {
    let factor = 1u32.checked_shl(polls.min(10)).unwrap_or(u32::MAX);
    poll_interval.saturating_mul(factor).min(900)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_delay_backs_off_and_caps() {
        assert_eq!(watch_delay(30, 0), 30);
        assert_eq!(watch_delay(30, 1), 60);
        assert_eq!(watch_delay(30, 3), 240);
        assert_eq!(watch_delay(30, 20), 900);
        assert_eq!(watch_delay(0, 5), 0);
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
