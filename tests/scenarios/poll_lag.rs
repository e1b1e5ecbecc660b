//! Bounded lag after a long import: the watch's backoff stops at
//! `import.max_poll_lag_seconds`, for the first import and its follow-up, so
//! a sweep starts within one poll of its import's end. Hours pass on the
//! emulator's clock: each watch timer is delivered when its delay is due, and
//! the FSx tasks end on that same clock.

use retrain_tests::world::{Target, World};
use serde_json::{json, Value};

const POLL_INTERVAL: u32 = 30;
const MAX_POLL_LAG: u32 = 60;
const IMPORT_SECONDS: f64 = 1800.0;
/// A poll's own work, and the emulator's answers, in real time on top of the timer's delay.
const SLACK: f64 = 1.0;

fn keys(batch: usize, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("datasets/churn/batch {batch}/part={i:04}.csv")).collect()
}

fn clock(world: &World) -> f64 {
    world.emulator.get("clock")["now"].as_f64().expect("clock")
}

fn tasks(world: &World) -> Vec<Value> {
    world.emulator.tasks()["tasks"].as_array().cloned().unwrap_or_default()
}

fn jobs(world: &World) -> usize {
    world.emulator.jobs()["jobs"].as_array().map_or(0, Vec::len)
}

/// Seconds until the watch queue's next timer is due (0: one is due now), if one is armed.
fn next_timer(world: &World) -> Option<f64> {
    let queues = world.emulator.get("sqs/queues");
    let watch = queues["queues"].as_array()?.iter().find(|q| q["name"] == "retrain-watch")?.clone();
    if watch["visible"].as_u64().unwrap_or(0) > 0 {
        return Some(0.0);
    }
    watch["next_delayed_in"].as_f64()
}

/// Delivers watch timers, each when it is due on the emulator's clock,
/// until `done`; returns the clock's time at each poll.
async fn poll_until(world: &mut World, done: impl Fn(&World) -> bool) -> Vec<f64> {
    let mut polls = Vec::new();
    while !done(world) {
        assert!(polls.len() < 500, "no end after {} polls", polls.len());
        let due = next_timer(world).expect("a watch timer is armed while an import runs");
        world.emulator.post("clock/advance", json!({ "seconds": due }));
        polls.push(clock(world));
        assert!(world.drain(Target::OnImport).await.is_some(), "the due timer was delivered");
        world.route_bus().await;
    }
    polls
}

fn gaps(polls: &[f64]) -> Vec<f64> {
    polls.windows(2).map(|w| w[1] - w[0]).collect()
}

fn ended_at(task: &Value) -> f64 {
    assert_eq!(task["Lifecycle"], "SUCCEEDED", "{task}");
    task["EndTime"].as_f64().expect("EndTime")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_import_and_its_follow_up_are_polled_at_most_max_poll_lag_apart() {
    let mut world = World::start().await;
    world.timers_on_clock = true;
    world.reconfigure(|c| {
        let import = &mut c.pipelines[0].import;
        import.poll_interval_seconds = POLL_INTERVAL;
        import.max_poll_lag_seconds = MAX_POLL_LAG;
        import.max_wait_seconds = 86_400;
    });
    world.emulator.post("fsx/task-duration", json!({ "seconds": IMPORT_SECONDS }));
    world.upload(&keys(1, 3)).await;
    world.drain(Target::OnUpload).await;
    assert_eq!(tasks(&world).len(), 1);

    // Half-way through, more uploads: they wait for the running import.
    let started = tasks(&world)[0]["CreationTime"].as_f64().expect("CreationTime");
    let half_way = poll_until(&mut world, |w| clock(w) >= started + IMPORT_SECONDS / 2.0).await;
    world.upload(&keys(2, 2)).await;
    world.drain(Target::OnUpload).await;
    assert_eq!(tasks(&world).len(), 1, "no second task while the first runs");

    let rest = poll_until(&mut world, |w| tasks(w).len() == 2).await;
    let first: Vec<f64> = [half_way, rest].concat();
    let first_end = ended_at(&tasks(&world)[0]);
    let seen = first.iter().filter(|&&t| t >= first_end).collect::<Vec<_>>();
    assert_eq!(seen.len(), 1, "the first poll after the end saw it");
    assert!(
        seen[0] - first_end <= f64::from(MAX_POLL_LAG) + SLACK,
        "seen {} s after the end",
        seen[0] - first_end
    );
    assert_eq!(jobs(&world), 0, "uploads still pending: no sweep yet");

    // The follow-up's own chain, to the sweep's first training job.
    let follow_up = poll_until(&mut world, |w| jobs(w) > 0).await;
    let second_end = ended_at(&tasks(&world)[1]);
    let seen = follow_up.iter().filter(|&&t| t >= second_end).collect::<Vec<_>>();
    assert_eq!(seen.len(), 1, "the sweep launched from the first poll after the follow-up's end");
    assert!(seen[0] - second_end <= f64::from(MAX_POLL_LAG) + SLACK);

    for (chain, polls) in [("first import", &first), ("follow-up", &follow_up)] {
        let gaps = gaps(polls);
        let longest = gaps.iter().copied().fold(0.0, f64::max);
        assert!(longest <= f64::from(MAX_POLL_LAG) + SLACK, "{chain}: polls {longest} s apart");
        // The backoff reached its cap and stayed there: about one poll a minute.
        assert!(gaps.iter().skip(1).all(|g| *g >= f64::from(MAX_POLL_LAG)), "{chain}: {gaps:?}");
        let expected = IMPORT_SECONDS / f64::from(MAX_POLL_LAG);
        assert!(
            (polls.len() as f64) <= expected + 2.0,
            "{chain}: {} polls for {IMPORT_SECONDS} s",
            polls.len()
        );
    }
    assert!(
        world.published("ImportStalled").is_empty(),
        "nothing stalled: the imports ran their time"
    );
}
