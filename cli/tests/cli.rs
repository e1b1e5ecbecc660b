//! The `retrain` command as users run it.

use std::process::{Command, Output};

fn retrain(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_retrain"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        // Plan must never need AWS for these examples.
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .output()
        .expect("retrain runs")
}

fn stdout_json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn plan_of_an_s3_put_prints_one_import_action() {
    let out = retrain(&["plan", "--config", "examples/pipelines.yaml", "--event", "events/s3-put.json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let plan = stdout_json(&out);
    assert_eq!(plan["actions"].as_array().map(Vec::len), Some(1));
    assert_eq!(plan["actions"][0]["api"], "fsx:CreateDataRepositoryTask");
    assert_eq!(
        plan["actions"][0]["input"]["Paths"][0],
        "s3://example-training-data/datasets/churn/new batch/part=1.csv"
    );
}

#[test]
fn plan_of_a_test_event_prints_one_skip() {
    let out = retrain(&[
        "plan",
        "--config",
        "examples/pipelines.yaml",
        "--event",
        "events/s3-test-event.json",
    ]);
    let plan = stdout_json(&out);
    assert_eq!(plan["actions"], serde_json::json!([]));
    assert_eq!(plan["skipped"].as_array().map(Vec::len), Some(1));
    assert!(plan["skipped"][0]["reason"].as_str().is_some_and(|r| !r.is_empty()));
}

#[test]
fn validate_accepts_the_example_and_lists_every_error_of_a_bad_config() {
    let ok = retrain(&["validate", "--config", "examples/pipelines.yaml"]);
    assert!(ok.status.success());
    assert!(String::from_utf8_lossy(&ok.stdout).starts_with("OK"));

    let dir = std::env::temp_dir().join(format!("retrain-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bad = dir.join("bad.yaml");
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/pipelines.yaml")).expect("example");
    std::fs::write(
        &bad,
        example
            .replacen("max_parallel: 2", "max_parallel: 0", 1)
            .replacen("subnet-0a1b2c3d4e5f60718", "subnet-1", 1),
    )
    .expect("write");
    let out = retrain(&["validate", "--config", bad.to_str().expect("utf-8 path"), "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let report = stdout_json(&out);
    assert_eq!(report["ok"], false);
    let paths: Vec<&str> = report["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["path"].as_str())
        .collect();
    assert!(paths.contains(&"pipelines[0].sweep.max_parallel"), "{paths:?}");
    assert!(paths.contains(&"pipelines[0].vpc.subnets[0]"), "{paths:?}");
}

#[test]
fn schema_is_a_json_schema_of_the_config() {
    let out = retrain(&["schema"]);
    assert!(out.status.success());
    let schema = stdout_json(&out);
    assert!(schema["$schema"].as_str().is_some_and(|s| s.contains("json-schema.org")));
    assert!(schema["properties"]["pipelines"].is_object());
}

#[test]
fn plan_reads_the_event_from_stdin() {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_retrain"))
        .args(["plan", "--config", "examples/pipelines.yaml", "--event", "-"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(br#"{"kind":"start-sweep","pipeline":"churn","request_id":"x"}"#)
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    let plan = stdout_json(&out);
    let apis: Vec<&str> = plan["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .filter_map(|a| a["api"].as_str())
        .collect();
    assert_eq!(
        apis,
        vec!["sagemaker:CreateTrainingJob", "sagemaker:CreateTrainingJob", "events:PutEvents"]
    );
}

#[test]
fn a_closed_pipe_ends_quietly() {
    use std::io::Read;
    let mut child = Command::new(env!("CARGO_BIN_EXE_retrain"))
        .arg("schema")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // Read one byte and close the pipe, as `| head -c1` does.
    let mut first = [0u8; 1];
    let mut stdout = child.stdout.take().expect("stdout");
    stdout.read_exact(&mut first).expect("some output");
    drop(stdout);
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}
