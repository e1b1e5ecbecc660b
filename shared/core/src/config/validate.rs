//! Semantic checks of a well-formed configuration against AWS limits and
//! shapes. Every rule adds to one list so the user sees all problems at once.

use super::{Config, ConfigError, FileSystemKind, Pipeline, Scalar, Training};
use crate::names;
use crate::s3_uri::{is_bucket_name, S3Uri};
use std::collections::{BTreeMap, HashSet};

/// SageMaker: `MaxRuntimeInSeconds` is at most 28 days.
pub const MAX_RUNTIME_SECONDS: u64 = 28 * 24 * 3600;
/// SageMaker: `KeepAlivePeriodInSeconds` is at most one hour.
pub const MAX_KEEP_ALIVE_SECONDS: u32 = 3600;
/// SQS: `DelaySeconds` is at most 15 minutes; the import watch timer uses it.
pub const MAX_POLL_INTERVAL_SECONDS: u32 = 900;
/// SageMaker: at most 50 tags per training job; retrain adds its own.
pub const MAX_USER_TAGS: usize = 50 - names::RETRAIN_TAG_COUNT;
/// SageMaker: at most 100 hyperparameters per training job.
pub const MAX_HYPERPARAMETERS: usize = 100;
/// Upper bound on one sweep, so a typo in a grid does not launch thousands of jobs.
pub const MAX_VARIANTS: usize = 1000;

struct Report {
    errors: Vec<ConfigError>,
}

impl Report {
    fn add(&mut self, path: &str, message: impl Into<String>, fix: impl Into<String>) {
        self.errors.push(ConfigError::new(path, message.into(), fix.into()));
    }

    fn check(&mut self, ok: bool, path: &str, message: impl FnOnce() -> String, fix: &str) {
        if !ok {
            self.add(path, message(), fix);
        }
    }
}

pub(super) fn validate(config: &Config) -> Vec<ConfigError> {
    let mut r = Report { errors: Vec::new() };
    if config.pipelines.is_empty() {
        r.add("pipelines", "no pipeline defined", "add at least one pipeline");
    }
    let mut seen = HashSet::new();
    for (i, p) in config.pipelines.iter().enumerate() {
        let at = format!("pipelines[{i}]");
        if !seen.insert(p.name.as_str()) {
            r.add(
                &format!("{at}.name"),
                format!("pipeline name {:?} is used twice", p.name),
                "give every pipeline its own name",
            );
        }
        pipeline(&mut r, &at, p);
    }
    shared_import_watch(&mut r, config);
    r.errors
}

/// FSx runs one task at a time per file system, and one watch polls it, with
/// the settings of the file system's first pipeline: the others must agree,
/// or their `max_poll_lag_seconds` would be silently ignored.
fn shared_import_watch(r: &mut Report, config: &Config) {
    let mut first: BTreeMap<&str, (usize, &Pipeline)> = BTreeMap::new();
    for (i, p) in config.pipelines.iter().enumerate() {
        if p.file_system.kind != FileSystemKind::FsxLustre {
            continue;
        }
        let Some(&(j, q)) = first.get(p.file_system.id.as_str()) else {
            first.insert(&p.file_system.id, (i, p));
            continue;
        };
        let fields = [
            (
                "poll_interval_seconds",
                p.import.poll_interval_seconds,
                q.import.poll_interval_seconds,
            ),
            ("max_poll_lag_seconds", p.import.max_poll_lag_seconds, q.import.max_poll_lag_seconds),
        ];
        for (field, mine, theirs) in fields {
            r.check(
                mine == theirs,
                &format!("pipelines[{i}].import.{field}"),
                || {
                    format!(
                        "{mine} differs from {theirs} in pipelines[{j}] ({:?}) on the same file system {}: one watch polls its imports",
                        q.name, p.file_system.id
                    )
                },
                "use the same value in every pipeline on this file system",
            );
        }
    }
}

