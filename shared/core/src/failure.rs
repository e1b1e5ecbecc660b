//! Which training job endings are worth a retry. One table, so the rule is
//! in one place and can be read against the SageMaker documentation.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A training job's `TrainingJobStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum JobStatus {
    InProgress,
    Completed,
    Failed,
    Stopping,
    Stopped,
    /// Not launched: it did not fit `sweep.max_instance_hours` (retrain's own status, never SageMaker's).
    Skipped,
}

impl JobStatus {
    pub fn parse(s: &str) -> Option<JobStatus> {
        Some(match s {
            "InProgress" => JobStatus::InProgress,
            "Completed" => JobStatus::Completed,
            "Failed" => JobStatus::Failed,
            "Stopping" => JobStatus::Stopping,
            "Stopped" => JobStatus::Stopped,
            _ => return None,
        })
    }

    /// A status as retrain records it: SageMaker's, or `Skipped`.
    pub fn parse_recorded(s: &str) -> Option<JobStatus> {
        match s {
            "Skipped" => Some(JobStatus::Skipped),
            _ => JobStatus::parse(s),
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Completed | JobStatus::Failed | JobStatus::Stopped | JobStatus::Skipped
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::InProgress => "InProgress",
            JobStatus::Completed => "Completed",
            JobStatus::Failed => "Failed",
            JobStatus::Stopping => "Stopping",
            JobStatus::Stopped => "Stopped",
            JobStatus::Skipped => "Skipped",
        }
    }
}

/// Whether a retry of the same variant can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// Service-side or throttling: the same job may succeed later.
    Transient,
    /// No instances of the type (or no spot capacity in time): the next of
    /// `training.instance_types` may have them, and the same type may later.
    Capacity,
    /// The algorithm, the input or a person ended it: a retry would fail the same way or override a decision.
    Permanent,
}

impl FailureClass {
    /// Whether another attempt of the variant can help.
    pub fn retryable(self) -> bool {
        matches!(self, FailureClass::Transient | FailureClass::Capacity)
    }
}

