//! Start-up telemetry: where a training job's time went, from SageMaker's
//! `SecondaryStatusTransitions`. Training from a file system shrinks the
//! Downloading step; a warm pool shrinks Starting. These numbers show it.

use crate::events::DomainEvent;
use crate::failure::FailureClass;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One `SecondaryStatusTransitions` entry, times in epoch seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub status: String,
    pub start: f64,
    pub end: Option<f64>,
}

/// Seconds spent in each phase of a training job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct JobTiming {
    /// `Starting`: provisioning instances (short when a warm pool was reused).
    pub startup_seconds: f64,
    /// `Downloading`: copying input data (near zero when reading a file system).
    pub download_seconds: f64,
    /// `Training`.
    pub training_seconds: f64,
    /// `Uploading`: writing the model artifacts.
    pub upload_seconds: f64,
    /// `BillableTimeInSeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billable_seconds: Option<i64>,
    /// The job started on instances a managed warm pool kept from an earlier job.
    pub warm_pool_reused: bool,
    /// `WarmPoolStatus.ResourceRetainedBillableTimeInSeconds`, when SageMaker reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm_pool_billable_seconds: Option<i64>,
    /// `TrainingTimeInSeconds`, for a managed spot job: longer than what it billed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_time_seconds: Option<i64>,
    /// A managed spot job's savings as SageMaker computes them:
    /// (1 − `BillableTimeInSeconds` / `TrainingTimeInSeconds`) × 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spot_savings_percent: Option<f64>,
}

/// SageMaker's managed spot savings: (1 − billable / training time) × 100, for a positive training time.
pub fn spot_savings_percent(billable_seconds: i64, training_seconds: i64) -> f64 {
    (100.0 * (1.0 - billable_seconds as f64 / training_seconds as f64)).clamp(0.0, 100.0)
}

impl JobTiming {
    /// Records a managed spot job's training time and its savings (nothing for on-demand jobs).
    pub fn with_spot(mut self, managed_spot: bool, training_time_seconds: Option<i64>) -> JobTiming {
        if !managed_spot {
            return self;
        }
        self.training_time_seconds = training_time_seconds;
        self.spot_savings_percent = match (self.billable_seconds, training_time_seconds) {
            (Some(billable), Some(training)) if training > 0 => Some(spot_savings_percent(billable, training)),
            _ => None,
        };
        self
    }

    /// Time before training began: what training from a file system (and a warm pool) saves.
    pub fn before_training(&self) -> f64 {
        self.startup_seconds + self.download_seconds
    }
}

/// Sums each phase's transitions. A phase without an end (the job stopped in it) ends where the next one starts.
pub fn timing(transitions: &[Transition], billable_seconds: Option<i64>, warm_pool_reused: bool) -> JobTiming {
    let mut t = JobTiming {
        billable_seconds,
        warm_pool_reused,
        ..JobTiming::default()
    };
    for (i, step) in transitions.iter().enumerate() {
        let end = step.end.or_else(|| transitions.get(i + 1).map(|n| n.start)).unwrap_or(step.start);
        let seconds = (end - step.start).max(0.0);
        match step.status.as_str() {
            "Starting" | "Pending" | "Restarting" => t.startup_seconds += seconds,
            "Downloading" => t.download_seconds += seconds,
            "Training" => t.training_seconds += seconds,
            "Uploading" => t.upload_seconds += seconds,
            _ => {}
        }
    }
    t
}

/// CloudWatch namespace of retrain's metrics.
pub const NAMESPACE: &str = "Retrain";

/// One CloudWatch embedded metric format record for a finished job
/// (namespace `Retrain`, dimensions `Pipeline` and `FileSystemType`).
pub fn emf(pipeline: &str, file_system_type: &str, training_job_name: &str, timing: &JobTiming, timestamp_ms: u64) -> serde_json::Value {
    let metric = |name: &str| serde_json::json!({"Name": name, "Unit": "Seconds"});
    serde_json::json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Pipeline", "FileSystemType"]],
                "Metrics": [
                    metric("StartupSeconds"), metric("DownloadSeconds"), metric("TrainingSeconds"), metric("UploadSeconds"),
                    {"Name": "WarmPoolReused", "Unit": "Count"}
                ]
            }]
        },
        "Pipeline": pipeline,
        "FileSystemType": file_system_type,
        "TrainingJobName": training_job_name,
        "StartupSeconds": timing.startup_seconds,
        "DownloadSeconds": timing.download_seconds,
        "TrainingSeconds": timing.training_seconds,
        "UploadSeconds": timing.upload_seconds,
        "WarmPoolReused": u8::from(timing.warm_pool_reused),
    })
}

