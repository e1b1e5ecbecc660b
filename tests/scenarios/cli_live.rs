//! `retrain validate --live` against the emulator's account.

use retrain_tests::world::{config_yaml, World};
use std::path::PathBuf;
use std::process::Output;

/// The `retrain` binary built beside this test (cargo builds every target first).
fn retrain_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .map(|debug| debug.join("retrain"))
        .expect("target dir")
}

fn validate_live(world: &World, config: &str, json: bool) -> Output {
    // One file per config: the tests of this binary run at once.
    let digest = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        config.hash(&mut h);
        h.finish()
    };
    let path = std::env::temp_dir().join(format!("retrain-live-{}-{digest:x}-{json}.yaml", std::process::id()));
    std::fs::write(&path, config).expect("write config");
    let mut cmd = std::process::Command::new(retrain_bin());
    cmd.args(["validate", "--live", "--config"]).arg(&path);
    if json {
        cmd.arg("--json");
    }
    cmd.env("AWS_ENDPOINT_URL", &world.emulator.endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .output()
        .expect("retrain runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correct_setup_prints_ok_and_a_broken_one_every_problem() {
    let world = World::start().await;
    let config = config_yaml(&world.ids);
    let ok = validate_live(&world, &config, false);
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{text}\n{}", String::from_utf8_lossy(&ok.stderr));
    assert!(text.contains("OK: every check passed for 2 pipeline(s)"), "{text}");

    // Break two things at once: port 988 closed, and the EFS pipeline in a zone without a mount target.
    let (fs_sg, sg, vpc) = (
        world.ids.fs_security_group.clone(),
        world.ids.security_group.clone(),
        world.ids.vpc.clone(),
    );
    let other = world.boto3(&format!(
        "e = client('ec2')\ne.revoke_security_group_ingress(GroupId='{fs_sg}', IpPermissions=[{{'IpProtocol': 'tcp', 'FromPort': 988, 'ToPort': 988, 'UserIdGroupPairs': [{{'GroupId': '{sg}'}}]}}])\nprint(json.dumps(e.create_subnet(VpcId='{vpc}', CidrBlock='10.0.9.0/24', AvailabilityZone='us-east-1c')['Subnet']['SubnetId']))"
    ));
    let other = other.as_str().unwrap_or_default();
    let mut broken: retrain_core::Config = retrain_core::config::parse(&config).expect("valid");
    broken.pipelines[1].vpc.subnets = vec![other.to_owned()];
    let broken = serde_yaml_config(&broken);
    let out = validate_live(&world, &broken, false);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("inbound traffic to file system") && text.contains("mount target in subnet's zone"),
        "{text}"
    );
    assert!(text.contains("2 check(s) failed") || text.contains("check(s) failed"), "{text}");

    let out = validate_live(&world, &broken, true);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report["ok"], false);
    let failed: Vec<&str> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["ok"] == false)
        .filter_map(|f| f["check"].as_str())
        .collect();
    assert!(
        failed.contains(&"inbound traffic to file system") && failed.contains(&"mount target in subnet's zone"),
        "{failed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_warn_about_a_type_they_skip_and_fail_when_no_type_can_run() {
    let world = World::start().await;
    let mut config: retrain_core::Config = retrain_core::config::parse(&config_yaml(&world.ids)).expect("valid");
    config.pipelines[0].training.instance_types = vec![retrain_core::config::InstanceChoice {
        instance_type: "ml.m5.2xlarge".into(),
        instance_count: None,
        volume_size_gb: None,
    }];
    let with_fallback = serde_yaml_config(&config);
    world
        .emulator
        .post("sagemaker/quotas", serde_json::json!({"ml.m5.xlarge": 0, "ml.m5.2xlarge": 4}));
    let out = validate_live(&world, &with_fallback, false);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "a skipped type is a warning: {text}");
    assert!(
        text.contains("WARN: 'ml.m5.xlarge for training job usage' is 0 instances") && text.contains("OK with 1 warning(s)"),
        "{text}"
    );
    // The EFS pipeline has one type: a quota of 0 for it means nothing can run.
    world.emulator.post("sagemaker/quotas", serde_json::json!({"ml.m5.large": 0}));
    let out = validate_live(&world, &with_fallback, true);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let failed: Vec<&serde_json::Value> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["ok"] == false)
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["pipeline"], "fraud-efs");
    assert_eq!(failed[0]["check"], "an instance type can run");
    assert!(failed[0]["message"]
        .as_str()
        .is_some_and(|m| m.contains("'ml.m5.large for training job usage' is 0 instances")));
}

/// The config back as JSON (YAML's superset), for the CLI to read.
fn serde_yaml_config(config: &retrain_core::Config) -> String {
    serde_json::to_string(config).expect("config serializes")
}

