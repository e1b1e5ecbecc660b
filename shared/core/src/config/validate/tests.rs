use crate::config::parse;

const EXAMPLE: &str = include_str!("../../../../../examples/pipelines.yaml");

fn errors_of(yaml: &str) -> Vec<String> {
    match parse(yaml) {
        Ok(_) => Vec::new(),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

fn example_with(from: &str, to: &str) -> String {
    assert!(EXAMPLE.contains(from), "example lacks {from:?}");
    EXAMPLE.replacen(from, to, 1)
}

fn assert_error(errors: &[String], path: &str, text: &str) {
    assert!(
        errors.iter().any(|e| e.starts_with(&format!("{path}:")) && e.contains(text)),
        "no error at {path} containing {text:?} in {errors:#?}"
    );
}

#[test]
fn the_example_is_valid() {
    let config = parse(EXAMPLE).expect("example config is valid");
    assert_eq!(config.pipelines.len(), 2);
    assert_eq!(config.pipelines[0].sweep.max_parallel, 2);
}

#[test]
fn unknown_field_suggests_the_close_one() {
    let errors = errors_of(&example_with("max_parallel: 2", "max_paralel: 2"));
    assert_error(&errors, "pipelines[0].sweep.max_paralel", "did you mean `max_parallel`?");
}

#[test]
fn unknown_field_far_from_any_lists_the_known_ones() {
    let errors = errors_of(&example_with("    schedule: rate(1 day)", "    colour: blue"));
    assert_error(&errors, "pipelines[1].colour", "known fields here");
}

#[test]
fn missing_required_field_is_named() {
    let errors = errors_of(&example_with("      instance_type: ml.m5.xlarge\n", ""));
    assert_error(&errors, "pipelines[0].training.instance_type", "add `instance_type`");
}

#[test]
fn wrong_types_are_all_reported_at_once() {
    let yaml = example_with("max_parallel: 2", "max_parallel: two");
    let yaml = yaml.replacen("instance_count: 1", "instance_count: [1]", 1);
    let errors = errors_of(&yaml);
    assert_error(&errors, "pipelines[0].sweep.max_parallel", "expected a whole number");
    assert_error(&errors, "pipelines[0].training.instance_count", "expected a whole number");
}

#[test]
fn bad_enum_value_lists_the_choices() {
    let errors = errors_of(&example_with("type: fsx_lustre", "type: lustre"));
    assert_error(&errors, "pipelines[0].file_system.type", "\"fsx_lustre\"");
}

#[test]
fn semantic_errors_are_all_reported_with_paths_and_fixes() {
    let yaml = example_with("max_parallel: 2", "max_parallel: 0")
        .replacen("instance_type: ml.m5.xlarge", "instance_type: m5.xlarge", 1)
        .replacen("subnet-0a1b2c3d4e5f60718", "subnet-xyz", 1)
        .replacen("sg-0a1b2c3d4e5f60718", "group-1", 1)
        .replacen("id: fs-0123456789abcdef0", "id: fs-12", 1)
        .replacen(
            "role_arn: arn:aws:iam::123456789012:role/RetrainSageMakerTraining",
            "role_arn: RetrainRole",
            1,
        )
        .replacen(
            "output_path: s3://example-training-artifacts/models/churn/",
            "output_path: /models",
            1,
        );
    let errors = errors_of(&yaml);
    assert_error(&errors, "pipelines[0].sweep.max_parallel", "out of range");
    assert_error(&errors, "pipelines[0].training.instance_type", "ml.");
    assert_error(&errors, "pipelines[0].vpc.subnets[0]", "not a subnet id");
    assert_error(&errors, "pipelines[0].vpc.security_groups[0]", "not a security group id");
    assert_error(&errors, "pipelines[0].file_system.id", "not a file system id");
    assert_error(&errors, "pipelines[0].training.role_arn", "not an IAM role ARN");
    assert_error(&errors, "pipelines[0].training.output_path", "not an S3 URI");
    assert!(errors.len() >= 7, "{errors:#?}");
    assert!(errors.iter().all(|e| e.contains("(fix: ")), "{errors:#?}");
}

#[test]
fn warm_pool_limits_and_spot_conflict() {
    let errors = errors_of(&example_with(
        "keep_alive_seconds: 600",
        "keep_alive_seconds: 7200\n      spot: { max_wait_seconds: 7200 }",
    ));
    assert_error(&errors, "pipelines[0].training.keep_alive_seconds", "out of range");
    assert_error(&errors, "pipelines[0].training.keep_alive_seconds", "spot");
}

#[test]
fn spot_wait_must_cover_runtime() {
    let errors = errors_of(&example_with("keep_alive_seconds: 600", "spot: { max_wait_seconds: 60 }"));
    assert_error(
        &errors,
        "pipelines[0].training.spot.max_wait_seconds",
        "less than max_runtime_seconds",
    );
}

#[test]
fn trigger_prefix_must_be_inside_the_data_repository() {
    let errors = errors_of(&example_with(
        "data_repository_path: s3://example-training-data/",
        "data_repository_path: s3://example-training-data/other/",
    ));
    assert_error(
        &errors,
        "pipelines[0].trigger.prefixes[0]",
        "outside the file system's data repository",
    );
}

#[test]
fn lustre_needs_a_data_repository_and_efs_refuses_lustre_fields() {
    let errors = errors_of(&example_with("      data_repository_path: s3://example-training-data/\n", ""));
    assert_error(&errors, "pipelines[0].file_system.data_repository_path", "required for fsx_lustre");
    let errors = errors_of(&example_with(
        "      id: fs-0fedcba9876543210\n",
        "      id: fs-0fedcba9876543210\n      mount_name: abc\n",
    ));
    assert_error(&errors, "pipelines[1].file_system.mount_name", "only for fsx_lustre");
}

#[test]
fn pipeline_names_are_unique_and_job_name_safe() {
    let errors = errors_of(&example_with("name: fraud-efs", "name: churn"));
    assert_error(&errors, "pipelines[1].name", "used twice");
    let errors = errors_of(&example_with("name: churn", "name: churn_model"));
    assert_error(&errors, "pipelines[0].name", "not a valid pipeline name");
    let errors = errors_of(&example_with("name: churn", &format!("name: {}", "c".repeat(33))));
    assert_error(&errors, "pipelines[0].name", "not a valid pipeline name");
}

#[test]
fn reserved_tags_and_bad_schedule() {
    let errors =
        errors_of(&example_with("tags: { team: ml-platform }", "tags: { \"retrain:team\": x }").replacen("rate(1 day)", "every day", 1));
    assert_error(&errors, "pipelines[0].training.tags.retrain:team", "reserved");
    assert_error(&errors, "pipelines[1].schedule", "not a schedule expression");
}

#[test]
fn user_tags_leave_room_for_every_tag_retrain_adds() {
    // 50 per job (SageMaker), and a deployed lane's later job carries all eight retrain:* tags.
    let tags = |n: usize| (0..n).map(|i| format!("t{i}: x")).collect::<Vec<_>>().join(", ");
    let at_limit = errors_of(&example_with("tags: { team: ml-platform }", &format!("tags: {{ {} }}", tags(42))));
    assert!(at_limit.is_empty(), "{at_limit:#?}");
    let over = errors_of(&example_with("tags: { team: ml-platform }", &format!("tags: {{ {} }}", tags(43))));
    assert_error(&over, "pipelines[0].training.tags", "SageMaker allows 50 and retrain adds 8");
}

#[test]
fn image_or_algorithm_exactly_one() {
    let errors = errors_of(&example_with(
        "      image: 683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1\n      instance_type: ml.m5.xlarge",
        "      instance_type: ml.m5.xlarge",
    ));
    assert_error(&errors, "pipelines[0].training.image", "neither image nor algorithm_name");
}

#[test]
fn import_poll_interval_is_bounded_by_sqs_delay() {
    let errors = errors_of(&example_with("poll_interval_seconds: 30", "poll_interval_seconds: 1000"));
    assert_error(&errors, "pipelines[0].import.poll_interval_seconds", "1-900");
}

#[test]
fn a_zero_poll_interval_is_refused_because_it_would_poll_back_to_back() {
    let errors = errors_of(&example_with("poll_interval_seconds: 30", "poll_interval_seconds: 0"));
    assert_error(&errors, "pipelines[0].import.poll_interval_seconds", "back to back");
}

#[test]
fn max_poll_lag_lies_between_the_poll_interval_and_the_sqs_delay_limit() {
    for lag in ["10", "901"] {
        let errors = errors_of(&example_with("max_poll_lag_seconds: 60", &format!("max_poll_lag_seconds: {lag}")));
        assert_error(
            &errors,
            "pipelines[0].import.max_poll_lag_seconds",
            "outside poll_interval_seconds..900",
        );
    }
    assert!(errors_of(&example_with("max_poll_lag_seconds: 60", "max_poll_lag_seconds: 30")).is_empty());
}

#[test]
fn pipelines_on_one_lustre_file_system_share_its_watch_settings() {
    // A second churn pipeline on the same file system, with a lag cap of its own.
    let start = EXAMPLE.find("  - name: churn").expect("churn pipeline");
    let end = EXAMPLE.find("  - name: fraud-efs").expect("efs pipeline");
    let twin = EXAMPLE[start..end].replacen("name: churn", "name: churn-daily", 1).replacen(
        "max_poll_lag_seconds: 60",
        "max_poll_lag_seconds: 300",
        1,
    );
    let yaml = format!("{EXAMPLE}\n{twin}");
    let errors = errors_of(&yaml);
    assert_error(
        &errors,
        "pipelines[2].import.max_poll_lag_seconds",
        "differs from 60 in pipelines[0]",
    );
    assert_eq!(errors.len(), 1, "{errors:#?}");
    // The same settings on both are fine.
    let same = format!("{EXAMPLE}\n{}", EXAMPLE[start..end].replacen("name: churn", "name: churn-daily", 1));
    assert!(errors_of(&same).is_empty());
}

#[test]
fn channel_directory_must_not_repeat_the_mount_name() {
    let errors = errors_of(&example_with(
        "directory: /datasets/churn/train",
        "directory: /fsx1234/datasets/churn/train",
    ));
    assert_error(&errors, "pipelines[0].training.channels[0].directory", "mount name");
}

#[test]
fn invalid_yaml_is_one_error_with_a_location() {
    let errors = errors_of("pipelines: [\n  - name: x\n");
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].contains("not valid YAML"), "{errors:#?}");
}

