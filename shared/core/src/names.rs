//! Names and identifiers: deterministic, so a duplicate event computes the
//! same name and AWS's own uniqueness rules make the second call a no-op.

use sha2::{Digest, Sha256};

/// Prefix of the tags retrain puts on its training jobs.
pub const TAG_PREFIX: &str = "retrain:";
pub const TAG_PIPELINE: &str = "retrain:pipeline";
pub const TAG_SWEEP: &str = "retrain:sweep";
pub const TAG_VARIANT: &str = "retrain:variant";
pub const TAG_LANE: &str = "retrain:lane";
pub const TAG_ATTEMPT: &str = "retrain:attempt";
/// The job that ran before this one in its lane (whose warm pool it may reuse).
pub const TAG_AFTER: &str = "retrain:after";
/// The CloudFormation stack whose functions launched the job: the deployed IAM
/// policy lets a stack create, tag and describe only the jobs carrying its name.
pub const TAG_STACK: &str = "retrain:stack";
/// The most tags retrain adds to a training job: the five above every job
/// carries, `retrain:data-version` (lineage.rs) on every job, `retrain:after` on a
/// lane's later jobs and `retrain:stack` when deployed.
pub const RETRAIN_TAG_COUNT: usize = 8;

/// Longest pipeline name: it must leave room in a 63-char job name for the
/// sweep id, variant and attempt, and stay whole so IAM can match on it.
pub const MAX_PIPELINE_NAME: usize = 32;
/// SageMaker: training job names are at most 63 characters.
pub const MAX_JOB_NAME: usize = 63;

/// Hex SHA-256 of the parts, separated so `("ab","c")` and `("a","bc")` differ.
pub fn digest(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

/// `[a-zA-Z0-9](-*[a-zA-Z0-9])*` — SageMaker's training job name pattern.
pub fn is_job_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_JOB_NAME
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// A pipeline name: a job-name prefix of at most 32 chars.
pub fn is_pipeline_name(name: &str) -> bool {
    name.len() <= MAX_PIPELINE_NAME && is_job_name(name)
}

/// `fs-` plus 8 or 17 lowercase hex digits (FSx and EFS ids share the shape).
pub fn is_file_system_id(id: &str) -> bool {
    is_aws_id(id, "fs")
}

/// `<prefix>-` plus 8 or 17 lowercase hex digits (subnets, security groups, file systems).
pub fn is_aws_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|hex| (hex.len() == 8 || hex.len() == 17) && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

/// `arn:<partition>:iam::<12 digits>:role/<path/name>`.
pub fn is_role_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "iam"
        && parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && parts[5].strip_prefix("role/").is_some_and(|n| !n.is_empty() && n.len() <= 512)
}

/// A training plan's ARN, split: `arn:<partition>:sagemaker:<region>:<account>:training-plan/<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainingPlanArn<'a> {
    pub region: &'a str,
    pub account: &'a str,
    pub name: &'a str,
}

/// The parts of a training plan ARN; `None` if it is not one. The name
/// follows `CreateTrainingPlan`'s pattern: 1-64 alphanumerics and inner hyphens.
pub fn training_plan_arn(arn: &str) -> Option<TrainingPlanArn<'_>> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, partition, service, region, account, resource] = parts.as_slice() else {
        return None;
    };
    let name = resource.strip_prefix("training-plan/")?;
    let name_ok = (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    let ok = *prefix == "arn"
        && partition.starts_with("aws")
        && *service == "sagemaker"
        && !region.is_empty()
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && name_ok;
    ok.then_some(TrainingPlanArn { region, account, name })
}

/// `ml.<family>.<size>`, e.g. `ml.m5.xlarge`.
pub fn is_instance_type(t: &str) -> bool {
    let parts: Vec<&str> = t.split('.').collect();
    parts.len() == 3
        && parts[0] == "ml"
        && parts[1..]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'))
}

/// The training job name of one attempt of one variant of a sweep:
/// `<pipeline>-<sweep>-<variant>-a<attempt>`. Readable, unique per
/// (sweep, variant, attempt), and shortened with a hash if it would exceed 63.
pub fn job_name(pipeline: &str, sweep_id: &str, variant_id: &str, attempt: u32) -> String {
    let name = format!("{pipeline}-{sweep_id}-{variant_id}-a{attempt}");
    if name.len() <= MAX_JOB_NAME {
        return name;
    }
    let hash = &digest(&[&name])[..8];
    let tail = format!("-{hash}");
    let keep = MAX_JOB_NAME - tail.len();
    let head = name[..keep].trim_end_matches('-');
    format!("{head}{tail}")
}

/// Everything before the attempt: all jobs of a sweep share it.
pub fn sweep_job_prefix(pipeline: &str, sweep_id: &str) -> String {
    format!("{pipeline}-{sweep_id}-")
}

