//! The configuration document: one or more pipelines.
//!
//! Doc comments here become the JSON Schema descriptions (`retrain schema`)
//! and the configuration reference, so they are written for users.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A retrain configuration: one or more pipelines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The pipelines: each watches some S3 prefixes, refreshes one file system and sweeps one training template.
    pub pipelines: Vec<Pipeline>,
}

/// One pipeline: new data under its trigger → refresh its file system → train its sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    /// Unique name, 1-32 characters of letters, digits and hyphens. It starts every training job name.
    pub name: String,
    /// Which uploads concern this pipeline.
    pub trigger: Trigger,
    /// The file system the training jobs read from.
    pub file_system: FileSystem,
    /// Where the training jobs run: the file system's VPC.
    pub vpc: Vpc,
    /// The training job template shared by every variant.
    pub training: Training,
    /// Hyperparameter variants and how many run at once.
    #[serde(default)]
    pub sweep: Sweep,
    /// Optional EventBridge schedule expression (`rate(1 day)`, `cron(0 3 * * ? *)`): scheduled events start a sweep of this pipeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// How imports into FSx for Lustre are watched.
    #[serde(default)]
    pub import: ImportSettings,
    /// Register each sweep's best model in the SageMaker Model Registry, approved only when it beats production.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion: Option<Promotion>,
}

/// The SageMaker Model Registry group a sweep's best model is registered in, and the gate to production.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Promotion {
    /// Model package group name (created, tagged, if missing), 1-63 letters, digits and hyphens.
    pub model_package_group: String,
    /// The group's description when retrain creates it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Tags of the group when retrain creates it (besides `retrain:pipeline`).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// How much the objective must beat the Approved package's value, in the objective's direction (0: strictly better).
    #[serde(default)]
    pub min_improvement: f64,
    /// `absolute` (metric units) or `relative` (a fraction of the production value).
    #[serde(default)]
    pub improvement: Improvement,
    /// `manual`: packages wait in PendingManualApproval with the comparison; `auto`: Approved when the gate passes, Rejected otherwise.
    #[serde(default)]
    pub approval: Approval,
}

/// How `min_improvement` is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Improvement {
    /// In the metric's own units.
    #[default]
    Absolute,
    /// As a fraction of the production value (0.01 = 1 %).
    Relative,
}

/// Who approves a registered package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Approval {
    /// A person: the package is PendingManualApproval, its description states the comparison.
    #[default]
    Manual,
    /// The gate: Approved when it beats production, Rejected with the reason otherwise.
    Auto,
}

/// Uploads that concern a pipeline: objects created in `bucket` under one of `prefixes`, ending with `suffix` if set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// The S3 bucket that receives new training data.
    pub bucket: String,
    /// Key prefixes to watch, e.g. `datasets/churn/`.
    pub prefixes: Vec<String>,
    /// Only keys ending with this suffix, e.g. `.csv`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
}

/// The kind of file system the training jobs read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileSystemKind {
    /// Amazon FSx for Lustre linked to the trigger bucket: uploads are imported, then trained on.
    FsxLustre,
    /// Amazon EFS: data already lives there; sweeps start by schedule or request.
    Efs,
}

/// `ro` (read-only) or `rw`: how the training job mounts the file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub enum AccessMode {
    /// Read-only (the safe default for training data).
    #[default]
    #[serde(rename = "ro")]
    ReadOnly,
    /// Read-write.
    #[serde(rename = "rw")]
    ReadWrite,
}

/// The file system. FSx for Lustre needs `data_repository_path`; EFS needs neither it nor `mount_name`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileSystem {
    /// `fsx_lustre` or `efs`.
    #[serde(rename = "type")]
    pub kind: FileSystemKind,
    /// The file system id, `fs-` followed by 8 or 17 hex digits.
    pub id: String,
    /// FSx for Lustre only: the mount name (`LustreConfiguration.MountName`). Looked up with DescribeFileSystems when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_name: Option<String>,
    /// FSx for Lustre only: the S3 URI linked to the file system (its import path or data repository association), e.g. `s3://bucket/` or `s3://bucket/datasets/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_repository_path: Option<String>,
    /// FSx for Lustre only: the directory that `data_repository_path` appears under on the file system.
    #[serde(default = "default_file_system_path")]
    pub file_system_path: String,
    /// How training jobs mount it: `ro` (default) or `rw`.
    #[serde(default)]
    pub access_mode: AccessMode,
}

fn default_file_system_path() -> String {
    "/".to_owned()
}

/// The training jobs' network placement (`VpcConfig`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Vpc {
    /// Subnet ids (`subnet-…`). For FSx for Lustre use a subnet in the file system's availability zone.
    pub subnets: Vec<String>,
    /// Security group ids (`sg-…`) that allow Lustre (TCP 988, 1018-1023) or NFS (TCP 2049) to the file system.
    pub security_groups: Vec<String>,
}