#[test]
fn empty_pipelines_is_an_error() {
    let errors = errors_of("pipelines: []");
    assert_error(&errors, "pipelines", "no pipeline defined");
}

#[test]
fn schema_describes_every_top_level_pipeline_field() {
    let schema = crate::config::schema();
    let text = schema.to_string();
    for field in [
        "trigger",
        "file_system",
        "vpc",
        "training",
        "sweep",
        "schedule",
        "import",
        "keep_alive_seconds",
        "max_parallel",
    ] {
        assert!(text.contains(&format!("\"{field}\"")), "schema lacks {field}");
    }
}

#[test]
fn unknown_fields_and_bad_values_are_reported_in_one_run() {
    let yaml = example_with("max_parallel: 2", "max_paralel: 2").replacen("instance_type: ml.m5.xlarge", "instance_type: m5.xlarge", 1);
    let errors = errors_of(&yaml);
    assert_error(&errors, "pipelines[0].sweep.max_paralel", "did you mean");
    assert_error(&errors, "pipelines[0].training.instance_type", "ml.");
}

const SEARCH: &str = "    sweep:
      search:
        strategy: tpe
        budget: 30
        seed: 7
        space:
          eta: { type: float, low: 0.01, high: 0.5, log: true }
          max_depth: { type: int, low: 3, high: 10 }
          booster: { type: categorical, choices: [gbtree, dart] }
