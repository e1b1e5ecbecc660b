use super::*;
use crate::config::parse;
use crate::requests::Action;
use proptest::prelude::*;
use serde_json::{json, Value};

const EXAMPLE: &str = include_str!("../../../../examples/pipelines.yaml");

fn config() -> Config {
    parse(EXAMPLE).expect("valid example")
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn ctx() -> PlanContext {
    PlanContext {
        event_bus: "retrain".into(),
        ..Default::default()
    }
}

fn training_jobs(plan: &Plan) -> Vec<&crate::requests::CreateTrainingJob> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::CreateTrainingJob(j) => Some(j.as_ref()),
            _ => None,
        })
        .collect()
}

#[test]
fn an_s3_put_plans_exactly_one_import_covering_the_decoded_key() {
    let plan = plan(&config(), &fixture("s3-put.json"), &ctx());
    let out = serde_json::to_value(&plan).expect("serializes");
    let actions = out["actions"].as_array().expect("actions");
    assert_eq!(actions.len(), 1, "{out:#}");
    assert_eq!(actions[0]["api"], "fsx:CreateDataRepositoryTask");
    let input = &actions[0]["input"];
    assert_eq!(input["Type"], "IMPORT_METADATA_FROM_REPOSITORY");
    assert_eq!(input["FileSystemId"], "fs-0123456789abcdef0");
    assert_eq!(
        input["Paths"],
        json!(["s3://example-training-data/datasets/churn/new batch/part=1.csv"])
    );
    assert_eq!(input["Report"], json!({"Enabled": false}));
    assert!(input["ClientRequestToken"].as_str().is_some_and(|t| !t.is_empty() && t.len() <= 63));
    assert!(out["skipped"].as_array().is_some_and(Vec::is_empty));
}

#[test]
fn an_s3_test_event_plans_nothing_and_says_why() {
    let plan = plan(&config(), &fixture("s3-test-event.json"), &ctx());
    assert!(plan.actions.is_empty());
    assert_eq!(plan.skipped.len(), 1);
    assert!(plan.skipped[0].reason.contains("s3:TestEvent"));
}