/// Objective direction of the metric used to rank variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Higher is better (accuracy, AUC).
    Maximize,
    /// Lower is better (loss, RMSE).
    Minimize,
}

/// The metric variants are ranked by.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Objective {
    /// Metric name as it appears in `FinalMetricDataList`, e.g. `validation:auc`.
    pub metric: String,
    /// `maximize` or `minimize`.
    pub direction: Direction,
}

/// A custom algorithm's metric: SageMaker extracts it from the logs with `regex`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricDefinition {
    /// Metric name.
    pub name: String,
    /// Regular expression with one capture group for the value.
    pub regex: String,
}

/// One input channel read from the file system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Channel {
    /// Channel name, e.g. `train`, `validation`.
    pub name: String,
    /// Absolute directory on the file system, without the Lustre mount name, e.g. `/datasets/churn/train`.
    pub directory: String,
    /// Optional MIME type, e.g. `text/csv`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

/// Managed spot training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Spot {
    /// `MaxWaitTimeInSeconds`: at least `max_runtime_seconds`.
    pub max_wait_seconds: u64,
    /// After this many capacity failures of a variant (no spot capacity in
    /// time, or none of the type), its next attempts run on-demand. Absent:
    /// every attempt is spot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_to_on_demand_after: Option<u32>,
}

/// A hyperparameter value: SageMaker passes every value as a string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Scalar {
    /// A string.
    String(String),
    /// A whole number.
    Integer(i64),
    /// A number.
    Float(f64),
    /// `true` or `false`.
    Bool(bool),
}

impl Scalar {
    /// The string SageMaker receives.
    pub fn to_hyperparameter(&self) -> String {
        match self {
            Scalar::String(s) => s.clone(),
            Scalar::Integer(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }
    }
}

/// The training job template shared by every variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Training {
    /// IAM role SageMaker assumes (`arn:aws:iam::<account>:role/<name>`).
    pub role_arn: String,
    /// Training image URI (ECR). Set this or `algorithm_name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Name or ARN of a SageMaker algorithm resource. Set this or `image`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm_name: Option<String>,
    /// Instance type, `ml.*`: the preferred one. Set this, `instance_types`, or both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
    /// Fallback instance types, in order, after `instance_type` (or instead of
    /// it): a job that fails for capacity, or a launch the type's quota
    /// refuses, moves to the next one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instance_types: Vec<InstanceChoice>,
    /// Instances per job.
    #[serde(default = "one")]
    pub instance_count: u32,
    /// ML storage volume per instance, in GB.
    #[serde(default = "default_volume")]
    pub volume_size_gb: u32,
    /// `MaxRuntimeInSeconds`, at most 28 days (2419200).
    #[serde(default = "default_max_runtime")]
    pub max_runtime_seconds: u64,
    /// Where SageMaker writes model artifacts (`s3://bucket/prefix`).
    pub output_path: String,
    /// Input channels, each a directory on the file system.
    pub channels: Vec<Channel>,
    /// Hyperparameters every variant gets; a variant's own values override them.
    #[serde(default)]
    pub hyperparameters: BTreeMap<String, Scalar>,
    /// Metric definitions for a custom image (built-in algorithms emit their own).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metric_definitions: Vec<MetricDefinition>,
    /// The metric that ranks variants.
    pub objective: Objective,
    /// Managed warm pool: `KeepAlivePeriodInSeconds` (1-3600). Not with spot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive_seconds: Option<u32>,
    /// Managed spot training. Not with a warm pool or a training plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spot: Option<Spot>,
    /// A SageMaker training plan (`arn:aws:sagemaker:<region>:<account>:training-plan/<name>`)
    /// whose reserved capacity the jobs run on (`ResourceConfig.TrainingPlanArn`).
    /// Only the instance types it reserves are used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_plan_arn: Option<String>,
    /// Tags added to every training job (besides retrain's own `retrain:*` tags).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Environment variables of the training container.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
}

/// One fallback instance type, with its own count and volume if they differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InstanceChoice {
    /// Instance type, `ml.*`.
    pub instance_type: String,
    /// Instances per job on this type; `training.instance_count` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_count: Option<u32>,
    /// ML storage volume per instance on this type, in GB; `training.volume_size_gb` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_size_gb: Option<u32>,
}

/// An instance type with its count and volume resolved: what one job runs on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Instances {
    pub instance_type: String,
    pub instance_count: u32,
    pub volume_size_gb: u32,
    /// The training plan whose reserved capacity the job runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_plan_arn: Option<String>,
}