fn pipeline(r: &mut Report, at: &str, p: &Pipeline) {
    r.check(
        names::is_pipeline_name(&p.name),
        &format!("{at}.name"),
        || format!("{:?} is not a valid pipeline name", p.name),
        "use 1-32 letters, digits and single hyphens, starting and ending with a letter or digit (it starts every training job name)",
    );
    trigger(r, at, p);
    file_system(r, at, p);
    vpc(r, at, p);
    training(r, at, p);
    sweep(r, at, p);
    promotion(r, at, p);
    if let Some(expr) = &p.schedule {
        let ok = (expr.starts_with("rate(") || expr.starts_with("cron(")) && expr.ends_with(')');
        r.check(
            ok,
            &format!("{at}.schedule"),
            || format!("{expr:?} is not a schedule expression"),
            "use `rate(1 day)` or `cron(0 3 * * ? *)`",
        );
    }
    let imp = &p.import;
    // 0 would re-poll with no delay: a back-to-back invocation loop for the import's whole duration.
    r.check(
        (1..=MAX_POLL_INTERVAL_SECONDS).contains(&imp.poll_interval_seconds),
        &format!("{at}.import.poll_interval_seconds"),
        || {
            if imp.poll_interval_seconds == 0 {
                "0 would poll the import back to back, one invocation after another".to_owned()
            } else {
                format!("{} is more than SQS's maximum delay", imp.poll_interval_seconds)
            }
        },
        "use 1-900 seconds (30 is a good start)",
    );
    r.check(
        (imp.poll_interval_seconds.max(1)..=MAX_POLL_INTERVAL_SECONDS).contains(&imp.max_poll_lag_seconds),
        &format!("{at}.import.max_poll_lag_seconds"),
        || format!("{} is outside poll_interval_seconds..900", imp.max_poll_lag_seconds),
        "use a value between poll_interval_seconds and 900",
    );
    r.check(
        imp.max_pending_seconds > 0,
        &format!("{at}.import.max_pending_seconds"),
        || "0 would start a sweep for every import while uploads keep coming".to_owned(),
        "use at least 60 seconds (3600 is the default)",
    );
    r.check(
        imp.max_wait_seconds >= u64::from(imp.poll_interval_seconds) && imp.max_wait_seconds > 0,
        &format!("{at}.import.max_wait_seconds"),
        || format!("{} is shorter than one poll interval", imp.max_wait_seconds),
        "make it at least poll_interval_seconds (an import of a large prefix can take an hour)",
    );
    r.check(
        (1..=10).contains(&imp.max_attempts),
        &format!("{at}.import.max_attempts"),
        || format!("{} is out of range", imp.max_attempts),
        "use 1-10",
    );
    if let Some(report) = &imp.report_path {
        r.check(
            S3Uri::parse(report).is_some(),
            &format!("{at}.import.report_path"),
            || format!("{report:?} is not an S3 URI"),
            "use s3://bucket/prefix inside the data repository",
        );
    }
}

fn trigger(r: &mut Report, at: &str, p: &Pipeline) {
    let t = &p.trigger;
    r.check(
        is_bucket_name(&t.bucket),
        &format!("{at}.trigger.bucket"),
        || format!("{:?} is not a valid S3 bucket name", t.bucket),
        "use the bucket's name only (3-63 lowercase letters, digits, dots, hyphens), not an s3:// URI",
    );
    if t.prefixes.is_empty() {
        r.add(
            &format!("{at}.trigger.prefixes"),
            "no prefix given",
            "list at least one key prefix, e.g. `datasets/churn/`",
        );
    }
    for (j, prefix) in t.prefixes.iter().enumerate() {
        let path = format!("{at}.trigger.prefixes[{j}]");
        r.check(
            !prefix.starts_with('/'),
            &path,
            || format!("{prefix:?} starts with `/`"),
            "S3 keys have no leading slash: drop it",
        );
        r.check(
            !prefix.starts_with("s3://"),
            &path,
            || format!("{prefix:?} is a URI"),
            "give the key prefix only; the bucket goes in `bucket`",
        );
        r.check(
            prefix.len() <= 1024,
            &path,
            || "is longer than an S3 key (1024 bytes)".to_owned(),
            "shorten it",
        );
    }
}

