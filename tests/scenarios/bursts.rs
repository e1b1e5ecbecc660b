//! Bursts: many upload batches land while an import runs. Each batch costs
//! a bounded number of calls, and the import's end makes one follow-up that
//! covers all of them in a bounded number of calls too: the pending set is
//! read from its listing (1,000 entries a page) and retired with
//! `DeleteObjects` (1,000 keys a call), whatever the number of batches.

use retrain_tests::world::{Options, Target, World, DATA_BUCKET, REGION};
use serde_json::{json, Value};

/// More batches than one listing page or one `DeleteObjects` call takes.
const BATCHES: usize = 1_050;
/// What an upload costs while an import is open: its pending entry and one look at the open imports.
const CALLS_PER_BUSY_BATCH: u32 = 2;
/// What ending an import costs, at most, whatever the number of pending batches
/// (two listing pages and two `DeleteObjects` calls of them included).
const CALLS_PER_IMPORT_END: u32 = 30;

fn key(batch: usize, n: usize) -> String {
    format!("datasets/churn/burst/day-{}/part-{batch:05}-{n}.csv", batch / 100)
}

/// An SQS batch of S3 notifications, as the upload queue hands it to Lambda.
fn batch(batch: usize, objects: usize) -> Value {
    let records: Vec<Value> = (0..objects)
        .map(|n| {
            let s3 = json!({"Records": [{
                "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": REGION, "eventTime": "2026-11-25T14:03:26.018Z",
                "eventName": "ObjectCreated:Put",
                "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": DATA_BUCKET, "arn": format!("arn:aws:s3:::{DATA_BUCKET}")},
                       "object": {"key": key(batch, n), "size": 10, "sequencer": format!("0C0F6F405D6E{batch:06X}{n:02X}")}}
            }]});
            json!({
                "messageId": format!("msg-{batch}-{n}"), "receiptHandle": "AQEB", "body": s3.to_string(),
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1795618800000", "SenderId": "AIDAEXAMPLE", "ApproximateFirstReceiveTimestamp": "1795618800001"},
                "messageAttributes": {}, "eventSource": "aws:sqs", "eventSourceARN": format!("arn:aws:sqs:{REGION}:123456789012:retrain-uploads"), "awsRegion": REGION
            })
        })
        .collect();
    json!({ "Records": records })
}

fn tasks(world: &World) -> Vec<Value> {
    world.emulator.tasks()["tasks"].as_array().cloned().unwrap_or_default()
}

fn last_calls(world: &World) -> u32 {
    world.crashes.as_ref().map(|c| c.last_calls).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_batches_during_an_import_make_one_follow_up_in_bounded_calls() {
    // Crash points armed nowhere: they only count each invocation's calls.
    let mut world = World::start_with(Options {
        crashes: Some((1, 0)),
        ..Options::default()
    })
    .await;
    world.deliver(Target::OnUpload, batch(0, 3)).await;
    let first = tasks(&world);
    assert_eq!(first.len(), 1, "the first batch starts the import");
    let first_id = first[0]["TaskId"].as_str().unwrap_or_default().to_owned();

    let mut most = 0;
    for b in 1..=BATCHES {
        world.deliver(Target::OnUpload, batch(b, 2)).await;
        most = most.max(last_calls(&world));
    }
    assert!(most <= CALLS_PER_BUSY_BATCH, "an upload during the import made {most} calls");
    assert_eq!(tasks(&world).len(), 1, "no import started while one runs");
    assert_eq!(
        world.list_all("pending/").await.len(),
        BATCHES + 1,
        "more than a listing page pending"
    );

    world.emulator.finish_task(&first_id, "SUCCEEDED");
    world.drain(Target::OnImport).await;
    let follow_up_calls = last_calls(&world);
    assert!(
        follow_up_calls <= CALLS_PER_IMPORT_END,
        "the end of the import and its follow-up took {follow_up_calls} calls for {BATCHES} batches"
    );
    let after = tasks(&world);
    assert_eq!(after.len(), 2, "exactly one follow-up");
    let follow_up = &after[1];
    assert_eq!(
        follow_up["Paths"].as_array().map(Vec::len),
        Some(11),
        "one path per day folder: {}",
        follow_up["Paths"]
    );
    let pending = world.list_all("pending/").await;
    assert_eq!(
        pending.len(),
        BATCHES,
        "the first batch retired, the burst pending under the follow-up"
    );

    let follow_up_id = follow_up["TaskId"].as_str().unwrap_or_default().to_owned();
    world.emulator.finish_task(&follow_up_id, "SUCCEEDED");
    world.drain(Target::OnImport).await;
    let retire_calls = last_calls(&world);
    assert!(
        retire_calls <= CALLS_PER_IMPORT_END,
        "retiring {BATCHES} entries took {retire_calls} calls"
    );
    assert!(world.list_all("pending/").await.is_empty(), "every entry retired");
    assert_eq!(tasks(&world).len(), 2, "nothing left to import");
    let keys: Vec<String> = (0..=BATCHES).flat_map(|b| (0..2).map(move |n| key(b, n))).collect();
    assert!(world.every_key_imported(&keys), "every upload covered by a succeeded import");
    assert_eq!(world.published_once("DataImportCompleted").len(), 2);
    assert_eq!(world.list_all("imported/").await.len(), 2, "one index key per succeeded import");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_delivered_again_after_its_import_is_not_imported_twice() {
    let mut world = World::start_with(Options {
        crashes: Some((1, 0)),
        ..Options::default()
    })
    .await;
    let payload = batch(7, 3);
    world.deliver(Target::OnUpload, payload.clone()).await;
    let id = tasks(&world)[0]["TaskId"].as_str().unwrap_or_default().to_owned();
    world.emulator.finish_task(&id, "SUCCEEDED");
    world.drain(Target::OnImport).await;
    assert!(world.list_all("pending/").await.is_empty());

    // SQS delivers the batch again (its reply was lost), received a second time just now.
    let mut again = payload;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    for record in again["Records"].as_array_mut().into_iter().flatten() {
        record["attributes"]["ApproximateReceiveCount"] = json!("2");
        record["attributes"]["ApproximateFirstReceiveTimestamp"] = json!((now_ms - 60_000).to_string());
    }
    let out = world.deliver(Target::OnUpload, again.clone()).await;
    assert!(out.to_string().contains("already imported"), "{out}");
    assert!(world.list_all("pending/").await.is_empty(), "not pending again");
    assert_eq!(tasks(&world).len(), 1, "no second import");
    let calls = last_calls(&world);
    assert!(calls <= 2, "one listing of the index, one import record: {calls}");
}