impl Training {
    /// The instance types in the order a variant tries them: `instance_type`, then `instance_types`.
    pub fn instances(&self) -> Vec<Instances> {
        let preferred = self.instance_type.iter().map(|t| Instances {
            instance_type: t.clone(),
            instance_count: self.instance_count,
            volume_size_gb: self.volume_size_gb,
            training_plan_arn: self.training_plan_arn.clone(),
        });
        let fallbacks = self.instance_types.iter().map(|c| Instances {
            instance_type: c.instance_type.clone(),
            instance_count: c.instance_count.unwrap_or(self.instance_count),
            volume_size_gb: c.volume_size_gb.unwrap_or(self.volume_size_gb),
            training_plan_arn: self.training_plan_arn.clone(),
        });
        preferred.chain(fallbacks).collect()
    }

    /// The most instances one job may use (budget worst cases count this).
    pub fn max_instance_count(&self) -> u32 {
        self.instances()
            .iter()
            .map(|i| i.instance_count)
            .max()
            .unwrap_or(self.instance_count)
    }
}

fn one() -> u32 {
    1
}
fn default_volume() -> u32 {
    30
}
fn default_max_runtime() -> u64 {
    86_400
}

/// Hyperparameter variants: every point of `grid`, then every entry of `variants`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Sweep {
    /// Hyperparameter name → values; the sweep trains every combination.
    #[serde(default)]
    pub grid: BTreeMap<String, Vec<Scalar>>,
    /// Explicit variants, each a map of hyperparameters, trained after the grid.
    #[serde(default)]
    pub variants: Vec<BTreeMap<String, Scalar>>,
    /// Adaptive search instead of `grid` and `variants`: each lane's next variant is suggested from the results so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<crate::search::Search>,
    /// How many training jobs of one sweep run at once (lanes).
    #[serde(default = "one")]
    pub max_parallel: u32,
    /// How often a variant that failed for a transient reason (capacity, internal error) is retried.
    #[serde(default = "one")]
    pub max_retries: u32,
    /// How long a launch refused by a quota (`ResourceLimitExceeded`) or throttling keeps being retried, with backoff, before the sweep is blocked.
    #[serde(default = "default_max_queue")]
    pub max_queue_seconds: u64,
    /// An open sweep with no recorded progress for this long publishes `SweepStalled` once (default: `training.max_runtime_seconds` plus one hour).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stall_after_seconds: Option<u64>,
    /// Spend cap in instance-hours: finished jobs' billable time × instance count, plus the running jobs' worst case (`instance_count` × `max_runtime_seconds`), never exceeds it; a launch that would is not made and its variant is skipped for budget. No cap when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_instance_hours: Option<f64>,
}

fn default_max_queue() -> u64 {
    86_400
}

impl Default for Sweep {
    fn default() -> Self {
        Sweep {
            grid: BTreeMap::new(),
            variants: Vec::new(),
            search: None,
            max_parallel: 1,
            max_retries: 1,
            max_queue_seconds: default_max_queue(),
            stall_after_seconds: None,
            max_instance_hours: None,
        }
    }
}

/// How an FSx for Lustre import is watched and retried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportSettings {
    /// Seconds between the first polls of a running import (1-900); later polls back off, doubling up to `max_poll_lag_seconds`.
    #[serde(default = "default_poll")]
    pub poll_interval_seconds: u32,
    /// The longest gap between two polls of a running import, so a sweep starts at most this long after its import ends (1-900).
    #[serde(default = "default_max_poll_lag")]
    pub max_poll_lag_seconds: u32,
    /// An import running this long, or uploads waiting this long with no import, publish `ImportStalled` once; watching goes on.
    #[serde(default = "default_max_wait")]
    pub max_wait_seconds: u64,
    /// The longest a pipeline waits for its newer uploads to be imported before it trains on what is imported already (steady uploads never starve it).
    #[serde(default = "default_max_pending")]
    pub max_pending_seconds: u64,
    /// How many times a failed import is started in all before the pipeline's sweep is blocked.
    #[serde(default = "default_import_attempts")]
    pub max_attempts: u32,
    /// Optional S3 URI inside the data repository for FSx's completion report of failed files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_path: Option<String>,
}

fn default_poll() -> u32 {
    30
}
fn default_max_wait() -> u64 {
    3_600
}
fn default_max_poll_lag() -> u32 {
    60
}
fn default_max_pending() -> u64 {
    3_600
}
fn default_import_attempts() -> u32 {
    2
}

impl Default for ImportSettings {
    fn default() -> Self {
        ImportSettings {
            poll_interval_seconds: default_poll(),
            max_poll_lag_seconds: default_max_poll_lag(),
            max_wait_seconds: default_max_wait(),
            max_pending_seconds: default_max_pending(),
            max_attempts: default_import_attempts(),
            report_path: None,
        }
    }
}

impl Config {
    /// The pipeline with this name.
    pub fn pipeline(&self, name: &str) -> Option<&Pipeline> {
        self.pipelines.iter().find(|p| p.name == name)
    }
}