fn retrain(world: &World, args: &[&str]) -> Output {
    std::process::Command::new(retrain_bin())
        .args(args)
        .env("AWS_ENDPOINT_URL", &world.emulator.endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("RETRAIN_ARTIFACTS_BUCKET", retrain_tests::world::ARTIFACTS_BUCKET)
        .output()
        .expect("retrain runs")
}

/// The scheduled EFS sweep (delivered `deliveries` times) run to its end: v1 has the lower logloss. Returns its id.
async fn scheduled_sweep(world: &mut World, deliveries: usize) -> String {
    use retrain_tests::world::Target;
    let scheduled: serde_json::Value = serde_json::from_str(include_str!("../../events/scheduled-event.json")).expect("fixture");
    for _ in 0..deliveries {
        world.deliver(Target::StartSweep, scheduled.clone()).await;
    }
    for i in 0..2 {
        let name = world.emulator.jobs()["jobs"][i]["name"].as_str().unwrap_or_default().to_owned();
        let event = world
            .emulator
            .complete_job(&name, serde_json::json!({"validation:logloss": 0.5 - i as f64 / 10.0}));
        world.deliver(Target::OnTraining, event).await;
    }
    world.published("SweepStarted")[0]["sweep_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_the_sweep_table_and_json_and_compares_start_up() {
    let mut world = World::start().await;
    let sweep_id = scheduled_sweep(&mut world, 1).await;
    // An older run that read S3 in File mode, to compare with.
    world.boto3(&format!(
        "client('sagemaker').create_training_job(TrainingJobName='fraud-s3-file-mode', RoleArn='{role}', AlgorithmSpecification={{'TrainingImage': 'img', 'TrainingInputMode': 'File'}}, InputDataConfig=[{{'ChannelName': 'train', 'DataSource': {{'S3DataSource': {{'S3DataType': 'S3Prefix', 'S3Uri': 's3://example-training-data/home/alice/fraud/train/'}}}}}}], OutputDataConfig={{'S3OutputPath': 's3://retrain-artifacts/old/'}}, ResourceConfig={{'InstanceType': 'ml.m5.large', 'InstanceCount': 1, 'VolumeSizeInGB': 30}}, StoppingCondition={{'MaxRuntimeInSeconds': 3600}})\nprint('{{}}')",
        role = retrain_tests::world::ROLE_ARN
    ));
    world
        .emulator
        .complete_job("fraud-s3-file-mode", serde_json::json!({"validation:logloss": 0.45}));

    let out = retrain(&world, &["status", "--sweep", &sweep_id, "--compare", "fraud-s3-file-mode"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    for column in [
        "variant",
        "lane",
        "attempt",
        "status",
        "validation:logloss",
        "start-up",
        "download",
        "training",
        "warm pool",
    ] {
        assert!(text.contains(column), "{column} missing in\n{text}");
    }
    assert!(text.contains("2 job(s): 2 completed"), "{text}");
    assert!(text.contains("compared with fraud-s3-file-mode"), "{text}");

    let out = retrain(
        &world,
        &["status", "--sweep", &sweep_id, "--json", "--compare", "fraud-s3-file-mode"],
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let rows = report["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 2);
    assert_eq!(report["totals"]["completed"], 2);
    for row in rows {
        assert!(
            text.contains(row["training_job_name"].as_str().unwrap_or("?")),
            "the table and --json list the same jobs"
        );
        assert!(row["timing"]["startup_seconds"].is_number());
    }
    let c = &report["compare"];
    let (other, here) = (
        c["other_before_training_seconds"].as_f64().unwrap_or(0.0),
        c["sweep_before_training_seconds"].as_f64().unwrap_or(0.0),
    );
    assert!((c["saved_per_job_seconds"].as_f64().unwrap_or(f64::NAN) - (other - here)).abs() < 1e-9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_prints_the_event_log_as_a_timeline_once_per_event() {
    use retrain_tests::world::EVENT_LOG_GROUP;
    let mut world = World::start().await;
    // A redelivered schedule publishes nothing new; the log holds each event once anyway.
    let sweep_id = scheduled_sweep(&mut world, 2).await;

    let json_lines = |args: &[&str]| -> Vec<serde_json::Value> {
        let mut all = vec!["events", "--log-group", EVENT_LOG_GROUP, "--json"];
        all.extend_from_slice(args);
        let out = retrain(&world, &all);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
            .collect()
    };
    let all = json_lines(&["--since", "1h"]);
    let types: Vec<&str> = all.iter().filter_map(|e| e["detail_type"].as_str()).collect();
    assert_eq!(
        types,
        ["SweepStarted", "TrainingJobLaunched", "TrainingJobLaunched", "SweepCompleted"],
        "{all:#?}"
    );
    assert!(all
        .iter()
        .all(|e| e["pipeline"] == "fraud-efs" && e["sweep_id"] == sweep_id.as_str()));
    assert!(
        all[3]["summary"].as_str().is_some_and(|s| s.starts_with("best v1")),
        "the lower logloss wins: {:#}",
        all[3]
    );
    assert_eq!(json_lines(&["--sweep", &sweep_id]).len(), 4);
    assert!(json_lines(&["--sweep", "another"]).is_empty());
    assert!(json_lines(&["--pipeline", "churn"]).is_empty());

    let out = retrain(&world, &["events", "--log-group", EVENT_LOG_GROUP, "--pipeline", "fraud-efs"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for word in ["time", "event", "what happened", "SweepCompleted", &sweep_id] {
        assert!(table.contains(word), "{word} in\n{table}");
    }

    let bad = retrain(&world, &["events", "--log-group", EVENT_LOG_GROUP, "--since", "1w"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("s, m, h or d"));
    let missing = retrain(&world, &["events", "--log-group", "/aws/events/nope"]);
    assert_eq!(missing.status.code(), Some(2));
    let message = String::from_utf8_lossy(&missing.stderr);
    assert!(
        message.contains("/aws/events/nope") && message.contains("EventLogGroupName"),
        "{message}"
    );
}