fn file_system(r: &mut Report, at: &str, p: &Pipeline) {
    let fs = &p.file_system;
    let fat = format!("{at}.file_system");
    r.check(
        names::is_file_system_id(&fs.id),
        &format!("{fat}.id"),
        || format!("{:?} is not a file system id", fs.id),
        "use the id shown by `aws fsx describe-file-systems` or `aws efs describe-file-systems`: `fs-` and 8 or 17 hex digits",
    );
    match fs.kind {
        FileSystemKind::FsxLustre => {
            match fs.data_repository_path.as_deref().map(|s| (s, S3Uri::parse(s))) {
                None => r.add(
                    &format!("{fat}.data_repository_path"),
                    "is required for fsx_lustre",
                    "set the S3 URI the file system is linked to (its ImportPath or data repository association), e.g. s3://bucket/",
                ),
                Some((raw, None)) => r.add(
                    &format!("{fat}.data_repository_path"),
                    format!("{raw:?} is not an S3 URI"),
                    "use s3://bucket/prefix",
                ),
                Some((_, Some(repo))) => {
                    for (j, prefix) in p.trigger.prefixes.iter().enumerate() {
                        let watched = S3Uri::new(&p.trigger.bucket, prefix);
                        r.check(
                            repo.covers(&watched),
                            &format!("{at}.trigger.prefixes[{j}]"),
                            || format!("{watched} is outside the file system's data repository {repo}"),
                            "watch a prefix inside data_repository_path, or link the file system to this bucket/prefix",
                        );
                    }
                }
            }
            if let Some(m) = &fs.mount_name {
                r.check(
                    !m.is_empty() && m.len() <= 8 && m.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
                    &format!("{fat}.mount_name"),
                    || format!("{m:?} is not a Lustre mount name"),
                    "copy LustreConfiguration.MountName from `aws fsx describe-file-systems` (8 lowercase letters/digits, `fsx` on scratch 1), or omit it to look it up",
                );
            }
            r.check(
                fs.file_system_path.starts_with('/'),
                &format!("{fat}.file_system_path"),
                || format!("{:?} is not absolute", fs.file_system_path),
                "start it with `/`",
            );
        }
        FileSystemKind::Efs => {
            r.check(
                fs.mount_name.is_none(),
                &format!("{fat}.mount_name"),
                || "is only for fsx_lustre".to_owned(),
                "remove it: EFS has no mount name",
            );
            r.check(
                fs.data_repository_path.is_none(),
                &format!("{fat}.data_repository_path"),
                || "is only for fsx_lustre".to_owned(),
                "remove it: EFS is not linked to S3 (start its sweeps by schedule or request)",
            );
        }
    }
}

fn vpc(r: &mut Report, at: &str, p: &Pipeline) {
    let v = &p.vpc;
    r.check(
        (1..=16).contains(&v.subnets.len()),
        &format!("{at}.vpc.subnets"),
        || format!("{} subnets given", v.subnets.len()),
        "give 1-16 subnet ids in the file system's VPC",
    );
    for (j, s) in v.subnets.iter().enumerate() {
        r.check(
            names::is_aws_id(s, "subnet"),
            &format!("{at}.vpc.subnets[{j}]"),
            || format!("{s:?} is not a subnet id"),
            "use `subnet-` and 8 or 17 hex digits",
        );
    }
    r.check(
        (1..=5).contains(&v.security_groups.len()),
        &format!("{at}.vpc.security_groups"),
        || format!("{} security groups given", v.security_groups.len()),
        "give 1-5 security group ids",
    );
    for (j, s) in v.security_groups.iter().enumerate() {
        r.check(
            names::is_aws_id(s, "sg"),
            &format!("{at}.vpc.security_groups[{j}]"),
            || format!("{s:?} is not a security group id"),
            "use `sg-` and 8 or 17 hex digits",
        );
    }
}

