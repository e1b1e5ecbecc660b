//! Domain events retrain publishes on its EventBridge bus (`source` =
//! `retrain`, `detail-type` = the variant name). Users hang their own
//! automation on them; `DataImportCompleted` also starts the sweeps.

use crate::inbound::EVENT_SOURCE;
use crate::lanes::{SweepOutcome, VariantResult};
use crate::requests::PutEventsEntry;
use crate::sweep::SweepTrigger;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportStarted {
    pub file_system_id: String,
    pub task_id: String,
    pub pipelines: Vec<String>,
    pub paths: Vec<String>,
    pub objects: usize,
    pub attempt: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportCompleted {
    pub file_system_id: String,
    pub task_id: String,
    /// Pipelines whose uploads this import covered.
    pub pipelines: Vec<String>,
    /// Of those, the pipelines with nothing left pending: their sweeps start now.
    pub settled: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportFailed {
    pub file_system_id: String,
    pub task_id: String,
    pub pipelines: Vec<String>,
    /// `FailureDetails.Message`, or why watching stopped.
    pub failure: String,
    pub attempt: u32,
    /// Whether another import of the same uploads is being started.
    pub will_retry: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepStarted {
    pub pipeline: String,
    pub sweep_id: String,
    pub trigger: SweepTrigger,
    pub variants: usize,
    pub max_parallel: usize,
    pub file_system_id: String,
    pub file_system_type: String,
    pub manifest: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobLaunched {
    pub pipeline: String,
    pub sweep_id: String,
    pub variant_id: String,
    pub lane: usize,
    pub attempt: u32,
    pub training_job_name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantRetried {
    pub pipeline: String,
    pub sweep_id: String,
    pub variant_id: String,
    pub lane: usize,
    pub attempt: u32,
    pub training_job_name: String,
    pub previous_training_job_name: String,
    pub failure_reason: String,
    pub why: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepCompleted {
    pub pipeline: String,
    pub sweep_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best: Option<VariantResult>,
    #[serde(flatten)]
    pub outcome: SweepOutcome,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepBlocked {
    pub pipeline: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep_id: Option<String>,
    /// Each problem names the resource, what is wrong and the fix.
    pub problems: Vec<String>,
}

/// Every domain event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "detail-type", content = "detail")]
pub enum DomainEvent {
    DataImportStarted(ImportStarted),
    DataImportCompleted(ImportCompleted),
    DataImportFailed(ImportFailed),
    SweepStarted(SweepStarted),
    TrainingJobLaunched(JobLaunched),
    VariantRetried(VariantRetried),
    SweepCompleted(SweepCompleted),
    SweepBlocked(SweepBlocked),
}

/// The detail-types, for documentation and tests.
pub const DETAIL_TYPES: [&str; 8] = [
    "DataImportStarted",
    "DataImportCompleted",
    "DataImportFailed",
    "SweepStarted",
    "TrainingJobLaunched",
    "VariantRetried",
    "SweepCompleted",
    "SweepBlocked",
];

impl DomainEvent {
    pub fn detail_type(&self) -> &'static str {
        match self {
            DomainEvent::DataImportStarted(_) => "DataImportStarted",
            DomainEvent::DataImportCompleted(_) => "DataImportCompleted",
            DomainEvent::DataImportFailed(_) => "DataImportFailed",
            DomainEvent::SweepStarted(_) => "SweepStarted",
            DomainEvent::TrainingJobLaunched(_) => "TrainingJobLaunched",
            DomainEvent::VariantRetried(_) => "VariantRetried",
            DomainEvent::SweepCompleted(_) => "SweepCompleted",
            DomainEvent::SweepBlocked(_) => "SweepBlocked",
        }
    }

    /// The event's `detail` object.
    pub fn detail(&self) -> serde_json::Value {
        serde_json::to_value(self)
            .ok()
            .and_then(|mut v| v.get_mut("detail").map(serde_json::Value::take))
            .unwrap_or_default()
    }

    /// The `PutEvents` entry that publishes it on `bus`.
    pub fn entry(&self, bus: &str) -> PutEventsEntry {
        PutEventsEntry {
            source: EVENT_SOURCE.to_owned(),
            detail_type: self.detail_type().to_owned(),
            detail: self.detail().to_string(),
            event_bus_name: bus.to_owned(),
            resources: Vec::new(),
        }
    }
}

/// Marker key that makes a once-only event once-only (created with `If-None-Match: *`).
pub fn once_marker_key(scope: &str, detail_type: &str) -> String {
    format!("{scope}/published/{detail_type}")
}