";

#[test]
fn a_search_section_parses() {
    let yaml = example_with(
        "    sweep:\n      grid:\n        eta: [0.1, 0.3, 0.5]\n        max_depth: [4, 6]\n",
        SEARCH,
    );
    let config = parse(&yaml).expect("search config is valid");
    let search = config.pipelines[0].sweep.search.as_ref().expect("search");
    assert_eq!((search.budget, search.seed, search.space.len()), (30, 7, 3));
}

#[test]
fn search_excludes_grid_and_names_bad_ranges() {
    let yaml = example_with(
        "    sweep:\n      grid:\n",
        "    sweep:\n      search:\n        strategy: tpe\n        budget: 0\n        space:\n          lr: { type: float, low: 0, high: 1, log: true }\n          n: { type: int, low: 5, high: 5 }\n          c: { type: categorical, choices: [] }\n      grid:\n",
    );
    let errors = errors_of(&yaml);
    assert_error(&errors, "pipelines[0].sweep.search", "together with `grid`");
    assert_error(&errors, "pipelines[0].sweep.search.budget", "out of range");
    assert_error(&errors, "pipelines[0].sweep.search.space.lr.low", "log: true");
    assert_error(&errors, "pipelines[0].sweep.search.space.n", "not below high");
    assert_error(&errors, "pipelines[0].sweep.search.space.c.choices", "no values");
}

#[test]
fn an_unknown_strategy_is_named() {
    let yaml = example_with(
        "    sweep:\n      grid:\n        eta: [0.1, 0.3, 0.5]\n        max_depth: [4, 6]\n",
        &SEARCH.replace("strategy: tpe", "strategy: bayes"),
    );
    let errors = errors_of(&yaml);
    assert!(errors.iter().any(|e| e.contains("bayes")), "{errors:#?}");
}

