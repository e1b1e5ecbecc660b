//! FSx for Lustre: import tasks and mount names.

use crate::error::{aws, Error};
use aws_sdk_fsx::types::{
    CompletionReport, DataRepositoryTaskFilter, DataRepositoryTaskFilterName, DataRepositoryTaskType, ReportFormat, ReportScope,
};
use retrain_core::requests::CreateDataRepositoryTask;
use tracing::instrument;

#[derive(Clone, Debug)]
pub struct Fsx {
    client: aws_sdk_fsx::Client,
}

/// What `CreateDataRepositoryTask` answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportStart {
    /// A task exists for this request (new, or the same token's earlier task).
    Started { task_id: String },
    /// Another task is running on the file system (`DataRepositoryTaskExecuting`).
    Busy,
}

/// The part of a data repository task retrain acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskState {
    pub task_id: String,
    pub file_system_id: String,
    /// PENDING, EXECUTING, FAILED, SUCCEEDED, CANCELED or CANCELING.
    pub lifecycle: String,
    pub failure: Option<String>,
}

impl TaskState {
    pub fn is_running(&self) -> bool {
        matches!(self.lifecycle.as_str(), "PENDING" | "EXECUTING" | "CANCELING")
    }
}

impl Fsx {
    pub fn new(client: aws_sdk_fsx::Client) -> Fsx {
        Fsx { client }
    }

    #[instrument(skip(self, task), fields(file_system_id = %task.file_system_id, token = %task.client_request_token))]
    pub async fn start_import(&self, task: &CreateDataRepositoryTask) -> Result<ImportStart, Error> {
        let report = match &task.report.path {
            Some(path) if task.report.enabled => CompletionReport::builder()
                .enabled(true)
                .path(path)
                .format(ReportFormat::from(task.report.format.as_deref().unwrap_or("REPORT_CSV_20191124")))
                .scope(ReportScope::from(task.report.scope.as_deref().unwrap_or("FAILED_FILES_ONLY")))
                .build(),
            _ => CompletionReport::builder().enabled(false).build(),
        };
        let result = self
            .client
            .create_data_repository_task()
            .r#type(DataRepositoryTaskType::from(task.task_type.as_str()))
            .set_paths(Some(task.paths.clone()))
            .file_system_id(&task.file_system_id)
            .report(report)
            .client_request_token(&task.client_request_token)
            .send()
            .await;
        match result {
            Ok(out) => {
                let task_id = out.data_repository_task().and_then(|t| t.task_id()).unwrap_or_default().to_owned();
                Ok(ImportStart::Started { task_id })
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_data_repository_task_executing()) => Ok(ImportStart::Busy),
            Err(e) => Err(aws(
                "fsx:CreateDataRepositoryTask",
                format!("file system {}", task.file_system_id),
                e,
            )),
        }
    }

    /// The task, or `None` when FSx no longer knows it.
    #[instrument(skip(self))]
    pub async fn task(&self, task_id: &str) -> Result<Option<TaskState>, Error> {
        let result = self.client.describe_data_repository_tasks().task_ids(task_id).send().await;
        let out = match result {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_data_repository_task_not_found()) => return Ok(None),
            Err(e) => return Err(aws("fsx:DescribeDataRepositoryTasks", format!("task {task_id}"), e)),
        };
        Ok(out.data_repository_tasks().first().map(state))
    }

    /// The task currently pending, executing or cancelling on the file system, if any.
    #[instrument(skip(self))]
    pub async fn running_task(&self, file_system_id: &str) -> Result<Option<TaskState>, Error> {
        let out = self
            .client
            .describe_data_repository_tasks()
            .filters(
                DataRepositoryTaskFilter::builder()
                    .name(DataRepositoryTaskFilterName::FileSystemId)
                    .values(file_system_id)
                    .build(),
            )
            .filters(
                DataRepositoryTaskFilter::builder()
                    .name(DataRepositoryTaskFilterName::TaskLifecycle)
                    .values("PENDING")
                    .values("EXECUTING")
                    // A cancelling task still holds the file system's one task slot.
                    .values("CANCELING")
                    .build(),
            )
            .send()
            .await
            .map_err(|e| aws("fsx:DescribeDataRepositoryTasks", format!("file system {file_system_id}"), e))?;
        Ok(out.data_repository_tasks().iter().map(state).find(TaskState::is_running))
    }

    /// `LustreConfiguration.MountName` of a file system.
    #[instrument(skip(self))]
    pub async fn mount_name(&self, file_system_id: &str) -> Result<Option<String>, Error> {
        let out = self
            .client
            .describe_file_systems()
            .file_system_ids(file_system_id)
            .send()
            .await
            .map_err(|e| aws("fsx:DescribeFileSystems", format!("file system {file_system_id}"), e))?;
        Ok(out
            .file_systems()
            .first()
            .and_then(|fs| fs.lustre_configuration())
            .and_then(|l| l.mount_name())
            .map(str::to_owned))
    }
}

fn state(t: &aws_sdk_fsx::types::DataRepositoryTask) -> TaskState {
    TaskState {
        task_id: t.task_id().unwrap_or_default().to_owned(),
        file_system_id: t.file_system_id().unwrap_or_default().to_owned(),
        lifecycle: t.lifecycle().map(|l| l.as_str().to_owned()).unwrap_or_default(),
        failure: t.failure_details().and_then(|f| f.message()).map(str::to_owned),
    }
}
