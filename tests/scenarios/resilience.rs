//! Evidence under stress: injected AWS faults, garbage input, concurrent
//! duplicate completions and poison messages. Each scenario ends in the state
//! the fault-free run ends in, or says exactly what was handed back.

use retrain_tests::world::{Options, Target, World};
use serde_json::{json, Value};
use std::collections::BTreeSet;

const CAPACITY: &str = "CapacityError: Unable to provision requested ML compute capacity. Please retry using a different ML instance type.";

fn keys(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("datasets/churn/day {}/part={i:04}.csv", i % 3)).collect()
}

/// Plays FSx and SageMaker until the churn sweep has completed: finishes
/// running imports, ends running jobs (v0's first attempt for capacity, v3
/// with an algorithm error, the rest with a metric), and delivers every
/// queue and event until nothing is left to do.
async fn run_to_completion(world: &mut World) {
    let mut failed_capacity = false;
    for _round in 0..60 {
        world.drain(Target::OnUpload).await;
        world.drain(Target::OnImport).await;
        world.route_bus().await;
        world.drain(Target::OnTraining).await;
        let tasks = world.emulator.tasks()["tasks"].as_array().cloned().unwrap_or_default();
        for t in tasks
            .iter()
            .filter(|t| t["Lifecycle"] == "EXECUTING" || t["Lifecycle"] == "PENDING")
        {
            world.emulator.finish_task(t["TaskId"].as_str().unwrap_or_default(), "SUCCEEDED");
        }
        let jobs = world.emulator.jobs()["jobs"].as_array().cloned().unwrap_or_default();
        for job in jobs.iter().filter(|j| j["status"] == "InProgress") {
            let name = job["name"].as_str().unwrap_or_default();
            let variant = job["tags"]["retrain:variant"].as_str().unwrap_or_default();
            let event = if variant == "v0" && !failed_capacity {
                failed_capacity = true;
                world.emulator.fail_job(name, CAPACITY)
            } else if variant == "v3" {
                world.emulator.fail_job(name, "AlgorithmError: exit code 1")
            } else {
                world.emulator.complete_job(
                    name,
                    json!({"validation:auc": 0.7 + variant.trim_start_matches('v').parse::<f64>().unwrap_or(0.0) / 100.0}),
                )
            };
            world.deliver(Target::OnTraining, event).await;
        }
        if !world.published("SweepCompleted").is_empty() && jobs.iter().all(|j| j["status"] != "InProgress") {
            return;
        }
    }
    panic!("the sweep did not complete");
}

fn job_names(world: &World) -> BTreeSet<String> {
    world.emulator.jobs()["jobs"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|j| j["name"].as_str().map(|n| n.rsplitn(3, '-').take(2).collect::<Vec<_>>().join("@")))
        .collect()
}

