//! The function's environment: where the config, artifacts, bus and queues are.

use crate::error::Error;

/// Names of the environment variables a function reads.
pub const CONFIG_VAR: &str = "RETRAIN_CONFIG";
pub const ARTIFACTS_VAR: &str = "RETRAIN_ARTIFACTS_BUCKET";
pub const BUS_VAR: &str = "RETRAIN_EVENT_BUS";
pub const WATCH_QUEUE_VAR: &str = "RETRAIN_WATCH_QUEUE_URL";
pub const TICK_QUEUE_VAR: &str = "RETRAIN_TICK_QUEUE_URL";
/// Optional: the expression of the stack's schedule rule.
pub const SCHEDULE_VAR: &str = "RETRAIN_SCHEDULE_EXPRESSION";
/// Optional: the stack's name, tagged on every training job as `retrain:stack`.
pub const STACK_VAR: &str = "RETRAIN_STACK_NAME";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `RETRAIN_CONFIG`: a local path or `s3://bucket/key`.
    pub config_location: String,
    /// Bucket for pending uploads, import records, sweep manifests and markers.
    pub artifacts_bucket: String,
    /// EventBridge bus for domain events.
    pub event_bus: String,
    /// SQS queue whose delayed messages time the import watch.
    pub watch_queue_url: String,
    /// SQS queue whose delayed messages re-run a sweep's lanes after a launch was refused for a quota.
    pub tick_queue_url: String,
    /// The stack's schedule expression: a scheduled event starts the pipelines
    /// whose `schedule` equals it (all scheduled pipelines when unset).
    pub schedule_expression: Option<String>,
    /// The CloudFormation stack the functions belong to. Every training job is
    /// tagged `retrain:stack` with it, because the stack's IAM policy allows
    /// creating and describing only jobs with that tag. Unset outside a stack.
    pub stack_name: Option<String>,
    /// Job-record keys read per page while a finished sweep's end is written.
    pub finish_page_keys: i32,
}

impl Settings {
    /// Reads the settings from the environment, naming every missing variable at once.
    pub fn from_env() -> Result<Settings, Error> {
        let get = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let vars = [CONFIG_VAR, ARTIFACTS_VAR, BUS_VAR, WATCH_QUEUE_VAR, TICK_QUEUE_VAR];
        let missing: Vec<&str> = vars.iter().copied().filter(|v| get(v).is_none()).collect();
        if !missing.is_empty() {
            return Err(Error::Setup(format!(
                "environment variable(s) {} not set: deploy with template.yaml, or set them for a local run (see docs/local.md)",
                missing.join(", ")
            )));
        }
        let v = |name: &str| get(name).unwrap_or_default();
        Ok(Settings {
            config_location: v(CONFIG_VAR),
            artifacts_bucket: v(ARTIFACTS_VAR),
            event_bus: v(BUS_VAR),
            watch_queue_url: v(WATCH_QUEUE_VAR),
            tick_queue_url: v(TICK_QUEUE_VAR),
            schedule_expression: get(SCHEDULE_VAR),
            stack_name: get(STACK_VAR),
            finish_page_keys: retrain_core::sweep_records::FINISH_PAGE_KEYS,
        })
    }
}