/// The preferred instance type and its fallbacks: at least one, each a
/// SageMaker type with a count and volume in range, none twice.
fn instances(r: &mut Report, tat: &str, t: &Training) {
    if t.instance_type.is_none() && t.instance_types.is_empty() {
        r.add(
            &format!("{tat}.instance_type"),
            "no instance type is set",
            "add `instance_type` (e.g. ml.m5.xlarge), or a list `instance_types` to try in order",
        );
    }
    if let Some(it) = &t.instance_type {
        r.check(
            names::is_instance_type(it),
            &format!("{tat}.instance_type"),
            || format!("{it:?} is not a SageMaker instance type"),
            "use an `ml.` type such as ml.m5.xlarge or ml.g5.2xlarge",
        );
    }
    r.check(
        t.instance_count >= 1,
        &format!("{tat}.instance_count"),
        || "must be at least 1".to_owned(),
        "use 1 or more",
    );
    r.check(
        (1..=16384).contains(&t.volume_size_gb),
        &format!("{tat}.volume_size_gb"),
        || format!("{} is out of range", t.volume_size_gb),
        "use 1-16384 GB",
    );
    let mut seen: Vec<&str> = t.instance_type.iter().map(String::as_str).collect();
    for (j, c) in t.instance_types.iter().enumerate() {
        let at = format!("{tat}.instance_types[{j}]");
        r.check(
            names::is_instance_type(&c.instance_type),
            &format!("{at}.instance_type"),
            || format!("{:?} is not a SageMaker instance type", c.instance_type),
            "use an `ml.` type such as ml.g5.2xlarge",
        );
        r.check(
            !seen.contains(&c.instance_type.as_str()),
            &format!("{at}.instance_type"),
            || format!("{} is already in the list", c.instance_type),
            "list each instance type once",
        );
        seen.push(&c.instance_type);
        if let Some(n) = c.instance_count {
            r.check(
                n >= 1,
                &format!("{at}.instance_count"),
                || "must be at least 1".to_owned(),
                "use 1 or more",
            );
        }
        if let Some(v) = c.volume_size_gb {
            r.check(
                (1..=16384).contains(&v),
                &format!("{at}.volume_size_gb"),
                || format!("{v} is out of range"),
                "use 1-16384 GB",
            );
        }
    }
}

