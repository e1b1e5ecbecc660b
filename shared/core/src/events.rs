//! Domain events retrain publishes on its EventBridge bus (`source` =
//! `retrain`, `detail-type` = the variant name). Users hang their own
//! automation on them; `DataImportCompleted` also starts the sweeps.

use crate::budget::InstanceHours;
use crate::config::Direction;
use crate::lanes::VariantResult;
use crate::lineage::DataVersion;
pub use crate::messages::ImportCompleted;
use crate::names;
use crate::promotion::ApprovalStatus;
use crate::requests::PutEventsEntry;
use crate::sweep::{SweepManifest, SweepTrigger};
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

/// `DataImportFailed`: the task failed or was canceled; the uploads stay pending.
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
    /// The data the sweep trains on (also the `retrain:data-version` tag of its jobs).
    pub data_version: DataVersion,
    /// variants × attempts × `instance_count` × `max_runtime_seconds`, in instance-hours: the most the sweep can bill.
    pub worst_case_instance_hours: f64,
    /// `sweep.max_instance_hours`, when set: launches that would exceed it are skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_instance_hours: Option<f64>,
    /// The instance types a variant tries, in order (`training.instance_type`, then
    /// `training.instance_types`), without those preflight skipped.
    #[serde(default)]
    pub instance_types: Vec<String>,
    /// What preflight warned about: instance types skipped for a quota or the
    /// training plan, quotas that could not be read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl SweepStarted {
    /// The event for `manifest`, stored at `manifest_uri`.
    pub fn of(manifest: &SweepManifest, manifest_uri: String) -> SweepStarted {
        let pipeline = &manifest.pipeline;
        SweepStarted {
            pipeline: pipeline.name.clone(),
            sweep_id: manifest.sweep_id.clone(),
            trigger: manifest.trigger.clone(),
            variants: manifest.variants.len(),
            max_parallel: manifest.max_parallel(),
            instance_types: manifest.instances().into_iter().map(|i| i.instance_type).collect(),
            file_system_id: pipeline.file_system.id.clone(),
            file_system_type: crate::plan::file_system_type(pipeline).to_owned(),
            manifest: manifest_uri,
            data_version: manifest.data_version(),
            worst_case_instance_hours: crate::budget::sweep_worst_case_hours(pipeline, manifest.variants.len()),
            max_instance_hours: pipeline.sweep.max_instance_hours,
            warnings: manifest.warnings.clone(),
        }
    }
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
    /// The instance type it was created on (absent when a late announcement could not tell).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
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
    /// The instance type the failed job ran on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_instance_type: Option<String>,
    /// The instance type of the new attempt: the next of `training.instance_types` after a capacity failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
}

/// `SweepCompleted`: every variant is final. The event keeps the best
/// variant and the counts; the full ranking is in `results` (an S3 object),
/// so the event stays far below EventBridge's 256 KB at any sweep size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SweepCompleted {
    pub pipeline: String,
    pub sweep_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best: Option<VariantResult>,
    /// The objective metric and its direction.
    pub metric: String,
    pub direction: Direction,
    /// Variants that reported the objective metric.
    pub ranked: usize,
    /// Variants that ended without it (failed, stopped, or no metric).
    pub unranked: usize,
    /// `s3://<artifacts bucket>/sweeps/<pipeline>/<sweep>/results.json`: every variant, ranked.
    pub results: String,
    /// The data the sweep trained on.
    pub data_version: DataVersion,
    /// What the sweep's jobs used, every attempt, and what the cap skipped.
    pub instance_hours: InstanceHours,
    /// What managed spot saved, over every spot attempt (each job's own savings are in `results`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spot_savings: Option<crate::budget::SpotSavings>,
}

/// `ModelRegistered`: the sweep's best model is a package in the SageMaker
/// Model Registry, with the approval status the promotion gate gave it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ModelRegistered {
    pub pipeline: String,
    pub sweep_id: String,
    pub model_package_group: String,
    pub model_package_arn: String,
    /// `Approved`, `Rejected` or `PendingManualApproval`.
    pub status: ApprovalStatus,
    pub training_job_name: String,
    pub metric: String,
    pub value: f64,
    /// The Approved package it was compared with; none for the group's first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub production_package_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub production_value: Option<f64>,
    pub passed_gate: bool,
    /// The comparison, in words.
    pub reason: String,
    /// The data the model was trained on.
    pub data_version: DataVersion,
}