#[test]
fn a_start_sweep_request_plans_one_job_per_lane() {
    let request = json!({"kind": "start-sweep", "pipeline": "churn", "request_id": "r-1"});
    let first = plan(&config(), &request, &ctx());
    let jobs = training_jobs(&first);
    assert_eq!(jobs.len(), 2, "3 × 2 grid with max_parallel 2");
    let lanes: Vec<&str> = jobs
        .iter()
        .map(|j| {
            j.tags
                .iter()
                .find(|t| t.key == "retrain:lane")
                .map(|t| t.value.as_str())
                .unwrap_or("")
        })
        .collect();
    assert_eq!(lanes, vec!["0", "1"]);
    for job in &jobs {
        assert!(crate::names::is_job_name(&job.training_job_name), "{}", job.training_job_name);
        assert!(job.training_job_name.starts_with("churn-"));
        let fs = &job.input_data_config[0].data_source.file_system_data_source;
        assert_eq!(fs.file_system_type, "FSxLustre");
        assert_eq!(fs.file_system_access_mode, "ro");
        assert_eq!(fs.directory_path, "/fsx1234/datasets/churn/train");
        assert_eq!(job.input_data_config.len(), 2, "train and validation channels");
        assert_eq!(job.vpc_config.subnets, vec!["subnet-0a1b2c3d4e5f60718"]);
        assert_eq!(job.resource_config.keep_alive_period_in_seconds, Some(600));
        assert_eq!(job.algorithm_specification.training_input_mode, "File");
    }
    assert_eq!(jobs[0].hyper_parameters.get("eta").map(String::as_str), Some("0.1"));
    assert_eq!(jobs[0].hyper_parameters.get("num_round").map(String::as_str), Some("200"));
    let again = plan(&config(), &request, &ctx());
    assert_eq!(
        serde_json::to_string(&first).ok(),
        serde_json::to_string(&again).ok(),
        "byte-identical"
    );
    let events: Vec<&str> = first
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::PutEvents { entries } => Some(entries.iter().map(|e| e.detail_type.as_str()).collect::<Vec<_>>()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(events, vec!["SweepStarted", "TrainingJobLaunched", "TrainingJobLaunched"]);
}

#[test]
fn the_action_json_uses_aws_field_names() {
    let plan = plan(
        &config(),
        &json!({"kind": "start-sweep", "pipeline": "churn", "request_id": "r-1"}),
        &ctx(),
    );
    let out = serde_json::to_value(&plan).expect("serializes");
    let input = &out["actions"][0]["input"];
    for field in [
        "TrainingJobName",
        "RoleArn",
        "AlgorithmSpecification",
        "HyperParameters",
        "InputDataConfig",
        "OutputDataConfig",
        "ResourceConfig",
        "VpcConfig",
        "StoppingCondition",
        "Tags",
    ] {
        assert!(input.get(field).is_some(), "missing {field} in {input:#}");
    }
    assert!(input["ResourceConfig"].get("VolumeSizeInGB").is_some());
    assert!(input["InputDataConfig"][0]["DataSource"]["FileSystemDataSource"]
        .get("DirectoryPath")
        .is_some());
}

#[test]
fn a_missing_mount_name_is_skipped_unless_resolved() {
    let mut c = config();
    c.pipelines[0].file_system.mount_name = None;
    let request = json!({"kind": "start-sweep", "pipeline": "churn"});
    let p = plan(&c, &request, &ctx());
    assert!(training_jobs(&p).is_empty());
    assert!(p.skipped.iter().any(|s| s.reason.contains("mount name")), "{:#?}", p.skipped);
    let mut resolved = ctx();
    resolved.mount_names.insert("fs-0123456789abcdef0".into(), "abcdefgh".into());
    let p = plan(&c, &request, &resolved);
    assert_eq!(
        training_jobs(&p)[0].input_data_config[0]
            .data_source
            .file_system_data_source
            .directory_path,
        "/abcdefgh/datasets/churn/train"
    );
}

#[test]
fn a_scheduled_event_sweeps_the_efs_pipeline_without_import() {
    let p = plan(&config(), &fixture("scheduled-event.json"), &ctx());
    assert!(!p.actions.iter().any(|a| matches!(a, Action::CreateDataRepositoryTask(_))));
    let jobs = training_jobs(&p);
    assert_eq!(jobs.len(), 1, "max_parallel 1");
    assert!(jobs[0].training_job_name.starts_with("fraud-efs-"));
    let fs = &jobs[0].input_data_config[0].data_source.file_system_data_source;
    assert_eq!(
        (fs.file_system_type.as_str(), fs.directory_path.as_str()),
        ("EFS", "/home/alice/fraud/train")
    );
}

#[test]
fn a_capacity_failure_plans_the_retry_and_an_algorithm_error_moves_the_lane_on() {
    let c = config();
    let mut event = fixture("sagemaker-training-job-state-change-failed-capacity.json");
    let p = plan(&c, &event, &ctx());
    let jobs = training_jobs(&p);
    assert_eq!(jobs.len(), 1, "{:#?}", p.skipped);
    assert!(jobs[0].training_job_name.ends_with("-v1-a2"), "{}", jobs[0].training_job_name);
    event["detail"]["FailureReason"] = json!("AlgorithmError: see logs");
    let p = plan(&c, &event, &ctx());
    let jobs = training_jobs(&p);
    assert_eq!(jobs.len(), 1);
    assert!(
        jobs[0].training_job_name.ends_with("-v3-a1"),
        "lane 1's next variant: {}",
        jobs[0].training_job_name
    );
}

#[test]
fn an_unknown_pipeline_is_skipped_naming_the_known_ones() {
    let p = plan(&config(), &json!({"kind": "start-sweep", "pipeline": "nope"}), &ctx());
    assert!(p.actions.is_empty());
    assert!(p.skipped[0].reason.contains("churn"));
}

#[test]
fn unknown_variants_in_a_request_are_refused() {
    let p = plan(
        &config(),
        &json!({"kind": "start-sweep", "pipeline": "churn", "variants": ["v9"]}),
        &ctx(),
    );
    assert!(p.actions.is_empty());
    assert!(p.skipped[0].reason.contains("v9"));
}

proptest! {
    #[test]
    fn job_names_are_valid_and_unique_within_a_sweep(
        name in "[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?",
        grid in 1usize..40,
        retries in 0u32..4,
        request in "[a-z0-9]{1,12}",
    ) {
        let mut c = config();
        c.pipelines[0].name = name;
        c.pipelines[0].sweep.grid = [("eta".to_owned(), (0..grid).map(|i| crate::config::Scalar::Integer(i as i64)).collect())].into();
        c.pipelines[0].sweep.max_retries = retries;
        let trigger = SweepTrigger { kind: "request".into(), id: request, reason: None };
        let m = SweepManifest::new(&c.pipelines[0], trigger, None, None).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut seen = std::collections::BTreeSet::new();
        for position in 0..m.variants.len() {
            for attempt in 1..=retries + 1 {
                let n = m.job_name(position, attempt);
                prop_assert!(crate::names::is_job_name(&n), "{}", n);
                prop_assert!(seen.insert(n.clone()), "duplicate {}", n);
            }
        }
    }
}

/// The example with churn's grid replaced by a four-lane tpe search.
fn search_config() -> Config {
    let yaml = EXAMPLE
        .replacen(
            "    sweep:\n      grid:\n        eta: [0.1, 0.3, 0.5]\n        max_depth: [4, 6]\n      max_parallel: 2\n",
            "    sweep:\n      search:\n        strategy: tpe\n        budget: 20\n        seed: 1\n        space:\n          eta: { type: float, low: 0.01, high: 0.5, log: true }\n          max_depth: { type: int, low: 3, high: 10 }\n      max_parallel: 4\n",
            1,
        );
    parse(&yaml).expect("valid search config")
}

#[test]
fn an_adaptive_sweep_plans_the_first_suggestion_of_each_lane() {
    let request = json!({"kind": "start-sweep", "pipeline": "churn", "request_id": "r-1"});
    let config = search_config();
    let p = plan(&config, &request, &ctx());
    let jobs = training_jobs(&p);
    assert_eq!(jobs.len(), 4, "one per lane");
    let mut m = SweepManifest::new(
        &config.pipelines[0],
        SweepTrigger {
            kind: "request".into(),
            id: "r-1".into(),
            reason: None,
        },
        None,
        None,
    )
    .expect("manifest");
    m.mount_name = Some("m".into());
    for (job, s) in jobs.iter().zip(crate::search_records::first_suggestions(&m)) {
        assert_eq!(job.hyper_parameters["eta"], s.point["eta"].to_hyperparameter());
        assert_eq!(job.hyper_parameters["max_depth"], s.point["max_depth"].to_hyperparameter());
        // The static hyperparameters stay.
        assert_eq!(job.hyper_parameters["num_round"], "200");
    }
    assert_ne!(jobs[0].hyper_parameters["eta"], jobs[1].hyper_parameters["eta"]);
}