fn event_counts(world: &World) -> Vec<(String, usize)> {
    [
        "DataImportStarted",
        "DataImportCompleted",
        "SweepStarted",
        "TrainingJobLaunched",
        "VariantRetried",
        "SweepCompleted",
    ]
    .iter()
    .map(|t| (t.to_string(), world.published_once(t).len()))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_fifth_of_aws_calls_failing_the_scenario_ends_in_the_same_state() {
    let uploads = keys(60);
    let mut clean = World::start().await;
    clean.upload(&uploads).await;
    run_to_completion(&mut clean).await;

    // RETRAIN_FAULT_SEED explores other fault sequences; the default keeps CI reproducible.
    let seed = std::env::var("RETRAIN_FAULT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(7);
    let mut faulty = World::start_with(Options {
        faults: Some((seed, 0.2)),
        ..Options::default()
    })
    .await;
    faulty.upload(&uploads).await;
    run_to_completion(&mut faulty).await;

    let stats = faulty.proxy.as_ref().expect("proxy").stats();
    let injected: u64 = ["throttle", "500", "503", "drop"].iter().filter_map(|k| stats[k].as_u64()).sum();
    let total = injected + stats["forwarded"].as_u64().unwrap_or(0);
    assert!(injected * 100 >= total * 10, "about a fifth of calls faulted: {stats}");

    assert!(faulty.every_key_imported(&uploads), "every upload imported");
    assert_eq!(
        job_names(&faulty),
        job_names(&clean),
        "every variant trained exactly once per attempt"
    );
    assert_eq!(job_names(&faulty).len(), 7);
    assert_eq!(event_counts(&faulty), event_counts(&clean), "no duplicate or missing domain event");
    assert_eq!(faulty.emulator.jobs()["max_in_progress"], clean.emulator.jobs()["max_in_progress"]);
    eprintln!("faults: {stats}; items handed back and delivered again: {}", faulty.redelivered);
}

/// A small deterministic generator (SplitMix64), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every leaf path of a JSON value.
fn leaves(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => m
            .iter()
            .for_each(|(k, c)| leaves(c, format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")), out)),
        Value::Array(a) => a.iter().enumerate().for_each(|(i, c)| leaves(c, format!("{at}/{i}"), out)),
        _ => out.push(at),
    }
}

/// One malformed or mutated version of `good`, as JSON text.
fn mutate(rng: &mut Rng, good: &Value) -> String {
    let mut v = good.clone();
    let mut paths = Vec::new();
    leaves(&v, String::new(), &mut paths);
    let path = paths.get(rng.below(paths.len())).cloned().unwrap_or_default();
    match rng.below(9) {
        0 => {
            let text = good.to_string();
            let cut = rng.below(text.len());
            return text.chars().take(cut).collect();
        }
        1 => {
            if let Some(leaf) = v.pointer_mut(&path) {
                *leaf = [json!(null), json!(42), json!("text"), json!([1, 2]), json!({"a": 1}), json!(true)][rng.below(6)].clone();
            }
        }
        2 => {
            if let Some(leaf) = v.pointer_mut(&path) {
                *leaf = json!("k".repeat(10_000 + rng.below(50_000)));
            }
        }
        3 => {
            for p in ["/Records/0/s3/object/key", "/detail/object/key"] {
                if let Some(leaf) = v.pointer_mut(p) {
                    *leaf = json!(
                        [
                            "datasets/churn/%ZZ.csv",
                            "datasets/churn/%FF%FE.csv",
                            "datasets/churn/%",
                            "datasets/churn/\u{0}.csv"
                        ][rng.below(4)]
                    );
                }
            }
        }
        4 => {
            for p in ["/source", "/detail-type", "/Records/0/eventSource", "/kind", "/Event"] {
                if let Some(leaf) = v.pointer_mut(p) {
                    *leaf = json!(["aws.kinesis", "Object Deleted", "aws:dynamodb", "unknown-kind", ""][rng.below(5)]);
                }
            }
        }
        5 => {
            if let Some(tags) = v.pointer_mut("/detail/Tags").and_then(Value::as_object_mut) {
                match rng.below(3) {
                    0 => drop(tags.remove("retrain:sweep")),
                    1 => drop(tags.insert("retrain:pipeline".into(), json!("no-such-pipeline"))),
                    _ => drop(tags.insert("retrain:variant".into(), json!("v999"))),
                }
            } else if let Some(p) = v.pointer_mut("/pipeline") {
                *p = json!("no-such-pipeline");
            }
        }
        6 => {
            let (parent, key) = path.rsplit_once('/').unwrap_or(("", ""));
            if let Some(m) = v.pointer_mut(parent).and_then(Value::as_object_mut) {
                m.remove(&key.replace("~1", "/").replace("~0", "~"));
            }
        }
        7 => {
            let bytes: Vec<u8> = (0..rng.below(64)).map(|_| rng.next() as u8).collect();
            return String::from_utf8_lossy(&bytes).into_owned();
        }
        _ => return ["", "null", "[]", "{}", "\"Records\"", "{\"Records\": 5}", "{\"Records\": [null]}"][rng.below(7)].to_owned(),
    }
    v.to_string()
}

fn sqs_batch(bodies: &[String]) -> (Value, Vec<String>) {
    let ids: Vec<String> = (0..bodies.len()).map(|i| format!("msg-{i:05}")).collect();
    let records: Vec<Value> = bodies
        .iter()
        .zip(&ids)
        .map(|(body, id)| json!({"messageId": id, "receiptHandle": "rh", "body": body, "attributes": {}, "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q", "awsRegion": "us-east-1"}))
        .collect();
    (json!({ "Records": records }), ids)
}

/// Every message of a batch either decoded into something to do or is reported with its id and a reason.
fn accounted(response: &Value, batch: &Value, ids: &[String]) -> Result<(), String> {
    let decoded = retrain_core::inbound::decode(batch);
    let with_items: BTreeSet<&str> = decoded.items.iter().filter_map(|i| i.message_id.as_deref()).collect();
    let reported: BTreeSet<&str> = response["skipped"]
        .as_array()
        .map(|s| {
            s.iter()
                .filter(|s| s["reason"].as_str().is_some_and(|r| !r.is_empty()))
                .filter_map(|s| s["message_id"].as_str())
                .collect()
        })
        .unwrap_or_default();
    match ids
        .iter()
        .find(|id| !with_items.contains(id.as_str()) && !reported.contains(id.as_str()))
    {
        Some(id) => Err(format!("{id} neither handled nor reported: {response}")),
        None => Ok(()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_malformed_events_are_reported_and_never_block_good_ones() {
    let mut world = World::start().await;
    let mut rng = Rng(20_261_125);
    let mut generated = 0;
    let s3_put = fixture("sqs-s3-put.json")["Records"][0]["body"]
        .as_str()
        .map(|b| serde_json::from_str::<Value>(b).expect("body"))
        .expect("fixture body");
    let eventbridge = fixture("eventbridge-s3-object-created.json");
    let tick = json!({"kind": "sweep-tick", "pipeline": "churn", "sweep_id": "0000000000"});

    // on-upload: 50 batches of 100 bad messages and one good upload each.
    let mut good_keys = Vec::new();
    for batch_no in 0..50 {
        let mut bodies: Vec<String> = (0..100)
            .map(|i| mutate(&mut rng, if i % 2 == 0 { &s3_put } else { &eventbridge }))
            .collect();
        let key = format!("datasets/churn/fuzz/good-{batch_no}.csv");
        let mut good = eventbridge.clone();
        good["detail"]["object"]["key"] = json!(key);
        bodies.push(good.to_string());
        good_keys.push(key);
        generated += 100;
        let (batch, ids) = sqs_batch(&bodies);
        let response = world.deliver(Target::OnUpload, batch.clone()).await;
        accounted(&response, &batch, &ids).unwrap_or_else(|e| panic!("{e}"));
        let failed: Vec<&str> = response["batchItemFailures"]
            .as_array()
            .map(|f| f.iter().filter_map(|i| i["itemIdentifier"].as_str()).collect())
            .unwrap_or_default();
        assert!(!failed.contains(&ids[100].as_str()), "the good upload was handled: {response}");
    }
    // Every good upload is recorded: pending, or covered by an import.
    let pending = world
        .clients
        .s3
        .list_objects_v2()
        .bucket(retrain_tests::world::ARTIFACTS_BUCKET)
        .prefix("pending/")
        .send()
        .await
        .expect("list");
    let mut recorded = String::new();
    for o in pending.contents() {
        let body = world
            .clients
            .s3
            .get_object()
            .bucket(retrain_tests::world::ARTIFACTS_BUCKET)
            .key(o.key().unwrap_or_default())
            .send()
            .await
            .expect("get");
        recorded.push_str(&String::from_utf8_lossy(&body.body.collect().await.expect("read").into_bytes()));
    }
    for key in &good_keys {
        assert!(recorded.contains(key.as_str()), "{key} recorded");
    }

    // on-import and on-training ticks: batches of bad timer messages, mutated
    // from a watch of the import the uploads started.
    let task_id = world.emulator.tasks()["tasks"][0]["TaskId"].as_str().unwrap_or_default().to_owned();
    let watch = json!({"kind": "import-watch", "file_system_id": world.ids.lustre, "task_id": task_id, "polls": 0});
    for (target, good) in [(Target::OnImport, &watch), (Target::OnTraining, &tick)] {
        for _ in 0..15 {
            let bodies: Vec<String> = (0..100).map(|_| mutate(&mut rng, good)).collect();
            generated += 100;
            let (batch, ids) = sqs_batch(&bodies);
            let response = world.deliver(target, batch.clone()).await;
            accounted(&response, &batch, &ids).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    // Direct invocations: start-sweep requests, schedules and state changes.
    let request = json!({"kind": "start-sweep", "pipeline": "fraud-efs", "request_id": "fuzz"});
    let scheduled = fixture("scheduled-event.json");
    let state_change = fixture("sagemaker-training-job-state-change-failed-capacity.json");
    for i in 0..2_000 {
        let (target, good) = match i % 3 {
            0 => (Target::StartSweep, &request),
            1 => (Target::StartSweep, &scheduled),
            _ => (Target::OnTraining, &state_change),
        };
        let text = mutate(&mut rng, good);
        generated += 1;
        let payload = serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text));
        // Returns a report (never panics); invalid input is in `skipped` with a reason.
        let response = world.deliver(target, payload).await;
        assert!(response.is_object(), "{response}");
    }
    assert!(generated >= 10_000, "{generated} generated");
    // The good start-sweep request beside all that garbage still works.
    world
        .deliver(
            Target::StartSweep,
            json!({"kind": "start-sweep", "pipeline": "fraud-efs", "request_id": "after-fuzz"}),
        )
        .await;
    assert!(world.published("SweepStarted").iter().any(|s| s["trigger"]["id"] == "after-fuzz"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_completions_delivered_concurrently_and_twice_never_exceed_the_lanes() {
    let mut world = World::start().await;
    world.reconfigure(|c| {
        let sweep = &mut c.pipelines[0].sweep;
        sweep.grid = [
            (
                "eta".to_owned(),
                (1..=10).map(|i| retrain_core::config::Scalar::Float(i as f64 / 10.0)).collect(),
            ),
            ("max_depth".to_owned(), (2..=6).map(retrain_core::config::Scalar::Integer).collect()),
        ]
        .into();
        sweep.max_parallel = 5;
    });
    world
        .deliver(
            Target::StartSweep,
            json!({"kind": "start-sweep", "pipeline": "churn", "request_id": "race"}),
        )
        .await;
    let sweep_id = world.published("SweepStarted")[0]["sweep_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut completions = 0;
    for _round in 0..40 {
        let jobs = world.emulator.jobs()["jobs"].as_array().cloned().unwrap_or_default();
        let running: Vec<String> = jobs
            .iter()
            .filter(|j| j["status"] == "InProgress")
            .filter_map(|j| j["name"].as_str().map(str::to_owned))
            .collect();
        if running.is_empty() {
            break;
        }
        let events: Vec<Value> = running
            .iter()
            .map(|n| world.emulator.complete_job(n, json!({"validation:auc": 0.5})))
            .collect();
        completions += events.len();
        // Every completion twice, all at once.
        let deps = &world.deps;
        let calls = events
            .iter()
            .chain(events.iter())
            .map(|e| retrain_aws::handlers::on_training::handle(deps, e));
        for result in futures_util::future::join_all(calls).await {
            result.expect("handled");
        }
        let stats = world.emulator.jobs();
        assert!(
            stats["max_in_progress_by_tag"][&sweep_id].as_u64().is_some_and(|n| n <= 5),
            "{stats:#}"
        );
    }
    assert_eq!(completions, 50);
    let stats = world.emulator.jobs();
    assert_eq!(
        stats["create_calls"].as_u64().map(|n| n as usize),
        Some(50 + stats["resource_in_use"].as_u64().unwrap_or(0) as usize)
    );
    assert_eq!(
        stats["jobs"].as_array().map(Vec::len),
        Some(50),
        "each variant attempt launched exactly once"
    );
    // At least once, and one id per job: subscribers deduplicate on event_id.
    let launched = world.published("TrainingJobLaunched");
    assert_eq!(world.published_once("TrainingJobLaunched").len(), 50, "one event id per job");
    let names: BTreeSet<&str> = launched.iter().filter_map(|e| e["training_job_name"].as_str()).collect();
    assert_eq!(names.len(), 50, "every job announced");
    let ids_per_job: BTreeSet<(&str, &str)> = launched
        .iter()
        .filter_map(|e| Some((e["training_job_name"].as_str()?, e["event_id"].as_str()?)))
        .collect();
    assert_eq!(ids_per_job.len(), 50, "a job's announcements all carry its one id");
    let completed = world.published("SweepCompleted");
    assert!(!completed.is_empty(), "SweepCompleted published");
    assert_eq!(
        world.published_once("SweepCompleted").len(),
        1,
        "SweepCompleted under a single event_id"
    );
    eprintln!(
        "announcements: {} TrainingJobLaunched for 50 jobs, {} SweepCompleted",
        launched.len(),
        completed.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_reaches_the_dead_letter_queue_after_the_receive_count() {
    let world = World::start().await;
    let sqs = &world.clients.sqs;
    let dlq = sqs
        .create_queue()
        .queue_name("poison-dlq")
        .send()
        .await
        .expect("dlq")
        .queue_url()
        .unwrap_or_default()
        .to_owned();
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("arn")
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn).cloned())
        .unwrap_or_default();
    let redrive = json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3}).to_string();
    let queue = sqs
        .create_queue()
        .queue_name("poison-uploads")
        .attributes(aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy, redrive)
        .send()
        .await
        .expect("queue")
        .queue_url()
        .unwrap_or_default()
        .to_owned();
    let poison = "{\"Records\": [{\"eventSource\": \"aws:s3\", \"s3\": ";
    sqs.send_message()
        .queue_url(&queue)
        .message_body(poison)
        .send()
        .await
        .expect("send");
    let mut receives = 0;
    for _ in 0..6 {
        let out = sqs
            .receive_message()
            .queue_url(&queue)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("receive");
        let Some(m) = out.messages().first() else { continue };
        receives += 1;
        let event = json!({"Records": [{"messageId": m.message_id(), "receiptHandle": m.receipt_handle(), "body": m.body(), "attributes": {}, "messageAttributes": {}, "md5OfBody": m.md5_of_body(), "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:poison-uploads", "awsRegion": "us-east-1"}]});
        let response = retrain_aws::handlers::on_upload::handle(&world.deps, &event)
            .await
            .expect("handled");
        assert_eq!(
            response["batchItemFailures"][0]["itemIdentifier"],
            m.message_id().unwrap_or_default(),
            "handed back, not dropped"
        );
        sqs.change_message_visibility()
            .queue_url(&queue)
            .receipt_handle(m.receipt_handle().unwrap_or_default())
            .visibility_timeout(0)
            .send()
            .await
            .expect("visibility");
    }
    assert_eq!(receives, 3, "delivered maxReceiveCount times");
    // What the DLQ alarm watches: ApproximateNumberOfMessagesVisible on the DLQ.
    let depth = sqs
        .get_queue_attributes()
        .queue_url(&dlq)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .expect("attributes")
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages).cloned());
    assert_eq!(depth.as_deref(), Some("1"));
    let kept = sqs.receive_message().queue_url(&dlq).send().await.expect("receive dlq");
    assert_eq!(kept.messages()[0].body(), Some(poison), "kept intact for inspection and replay");
}
