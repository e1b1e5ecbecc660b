//! Throughput of the pure core on the two hot paths (`make bench`, see BENCHMARKS.md):
//!
//! - `upload_batch_1000`: an SQS batch of 1,000 S3 notifications, from the
//!   raw bytes Lambda hands over to the one import task that covers it
//!   (what on-upload computes before its first AWS call);
//! - `sweep_1000`: a 10 × 10 × 10 grid expanded into a manifest of 1,000
//!   variants, and the lanes' decision with half the jobs done (what
//!   on-training computes on every state change), or all of them (ranking).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use retrain_core::config::{parse, Config};
use retrain_core::failure::JobStatus;
use retrain_core::import_plan::{import_task, pending_entries, repository_floors, ObjectRef};
use retrain_core::inbound::{decode_bytes, Inbound};
use retrain_core::lanes::{decide, JobObservation};
use retrain_core::sweep::{SweepManifest, SweepTrigger};
use serde_json::json;
use std::collections::BTreeSet;
use std::hint::black_box;

const RECORDS: usize = 1_000;
const CONFIG: &str = r#"
pipelines:
  - name: churn
    trigger: { bucket: example-training-data, prefixes: ["datasets/churn/"], suffix: ".csv" }
    file_system:
      type: fsx_lustre
      id: fs-0123456789abcdef0
      mount_name: fsx1234
      data_repository_path: s3://example-training-data/
    vpc: { subnets: [subnet-0a1b2c3d4e5f60718], security_groups: [sg-0a1b2c3d4e5f60718] }
    training:
      role_arn: arn:aws:iam::123456789012:role/RetrainSageMakerTraining
      image: 683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1
      instance_type: ml.m5.xlarge
      output_path: s3://example-training-artifacts/models/churn/
      channels:
        - { name: train, directory: /datasets/churn/train, content_type: text/csv }
        - { name: validation, directory: /datasets/churn/validation, content_type: text/csv }
      hyperparameters: { objective: "binary:logistic", num_round: 200, eval_metric: auc }
      objective: { metric: "validation:auc", direction: maximize }
      keep_alive_seconds: 600
    sweep:
      grid:
        eta: [0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5]
        max_depth: [2, 3, 4, 5, 6, 7, 8, 9, 10, 12]
        subsample: [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 1.0]
      max_parallel: 10
      max_retries: 1
  - name: fraud-efs
    trigger: { bucket: example-training-data, prefixes: ["home/alice/fraud/"] }
    file_system: { type: efs, id: fs-0fedcba9876543210 }
    vpc: { subnets: [subnet-0a1b2c3d4e5f60718], security_groups: [sg-0a1b2c3d4e5f60718] }
    training:
      role_arn: arn:aws:iam::123456789012:role/RetrainSageMakerTraining
      image: 683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1
      instance_type: ml.m5.large
      output_path: s3://example-training-artifacts/models/fraud/
      channels: [{ name: train, directory: /home/alice/fraud/train }]
      objective: { metric: "validation:logloss", direction: minimize }
"#;

fn config() -> Config {
    parse(CONFIG).expect("the bench config is valid")
}