/// What one reconciler pass found open or stuck, for the stall alarms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenWork {
    /// Age of the oldest upload not yet covered by a succeeded import.
    pub oldest_pending_upload_seconds: u64,
    pub open_sweeps: u64,
    /// File systems whose uploads or running import are older than `import.max_wait_seconds`.
    pub imports_stalled: u64,
    /// Open sweeps with no progress for longer than `sweep.stall_after_seconds`.
    pub sweeps_stalled: u64,
}

/// The reconciler's embedded metric format record (namespace `Retrain`, no
/// dimensions: the alarms in the template watch these account-wide).
pub fn open_work_emf(work: &OpenWork, timestamp_ms: u64) -> serde_json::Value {
    serde_json::json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [[]],
                "Metrics": [
                    {"Name": "OldestPendingUploadAgeSeconds", "Unit": "Seconds"},
                    {"Name": "OpenSweeps", "Unit": "Count"},
                    {"Name": "ImportsStalled", "Unit": "Count"},
                    {"Name": "SweepsStalled", "Unit": "Count"}
                ]
            }]
        },
        "OldestPendingUploadAgeSeconds": work.oldest_pending_upload_seconds,
        "OpenSweeps": work.open_sweeps,
        "ImportsStalled": work.imports_stalled,
        "SweepsStalled": work.sweeps_stalled,
    })
}

/// The count each domain event adds to (namespace `Retrain`, no dimensions:
/// the dashboard and the alarms watch them account-wide). The stall events
/// have none: the reconciler's `ImportsStalled` and `SweepsStalled` gauges
/// say the same, level-driven.
pub const EVENT_METRICS: [(&str, &str); 10] = [
    ("DataImportStarted", "ImportsStarted"),
    ("DataImportCompleted", "ImportsCompleted"),
    ("DataImportFailed", "ImportsFailed"),
    ("SweepStarted", "SweepsStarted"),
    ("TrainingJobLaunched", "JobsLaunched"),
    ("VariantRetried", "JobsRetried"),
    ("SweepCompleted", "SweepsCompleted"),
    ("ModelRegistered", "ModelsRegistered"),
    ("SweepBlocked", "SweepsBlocked"),
    ("LaunchDeferred", "LaunchesDeferred"),
];

/// One account-wide record of `metrics` (name, value, unit).
fn account_emf(metrics: &[(&str, f64, &str)], timestamp_ms: u64) -> serde_json::Value {
    let mut record = serde_json::json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [[]],
                "Metrics": metrics.iter().map(|(name, _, unit)| serde_json::json!({"Name": name, "Unit": unit})).collect::<Vec<_>>()
            }]
        }
    });
    for (name, value, _) in metrics {
        record[*name] = serde_json::json!(value);
    }
    record
}

/// The record a domain event's first publication emits: its count, and for
/// a completed sweep the instance-hours it used.
pub fn event_emf(event: &DomainEvent, timestamp_ms: u64) -> Option<serde_json::Value> {
    let (_, metric) = EVENT_METRICS.iter().find(|(t, _)| *t == event.detail_type())?;
    let mut metrics = vec![(*metric, 1.0, "Count")];
    if let DomainEvent::SweepCompleted(done) = event {
        metrics.push(("SweepInstanceHours", done.instance_hours.billable, "None"));
    }
    Some(account_emf(&metrics, timestamp_ms))
}

/// A succeeded import's duration, from its start to the success seen.
pub fn import_emf(seconds: u64, timestamp_ms: u64) -> serde_json::Value {
    account_emf(&[("ImportSeconds", seconds as f64, "Seconds")], timestamp_ms)
}

