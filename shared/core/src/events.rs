//! Domain events retrain publishes on its EventBridge bus (`source` =
//! `retrain`, `detail-type` = the variant name). Users hang their own
//! automation on them; `DataImportCompleted` also starts the sweeps.

use crate::inbound::EVENT_SOURCE;
use crate::lanes::{SweepOutcome, VariantResult};
use crate::requests::PutEventsEntry;
use crate::sweep::SweepTrigger;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `DataImportStarted`: an import task now covers these uploads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ImportStarted {
    pub file_system_id: String,
    pub task_id: String,
    pub pipelines: Vec<String>,
    pub paths: Vec<String>,
    pub objects: usize,
    pub attempt: u32,
}

/// `DataImportCompleted`: the task succeeded; `settled` pipelines start their sweeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ImportCompleted {
    pub file_system_id: String,
    pub task_id: String,
    /// Pipelines whose uploads this import covered.
    pub pipelines: Vec<String>,
    /// Of those, the pipelines with nothing left pending: their sweeps start now.
    pub settled: Vec<String>,
}

/// `DataImportFailed`: the task failed, was canceled, or ran past `max_wait_seconds`; the uploads stay pending.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
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

/// `SweepStarted`: a sweep's manifest was written; its first lanes launch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
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

/// `TrainingJobLaunched`: one attempt of one variant was created in SageMaker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct JobLaunched {
    pub pipeline: String,
    pub sweep_id: String,
    pub variant_id: String,
    pub lane: usize,
    pub attempt: u32,
    pub training_job_name: String,
}

/// `VariantRetried`: a variant failed for a transient reason and runs again under a new attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
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

/// `SweepCompleted`: every variant is final; the ranking and the best variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SweepCompleted {
    pub pipeline: String,
    pub sweep_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best: Option<VariantResult>,
    #[serde(flatten)]
    pub outcome: SweepOutcome,
}

/// `SweepBlocked`: a sweep cannot start or go on; each problem says what to fix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SweepBlocked {
    pub pipeline: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep_id: Option<String>,
    /// Each problem names the resource, what is wrong and the fix.
    pub problems: Vec<String>,
}

/// Every domain event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
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

/// JSON Schemas of every domain event's `detail`, keyed by detail-type.
pub fn detail_schemas() -> serde_json::Value {
    let mut out = serde_json::Map::new();
    let mut put = |name: &str, schema: schemars::Schema| {
        out.insert(name.to_owned(), schema.to_value());
    };
    put("DataImportStarted", schemars::schema_for!(ImportStarted));
    put("DataImportCompleted", schemars::schema_for!(ImportCompleted));
    put("DataImportFailed", schemars::schema_for!(ImportFailed));
    put("SweepStarted", schemars::schema_for!(SweepStarted));
    put("TrainingJobLaunched", schemars::schema_for!(JobLaunched));
    put("VariantRetried", schemars::schema_for!(VariantRetried));
    put("SweepCompleted", schemars::schema_for!(SweepCompleted));
    put("SweepBlocked", schemars::schema_for!(SweepBlocked));
    serde_json::Value::Object(out)
}

/// Marker key that makes a once-only event once-only (created with `If-None-Match: *`).
pub fn once_marker_key(scope: &str, detail_type: &str) -> String {
    format!("{scope}/published/{detail_type}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn read(name: &str) -> Value {
        let path = format!("{}/../../events/domain/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
            .unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn every_domain_event_has_an_example_that_round_trips_and_fits_its_schema() {
        let schemas = detail_schemas();
        for detail_type in DETAIL_TYPES {
            let example = read(&format!("{detail_type}.json"));
            assert_eq!(example["source"], EVENT_SOURCE);
            assert_eq!(example["detail-type"], detail_type);
            let event: DomainEvent = serde_json::from_value(serde_json::json!({"detail-type": detail_type, "detail": example["detail"]}))
                .unwrap_or_else(|e| panic!("{detail_type}: {e}"));
            assert_eq!(event.detail_type(), detail_type);
            assert_eq!(event.detail(), example["detail"], "{detail_type} round-trips");
            let problems = crate::config::shape::check(&schemas[detail_type], &example["detail"]);
            assert!(problems.is_empty(), "{detail_type}: {problems:?}");
            let entry = event.entry("retrain");
            assert_eq!(entry.detail_type, detail_type);
            assert_eq!(serde_json::from_str::<Value>(&entry.detail).ok(), Some(example["detail"].clone()));
        }
    }

    #[test]
    fn the_published_schemas_match_the_code() {
        assert_eq!(
            read("schemas.json"),
            detail_schemas(),
            "regenerate with `retrain schema --events > events/domain/schemas.json`"
        );
    }
}