/// What a rule matches.
#[derive(Debug, Clone, Copy)]
pub enum Matcher {
    /// `FailureReason` starts with this text (SageMaker prefixes reasons with the error type).
    ReasonPrefix(&'static str),
    /// `FailureReason` contains this text.
    ReasonContains(&'static str),
    /// `SecondaryStatus` equals this.
    Secondary(&'static str),
}

/// One row of the classification table.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub status: JobStatus,
    pub matcher: Matcher,
    pub class: FailureClass,
    pub why: &'static str,
}

use FailureClass::*;
use Matcher::*;

/// The table, first match wins. FailureReason prefixes are those SageMaker
/// documents for training jobs (`ClientError`, `AlgorithmError`,
/// `CapacityError`, `InternalServerError`); AWS Batch's SageMaker integration
/// likewise treats `CapacityError` failures, and spot jobs stopped after
/// `MaxWaitTimeExceeded`, as insufficient capacity.
pub const RULES: &[Rule] = &[
    Rule {
        status: JobStatus::Failed,
        matcher: ReasonPrefix("CapacityError"),
        class: Capacity,
        why: "no instances of the type were available",
    },
    Rule {
        status: JobStatus::Failed,
        matcher: ReasonContains("InsufficientCapacity"),
        class: Capacity,
        why: "the type had too few instances for the job",
    },
    Rule {
        status: JobStatus::Failed,
        matcher: ReasonPrefix("InternalServerError"),
        class: Transient,
        why: "a SageMaker service fault",
    },
    Rule {
        status: JobStatus::Failed,
        matcher: ReasonContains("ThrottlingException"),
        class: Transient,
        why: "SageMaker throttled a call of the job",
    },
    Rule {
        status: JobStatus::Failed,
        matcher: ReasonContains("ResourceLimitExceeded"),
        class: Transient,
        why: "an account quota was full",
    },
    Rule {
        status: JobStatus::Failed,
        matcher: ReasonPrefix("AlgorithmError"),
        class: Permanent,
        why: "the training code failed",
    },
    Rule {
        status: JobStatus::Failed,
        matcher: ReasonPrefix("ClientError"),
        class: Permanent,
        why: "the job's input or configuration is wrong",
    },
    Rule {
        status: JobStatus::Stopped,
        matcher: Secondary("MaxWaitTimeExceeded"),
        class: Capacity,
        why: "spot capacity did not come in time",
    },
    Rule {
        status: JobStatus::Stopped,
        matcher: Secondary("MaxRuntimeExceeded"),
        class: Permanent,
        why: "the job ran out of max_runtime_seconds",
    },
];

/// Classifies a failed or stopped job. Unknown reasons are permanent: a retry
/// costs money, so only failures known to be transient are retried.
pub fn classify(status: JobStatus, secondary_status: Option<&str>, reason: Option<&str>) -> (FailureClass, &'static str) {
    let reason = reason.unwrap_or("");
    for rule in RULES {
        if rule.status != status {
            continue;
        }
        let hit = match rule.matcher {
            ReasonPrefix(p) => reason.trim_start().starts_with(p),
            ReasonContains(p) => reason.contains(p),
            Secondary(s) => secondary_status == Some(s),
        };
        if hit {
            return (rule.class, rule.why);
        }
    }
    match status {
        JobStatus::Stopped => (Permanent, "stopped by a person or by StopTrainingJob"),
        _ => (Permanent, "failure reason not known to be transient"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_errors_are_their_own_class() {
        let (class, _) = classify(
            JobStatus::Failed,
            Some("Failed"),
            Some("CapacityError: Unable to provision requested ML compute capacity. Please retry using a different ML instance type."),
        );
        assert_eq!(class, Capacity);
        let (class, _) = classify(
            JobStatus::Failed,
            Some("Failed"),
            Some("InsufficientCapacityError: not enough ml.p4d.24xlarge"),
        );
        assert_eq!(class, Capacity);
        assert!(Capacity.retryable() && Transient.retryable() && !Permanent.retryable());
    }

    #[test]
    fn algorithm_and_client_errors_are_permanent() {
        assert_eq!(
            classify(JobStatus::Failed, None, Some("AlgorithmError: ExecuteUserScriptError")).0,
            Permanent
        );
        assert_eq!(
            classify(JobStatus::Failed, None, Some("ClientError: Data download failed")).0,
            Permanent
        );
    }

    #[test]
    fn internal_errors_and_throttling_are_transient() {
        assert_eq!(
            classify(
                JobStatus::Failed,
                None,
                Some("InternalServerError: We encountered an internal error.")
            )
            .0,
            Transient
        );
        assert_eq!(
            classify(JobStatus::Failed, None, Some("An error occurred (ThrottlingException)")).0,
            Transient
        );
    }

    #[test]
    fn stops_are_permanent_unless_spot_capacity_timed_out() {
        assert_eq!(classify(JobStatus::Stopped, Some("Stopped"), None).0, Permanent);
        assert_eq!(classify(JobStatus::Stopped, Some("MaxWaitTimeExceeded"), None).0, Capacity);
        assert_eq!(classify(JobStatus::Stopped, Some("MaxRuntimeExceeded"), None).0, Permanent);
    }

    #[test]
    fn unknown_reasons_are_not_retried() {
        assert_eq!(classify(JobStatus::Failed, None, Some("Something new")).0, Permanent);
        assert_eq!(classify(JobStatus::Failed, None, None).0, Permanent);
    }

    #[test]
    fn statuses_round_trip() {
        for s in ["InProgress", "Completed", "Failed", "Stopping", "Stopped"] {
            assert_eq!(JobStatus::parse(s).map(JobStatus::as_str), Some(s));
        }
        assert_eq!(JobStatus::parse("Done"), None);
    }
}