/// `LaunchDeferred`: SageMaker refused a launch for a quota or throttling;
/// the sweep's lanes try again with backoff until `sweep.max_queue_seconds`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LaunchDeferred {
    pub pipeline: String,
    pub sweep_id: String,
    pub training_job_name: String,
    /// The AWS error code, e.g. `ResourceLimitExceeded`.
    pub code: String,
    pub message: String,
    /// Which quota to raise (or what to wait for).
    pub fix: String,
    /// Epoch seconds of the first refusal.
    pub since: u64,
    /// When the sweep is blocked if the launch still cannot be made (epoch seconds).
    pub gives_up_at: u64,
}

/// `ImportStalled`: uploads have waited, or an import has run, longer than
/// `import.max_wait_seconds`. Watching goes on; this says what to look at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ImportStalled {
    pub file_system_id: String,
    /// The running task, when one is stuck; none when uploads wait with no import.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    pub pipelines: Vec<String>,
    /// Epoch seconds since when it is stuck.
    pub since: u64,
    pub pending_entries: usize,
    pub problem: String,
    pub fix: String,
}

/// `SweepStalled`: an open sweep made no progress for longer than `sweep.stall_after_seconds`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SweepStalled {
    pub pipeline: String,
    pub sweep_id: String,
    /// Epoch seconds of its last recorded progress.
    pub since: u64,
    /// The jobs it waits for.
    pub waiting_for: Vec<String>,
    pub problem: String,
    pub fix: String,
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
    ModelRegistered(ModelRegistered),
    SweepBlocked(SweepBlocked),
    LaunchDeferred(LaunchDeferred),
    ImportStalled(ImportStalled),
    SweepStalled(SweepStalled),
}

/// The detail-types, for documentation and tests.
pub const DETAIL_TYPES: [&str; 12] = [
    "DataImportStarted",
    "DataImportCompleted",
    "DataImportFailed",
    "SweepStarted",
    "TrainingJobLaunched",
    "VariantRetried",
    "SweepCompleted",
    "ModelRegistered",
    "SweepBlocked",
    "LaunchDeferred",
    "ImportStalled",
    "SweepStalled",
];

/// The source of retrain's own domain events and requests on EventBridge.
pub const EVENT_SOURCE: &str = "retrain";

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
            DomainEvent::ModelRegistered(_) => "ModelRegistered",
            DomainEvent::SweepBlocked(_) => "SweepBlocked",
            DomainEvent::LaunchDeferred(_) => "LaunchDeferred",
            DomainEvent::ImportStalled(_) => "ImportStalled",
            DomainEvent::SweepStalled(_) => "SweepStalled",
        }
    }

    /// The event's `detail` object, without its `event_id`.
    pub fn detail(&self) -> serde_json::Value {
        serde_json::to_value(self)
            .ok()
            .and_then(|mut v| v.get_mut("detail").map(serde_json::Value::take))
            .unwrap_or_default()
    }

    /// The `PutEvents` entry that publishes it on `bus`, its detail carrying `event_id`.
    pub fn entry(&self, bus: &str, event_id: &str) -> PutEventsEntry {
        let mut detail = self.detail();
        if let Some(map) = detail.as_object_mut() {
            map.insert(EVENT_ID.to_owned(), serde_json::Value::String(event_id.to_owned()));
        }
        PutEventsEntry {
            source: EVENT_SOURCE.to_owned(),
            detail_type: self.detail_type().to_owned(),
            detail: detail.to_string(),
            event_bus_name: bus.to_owned(),
            resources: Vec::new(),
        }
    }

    /// The id of an event that has no natural scope: the same content gives the same id.
    pub fn content_id(&self) -> String {
        event_id(&self.detail().to_string(), self.detail_type())
    }
}

/// The detail field that carries the event's deterministic id.
pub const EVENT_ID: &str = "event_id";

/// The deterministic id of the event of `detail_type` about `scope`: every
/// publication of the same logical event (a retry, a duplicate delivery, the
/// reconciler) carries the same id, so subscribers keep the first and drop the rest.
pub fn event_id(scope: &str, detail_type: &str) -> String {
    names::digest(&[scope, detail_type])[..32].to_owned()
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
    put("ModelRegistered", schemars::schema_for!(ModelRegistered));
    put("SweepBlocked", schemars::schema_for!(SweepBlocked));
    put("LaunchDeferred", schemars::schema_for!(LaunchDeferred));
    put("ImportStalled", schemars::schema_for!(ImportStalled));
    put("SweepStalled", schemars::schema_for!(SweepStalled));
    for schema in out.values_mut() {
        with_event_id(schema);
    }
    serde_json::Value::Object(out)
}