fn training(r: &mut Report, at: &str, p: &Pipeline) {
    let t = &p.training;
    let tat = format!("{at}.training");
    r.check(
        names::is_role_arn(&t.role_arn),
        &format!("{tat}.role_arn"),
        || format!("{:?} is not an IAM role ARN", t.role_arn),
        "use arn:aws:iam::<12-digit account>:role/<name>",
    );
    match (&t.image, &t.algorithm_name) {
        (None, None) => r.add(
            &format!("{tat}.image"),
            "neither image nor algorithm_name is set",
            "set `image` to an ECR image URI, or `algorithm_name`",
        ),
        (Some(_), Some(_)) => r.add(
            &format!("{tat}.algorithm_name"),
            "both image and algorithm_name are set",
            "keep one of them",
        ),
        (Some(image), None) => r.check(
            !image.is_empty() && image.len() <= 255 && !image.contains(char::is_whitespace),
            &format!("{tat}.image"),
            || format!("{image:?} is not an image URI"),
            "use <account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>",
        ),
        (None, Some(name)) => r.check(
            !name.is_empty() && name.len() <= 170,
            &format!("{tat}.algorithm_name"),
            || "is empty or too long".to_owned(),
            "use the algorithm's name or ARN",
        ),
    }
    instances(r, &tat, t);
    r.check(
        (1..=MAX_RUNTIME_SECONDS).contains(&t.max_runtime_seconds),
        &format!("{tat}.max_runtime_seconds"),
        || format!("{} is out of range", t.max_runtime_seconds),
        "use 1-2419200 seconds (28 days)",
    );
    r.check(
        S3Uri::parse(&t.output_path).is_some(),
        &format!("{tat}.output_path"),
        || format!("{:?} is not an S3 URI", t.output_path),
        "use s3://bucket/prefix",
    );
    channels(r, &tat, p);
    hyperparameters(r, &format!("{tat}.hyperparameters"), &t.hyperparameters);
    r.check(
        !t.objective.metric.is_empty(),
        &format!("{tat}.objective.metric"),
        || "is empty".to_owned(),
        "name the metric from FinalMetricDataList, e.g. validation:auc",
    );
    for (j, m) in t.metric_definitions.iter().enumerate() {
        r.check(
            !m.name.is_empty() && !m.regex.is_empty(),
            &format!("{tat}.metric_definitions[{j}]"),
            || "name and regex must not be empty".to_owned(),
            "set both",
        );
    }
    if let Some(k) = t.keep_alive_seconds {
        r.check(
            (1..=MAX_KEEP_ALIVE_SECONDS).contains(&k),
            &format!("{tat}.keep_alive_seconds"),
            || format!("{k} is out of range"),
            "use 1-3600 seconds (SageMaker's warm pool limit)",
        );
        r.check(
            t.spot.is_none(),
            &format!("{tat}.keep_alive_seconds"),
            || "warm pools do not work with managed spot training".to_owned(),
            "remove keep_alive_seconds or spot",
        );
    }
    if let Some(plan) = &t.training_plan_arn {
        r.check(
            names::training_plan_arn(plan).is_some(),
            &format!("{tat}.training_plan_arn"),
            || format!("{plan:?} is not a training plan ARN"),
            "use arn:aws:sagemaker:<region>:<account>:training-plan/<name> (`aws sagemaker list-training-plans` shows them)",
        );
        r.check(
            t.spot.is_none(),
            &format!("{tat}.training_plan_arn"),
            || "a training plan reserves on-demand capacity; its jobs cannot be managed spot jobs".to_owned(),
            "remove spot or training_plan_arn",
        );
    }
    if let Some(spot) = &t.spot {
        if let Some(n) = spot.fallback_to_on_demand_after {
            r.check(
                n >= 1,
                &format!("{tat}.spot.fallback_to_on_demand_after"),
                || "must be at least 1".to_owned(),
                "use the number of capacity failures after which a variant runs on-demand, e.g. 2; remove spot to run on-demand only",
            );
        }
        r.check(
            spot.max_wait_seconds >= t.max_runtime_seconds,
            &format!("{tat}.spot.max_wait_seconds"),
            || {
                format!(
                    "{} is less than max_runtime_seconds ({})",
                    spot.max_wait_seconds, t.max_runtime_seconds
                )
            },
            "make max_wait_seconds at least max_runtime_seconds",
        );
    }
    r.check(
        t.tags.len() <= MAX_USER_TAGS,
        &format!("{tat}.tags"),
        || {
            format!(
                "{} tags; SageMaker allows 50 and retrain adds {}",
                t.tags.len(),
                names::RETRAIN_TAG_COUNT
            )
        },
        "remove tags",
    );
    for (k, v) in &t.tags {
        let path = format!("{tat}.tags.{k}");
        r.check(
            !k.is_empty() && k.len() <= 128 && v.len() <= 256,
            &path,
            || "tag key must be 1-128 chars, value at most 256".to_owned(),
            "shorten it",
        );
        r.check(
            !k.starts_with("aws:") && !k.starts_with(names::TAG_PREFIX),
            &path,
            || format!("tag keys starting with `aws:` or `{}` are reserved", names::TAG_PREFIX),
            "rename the tag",
        );
    }
    for k in t.environment.keys() {
        r.check(
            !k.is_empty()
                && k.len() <= 512
                && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !k.as_bytes()[0].is_ascii_digit(),
            &format!("{tat}.environment.{k}"),
            || format!("{k:?} is not a valid environment variable name"),
            "use letters, digits and underscores, not starting with a digit",
        );
    }
    r.check(
        t.environment.len() <= 100,
        &format!("{tat}.environment"),
        || "more than 100 variables".to_owned(),
        "remove some",
    );
}

