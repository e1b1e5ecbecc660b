//! AWS request inputs as plain data. Field names are the AWS API's own
//! (PascalCase), so the JSON of these types is what `retrain plan` prints and
//! what the API reference documents; the adapters map them onto SDK builders.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `fsx:CreateDataRepositoryTask`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateDataRepositoryTask {
    #[serde(rename = "Type")]
    pub task_type: String,
    pub paths: Vec<String>,
    pub file_system_id: String,
    pub report: TaskReport,
    pub client_request_token: String,
}

/// The completion report of a data repository task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskReport {
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// `sagemaker:CreateTrainingJob`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateTrainingJob {
    pub training_job_name: String,
    pub role_arn: String,
    pub algorithm_specification: AlgorithmSpecification,
    pub hyper_parameters: BTreeMap<String, String>,
    pub input_data_config: Vec<InputChannel>,
    pub output_data_config: OutputDataConfig,
    pub resource_config: ResourceConfig,
    pub vpc_config: VpcConfig,
    pub stopping_condition: StoppingCondition,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub enable_managed_spot_training: bool,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: BTreeMap<String, String>,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AlgorithmSpecification {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm_name: Option<String>,
    pub training_input_mode: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metric_definitions: Vec<MetricDefinition>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricDefinition {
    pub name: String,
    pub regex: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InputChannel {
    pub channel_name: String,
    pub data_source: DataSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DataSource {
    pub file_system_data_source: FileSystemDataSource,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FileSystemDataSource {
    pub file_system_id: String,
    /// `FSxLustre` or `EFS`.
    pub file_system_type: String,
    /// `ro` or `rw`.
    pub file_system_access_mode: String,
    pub directory_path: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OutputDataConfig {
    pub s3_output_path: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResourceConfig {
    pub instance_type: String,
    pub instance_count: u32,
    #[serde(rename = "VolumeSizeInGB")]
    pub volume_size_in_gb: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive_period_in_seconds: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_plan_arn: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VpcConfig {
    pub security_group_ids: Vec<String>,
    pub subnets: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StoppingCondition {
    pub max_runtime_in_seconds: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_wait_time_in_seconds: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// One `events:PutEvents` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutEventsEntry {
    pub source: String,
    pub detail_type: String,
    /// The event's detail as a JSON string, as the API takes it.
    pub detail: String,
    pub event_bus_name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
}

/// One AWS call the core decided on, with the API's own input shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "api", content = "input")]
pub enum Action {
    #[serde(rename = "fsx:CreateDataRepositoryTask")]
    CreateDataRepositoryTask(CreateDataRepositoryTask),
    #[serde(rename = "sagemaker:CreateTrainingJob")]
    CreateTrainingJob(Box<CreateTrainingJob>),
    #[serde(rename = "events:PutEvents")]
    PutEvents {
        #[serde(rename = "Entries")]
        entries: Vec<PutEventsEntry>,
    },
}
