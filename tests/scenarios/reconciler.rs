//! The defects the crash-safety work fixed, each shown on the emulator: a
//! lost edge (an event, a timer, an invocation) or a long wait, and the
//! state still converges, or the stall is announced. The reconciler is the
//! level-triggered pass that guarantees it.

use retrain_tests::crash::Mode;
use retrain_tests::world::{Options, Target, World};
use serde_json::{json, Value};

fn keys(batch: usize, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("datasets/churn/batch {batch}/part={i:04}.csv")).collect()
}

fn tasks(world: &World) -> Vec<Value> {
    world.emulator.tasks()["tasks"].as_array().cloned().unwrap_or_default()
}

async fn purge(world: &World, queue_url: &str) {
    world.clients.sqs.purge_queue().queue_url(queue_url).send().await.expect("purge");
}

async fn reconcile(world: &mut World) -> Value {
    world
        .deliver(Target::Reconcile, json!({"source": "aws.events", "detail-type": "Scheduled Event"}))
        .await
}

fn last_metrics(world: &World) -> Value {
    world.metrics.lock().map(|m| m.last().cloned()).ok().flatten().unwrap_or_default()
}

fn running_jobs(world: &World) -> Vec<String> {
    world.emulator.jobs()["jobs"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        // Jobs of retrain's sweeps only, not the other team's that fills a quota.
        .filter(|j| j["status"] == "InProgress" && j["tags"]["retrain:sweep"].is_string())
        .filter_map(|j| j["name"].as_str().map(str::to_owned))
        .collect()
}

/// The quota of ml.m5.xlarge admits one job and another team's job holds it:
/// preflight sees room for one job, and every create is refused.
fn fill_quota(world: &World) {
    world.emulator.post("sagemaker/quotas", json!({"ml.m5.xlarge": 1}));
    world.occupy("other-team-m5", "ml.m5.xlarge", 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_over_nothing_open_reports_zero_open_work() {
    let mut world = World::start().await;
    reconcile(&mut world).await;
    let record = last_metrics(&world);
    for metric in ["OpenSweeps", "OldestPendingUploadAgeSeconds", "ImportsStalled", "SweepsStalled"] {
        assert_eq!(record[metric], 0, "{metric} in {record}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dying_right_after_the_once_marker_loses_no_event() {
    // Before: the marker was written before PutEvents, so dying between the two lost the event.
    let mut world = World::start_with(Options {
        crashes: Some((1, 0)),
        ..Options::default()
    })
    .await;
    world.upload(&keys(1, 3)).await;
    world.drain(Target::OnUpload).await;
    let task = tasks(&world)[0]["TaskId"].as_str().unwrap_or_default().to_owned();
    world.drain(Target::OnImport).await;
    world.emulator.finish_task(&task, "SUCCEEDED");
    let points = world.crashes.as_ref().map(|c| c.points.clone()).expect("crash points");
    points.arm_matching("PUT", "/published/DataImportCompleted", Mode::Die);
    assert!(world.drain(Target::OnImport).await.is_some());
    let struck = world.crashes.as_ref().map(|c| c.struck.len()).unwrap_or(0);
    assert_eq!(struck, 1, "the invocation died right after writing the marker");
    // The watch message comes back; its redelivery finds the event out already.
    world.drain(Target::OnImport).await;
    let completed = world.published_once("DataImportCompleted");
    assert_eq!(completed.len(), 1, "DataImportCompleted published, under one event id");
    world.route_bus().await;
    assert_eq!(world.published("SweepStarted").len(), 1, "and the sweep started");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_past_max_wait_keeps_watching_and_the_later_uploads_are_imported() {
    let mut world = World::start().await;
    world.reconfigure(|c| c.pipelines[0].import.max_wait_seconds = 1);
    world.upload(&keys(1, 3)).await;
    world.drain(Target::OnUpload).await;
    // The import outlives max_wait_seconds (a real second, against a one-second limit).
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    world.drain(Target::OnImport).await;
    let stalled = world.published("ImportStalled");
    assert_eq!(stalled.len(), 1, "the long import is announced");
    assert!(world.published("DataImportFailed").is_empty(), "and not given up");
    let later = keys(2, 2);
    world.upload(&later).await;
    world.drain(Target::OnUpload).await;
    let first = tasks(&world)[0]["TaskId"].as_str().unwrap_or_default().to_owned();
    world.emulator.finish_task(&first, "SUCCEEDED");
    world.drain(Target::OnImport).await; // SUCCEEDED: follow-up for the later uploads
    let second = tasks(&world)[1]["TaskId"].as_str().unwrap_or_default().to_owned();
    world.emulator.finish_task(&second, "SUCCEEDED");
    world.drain(Target::OnImport).await;
    assert!(
        world.every_key_imported(&later),
        "the uploads made during the long import were imported"
    );
    assert!(world.artifact_keys("pending/").await.is_empty());
    assert_eq!(world.published("ImportStalled").len(), 1, "announced once");
}

/// A task retrain did not start holds the file system, then fails or is cancelled.
async fn foreign_task_then(end: &str) {
    let mut world = World::start().await;
    let lustre = world.ids.lustre.clone();
    let foreign = world.boto3(&format!(
        "fsx = client('fsx')\nt = fsx.create_data_repository_task(Type='EXPORT_TO_REPOSITORY', FileSystemId='{lustre}', Report={{'Enabled': False}})['DataRepositoryTask']['TaskId']\nfsx.describe_data_repository_tasks(TaskIds=[t])\nprint(json.dumps({{'task': t}}))"
    ))["task"]
    .as_str()
    .unwrap_or_default()
    .to_owned();
    if end == "CANCELED" {
        world
            .emulator
            .post(&format!("fsx/tasks/{foreign}/finish"), json!({"lifecycle": "CANCELING"}));
    }
    let uploads = keys(1, 3);
    world.upload(&uploads).await;
    world.drain(Target::OnUpload).await;
    assert_eq!(tasks(&world).len(), 1, "the file system's one task slot is taken");
    world.emulator.finish_task(&foreign, end);
    world.drain(Target::OnImport).await; // the foreign task's watch sees it end
    assert_eq!(
        tasks(&world).len(),
        2,
        "the pending uploads got their import once the slot was free"
    );
    let ours = tasks(&world)[1]["TaskId"].as_str().unwrap_or_default().to_owned();
    world.emulator.finish_task(&ours, "SUCCEEDED");
    world.drain(Target::OnImport).await;
    world.route_bus().await;
    assert!(world.every_key_imported(&uploads));
    assert_eq!(world.published("SweepStarted").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_task_that_fails_hands_the_pending_uploads_their_import() {
    foreign_task_then("FAILED").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelling_task_is_watched_and_its_end_frees_the_pending_uploads() {
    foreign_task_then("CANCELED").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_watch_timer_and_a_lost_state_change_are_recovered_by_the_reconciler() {
    let mut world = World::start().await;
    let uploads = keys(1, 3);
    world.upload(&uploads).await;
    world.drain(Target::OnUpload).await;
    // The watch timer is lost, and the task ends unseen.
    purge(&world, &world.watch_queue.url.clone()).await;
    let task = tasks(&world)[0]["TaskId"].as_str().unwrap_or_default().to_owned();
    world.emulator.finish_task(&task, "SUCCEEDED");
    assert_eq!(world.artifact_keys("open/imports/").await.len(), 1, "the import is open");
    reconcile(&mut world).await;
    assert_eq!(world.published("DataImportCompleted").len(), 1, "the reconciler processed the end");
    assert!(world.artifact_keys("open/imports/").await.is_empty());
    world.route_bus().await;
    assert_eq!(running_jobs(&world).len(), 2, "the sweep started its two lanes");
    // A job's state-change event is lost.
    let job = running_jobs(&world)[0].clone();
    world.emulator.complete_job(&job, json!({"validation:auc": 0.8}));
    reconcile(&mut world).await;
    assert_eq!(
        running_jobs(&world).len(),
        2,
        "its lane launched its next variant from the recovered end"
    );
    assert_eq!(last_metrics(&world)["OpenSweeps"], 1);
    // The rest runs to the end on events; the sweep closes.
    for _ in 0..10 {
        for name in running_jobs(&world) {
            let event = world.emulator.complete_job(&name, json!({"validation:auc": 0.7}));
            world.deliver(Target::OnTraining, event).await;
        }
    }
    assert_eq!(world.published_once("SweepCompleted").len(), 1);
    reconcile(&mut world).await;
    assert_eq!(last_metrics(&world)["OpenSweeps"], 0, "nothing left open");
    assert!(world.artifact_keys("open/").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_completes_from_its_records_while_list_training_jobs_lags() {
    let mut world = World::start().await;
    // The list shows nothing newer than an hour: deciding from it would never end the sweep.
    world.emulator.post("sagemaker/list-lag", json!({"seconds": 3600}));
    world
        .deliver(
            Target::StartSweep,
            json!({"kind": "start-sweep", "pipeline": "churn", "request_id": "lag"}),
        )
        .await;
    for _ in 0..10 {
        let running = running_jobs(&world);
        // Both lanes' jobs end together; their events are handled concurrently.
        let events: Vec<Value> = running
            .iter()
            .map(|n| world.emulator.complete_job(n, json!({"validation:auc": 0.75})))
            .collect();
        let deps = &world.deps;
        for r in futures_util::future::join_all(events.iter().map(|e| retrain_aws::handlers::on_training::handle(deps, e))).await {
            r.expect("handled");
        }
    }
    assert_eq!(world.emulator.jobs()["jobs"].as_array().map(Vec::len), Some(6));
    assert_eq!(world.published_once("SweepCompleted").len(), 1, "the end is seen despite the lag");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quota_refusal_runs_one_backoff_chain_is_announced_once_and_ends() {
    let mut world = World::start().await;
    fill_quota(&world);
    let request = json!({"kind": "start-sweep", "pipeline": "churn", "request_id": "quota"});
    world.deliver(Target::StartSweep, request.clone()).await;
    world.deliver(Target::StartSweep, request).await; // a duplicate trigger defers again
    let deferred = world.published("LaunchDeferred");
    assert_eq!(deferred.len(), 1, "announced once");
    assert_eq!(deferred[0]["code"], "ResourceLimitExceeded");
    assert!(deferred[0]["fix"]
        .as_str()
        .is_some_and(|f| f.contains("ml.m5.xlarge for training job usage")));
    let queues = world.emulator.get("sqs/queues");
    let ticks = queues["queues"]
        .as_array()
        .and_then(|q| q.iter().find(|q| q["name"] == "retrain-ticks").cloned())
        .unwrap_or_default();
    assert_eq!(ticks["delayed"], 1, "one tick chain, not one per refusal: {queues}");
    // Each tick still refused arms exactly one next tick.
    for _ in 0..3 {
        world.drain(Target::OnTraining).await;
        let q = world.emulator.get("sqs/queues");
        let t = q["queues"]
            .as_array()
            .and_then(|q| q.iter().find(|q| q["name"] == "retrain-ticks").cloned());
        assert_eq!(t.map(|t| t["delayed"].clone()), Some(json!(1)), "{q}");
    }
    assert!(running_jobs(&world).is_empty());
    // The quota is raised: the next tick launches both lanes and the chain stops.
    world.emulator.post("sagemaker/quotas", json!({"ml.m5.xlarge": null}));
    world.drain(Target::OnTraining).await;
    assert_eq!(running_jobs(&world).len(), 2);
    assert!(world.drain(Target::OnTraining).await.is_none(), "no tick left");
    assert!(world
        .artifact_keys("sweeps/churn/")
        .await
        .iter()
        .all(|k| !k.ends_with("deferred.json")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launch_refused_past_max_queue_seconds_blocks_the_sweep() {
    let mut world = World::start().await;
    fill_quota(&world);
    let request = json!({"kind": "start-sweep", "pipeline": "churn", "request_id": "queue"});
    world.deliver(Target::StartSweep, request.clone()).await;
    let sweep_id = world.published("SweepStarted")[0]["sweep_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    // The recorded wait began two days ago (the record is the state the rule reads).
    let key = format!("sweeps/churn/{sweep_id}/jobs/deferred.json");
    let mut record: Value = world.deps.store.get("deferral", &key).await.expect("read").expect("deferred");
    record["since"] = json!(record["since"].as_u64().unwrap_or(0) - 2 * 86_400);
    world.deps.store.put(&key, &record).await.expect("write");
    world.drain(Target::OnTraining).await;
    let blocked = world.published("SweepBlocked");
    assert_eq!(blocked.len(), 1, "{blocked:?}");
    assert!(blocked[0]["problems"][0].as_str().is_some_and(|p| p.contains("max_queue_seconds")));
    assert!(world.drain(Target::OnTraining).await.is_none(), "the chain stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_request_delivered_twice_by_eventbridge_starts_one_sweep() {
    let world = World::start().await;
    let event = json!({
        "version": "0", "id": "7bf73129-1428-4cd3-a780-95db273d1602", "detail-type": "StartSweep", "source": "retrain",
        "account": "123456789012", "time": "2026-11-25T12:00:00Z", "region": "us-east-1", "resources": [],
        "detail": {"pipeline": "fraud-efs"}
    });
    // Two deliveries of the same event reach two invocations with two Lambda request ids.
    for request_id in ["lambda-request-1", "lambda-request-2"] {
        retrain_aws::handlers::start_sweep::handle(&world.deps, &event, request_id)
            .await
            .expect("handled");
    }
    assert_eq!(world.published("SweepStarted").len(), 1, "keyed on the event's id");
    assert_eq!(world.emulator.jobs()["jobs"].as_array().map(Vec::len), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_under_steady_uploads_trains_once_it_has_waited_max_pending_seconds() {
    let mut world = World::start().await;
    world.upload(&keys(1, 2)).await;
    world.drain(Target::OnUpload).await;
    world.drain(Target::OnImport).await;
    // Uploads keep arriving during every import.
    world.upload(&keys(2, 2)).await;
    world.drain(Target::OnUpload).await;
    let first = tasks(&world)[0]["TaskId"].as_str().unwrap_or_default().to_owned();
    world.emulator.finish_task(&first, "SUCCEEDED");
    world.drain(Target::OnImport).await;
    world.route_bus().await;
    assert!(world.published("SweepStarted").is_empty(), "newer uploads pending: not yet");
    // The pipeline has been waiting since its first unimported upload, now past the bound.
    let key = "imports/waiting/churn.json";
    let mut since: Value = world
        .deps
        .store
        .get("wait", key)
        .await
        .expect("read")
        .expect("the wait is recorded");
    since["since"] = json!(since["since"].as_u64().unwrap_or(0) - 7_200);
    world.deps.store.put(key, &since).await.expect("write");
    world.upload(&keys(3, 2)).await;
    world.drain(Target::OnUpload).await;
    let second = tasks(&world)[1]["TaskId"].as_str().unwrap_or_default().to_owned();
    world.emulator.finish_task(&second, "SUCCEEDED");
    world.drain(Target::OnImport).await;
    world.route_bus().await;
    let completed = world.published("DataImportCompleted");
    assert_eq!(completed.last().map(|c| c["settled"].clone()), Some(json!(["churn"])));
    assert_eq!(world.published("SweepStarted").len(), 1, "it trains on what is imported");
    assert!(
        world.deps.store.get::<Value>("wait", key).await.expect("read").is_none(),
        "the wait is over"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_whose_import_keeps_failing_are_announced_as_stalled() {
    let mut world = World::start().await;
    world.reconfigure(|c| {
        c.pipelines[0].import.max_wait_seconds = 1;
        c.pipelines[0].import.max_attempts = 1;
    });
    world.upload(&keys(1, 2)).await;
    world.drain(Target::OnUpload).await;
    let task = tasks(&world)[0]["TaskId"].as_str().unwrap_or_default().to_owned();
    world.emulator.finish_task(&task, "FAILED");
    world.drain(Target::OnImport).await;
    assert_eq!(world.published("SweepBlocked").len(), 1);
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    reconcile(&mut world).await;
    reconcile(&mut world).await;
    let stalled = world.published("ImportStalled");
    assert_eq!(stalled.len(), 1, "once, however many passes: {stalled:?}");
    assert_eq!(stalled[0]["pending_entries"], 1);
    let record = last_metrics(&world);
    assert_eq!(record["ImportsStalled"], 1);
    assert!(record["OldestPendingUploadAgeSeconds"].as_u64().is_some_and(|a| a >= 1));
    assert_eq!(world.artifact_keys("pending/").await.len(), 1, "nothing lost: still pending");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conditional_write_conflict_is_read_back_and_written_not_taken_as_done() {
    // Before: a 409 counted as "already there", so the manifest was never written and the sweep never ran.
    let mut world = World::start().await;
    world
        .emulator
        .post("s3/conflicts", json!({"count": 2, "key_prefix": "sweeps/fraud-efs/"}));
    world
        .deliver(
            Target::StartSweep,
            json!({"kind": "start-sweep", "pipeline": "fraud-efs", "request_id": "conflict"}),
        )
        .await;
    let started = world.published("SweepStarted");
    assert_eq!(started.len(), 1);
    let sweep_id = started[0]["sweep_id"].as_str().unwrap_or_default();
    let manifest = retrain_core::sweep::manifest_key("fraud-efs", sweep_id);
    assert!(
        world.deps.store.exists(&manifest).await.expect("head"),
        "the manifest was written after the conflicts"
    );
    assert_eq!(
        world.emulator.jobs()["jobs"].as_array().map(Vec::len),
        Some(1),
        "and its lane launched"
    );
    // A conflict on a key that does exist is "already there", after reading it back.
    world.emulator.post("s3/conflicts", json!({"count": 1, "key_prefix": manifest}));
    let again = world.deps.store.put_once(&manifest, &json!({})).await.expect("answer");
    assert_eq!(again, retrain_aws::adapters::store::Created::AlreadyThere);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_events_entry_that_fails_is_published_on_the_retry() {
    let mut world = World::start().await;
    world.tolerate_failures = true;
    world
        .emulator
        .post("events/failures", json!({"count": 1, "code": "ThrottlingException"}));
    world
        .deliver(
            Target::StartSweep,
            json!({"kind": "start-sweep", "pipeline": "fraud-efs", "request_id": "entry"}),
        )
        .await;
    assert_eq!(world.redelivered, 1, "the failed entry failed the invocation, which was retried");
    assert_eq!(world.published("SweepStarted").len(), 1, "published once the entry went through");
    assert_eq!(world.published("TrainingJobLaunched").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicated_watch_timer_does_not_double_the_watch_chain() {
    let mut world = World::start().await;
    world.upload(&keys(1, 2)).await;
    world.drain(Target::OnUpload).await;
    // The SendMessage reply was lost and the SDK sent the timer twice.
    world.emulator.post("sqs/release-delayed", json!({}));
    let url = world.watch_queue.url.clone();
    let body = world
        .clients
        .sqs
        .receive_message()
        .queue_url(&url)
        .send()
        .await
        .expect("receive")
        .messages()[0]
        .body()
        .unwrap_or_default()
        .to_owned();
    world
        .clients
        .sqs
        .send_message()
        .queue_url(&url)
        .message_body(&body)
        .send()
        .await
        .expect("send");
    world
        .clients
        .sqs
        .send_message()
        .queue_url(&url)
        .message_body(&body)
        .send()
        .await
        .expect("send");
    world.drain(Target::OnImport).await;
    let queues = world.emulator.get("sqs/queues");
    let watch = queues["queues"]
        .as_array()
        .and_then(|q| q.iter().find(|q| q["name"] == "retrain-watch").cloned())
        .unwrap_or_default();
    assert_eq!(watch["delayed"], 1, "one next poll for the two copies: {queues}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_with_no_progress_past_its_bound_is_announced_as_stalled_once() {
    let mut world = World::start().await;
    // Below the validated minimum on purpose: the test has no five minutes to wait.
    world.reconfigure(|c| c.pipelines[1].sweep.stall_after_seconds = Some(1));
    world
        .deliver(
            Target::StartSweep,
            json!({"kind": "start-sweep", "pipeline": "fraud-efs", "request_id": "stall"}),
        )
        .await;
    let job = running_jobs(&world);
    assert_eq!(job.len(), 1);
    reconcile(&mut world).await;
    assert!(world.published("SweepStalled").is_empty(), "progress just now");
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    reconcile(&mut world).await;
    reconcile(&mut world).await;
    let stalled = world.published("SweepStalled");
    assert_eq!(stalled.len(), 1, "once: {stalled:?}");
    assert_eq!(stalled[0]["waiting_for"], json!(job), "names the job it waits for");
    assert_eq!(last_metrics(&world)["SweepsStalled"], 1);
    // The job ends: the sweep moves on and is no longer counted as stalled.
    let event = world.emulator.complete_job(&job[0], json!({"validation:logloss": 0.4}));
    world.deliver(Target::OnTraining, event).await;
    reconcile(&mut world).await;
    assert_eq!(last_metrics(&world)["SweepsStalled"], 0);
}