/// A failed training job, counted by whether a retry can help (`FailureClass`: `transient`, `capacity` or `permanent`).
pub fn job_failure_emf(class: FailureClass, timestamp_ms: u64) -> serde_json::Value {
    let class = match class {
        FailureClass::Transient => "transient",
        FailureClass::Capacity => "capacity",
        FailureClass::Permanent => "permanent",
    };
    serde_json::json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["FailureClass"]],
                "Metrics": [{"Name": "JobsFailed", "Unit": "Count"}]
            }]
        },
        "FailureClass": class,
        "JobsFailed": 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spot_jobs_savings_are_sagemakers_one_minus_billable_over_training_time() {
        let billed = |b| JobTiming {
            billable_seconds: b,
            ..JobTiming::default()
        };
        let spot = billed(Some(300)).with_spot(true, Some(1000));
        assert_eq!(spot.training_time_seconds, Some(1000));
        assert_eq!(spot.spot_savings_percent, Some(70.0));
        let on_demand = billed(Some(300)).with_spot(false, Some(1000));
        assert_eq!((on_demand.training_time_seconds, on_demand.spot_savings_percent), (None, None));
        assert_eq!(billed(None).with_spot(true, Some(1000)).spot_savings_percent, None);
        assert_eq!(billed(Some(10)).with_spot(true, Some(0)).spot_savings_percent, None);
    }

    #[test]
    fn every_event_but_the_stalls_has_its_count() {
        for t in crate::events::DETAIL_TYPES {
            let counted = EVENT_METRICS.iter().any(|(d, _)| *d == t);
            assert_eq!(counted, !t.ends_with("Stalled"), "{t}");
        }
    }

    #[test]
    fn account_records_carry_the_values_they_name() {
        let record = import_emf(42, 7);
        assert_eq!(record["_aws"]["CloudWatchMetrics"][0]["Dimensions"], serde_json::json!([[]]));
        assert_eq!(record["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"], "ImportSeconds");
        assert_eq!(record["ImportSeconds"], 42.0);
        let failed = job_failure_emf(FailureClass::Transient, 7);
        assert_eq!(failed["FailureClass"], "transient");
        assert_eq!(failed["JobsFailed"], 1);
    }

    #[test]
    fn the_open_work_record_names_every_metric_it_carries() {
        let work = OpenWork {
            oldest_pending_upload_seconds: 7,
            open_sweeps: 2,
            imports_stalled: 1,
            sweeps_stalled: 0,
        };
        let record = open_work_emf(&work, 1_000);
        let metrics = record["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(metrics.len(), 4);
        for m in &metrics {
            assert!(record[m["Name"].as_str().unwrap_or_default()].is_u64(), "{m}");
        }
        assert_eq!(record["OldestPendingUploadAgeSeconds"], 7);
        assert_eq!(record["_aws"]["CloudWatchMetrics"][0]["Dimensions"], serde_json::json!([[]]));
    }

    fn step(status: &str, start: f64, end: Option<f64>) -> Transition {
        Transition {
            status: status.into(),
            start,
            end,
        }
    }

    #[test]
    fn phases_are_summed_from_transitions() {
        let t = timing(
            &[
                step("Starting", 0.0, Some(95.0)),
                step("Downloading", 95.0, Some(97.0)),
                step("Training", 97.0, Some(400.0)),
                step("Uploading", 400.0, Some(410.0)),
                step("Completed", 410.0, Some(410.0)),
            ],
            Some(410),
            false,
        );
        assert_eq!(
            (t.startup_seconds, t.download_seconds, t.training_seconds, t.upload_seconds),
            (95.0, 2.0, 303.0, 10.0)
        );
        assert_eq!(t.before_training(), 97.0);
        assert_eq!(t.billable_seconds, Some(410));
    }

    #[test]
    fn an_open_phase_ends_where_the_next_starts() {
        let t = timing(&[step("Starting", 0.0, None), step("Failed", 30.0, None)], None, false);
        assert_eq!(t.startup_seconds, 30.0);
    }

    #[test]
    fn emf_records_name_namespace_dimensions_and_every_metric() {
        let t = JobTiming {
            startup_seconds: 5.0,
            download_seconds: 1.0,
            training_seconds: 60.0,
            upload_seconds: 2.0,
            billable_seconds: None,
            warm_pool_reused: true,
            warm_pool_billable_seconds: None,
            ..JobTiming::default()
        };
        let record = emf("churn", "FSxLustre", "churn-x-v0-a1", &t, 1_795_618_800_000);
        let directive = &record["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(directive["Dimensions"][0], serde_json::json!(["Pipeline", "FileSystemType"]));
        // Every declared metric and dimension has a value at the root, as EMF requires.
        for m in directive["Metrics"].as_array().expect("metrics") {
            let name = m["Name"].as_str().expect("name");
            assert!(record[name].is_number(), "{name}");
        }
        for d in ["Pipeline", "FileSystemType"] {
            assert!(record[d].is_string());
        }
        assert_eq!(record["WarmPoolReused"], 1);
        assert!(record["_aws"]["Timestamp"].is_u64());
    }
}
