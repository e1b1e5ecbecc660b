//! The whole loop on the AWS wire: the handlers against the emulator over
//! HTTP, with events delivered the way S3, SQS and EventBridge deliver them.

use retrain_tests::world::{Options, Target, UploadRoute, World, ARTIFACTS_BUCKET, STACK};
use serde_json::{json, Value};
use std::collections::BTreeSet;

const CAPACITY: &str = "CapacityError: Unable to provision requested ML compute capacity. Please retry using a different ML instance type.";

fn keys(batch: usize, n: usize) -> Vec<String> {
    // Spaces and `=` in keys, as real partitioned data sets have.
    (0..n).map(|i| format!("datasets/churn/batch {batch}/part={i:04}.csv")).collect()
}

fn task_ids(world: &World) -> Vec<String> {
    world.emulator.tasks()["tasks"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|t| t["TaskId"].as_str().map(str::to_owned))
        .collect()
}

fn task(world: &World, i: usize) -> Value {
    world.emulator.tasks()["tasks"][i].clone()
}

fn covered(task: &Value, key: &str) -> bool {
    let uri = format!("s3://example-training-data/{key}");
    task["Paths"]
        .as_array()
        .is_some_and(|paths| paths.iter().filter_map(Value::as_str).any(|p| uri.starts_with(p)))
}

/// Watch polls until the import is seen running, as the delayed timer would.
async fn poll_watch(world: &mut World) {
    world.drain(Target::OnImport).await;
}

/// Uploads in three batches, the last two while the first import runs; ends with the sweep started.
async fn imports_scenario(world: &mut World) -> (Vec<String>, Vec<String>, Vec<String>) {
    let (b1, b2, b3) = (keys(1, 80), keys(2, 60), keys(3, 60));
    world.upload(&b1).await;
    world.drain(Target::OnUpload).await.expect("batch 1 delivered");
    assert_eq!(task_ids(world).len(), 1, "batch 1 starts one import");
    poll_watch(world).await; // EXECUTING: re-armed
    for batch in [&b2, &b3] {
        world.upload(batch).await;
        world.drain(Target::OnUpload).await.expect("batch delivered");
        assert_eq!(task_ids(world).len(), 1, "no second import while the first executes");
    }
    let first = task_ids(world)[0].clone();
    world.emulator.finish_task(&first, "SUCCEEDED");
    poll_watch(world).await; // SUCCEEDED: follow-up import for batches 2 and 3
    world.route_bus().await;
    assert!(world.published("SweepStarted").is_empty(), "no sweep while uploads are pending");
    assert_eq!(task_ids(world).len(), 2, "one follow-up import");
    poll_watch(world).await;
    let second = task_ids(world)[1].clone();
    world.emulator.finish_task(&second, "SUCCEEDED");
    poll_watch(world).await;
    world.route_bus().await;
    (b1, b2, b3)
}

/// Ends every running job of the sweep in order: v0 first fails for capacity,
/// v3 fails with an algorithm error, the others complete with a metric.
async fn sweep_scenario(world: &mut World) {
    let mut failed_capacity = false;
    for _ in 0..50 {
        let jobs = world.emulator.jobs()["jobs"].as_array().cloned().unwrap_or_default();
        let running: Vec<Value> = jobs.into_iter().filter(|j| j["status"] == "InProgress").collect();
        let Some(job) = running.first() else { break };
        let name = job["name"].as_str().unwrap_or_default().to_owned();
        let variant = job["tags"]["retrain:variant"].as_str().unwrap_or_default().to_owned();
        let event = if variant == "v0" && !failed_capacity {
            failed_capacity = true;
            world.emulator.fail_job(&name, CAPACITY)
        } else if variant == "v3" {
            world
                .emulator
                .fail_job(&name, "AlgorithmError: ExecuteUserScriptError: exit code 1")
        } else {
            let auc = 0.70 + variant.trim_start_matches('v').parse::<f64>().unwrap_or(0.0) / 100.0;
            world
                .emulator
                .complete_job(&name, json!({"validation:auc": auc, "train:auc": 0.99}))
        };
        world.deliver(Target::OnTraining, event).await;
    }
}