fn channels(r: &mut Report, tat: &str, p: &Pipeline) {
    let t = &p.training;
    if t.channels.is_empty() {
        r.add(
            &format!("{tat}.channels"),
            "no channel given",
            "add at least one channel, e.g. `{name: train, directory: /datasets/churn/train}`",
        );
    }
    let mut names_seen = HashSet::new();
    for (j, c) in t.channels.iter().enumerate() {
        let cat = format!("{tat}.channels[{j}]");
        r.check(
            !c.name.is_empty() && c.name.len() <= 64 && c.name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)),
            &format!("{cat}.name"),
            || format!("{:?} is not a channel name", c.name),
            "use 1-64 letters, digits, `.`, `_`, `-`",
        );
        r.check(
            names_seen.insert(c.name.as_str()),
            &format!("{cat}.name"),
            || format!("channel {:?} appears twice", c.name),
            "give each channel its own name",
        );
        r.check(
            c.directory.starts_with('/') && !c.directory.split('/').any(|s| s == ".." || s == "."),
            &format!("{cat}.directory"),
            || format!("{:?} is not an absolute path", c.directory),
            "use an absolute directory such as /datasets/churn/train (without the Lustre mount name)",
        );
        if p.file_system.kind == FileSystemKind::FsxLustre {
            if let Some(m) = &p.file_system.mount_name {
                r.check(
                    !c.directory.starts_with(&format!("/{m}/")),
                    &format!("{cat}.directory"),
                    || format!("{:?} already starts with the mount name {m:?}", c.directory),
                    "drop the mount name: retrain adds it to DirectoryPath",
                );
            }
        }
    }
}

fn hyperparameters(r: &mut Report, path: &str, hp: &BTreeMap<String, Scalar>) {
    r.check(
        hp.len() <= MAX_HYPERPARAMETERS,
        path,
        || format!("{} hyperparameters", hp.len()),
        "SageMaker accepts at most 100",
    );
    for (k, v) in hp {
        r.check(
            !k.is_empty() && k.len() <= 256 && v.to_hyperparameter().len() <= 2500,
            &format!("{path}.{k}"),
            || "hyperparameter names are 1-256 chars, values at most 2500".to_owned(),
            "shorten it",
        );
    }
}

fn promotion(r: &mut Report, at: &str, p: &Pipeline) {
    let Some(promotion) = &p.promotion else { return };
    let group = &promotion.model_package_group;
    let valid = (1..=63).contains(&group.len())
        && group
            .split('-')
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric()));
    r.check(
        valid,
        &format!("{at}.promotion.model_package_group"),
        || format!("{group:?} is not a valid model package group name"),
        "use 1-63 letters, digits and single hyphens, starting and ending with a letter or digit, and list it in the stack's ModelPackageGroupNames",
    );
    r.check(
        promotion.min_improvement.is_finite() && promotion.min_improvement >= 0.0,
        &format!("{at}.promotion.min_improvement"),
        || format!("{} is not a margin", promotion.min_improvement),
        "use 0 (strictly better) or a positive margin",
    );
}