/// An SQS batch as Lambda delivers it: one S3 notification per message, as S3 sends them.
fn upload_batch(records: usize) -> Vec<u8> {
    let records: Vec<serde_json::Value> = (0..records)
        .map(|i| {
            let notification = json!({"Records": [{
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": "2026-11-25T14:03:26.018Z",
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "AWS:AIDAINPONIXQXHT3IKHL2"},
                "requestParameters": {"sourceIPAddress": "205.255.255.255"},
                "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "828aa6fc-f7b5-4305-8584-487c791949c1",
                    "bucket": {"name": "example-training-data", "ownerIdentity": {"principalId": "A3I5XTEXAMAI3E"}, "arn": "arn:aws:s3:::example-training-data"},
                    "object": {"key": format!("datasets/churn/day-{}/part-{i:05}.csv", i / 100), "size": 2_048_576, "eTag": "d41d8cd98f00b204e9800998ecf8427e", "sequencer": format!("0C0F6F405D6E{i:06X}")}
                }
            }]});
            json!({
                "messageId": format!("059f36b4-87a3-44ab-83d2-{i:012}"),
                "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a...",
                "body": notification.to_string(),
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1795615407612", "SenderId": "AIDAIENQZJOLO23YVJ4VO", "ApproximateFirstReceiveTimestamp": "1795615407640"},
                "messageAttributes": {},
                "md5OfBody": "41f1b05982ff6d5dc42c571f7ee0199c",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:retrain-uploads",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    serde_json::to_vec(&json!({ "Records": records })).expect("serializable")
}

/// What on-upload computes before its first AWS call: decode, group into
/// pending entries with their keys, and the covering import task. Returns the task's path count.
fn plan_upload(config: &Config, bytes: &[u8]) -> usize {
    let decoded = decode_bytes(bytes);
    let objects: BTreeSet<ObjectRef> = decoded
        .items
        .into_iter()
        .filter_map(|item| match item.event {
            Inbound::ObjectCreated(o) => Some(o.object),
            _ => None,
        })
        .collect();
    let objects: Vec<ObjectRef> = objects.into_iter().collect();
    let (entries, _unmatched) = pending_entries(config, &objects);
    entries
        .iter()
        .map(|entry| {
            let fs = entry.file_system_id.as_str();
            let settings = config
                .pipelines
                .iter()
                .find(|p| p.file_system.id == fs)
                .map(|p| p.import.clone())
                .unwrap_or_default();
            let floors = repository_floors(config, fs);
            import_task(fs, &[entry.summary(&floors)], 1, &settings, &floors).paths.len()
        })
        .sum()
}

fn manifest(config: &Config) -> SweepManifest {
    let trigger = SweepTrigger {
        kind: "import".into(),
        id: "task-0123456789abcdef0".into(),
        reason: None,
    };
    SweepManifest::new(&config.pipelines[0], trigger, None, None).expect("manifest")
}

/// The first `done` variants completed with a metric; the rest not launched yet.
fn completed_jobs(m: &SweepManifest, done: usize) -> Vec<JobObservation> {
    (0..done)
        .map(|position| JobObservation {
            variant_id: m.variants[position].id.clone(),
            attempt: 1,
            training_job_name: m.job_name(position, 1),
            status: JobStatus::Completed,
            secondary_status: Some("Completed".into()),
            failure_reason: None,
            metrics: vec![("validation:auc".into(), 0.7 + (position % 97) as f64 / 1000.0)],
            timing: None,
            failure_class: None,
            instance_type: None,
            capacity_failures: 0,
        })
        .collect()
}

fn upload(c: &mut Criterion) {
    let config = config();
    let bytes = upload_batch(RECORDS);
    // The batch is what the bench claims: 1,000 objects → one task of at most 100 paths.
    assert_eq!(decode_bytes(&bytes).items.len(), RECORDS);
    let paths = plan_upload(&config, &bytes);
    assert!((1..=100).contains(&paths), "{paths} paths");
    let mut group = c.benchmark_group("upload_batch_1000");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.bench_function("decode", |b| b.iter(|| decode_bytes(black_box(&bytes))));
    group.bench_function("decode_and_plan", |b| b.iter(|| plan_upload(black_box(&config), black_box(&bytes))));
    group.finish();
}

fn sweep(c: &mut Criterion) {
    let config = config();
    let m = manifest(&config);
    assert_eq!(m.variants.len(), 1_000);
    let half = completed_jobs(&m, 500);
    let all = completed_jobs(&m, 1_000);
    let d = decide(&m, &half);
    assert_eq!(d.launches.len(), m.max_parallel());
    assert!(decide(&m, &all).completed.is_some());
    let mut group = c.benchmark_group("sweep_1000");
    group.throughput(Throughput::Elements(m.variants.len() as u64));
    group.bench_function("expand", |b| b.iter(|| manifest(black_box(&config))));
    group.bench_function("expand_and_decide_half_done", |b| {
        b.iter(|| {
            let m = manifest(black_box(&config));
            decide(&m, black_box(&half))
        })
    });
    group.bench_function("decide_all_done", |b| b.iter(|| decide(black_box(&m), black_box(&all))));
    group.finish();
}

criterion_group!(benches, upload, sweep);
criterion_main!(benches);