#[test]
fn a_promotion_needs_a_valid_group_name_and_a_non_negative_margin() {
    let errors = errors_of(&example_with("model_package_group: churn", "model_package_group: churn_models"));
    assert_error(
        &errors,
        "pipelines[0].promotion.model_package_group",
        "not a valid model package group name",
    );
    let errors = errors_of(&example_with("min_improvement: 0.005", "min_improvement: -1"));
    assert_error(&errors, "pipelines[0].promotion.min_improvement", "not a margin");
}

const GPU_EXAMPLE: &str = include_str!("../../../../../examples/gpu-pipeline.yaml");

#[test]
fn the_gpu_example_is_valid_and_resolves_each_fallback_type() {
    let config = parse(GPU_EXAMPLE).expect("GPU example is valid");
    let instances = config.pipelines[0].training.instances();
    let resolved: Vec<(&str, u32, u32)> = instances
        .iter()
        .map(|i| (i.instance_type.as_str(), i.instance_count, i.volume_size_gb))
        .collect();
    assert_eq!(
        resolved,
        vec![("ml.g5.2xlarge", 1, 50), ("ml.g5.4xlarge", 1, 50), ("ml.g4dn.2xlarge", 2, 100)]
    );
    assert_eq!(config.pipelines[0].training.max_instance_count(), 2);
}

#[test]
fn instance_types_alone_replace_instance_type() {
    let yaml = example_with(
        "      instance_type: ml.m5.xlarge\n",
        "      instance_types: [{ instance_type: ml.m5.xlarge }, { instance_type: ml.c5.xlarge }]\n",
    );
    let config = parse(&yaml).expect("valid");
    let types: Vec<String> = config.pipelines[0]
        .training
        .instances()
        .into_iter()
        .map(|i| i.instance_type)
        .collect();
    assert_eq!(types, ["ml.m5.xlarge", "ml.c5.xlarge"]);
}

#[test]
fn fallback_types_are_checked_one_by_one() {
    let yaml = example_with(
        "      instance_type: ml.m5.xlarge\n",
        "      instance_type: ml.m5.xlarge\n      instance_types: [{ instance_type: ml.m5.xlarge }, { instance_type: p4d, instance_count: 0 }]\n",
    );
    let errors = errors_of(&yaml);
    assert_error(
        &errors,
        "pipelines[0].training.instance_types[0].instance_type",
        "already in the list",
    );
    assert_error(
        &errors,
        "pipelines[0].training.instance_types[1].instance_type",
        "not a SageMaker instance type",
    );
    assert_error(&errors, "pipelines[0].training.instance_types[1].instance_count", "at least 1");
}

/// The GPU example's `vision-spot` pipeline (index 1) with one line changed.
fn gpu_with(from: &str, to: &str) -> String {
    assert!(GPU_EXAMPLE.contains(from), "{from:?} not in the GPU example");
    GPU_EXAMPLE.replacen(from, to, 1)
}

#[test]
fn spot_fallback_and_training_plans_are_checked() {
    let config = parse(GPU_EXAMPLE).expect("valid");
    assert_eq!(
        config.pipelines[1]
            .training
            .spot
            .as_ref()
            .and_then(|s| s.fallback_to_on_demand_after),
        Some(2)
    );
    let plan = config.pipelines[2].training.instances();
    assert!(plan[0]
        .training_plan_arn
        .as_deref()
        .is_some_and(|a| a.ends_with(":training-plan/vision-p5-december")));
    let errors = errors_of(&gpu_with("fallback_to_on_demand_after: 2", "fallback_to_on_demand_after: 0"));
    assert_error(&errors, "pipelines[1].training.spot.fallback_to_on_demand_after", "at least 1");
    let errors = errors_of(&gpu_with("training-plan/vision-p5-december", "training-job/vision-p5-december"));
    assert_error(&errors, "pipelines[2].training.training_plan_arn", "not a training plan ARN");
    let errors = errors_of(&gpu_with(
        "      training_plan_arn: arn:aws:sagemaker:us-east-1:123456789012:training-plan/vision-p5-december\n",
        "      training_plan_arn: arn:aws:sagemaker:us-east-1:123456789012:training-plan/vision-p5-december\n      spot: { max_wait_seconds: 86400 }\n",
    ));
    assert_error(&errors, "pipelines[2].training.training_plan_arn", "cannot be managed spot jobs");
}