/// Every key in the artifacts bucket (pending entries, records, manifests, markers).
async fn artifact_keys(world: &World) -> Vec<String> {
    let mut keys = Vec::new();
    let mut pages = world.clients.s3.list_objects_v2().bucket(ARTIFACTS_BUCKET).into_paginator().send();
    while let Some(page) = pages.next().await {
        keys.extend(page.expect("list").contents().iter().filter_map(|o| o.key().map(str::to_owned)));
    }
    keys
}

/// How many pending upload entries the artifacts bucket holds.
async fn pending_entries(world: &World) -> usize {
    artifact_keys(world).await.iter().filter(|k| k.starts_with("pending/")).count()
}

fn churn_jobs(world: &World) -> Vec<Value> {
    world.emulator.jobs()["jobs"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|j| j["tags"]["retrain:pipeline"] == "churn")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_through_eventbridge_coalesce_into_two_imports_and_one_sweep_that_chains_lanes_to_completion() {
    the_whole_loop(UploadRoute::EventBridge).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_through_a_bucket_notification_coalesce_into_two_imports_and_one_sweep_that_chains_lanes_to_completion() {
    the_whole_loop(UploadRoute::Notification).await;
}

/// The loop from uploads to the sweep's end, with uploads reaching the queue by `route`.
async fn the_whole_loop(route: UploadRoute) {
    let mut world = World::start_with(Options {
        upload_route: route,
        ..Options::default()
    })
    .await;
    let (b1, b2, b3) = imports_scenario(&mut world).await;

    // Exactly two imports, never two at once, every key covered by a succeeded import.
    let ids = task_ids(&world);
    assert_eq!(ids.len(), 2);
    let tasks = world.emulator.tasks();
    assert!(
        tasks["max_executing_per_file_system"]
            .as_object()
            .is_some_and(|m| m.values().all(|v| v == 1)),
        "{tasks:#}"
    );
    let (t1, t2) = (task(&world, 0), task(&world, 1));
    assert!(t1["Lifecycle"] == "SUCCEEDED" && t2["Lifecycle"] == "SUCCEEDED");
    assert!(b1.iter().all(|k| covered(&t1, k)));
    assert!(
        b2.iter().chain(&b3).all(|k| covered(&t2, k)),
        "the follow-up covers every key of batches 2 and 3: {:?}",
        t2["Paths"]
    );
    assert!(t2["Paths"].as_array().is_some_and(|p| p.len() <= 100));
    // Exactly one sweep, after the second import.
    let started = world.published("SweepStarted");
    assert_eq!(started.len(), 1);
    assert_eq!(started[0]["trigger"]["id"], ids[1].as_str());
    let completed_imports = world.published("DataImportCompleted");
    assert_eq!(completed_imports.len(), 2);
    assert_eq!(completed_imports[0]["settled"], json!([]));
    assert_eq!(completed_imports[1]["settled"], json!(["churn"]));
    assert_eq!(churn_jobs(&world).len(), 2, "two lanes start");
    // The sweep names its data: both imports (the first left churn waiting
    // for the follow-up), every object they covered, and when it was recorded.
    let version = &started[0]["data_version"];
    assert_eq!(version["trigger"], "import");
    assert_eq!(version["imports"], json!([ids[0], ids[1]]), "{version:#}");
    assert_eq!(version["objects"], (b1.len() + b2.len() + b3.len()) as u64);
    assert!(version["digest"].as_str().is_some_and(|d| d.len() == 64), "{version:#}");
    assert!(
        version["data_as_of"].as_str().is_some_and(|t| t.len() == 20 && t.ends_with('Z')),
        "{version:#}"
    );
    let version_id = version["version"].as_str().unwrap_or_default().to_owned();

    // The sweep runs its lanes to the end.
    sweep_scenario(&mut world).await;
    let jobs = churn_jobs(&world);
    let names: BTreeSet<String> = jobs.iter().filter_map(|j| j["name"].as_str().map(str::to_owned)).collect();
    assert_eq!(jobs.len(), 7, "six variants plus one retry: {names:?}");
    assert!(
        names.iter().any(|n| n.ends_with("-v0-a2")),
        "capacity failure retried under a new name"
    );
    assert!(!names.iter().any(|n| n.ends_with("-v3-a2")), "algorithm error not retried");
    // Every job carries the stack tag that the deployed IAM policy requires on create.
    assert!(jobs.iter().all(|j| j["tags"]["retrain:stack"] == STACK), "{jobs:#?}");
    // Every job, retries included, is tagged with the sweep's data version.
    assert!(
        jobs.iter().all(|j| j["tags"]["retrain:data-version"] == version_id.as_str()),
        "{jobs:#?}"
    );
    let stats = world.emulator.jobs();
    let sweep_id = started[0]["sweep_id"].as_str().unwrap_or_default();
    assert!(
        stats["max_in_progress_by_tag"][sweep_id].as_u64().is_some_and(|n| n <= 2),
        "{stats:#}"
    );
    // Lane l runs its variants in order: creation order follows variant order within a lane.
    for lane in ["0", "1"] {
        let order: Vec<u64> = jobs
            .iter()
            .filter(|j| j["tags"]["retrain:lane"] == lane)
            .map(|j| {
                j["tags"]["retrain:variant"]
                    .as_str()
                    .unwrap_or("v0")
                    .trim_start_matches('v')
                    .parse()
                    .unwrap_or(0)
            })
            .collect();
        assert!(order.windows(2).all(|w| w[0] <= w[1]), "lane {lane}: {order:?}");
    }
    assert_eq!(world.published("VariantRetried").len(), 1);
    let done = world.published("SweepCompleted");
    assert_eq!(done.len(), 1, "SweepCompleted once");
    assert_eq!(
        done[0]["data_version"], started[0]["data_version"],
        "the end names the data the start fixed"
    );
    assert_eq!(done[0]["best"]["variant_id"], "v5", "highest validation:auc");
    assert_eq!((done[0]["ranked"].as_u64(), done[0]["unranked"].as_u64()), (Some(5), Some(1)));
    // The full ranking is in S3, where the event points.
    let results_uri = done[0]["results"].as_str().unwrap_or_default();
    let key = results_uri
        .strip_prefix(&format!("s3://{ARTIFACTS_BUCKET}/"))
        .unwrap_or_else(|| panic!("results in the artifacts bucket: {results_uri}"));
    let results: Value = world.deps.store.get("results", key).await.expect("read").expect("results exist");
    assert_eq!(results["unranked"][0]["variant_id"], "v3");
    assert_eq!(results["ranked"][0]["variant_id"], "v5");
    // Each variant carries its start-up breakdown, and each finished job one EMF record.
    for r in results["ranked"].as_array().expect("ranked") {
        let t = &r["timing"];
        for f in ["startup_seconds", "download_seconds", "training_seconds", "upload_seconds"] {
            assert!(t[f].as_f64().is_some_and(|s| s >= 0.0), "{f} in {r:#}");
        }
        assert!(t["training_seconds"].as_f64().is_some_and(|s| s > 0.0));
    }
    let records = world.metrics.lock().map(|m| m.clone()).unwrap_or_default();
    for record in &records {
        let directive = &record["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Retrain");
        assert!(record["_aws"]["Timestamp"].is_u64());
        for d in directive["Dimensions"][0].as_array().expect("dimensions") {
            assert!(record[d.as_str().unwrap_or_default()].is_string(), "dimension {d} has a value");
        }
        for m in directive["Metrics"].as_array().expect("metrics") {
            assert!(record[m["Name"].as_str().unwrap_or_default()].is_number(), "metric {m} has a value");
        }
    }
    let timings: Vec<&Value> = records.iter().filter(|r| r.get("StartupSeconds").is_some()).collect();
    assert_eq!(timings.len(), 7, "one start-up record per finished job, none for duplicates");
    assert!(timings.iter().all(|r| r["FileSystemType"] == "FSxLustre"));
    // What the dashboard counts, each exactly once whatever the redeliveries.
    let total = |metric: &str| records.iter().filter_map(|r| r[metric].as_f64()).sum::<f64>();
    assert_eq!(total("ImportsStarted"), 2.0);
    assert_eq!(total("ImportsCompleted"), 2.0);
    assert_eq!(records.iter().filter(|r| r.get("ImportSeconds").is_some()).count(), 2);
    assert_eq!(total("SweepsStarted"), 1.0);
    assert_eq!(total("JobsLaunched"), 7.0);
    assert_eq!(total("JobsRetried"), 1.0);
    assert_eq!(total("SweepsCompleted"), 1.0);
    let failed = |class: &str| records.iter().filter(|r| r["FailureClass"] == class).count();
    assert_eq!(
        (failed("capacity"), failed("transient"), failed("permanent")),
        (1, 0, 1),
        "the capacity failure and the algorithm error"
    );
    // The job reads the file system, in its VPC, through a real FileSystemDataSource.
    let job = world
        .clients
        .sagemaker
        .describe_training_job()
        .training_job_name(names.iter().next().cloned().unwrap_or_default())
        .send()
        .await
        .expect("describe");
    let source = job.input_data_config()[0]
        .data_source()
        .and_then(|d| d.file_system_data_source())
        .expect("file system source");
    assert_eq!(source.file_system_type().map(|t| t.as_str()), Some("FSxLustre"));
    let path = source.directory_path().unwrap_or_default();
    assert!(path.starts_with('/') && path.ends_with("/datasets/churn/train"), "{path}");
    assert_ne!(path, "/datasets/churn/train", "mount name looked up and prefixed");
    assert_eq!(job.vpc_config().map(|v| v.subnets().to_vec()), Some(vec![world.ids.subnet.clone()]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_and_a_full_replay_change_nothing() {
    let mut world = World::start().await;
    world.duplicate = true;
    imports_scenario(&mut world).await;
    sweep_scenario(&mut world).await;
    let count = |w: &World| {
        let types = [
            "DataImportStarted",
            "DataImportCompleted",
            "SweepStarted",
            "TrainingJobLaunched",
            "VariantRetried",
            "SweepCompleted",
        ];
        (task_ids(w).len(), churn_jobs(w).len(), types.map(|t| w.published(t).len()))
    };
    let before = count(&world);
    assert_eq!(before.0, 2, "two imports despite duplicates");
    assert_eq!(before.1, 7, "each variant attempt launched once");
    assert_eq!(before.2, [2, 2, 1, 7, 1, 1], "no duplicate domain event");
    let objects_before = artifact_keys(&world).await;
    let events_before: Vec<Value> = world.emulator.events(retrain_tests::world::BUS);
    for _ in 0..3 {
        world.replay().await;
    }
    assert_eq!(count(&world), before, "replaying the whole event log three times changes nothing");
    assert_eq!(artifact_keys(&world).await, objects_before, "the same S3 objects");
    assert_eq!(
        world.emulator.events(retrain_tests::world::BUS),
        events_before,
        "the same domain events, in the same order"
    );
    let jobs = world.emulator.jobs();
    assert_eq!(
        jobs["create_calls"], 7,
        "duplicates saw the launched jobs and created nothing again: {jobs:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_event_sweeps_the_efs_pipeline_without_import() {
    let mut world = World::start().await;
    let scheduled: Value = serde_json::from_str(include_str!("../../events/scheduled-event.json")).expect("fixture");
    world.deliver(Target::StartSweep, scheduled.clone()).await;
    assert!(task_ids(&world).is_empty(), "EFS needs no import");
    let jobs = world.emulator.jobs()["jobs"].as_array().cloned().unwrap_or_default();
    assert_eq!(jobs.len(), 1, "max_parallel 1");
    let name = jobs[0]["name"].as_str().unwrap_or_default().to_owned();
    assert!(name.starts_with("fraud-efs-"));
    let job = world
        .clients
        .sagemaker
        .describe_training_job()
        .training_job_name(&name)
        .send()
        .await
        .expect("describe");
    let source = job.input_data_config()[0]
        .data_source()
        .and_then(|d| d.file_system_data_source())
        .expect("file system source");
    assert_eq!(source.file_system_type().map(|t| t.as_str()), Some("EFS"));
    assert_eq!(source.file_system_id(), Some(world.ids.efs.as_str()));
    assert_eq!(source.directory_path(), Some("/home/alice/fraud/train"));
    // The lane chains to the second variant, then the sweep completes once.
    let event = world.emulator.complete_job(&name, json!({"validation:logloss": 0.4}));
    world.deliver(Target::OnTraining, event).await;
    let second = world.emulator.jobs()["jobs"][1]["name"].as_str().unwrap_or_default().to_owned();
    let event = world.emulator.complete_job(&second, json!({"validation:logloss": 0.3}));
    world.deliver(Target::OnTraining, event).await;
    let done = world.published("SweepCompleted");
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["best"]["training_job_name"], second.as_str(), "lowest logloss wins");
    // No import: the data version is the schedule's trigger and time.
    let version = &world.published("SweepStarted")[0]["data_version"];
    assert_eq!(version["trigger"], "schedule");
    assert_eq!(version["data_as_of"], scheduled["time"]);
    assert!(version.get("imports").is_none() && version.get("digest").is_none(), "{version:#}");
    assert_eq!(done[0]["data_version"], *version);
    for job in world.emulator.jobs()["jobs"].as_array().cloned().unwrap_or_default() {
        assert_eq!(job["tags"]["retrain:data-version"], version["version"], "{job:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_record_is_reported_by_id_and_the_good_ones_are_handled() {
    let mut world = World::start().await;
    let mut batch: Value = serde_json::from_str(include_str!("../../events/sqs-s3-put.json")).expect("fixture");
    let bad_id = batch["Records"][2]["messageId"].as_str().unwrap_or_default().to_owned();
    // The fixture's bucket is the test's data bucket, so the good records import.
    let response = world.deliver(Target::OnUpload, batch.take()).await;
    let failures: Vec<&str> = response["batchItemFailures"]
        .as_array()
        .expect("failures")
        .iter()
        .filter_map(|f| f["itemIdentifier"].as_str())
        .collect();
    assert_eq!(failures, vec![bad_id.as_str()], "{response:#}");
    assert!(response["skipped"]
        .as_array()
        .expect("skipped")
        .iter()
        .any(|s| s["message_id"] == bad_id.as_str() && s["reason"].as_str().is_some_and(|r| r.contains("not JSON"))));
    assert_eq!(task_ids(&world).len(), 1, "the good uploads were imported");
    assert_eq!(pending_entries(&world).await, 1, "recorded before the import was tried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_import_is_retried_then_blocks_the_sweep_and_keeps_the_uploads_pending() {
    let mut world = World::start().await;
    world.upload(&keys(1, 3)).await;
    world.drain(Target::OnUpload).await;
    let first = task_ids(&world)[0].clone();
    world.emulator.finish_task(&first, "FAILED");
    poll_watch(&mut world).await;
    assert_eq!(task_ids(&world).len(), 2, "retried once (max_attempts 2)");
    let second = task_ids(&world)[1].clone();
    world.emulator.finish_task(&second, "FAILED");
    poll_watch(&mut world).await;
    assert_eq!(task_ids(&world).len(), 2, "no third attempt");
    let failed = world.published("DataImportFailed");
    assert_eq!(failed.len(), 2);
    assert_eq!(failed[0]["will_retry"], true);
    assert_eq!(failed[1]["will_retry"], false);
    assert!(failed[1]["failure"].as_str().is_some_and(|f| !f.is_empty()));
    let blocked = world.published("SweepBlocked");
    assert_eq!(blocked.len(), 1);
    assert_eq!(blocked[0]["pipeline"], "churn");
    assert_eq!(pending_entries(&world).await, 1, "nothing lost: the uploads stay pending");
    assert!(world.published("SweepStarted").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launch_that_already_happened_is_resource_in_use_and_not_announced_twice() {
    let mut world = World::start().await;
    let request = json!({"kind": "start-sweep", "pipeline": "fraud-efs", "request_id": "manual-1"});
    world.deliver(Target::StartSweep, request.clone()).await;
    // Another request names another sweep; the same request id the same one.
    let name = world.emulator.jobs()["jobs"][0]["name"].as_str().unwrap_or_default().to_owned();
    let manifest = retrain_core::sweep::manifest_key("fraud-efs", name.split('-').nth(2).unwrap_or_default());
    let sweep = world
        .deps
        .store
        .get::<retrain_core::sweep::SweepManifest>("manifest", &manifest)
        .await
        .expect("read")
        .expect("manifest exists");
    let job = sweep.training_job(0, 1, 0).expect("request");
    assert_eq!(job.training_job_name, name);
    assert_eq!(
        world.deps.sagemaker.launch(&job).await.expect("answer"),
        retrain_aws::adapters::sagemaker::Launched::AlreadyExists
    );
    assert_eq!(world.emulator.jobs()["resource_in_use"], 1);
    world.deliver(Target::StartSweep, request).await;
    assert_eq!(world.published("SweepStarted").len(), 1);
    assert_eq!(world.published("TrainingJobLaunched").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_only_starts_the_pipelines_on_that_schedule() {
    let mut world = World::start().await;
    world.reconfigure(|c| c.pipelines[1].schedule = Some("cron(0 3 * * ? *)".into()));
    let scheduled: Value = serde_json::from_str(include_str!("../../events/scheduled-event.json")).expect("fixture");
    let response = world.deliver(Target::StartSweep, scheduled).await;
    assert!(world.published("SweepStarted").is_empty());
    let reason = response["skipped"][0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("cron(0 3 * * ? *)") && reason.contains("rate(1 day)"),
        "{response:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aws_error_names_the_resource_and_the_fix() {
    let world = World::start().await;
    let mut settings = world.deps.settings.clone();
    settings.artifacts_bucket = "no-such-artifacts-bucket".into();
    let deps = retrain_aws::Deps::new(world.deps.config.clone(), settings, world.clients.clone());
    // Direct from EventBridge (no SQS message to hand back): the invocation fails, so Lambda retries it.
    let event: Value = serde_json::from_str(include_str!("../../events/eventbridge-s3-object-created.json")).expect("fixture");
    let err = retrain_aws::handlers::on_upload::handle(&deps, &event)
        .await
        .expect_err("the bucket does not exist");
    let text = err.to_string();
    assert!(text.contains("s3://no-such-artifacts-bucket/"), "names the resource: {text}");
    assert!(
        text.contains("bucket no-such-artifacts-bucket does not exist"),
        "names the bucket in the fix: {text}"
    );
    assert!(text.contains("NoSuchBucket"), "names the AWS error: {text}");
    assert!(text.contains("RETRAIN_ARTIFACTS_BUCKET"), "says what to fix: {text}");
    assert!(!err.is_retryable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_whose_records_span_many_pages_ends_once_with_every_variant_ranked() {
    let mut world = World::start_with(Options {
        finish_page_keys: Some(3),
        ..Options::default()
    })
    .await;
    imports_scenario(&mut world).await;
    sweep_scenario(&mut world).await;
    assert!(world.published("SweepCompleted").is_empty(), "the end waits for its pages");
    let mut pages = 0;
    while world.drain(Target::OnTraining).await.is_some() {
        pages += 1;
        assert!(pages < 20, "the pages of the sweep's end never stop");
    }
    let keys = artifact_keys(&world).await;
    let parts = keys.iter().filter(|k| k.contains("/finish/part-")).count();
    assert!(
        pages >= 3 && parts >= 3,
        "7 jobs in pages of 3 keys: {pages} deliveries, {parts} parts"
    );
    let completed = world.published("SweepCompleted");
    assert_eq!(completed.len(), 1, "{completed:?}");
    assert_eq!(completed[0]["ranked"], 5, "v3's algorithm error is unranked; the rest ranked");
    assert_eq!(completed[0]["unranked"], 1);
    assert_eq!(completed[0]["best"]["variant_id"], "v5");
    assert!(
        !keys.iter().any(|k| k.starts_with("open/sweeps/")),
        "the sweep is closed once SweepCompleted is out"
    );
    let launched = world.published("TrainingJobLaunched");
    assert_eq!(launched.len(), 7, "each attempt announced once: {launched:?}");
}

/// The churn sweep (six variants, two lanes, jobs of one instance for at
/// most an hour) under a cap of three instance-hours, every job billing a
/// full hour: three launches fit, then each would exceed the cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spend_cap_skips_the_launches_that_would_exceed_it_and_the_sweep_still_completes() {
    let mut world = World::start().await;
    world.reconfigure(|config| {
        for p in config.pipelines.iter_mut().filter(|p| p.name == "churn") {
            p.training.instance_count = 1;
            p.training.max_runtime_seconds = 3600;
            p.sweep.max_instance_hours = Some(3.0);
        }
    });
    world.upload(&keys(1, 3)).await;
    world.drain(Target::OnUpload).await.expect("batch delivered");
    let task = task_ids(&world)[0].clone();
    world.emulator.finish_task(&task, "SUCCEEDED");
    poll_watch(&mut world).await;
    world.route_bus().await;
    let started = world.published("SweepStarted");
    assert_eq!(started.len(), 1);
    assert_eq!(started[0]["max_instance_hours"], 3.0);
    assert_eq!(
        started[0]["worst_case_instance_hours"], 12.0,
        "6 variants × 2 attempts × 1 instance × 1 h"
    );

    // v0 and v1 run (2 h reserved); v0 bills 1 h, so v2 fits exactly (3 h).
    // Then v1 ends: v3 would make 4 h, and so would v5 and v4.
    for variant in ["v0", "v1", "v2"] {
        let job = churn_jobs(&world)
            .into_iter()
            .find(|j| j["tags"]["retrain:variant"] == variant && j["status"] == "InProgress")
            .unwrap_or_else(|| panic!("{variant} runs: {:#?}", churn_jobs(&world)));
        let name = job["name"].as_str().unwrap_or_default().to_owned();
        let event = world.emulator.complete_job_billed(&name, json!({"validation:auc": 0.8}), 3600);
        world.deliver(Target::OnTraining, event).await;
    }
    let jobs = churn_jobs(&world);
    let launched: BTreeSet<String> = jobs
        .iter()
        .filter_map(|j| j["tags"]["retrain:variant"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(launched, BTreeSet::from(["v0".into(), "v1".into(), "v2".into()]), "{jobs:#?}");
    assert_eq!(world.published("TrainingJobLaunched").len(), 3);
    let done = world.published("SweepCompleted");
    assert_eq!(done.len(), 1, "the sweep completes with the rest skipped");
    let hours = &done[0]["instance_hours"];
    assert_eq!(hours["billable"], 3.0, "{hours:#}");
    assert_eq!(hours["skipped_for_budget"], 3, "{hours:#}");
    assert_eq!(hours["max_instance_hours"], 3.0);
    assert_eq!(done[0]["ranked"], 3);
    let key = done[0]["results"]
        .as_str()
        .and_then(|u| u.strip_prefix(&format!("s3://{ARTIFACTS_BUCKET}/")))
        .unwrap_or_default()
        .to_owned();
    let results: Value = world.deps.store.get("results", &key).await.expect("read").expect("results");
    let skipped: Vec<&Value> = results["unranked"]
        .as_array()
        .map(|u| u.iter().filter(|r| r["status"] == "Skipped").collect())
        .unwrap_or_default();
    let skipped_ids: BTreeSet<&str> = skipped.iter().filter_map(|r| r["variant_id"].as_str()).collect();
    assert_eq!(skipped_ids, BTreeSet::from(["v3", "v4", "v5"]), "{results:#}");
    assert!(
        skipped
            .iter()
            .all(|r| r["failure_reason"].as_str().is_some_and(|m| m.contains("max_instance_hours"))),
        "each skip says which cap: {skipped:#?}"
    );
    // A redelivered end changes nothing: no launch, no second skip.
    let first = jobs[0]["name"].as_str().unwrap_or_default().to_owned();
    let again = world.emulator.get(&format!("sagemaker/jobs/{first}/event"));
    world.deliver(Target::OnTraining, again).await;
    assert_eq!(churn_jobs(&world).len(), 3);
    assert_eq!(world.published("SweepCompleted").len(), 1);
}
