//! An adaptive (`tpe`) sweep on the emulator, end to end: each lane's next
//! variant is suggested from the results recorded so far, recorded
//! create-once before its launch, and a capacity failure retries the same
//! point on the same lane.

use retrain_core::config::Scalar;
use retrain_core::search::{Param, Search, Strategy, STARTUP_TRIALS};
use retrain_tests::world::{Target, World, ARTIFACTS_BUCKET};
use serde_json::{json, Value};
use std::collections::BTreeMap;

const CAPACITY: &str = "CapacityError: Unable to provision requested ML compute capacity. Please retry using a different ML instance type.";
const BUDGET: u32 = 14;

fn search() -> Search {
    let mut space = BTreeMap::new();
    space.insert(
        "eta".to_owned(),
        Param::Float {
            low: 0.001,
            high: 1.0,
            log: true,
        },
    );
    space.insert(
        "max_depth".to_owned(),
        Param::Int {
            low: 2,
            high: 12,
            log: false,
        },
    );
    space.insert(
        "booster".to_owned(),
        Param::Categorical {
            choices: vec![Scalar::String("gbtree".into()), Scalar::String("dart".into())],
        },
    );
    Search {
        strategy: Strategy::Tpe,
        space,
        budget: BUDGET,
        seed: 11,
    }
}

/// The EFS pipeline turned into a two-lane tpe search.
fn adaptive_world(world: &mut World) {
    world.reconfigure(|config| {
        let p = config.pipelines.iter_mut().find(|p| p.name == "fraud-efs").expect("fraud-efs");
        p.sweep.variants.clear();
        p.sweep.search = Some(search());
        p.sweep.max_parallel = 2;
        p.sweep.max_retries = 1;
    });
}

/// The training loss of a point: smallest at eta = 0.03, max_depth = 6, dart.
pub fn logloss(hp: &Value) -> f64 {
    let eta: f64 = hp["eta"].as_str().and_then(|s| s.parse().ok()).unwrap_or(1.0);
    let depth: f64 = hp["max_depth"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0.0);
    let booster = if hp["booster"] == "dart" { 0.0 } else { 0.3 };
    0.1 + (eta.log10() + 1.5).powi(2) / 4.0 + ((depth - 6.0) / 6.0).powi(2) + booster
}

fn fraud_jobs(world: &World) -> Vec<Value> {
    world.emulator.jobs()["jobs"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|j| j["tags"]["retrain:pipeline"] == "fraud-efs")
        .collect()
}

/// Ends running jobs one at a time: v1's first attempt fails for capacity, every other completes with its loss.
async fn play(world: &mut World) {
    for _ in 0..(3 * BUDGET) {
        let running: Vec<Value> = fraud_jobs(world).into_iter().filter(|j| j["status"] == "InProgress").collect();
        let Some(job) = running.first() else { break };
        let name = job["name"].as_str().unwrap_or_default().to_owned();
        let first_v1 = job["tags"]["retrain:variant"] == "v1" && job["tags"]["retrain:attempt"] == "1";
        let event = if first_v1 {
            world.emulator.fail_job(&name, CAPACITY)
        } else {
            world
                .emulator
                .complete_job(&name, json!({"validation:logloss": logloss(&job["hyperparameters"])}))
        };
        world.deliver(Target::OnTraining, event.clone()).await;
        // A redelivered state change must launch nothing new.
        world.deliver(Target::OnTraining, event).await;
        while world.drain(Target::OnTraining).await.is_some() {}
    }
}

async fn suggestion(world: &World, sweep: &str, variant: &str) -> Value {
    let key = format!("sweeps/fraud-efs/{sweep}/search/suggested/{variant}.json");
    let body = world
        .clients
        .s3
        .get_object()
        .bucket(ARTIFACTS_BUCKET)
        .key(&key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{key}: {e}"))
        .body
        .collect()
        .await
        .expect("body")
        .into_bytes();
    serde_json::from_slice(&body).expect("suggestion JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tpe_sweep_runs_to_completion_with_a_capacity_retry_on_recorded_suggestions() {
    let mut world = World::start().await;
    adaptive_world(&mut world);
    world
        .deliver(
            Target::StartSweep,
            json!({"kind": "start-sweep", "pipeline": "fraud-efs", "request_id": "search-1"}),
        )
        .await;
    assert_eq!(fraud_jobs(&world).len(), 2, "one job per lane to start");
    play(&mut world).await;

    let jobs = fraud_jobs(&world);
    assert_eq!(jobs.len(), BUDGET as usize + 1, "every variant once, and v1's retry");
    let completed = world.published("SweepCompleted");
    assert_eq!(completed.len(), 1, "{completed:?}");
    assert_eq!(completed[0]["ranked"], BUDGET as u64);
    let sweep = completed[0]["sweep_id"].as_str().expect("sweep id").to_owned();
    let retried = world.published("VariantRetried");
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0]["variant_id"], "v1");

    // Each job ran the point recorded for its variant; the retry the same one, on the same lane.
    for job in &jobs {
        let variant = job["tags"]["retrain:variant"].as_str().expect("variant");
        let recorded = suggestion(&world, &sweep, variant).await;
        let point: BTreeMap<String, Scalar> = serde_json::from_value(recorded["point"].clone()).expect("point");
        assert_eq!(point.len(), 3);
        for (name, value) in &point {
            assert_eq!(job["hyperparameters"][name], value.to_hyperparameter(), "{variant} {name}");
        }
        let position: usize = variant.trim_start_matches('v').parse().expect("position");
        assert_eq!(job["tags"]["retrain:lane"], (position % 2).to_string(), "a variant keeps its lane");
        // Decided from the other trials (a faster lane may be ahead), never from itself.
        let based_on = recorded["based_on"].as_object().expect("based_on");
        assert!(
            !based_on.contains_key(variant) && based_on.len() < BUDGET as usize,
            "{variant}: {based_on:?}"
        );
    }
    // The later variants are modelled on the results, not drawn at random.
    let later = suggestion(&world, &sweep, &format!("v{}", BUDGET - 1)).await;
    let finished = later["based_on"]
        .as_object()
        .expect("based_on")
        .values()
        .filter(|l| !l.is_null())
        .count();
    assert!(finished >= STARTUP_TRIALS, "the last variant is modelled on {finished} results");
}