/// A sweep id derived from what triggered it, so a duplicate trigger names the same sweep.
pub fn sweep_id(pipeline: &str, trigger_kind: &str, trigger_id: &str) -> String {
    digest(&[pipeline, trigger_kind, trigger_id])[..10].to_owned()
}

/// FSx `ClientRequestToken`: 1-63 chars of `[A-Za-z0-9_.-]`, derived from what the task covers.
pub fn import_token(file_system_id: &str, entries: &[String], attempt: u32) -> String {
    let mut parts: Vec<&str> = vec![file_system_id];
    let attempt = attempt.to_string();
    parts.push(&attempt);
    parts.extend(entries.iter().map(String::as_str));
    format!("retrain-{}", &digest(&parts)[..40])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn training_plan_arns_are_split_into_region_account_and_name() {
        let arn = "arn:aws:sagemaker:us-west-2:123456789012:training-plan/p5-reserved-1";
        assert_eq!(
            training_plan_arn(arn),
            Some(TrainingPlanArn {
                region: "us-west-2",
                account: "123456789012",
                name: "p5-reserved-1"
            })
        );
        for bad in [
            "arn:aws:sagemaker:us-west-2:123456789012:training-job/p5",
            "arn:aws:sagemaker:us-west-2:1234:training-plan/p5",
            "arn:aws:iam::123456789012:training-plan/p5",
            "arn:aws:sagemaker:us-west-2:123456789012:training-plan/-p5",
            "arn:aws:sagemaker:us-west-2:123456789012:training-plan/p_5",
            "arn:aws:sagemaker::123456789012:training-plan/p5",
            "p5",
        ] {
            assert_eq!(training_plan_arn(bad), None, "{bad}");
        }
    }

    #[test]
    fn job_names_follow_sagemaker_pattern() {
        assert!(is_job_name("churn-3f9a1c2e01-v1-a1"));
        assert!(!is_job_name("-churn"));
        assert!(!is_job_name("churn-"));
        assert!(!is_job_name("churn_1"));
        assert!(!is_job_name(""));
        assert!(!is_job_name(&"a".repeat(64)));
    }

    #[test]
    fn job_name_is_readable_and_deterministic() {
        let n = job_name("churn", "3f9a1c2e01", "v3", 2);
        assert_eq!(n, "churn-3f9a1c2e01-v3-a2");
        assert_eq!(n, job_name("churn", "3f9a1c2e01", "v3", 2));
        assert_ne!(n, job_name("churn", "3f9a1c2e01", "v3", 1));
    }

    #[test]
    fn long_job_names_are_truncated_with_a_hash() {
        let long = "a".repeat(60);
        let a = job_name(&long, "3f9a1c2e01", "v3", 1);
        let b = job_name(&long, "3f9a1c2e01", "v3", 2);
        assert!(a.len() <= MAX_JOB_NAME && is_job_name(&a), "{a}");
        assert_ne!(a, b);
        assert!(a.starts_with("aaaa"));
    }

    #[test]
    fn ids_accept_8_or_17_hex_digits() {
        assert!(is_file_system_id("fs-0123456789abcdef0"));
        assert!(is_file_system_id("fs-12345678"));
        assert!(!is_file_system_id("fs-123"));
        assert!(!is_file_system_id("fs-0123456789ABCDEF0"));
        assert!(is_aws_id("subnet-0abc1234", "subnet"));
        assert!(!is_aws_id("sg-0abc1234", "subnet"));
    }

    #[test]
    fn role_arns_and_instance_types() {
        assert!(is_role_arn("arn:aws:iam::123456789012:role/SageMakerTraining"));
        assert!(is_role_arn("arn:aws-cn:iam::123456789012:role/path/name"));
        assert!(!is_role_arn("arn:aws:iam::1234:role/x"));
        assert!(!is_role_arn("arn:aws:s3:::bucket"));
        assert!(is_instance_type("ml.m5.xlarge"));
        assert!(is_instance_type("ml.g5.2xlarge"));
        assert!(!is_instance_type("m5.xlarge"));
        assert!(!is_instance_type("ml.m5"));
    }

    #[test]
    fn import_tokens_are_valid_and_depend_on_attempt() {
        let e = vec!["a".to_owned(), "b".to_owned()];
        let t1 = import_token("fs-12345678", &e, 1);
        let t2 = import_token("fs-12345678", &e, 2);
        assert_ne!(t1, t2);
        assert!(t1.len() <= 63);
        assert!(t1.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)));
    }

    #[test]
    fn sweep_ids_depend_on_the_trigger() {
        assert_eq!(sweep_id("churn", "import", "task-1"), sweep_id("churn", "import", "task-1"));
        assert_ne!(sweep_id("churn", "import", "task-1"), sweep_id("churn", "import", "task-2"));
        assert_ne!(sweep_id("churn", "import", "task-1"), sweep_id("fraud", "import", "task-1"));
    }
}