fn sweep(r: &mut Report, at: &str, p: &Pipeline) {
    let s = &p.sweep;
    let sat = format!("{at}.sweep");
    r.check(
        (1..=100).contains(&s.max_parallel),
        &format!("{sat}.max_parallel"),
        || format!("{} is out of range", s.max_parallel),
        "use 1-100 (check your SageMaker concurrent training job quota)",
    );
    r.check(
        s.max_retries <= 10,
        &format!("{sat}.max_retries"),
        || format!("{} is out of range", s.max_retries),
        "use 0-10",
    );
    r.check(
        s.max_queue_seconds >= 60,
        &format!("{sat}.max_queue_seconds"),
        || format!("{} s is shorter than one relaunch tick", s.max_queue_seconds),
        "use at least 60 seconds (86400 is the default)",
    );
    if let Some(stall) = s.stall_after_seconds {
        r.check(
            stall >= 300,
            &format!("{sat}.stall_after_seconds"),
            || format!("{stall} s would call a sweep stalled between two reconciler passes"),
            "use at least 300 seconds, or leave it out (max_runtime_seconds plus one hour)",
        );
    }
    if let Some(cap) = s.max_instance_hours {
        r.check(
            cap.is_finite() && cap > 0.0,
            &format!("{sat}.max_instance_hours"),
            || format!("{cap} is not a positive number of instance-hours"),
            "use a positive number (e.g. 10), or leave it out for no cap",
        );
    }
    if let Some(search) = &s.search {
        self::search(r, &sat, p, search);
    }
    let mut total: usize = 1;
    for (k, values) in &s.grid {
        r.check(
            !values.is_empty(),
            &format!("{sat}.grid.{k}"),
            || "has no values".to_owned(),
            "list at least one value or remove the entry",
        );
        total = total.saturating_mul(values.len().max(1));
    }
    if s.grid.is_empty() {
        total = 0;
    }
    total = total.saturating_add(s.variants.len());
    r.check(
        total <= MAX_VARIANTS,
        &sat,
        || format!("the sweep has {total} variants"),
        "keep it at most 1000: shrink the grid",
    );
    for (j, v) in s.variants.iter().enumerate() {
        hyperparameters(r, &format!("{sat}.variants[{j}]"), v);
    }
    let mut merged = p.training.hyperparameters.clone();
    merged.extend(s.grid.keys().map(|k| (k.clone(), Scalar::Bool(true))));
    r.check(
        merged.len() <= MAX_HYPERPARAMETERS,
        &format!("{sat}.grid"),
        || "static and grid hyperparameters exceed 100".to_owned(),
        "SageMaker accepts at most 100",
    );
}

fn search(r: &mut Report, sat: &str, p: &Pipeline, search: &crate::search::Search) {
    use crate::search::{Param, MAX_BUDGET};
    let s = &p.sweep;
    let at = format!("{sat}.search");
    r.check(
        s.grid.is_empty() && s.variants.is_empty(),
        &at,
        || "is set together with `grid` or `variants`".to_owned(),
        "use either `search` (suggested variants) or `grid`/`variants` (fixed ones), not both",
    );
    r.check(
        (1..=MAX_BUDGET).contains(&search.budget),
        &format!("{at}.budget"),
        || format!("{} is out of range", search.budget),
        "use 1-500 variants",
    );
    r.check(
        !search.space.is_empty(),
        &format!("{at}.space"),
        || "is empty".to_owned(),
        "name at least one hyperparameter with its range or choices",
    );
    r.check(
        search.space.len() + p.training.hyperparameters.len() <= MAX_HYPERPARAMETERS,
        &format!("{at}.space"),
        || "static and searched hyperparameters exceed 100".to_owned(),
        "SageMaker accepts at most 100",
    );
    for (name, param) in &search.space {
        let path = format!("{at}.space.{name}");
        r.check(
            !p.training.hyperparameters.contains_key(name),
            &path,
            || "is also a static hyperparameter in `training.hyperparameters`".to_owned(),
            "remove it from one of the two",
        );
        match param {
            Param::Float { low, high, log } => {
                r.check(
                    low.is_finite() && high.is_finite() && low < high,
                    &path,
                    || format!("low {low} is not below high {high}"),
                    "give finite bounds with low < high",
                );
                r.check(
                    !*log || *low > 0.0,
                    &format!("{path}.low"),
                    || format!("{low} with `log: true`"),
                    "a log scale needs low > 0",
                );
            }
            Param::Int { low, high, log } => {
                r.check(
                    low < high,
                    &path,
                    || format!("low {low} is not below high {high}"),
                    "give bounds with low < high",
                );
                r.check(
                    !*log || *low >= 1,
                    &format!("{path}.low"),
                    || format!("{low} with `log: true`"),
                    "a log scale needs low >= 1",
                );
            }
            Param::Categorical { choices } => r.check(
                !choices.is_empty(),
                &format!("{path}.choices"),
                || "has no values".to_owned(),
                "list at least one choice",
            ),
        }
    }
}

#[cfg(test)]
mod tests;
