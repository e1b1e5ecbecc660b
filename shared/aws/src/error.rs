//! Errors of the imperative shell. Each names the AWS operation, the
//! resource and what to do, and says whether a retry can help.

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_types::error::display::DisplayErrorContext;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An AWS call failed.
    #[error("{operation} on {resource} failed ({code}): {message} — {fix}")]
    Aws {
        operation: &'static str,
        resource: String,
        code: String,
        message: String,
        fix: String,
        retryable: bool,
    },
    /// The function's environment or configuration is wrong: no retry helps.
    #[error("{0}")]
    Setup(String),
    /// Data retrain wrote (a manifest, a record) could not be read back.
    #[error("{what} at s3://{bucket}/{key} is unreadable: {cause} — delete or restore the object")]
    Corrupt {
        what: &'static str,
        bucket: String,
        key: String,
        cause: String,
    },
}

impl Error {
    /// Whether trying the same thing again later can succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Aws { retryable, .. } => *retryable,
            Error::Setup(_) | Error::Corrupt { .. } => false,
        }
    }

    /// The AWS error code, if this is an AWS error.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Aws { code, .. } => Some(code),
            _ => None,
        }
    }
}

const THROTTLING: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "SlowDown",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
];

/// Maps an SDK error to [`Error::Aws`] with a fix that fits its code.
pub fn aws<E>(operation: &'static str, resource: impl Into<String>, err: SdkError<E>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let resource = resource.into();
    let code = err.code().map(str::to_owned).unwrap_or_else(|| match &err {
        SdkError::TimeoutError(_) => "Timeout".to_owned(),
        SdkError::DispatchFailure(_) => "DispatchFailure".to_owned(),
        SdkError::ResponseError(_) => "ResponseError".to_owned(),
        _ => "Unknown".to_owned(),
    });
    let message = err
        .message()
        .map(str::to_owned)
        .unwrap_or_else(|| DisplayErrorContext(&err).to_string());
    let status = err.raw_response().map(|r| r.status().as_u16());
    let transport = matches!(
        err,
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_)
    );
    let throttled = THROTTLING.contains(&code.as_str());
    let server = status.is_some_and(|s| s >= 500);
    let retryable = transport || throttled || server || code == "ResourceLimitExceeded" || code == "InternalServerError";
    let fix = fix_for(operation, &resource, &code, retryable);
    Error::Aws {
        operation,
        resource,
        code,
        message,
        fix,
        retryable,
    }
}

fn fix_for(operation: &str, resource: &str, code: &str, retryable: bool) -> String {
    match code {
        "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" => {
            format!("grant {operation} on {resource} to the function's role (template.yaml policies)")
        }
        "NoSuchBucket" => {
            let bucket = resource.strip_prefix("s3://").and_then(|r| r.split('/').next()).unwrap_or(resource);
            format!("bucket {bucket} does not exist: create it, or fix RETRAIN_ARTIFACTS_BUCKET (or the bucket in RETRAIN_CONFIG)")
        }
        "NoSuchKey" => format!("upload {resource} or fix the key"),
        "FileSystemNotFound" => format!("check file_system.id ({resource}) in the config: it does not exist in this account and region"),
        "DataRepositoryTaskNotFound" => format!("task {resource} no longer exists; its uploads stay pending and the next import covers them"),
        "ResourceLimitExceeded" => "an account quota is full (concurrent training jobs or instances of this type): retrain retries later; raise the quota in Service Quotas to go faster".to_owned(),
        "IncompatibleParameterError" => format!("a task with the same ClientRequestToken but other parameters exists on {resource}"),
        "ValidationException" | "BadRequest" => format!("the request for {resource} was rejected: check the config fields it came from (`retrain validate`)"),
        "ResourceNotFoundException" | "ResourceNotFound" | "AWS.SimpleQueueService.NonExistentQueue" | "QueueDoesNotExist" => {
            format!("{resource} does not exist: check the stack's outputs and the function's environment")
        }
        _ if retryable => "transient: it is retried".to_owned(),
        _ => "see the message above".to_owned(),
    }
}

impl From<Error> for lambda_runtime::Diagnostic {
    fn from(e: Error) -> Self {
        let error_type = match &e {
            Error::Aws { retryable: true, .. } => "Retryable",
            Error::Aws { .. } => "AwsError",
            Error::Setup(_) => "SetupError",
            Error::Corrupt { .. } => "CorruptState",
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.to_owned(),
            error_message: e.to_string(),
        }
    }
}