/// Adds the `event_id` every published detail carries to a detail schema.
fn with_event_id(schema: &mut serde_json::Value) {
    let property = serde_json::json!({
        "description": "Deterministic id of this logical event: redeliveries and republications carry the same id (deduplicate on it).",
        "type": "string"
    });
    if let Some(p) = schema.get_mut("properties").and_then(serde_json::Value::as_object_mut) {
        p.insert(EVENT_ID.to_owned(), property);
    }
    if let Some(r) = schema.get_mut("required").and_then(serde_json::Value::as_array_mut) {
        r.push(serde_json::Value::String(EVENT_ID.to_owned()));
    }
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
            let id = example["detail"][EVENT_ID]
                .as_str()
                .unwrap_or_else(|| panic!("{detail_type} example has an event_id"));
            let mut bare = example["detail"].clone();
            bare.as_object_mut().map(|m| m.remove(EVENT_ID));
            let event: DomainEvent = serde_json::from_value(serde_json::json!({"detail-type": detail_type, "detail": bare}))
                .unwrap_or_else(|e| panic!("{detail_type}: {e}"));
            assert_eq!(event.detail_type(), detail_type);
            assert_eq!(event.detail(), bare, "{detail_type} round-trips");
            let problems = crate::config::shape::check(&schemas[detail_type], &example["detail"]);
            assert!(problems.is_empty(), "{detail_type}: {problems:?}");
            let entry = event.entry("retrain", id);
            assert_eq!(entry.detail_type, detail_type);
            assert_eq!(serde_json::from_str::<Value>(&entry.detail).ok(), Some(example["detail"].clone()));
        }
    }

    #[test]
    fn sweep_completed_stays_under_the_put_events_limit_at_1000_variants_with_long_reasons() {
        use crate::failure::JobStatus;
        let long = "AlgorithmError: ".to_owned() + &"x".repeat(1_000);
        let results: Vec<VariantResult> = (0..1_000)
            .map(|i| VariantResult {
                variant_id: format!("v{i}"),
                lane: i % 50,
                attempt: 2,
                training_job_name: format!("{}-a2", "churn-5d41402abc-v".to_owned() + &i.to_string()),
                status: JobStatus::Failed,
                failure_reason: Some(long.clone()),
                metric: None,
                timing: None,
                instance_type: Some("ml.p4d.24xlarge".into()),
            })
            .collect();
        // The full ranking alone is far over EventBridge's 256 KB: it goes to S3.
        assert!(serde_json::to_vec(&results).map(|b| b.len()).unwrap_or(0) > 256 * 1024);
        let event = DomainEvent::SweepCompleted(SweepCompleted {
            pipeline: "churn".into(),
            sweep_id: "5d41402abc".into(),
            best: results.first().cloned(),
            metric: "validation:auc".into(),
            direction: Direction::Maximize,
            ranked: 0,
            unranked: results.len(),
            results: "s3://retrain-artifacts/sweeps/churn/5d41402abc/results.json".into(),
            data_version: crate::lineage::DataVersion {
                version: "dv-0123456789abcdef".into(),
                trigger: "import".into(),
                imports: vec!["task-0123456789abcdef0".into()],
                objects: Some(10_000),
                data_as_of: Some("2026-11-25T09:00:00Z".into()),
                digest: Some("ab".repeat(32)),
            },
            instance_hours: InstanceHours {
                billable: 1.5,
                warm_pool: None,
                max_instance_hours: Some(10.0),
                skipped_for_budget: 1_000,
            },
            spot_savings: None,
        });
        let entry = event.entry("retrain", &event_id("sweeps/churn/5d41402abc", "SweepCompleted"));
        // EventBridge counts Source, DetailType, Detail and Resources (UTF-8 bytes).
        let size = entry.source.len() + entry.detail_type.len() + entry.detail.len();
        assert!(size < 8 * 1024, "{size} bytes");
    }

    #[test]
    fn event_ids_are_deterministic_per_scope_and_type() {
        assert_eq!(
            event_id("sweeps/churn/1", "SweepCompleted"),
            event_id("sweeps/churn/1", "SweepCompleted")
        );
        assert_ne!(
            event_id("sweeps/churn/1", "SweepCompleted"),
            event_id("sweeps/churn/2", "SweepCompleted")
        );
        assert_ne!(
            event_id("sweeps/churn/1", "SweepCompleted"),
            event_id("sweeps/churn/1", "SweepStarted")
        );
        assert_eq!(event_id("a", "b").len(), 32);
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
