//! Going where the capacity is: a sweep whose preferred instance type has no
//! capacity or no quota runs on its fallback types, on the emulator's
//! capacity rules and quotas, and waits (then blocks) only when every type
//! is refused.

use retrain_core::config::InstanceChoice;
use retrain_tests::world::{Target, World};
use serde_json::{json, Value};
use std::collections::BTreeSet;

const PREFERRED: &str = "ml.g5.2xlarge";
const FALLBACK: &str = "ml.g5.4xlarge";

/// The churn pipeline (six variants in two lanes) on a GPU type with one fallback.
async fn gpu_world() -> World {
    let mut world = World::start().await;
    world.reconfigure(|c| {
        let t = &mut c.pipelines[0].training;
        t.instance_type = Some(PREFERRED.to_owned());
        t.instance_types = vec![InstanceChoice {
            instance_type: FALLBACK.to_owned(),
            instance_count: None,
            volume_size_gb: Some(100),
        }];
    });
    world
}

fn jobs(world: &World) -> Vec<Value> {
    world.emulator.jobs()["jobs"].as_array().cloned().unwrap_or_default()
}

/// Jobs of retrain's sweeps, not another team's.
fn retrain_jobs(world: &World) -> usize {
    jobs(world).iter().filter(|j| j["tags"]["retrain:sweep"].is_string()).count()
}

fn start(request_id: &str) -> Value {
    json!({"kind": "start-sweep", "pipeline": "churn", "request_id": request_id})
}

/// Hands every ended job's state change to on-training once and completes
/// every running one, until the sweep completes.
async fn run_sweep(world: &mut World) {
    let mut delivered = BTreeSet::new();
    for _ in 0..60 {
        if !world.published_once("SweepCompleted").is_empty() {
            return;
        }
        let Some(job) = jobs(world)
            .into_iter()
            .find(|j| !delivered.contains(j["name"].as_str().unwrap_or_default()))
        else {
            panic!("the sweep is not complete and no job is left to end: {:?}", jobs(world));
        };
        let name = job["name"].as_str().unwrap_or_default().to_owned();
        let event = match job["status"].as_str() {
            Some("InProgress") => world.emulator.complete_job(&name, json!({"validation:auc": 0.8})),
            _ => world.emulator.get(&format!("sagemaker/jobs/{name}/event")),
        };
        delivered.insert(name);
        world.deliver(Target::OnTraining, event).await;
    }
    panic!("the sweep did not complete");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capacity_error_on_the_first_type_retries_on_the_second_and_the_lane_keeps_it() {
    let mut world = gpu_world().await;
    world.emulator.post("sagemaker/capacity", json!({PREFERRED: "on_demand"}));
    world.deliver(Target::StartSweep, start("gpu")).await;
    let started = &world.published_once("SweepStarted")[0];
    assert_eq!(started["instance_types"], json!([PREFERRED, FALLBACK]), "the order is announced");
    run_sweep(&mut world).await;

    let all = jobs(&world);
    let on = |t: &str| all.iter().filter(|j| j["instance_type"] == t).collect::<Vec<_>>();
    // Each lane's first variant failed once on the preferred type; everything after ran on the fallback.
    let failed: Vec<&Value> = on(PREFERRED);
    assert_eq!(failed.len(), 2, "{all:?}");
    assert!(failed
        .iter()
        .all(|j| j["status"] == "Failed" && j["failure_reason"].as_str().is_some_and(|r| r.starts_with("CapacityError"))));
    let fallback = on(FALLBACK);
    assert_eq!(fallback.len(), 6, "each variant once on the fallback");
    assert!(fallback.iter().all(|j| j["status"] == "Completed"));
    let first_attempts = fallback.iter().filter(|j| j["tags"]["retrain:attempt"] == "1").count();
    assert_eq!(first_attempts, 4, "v2-v5 start on the type their lane found working");

    let retried = world.published_once("VariantRetried");
    assert_eq!(retried.len(), 2);
    for r in &retried {
        assert_eq!(
            (r["previous_instance_type"].as_str(), r["instance_type"].as_str()),
            (Some(PREFERRED), Some(FALLBACK))
        );
    }
    let launched = world.published_once("TrainingJobLaunched");
    assert_eq!(launched.len(), 8, "one announcement per job");
    let completed = &world.published_once("SweepCompleted")[0];
    assert_eq!(completed["best"]["instance_type"], FALLBACK);

    // The level-triggered pass decides from the records alone and agrees: nothing more to launch.
    world
        .deliver(Target::Reconcile, json!({"source": "aws.events", "detail-type": "Scheduled Event"}))
        .await;
    assert_eq!(jobs(&world).len(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quota_of_zero_on_the_first_type_skips_it_at_preflight() {
    let mut world = gpu_world().await;
    world.emulator.post("sagemaker/quotas", json!({PREFERRED: 0}));
    let request = start("quota");
    world.deliver(Target::StartSweep, request.clone()).await;
    world.deliver(Target::StartSweep, request).await; // a duplicate creates nothing more
    let started = &world.published_once("SweepStarted")[0];
    assert_eq!(started["instance_types"], json!([FALLBACK]), "the type without quota is not tried");
    let warning = started["warnings"][0].as_str().unwrap_or_default();
    assert!(
        warning.contains(&format!("'{PREFERRED} for training job usage' is 0 instances")) && warning.contains("--quota-code L-"),
        "{warning}"
    );
    let all = jobs(&world);
    assert_eq!(all.len(), 2, "one job per lane: {all:?}");
    assert!(all
        .iter()
        .all(|j| j["instance_type"] == FALLBACK && j["tags"]["retrain:attempt"] == "1"));
    assert!(world.published("LaunchDeferred").is_empty(), "no wait while a type has room");
    let launched = world.published_once("TrainingJobLaunched");
    assert!(launched.iter().all(|l| l["instance_type"] == FALLBACK), "{launched:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quota_read_that_is_denied_warns_and_the_launch_moves_on_at_once() {
    let mut world = gpu_world().await;
    world.emulator.post("sagemaker/quotas", json!({PREFERRED: 0}));
    world
        .emulator
        .post("servicequotas/errors", json!({"error": "AccessDeniedException"}));
    world.deliver(Target::StartSweep, start("denied")).await;
    let started = &world.published_once("SweepStarted")[0];
    assert_eq!(started["instance_types"], json!([PREFERRED, FALLBACK]), "nothing skipped unread");
    assert!(started["warnings"][0]
        .as_str()
        .is_some_and(|w| w.contains("AccessDeniedException") && w.contains("servicequotas:ListServiceQuotas")));
    // The create is refused on the preferred type and lands on the next one in the same pass.
    let all = jobs(&world);
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(all.iter().all(|j| j["instance_type"] == FALLBACK));
    assert!(world.published("SweepBlocked").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_refused_waits_boundedly_then_blocks_the_sweep() {
    let mut world = gpu_world().await;
    // Each type's quota admits one job, and another team's job holds it: preflight passes, every create is refused.
    world.emulator.post("sagemaker/quotas", json!({PREFERRED: 1, FALLBACK: 1}));
    world.occupy("other-team-g5-2x", PREFERRED, 1);
    world.occupy("other-team-g5-4x", FALLBACK, 1);
    world.deliver(Target::StartSweep, start("exhausted")).await;
    assert_eq!(retrain_jobs(&world), 0);
    let deferred = world.published("LaunchDeferred");
    assert_eq!(deferred.len(), 1, "one wait, announced once");
    let message = deferred[0]["message"].as_str().unwrap_or_default();
    assert!(message.contains(PREFERRED) && message.contains(FALLBACK), "{message}");
    let fix = deferred[0]["fix"].as_str().unwrap_or_default();
    assert!(
        fix.contains(&format!("{PREFERRED} for training job usage")) && fix.contains(&format!("{FALLBACK} for training job usage")),
        "{fix}"
    );
    // A tick inside sweep.max_queue_seconds tries again and keeps waiting.
    world.drain(Target::OnTraining).await;
    assert!(world.published("SweepBlocked").is_empty());
    // Past max_queue_seconds (the recorded wait began two days ago) the sweep is blocked.
    let sweep_id = world.published("SweepStarted")[0]["sweep_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let key = format!("sweeps/churn/{sweep_id}/jobs/deferred.json");
    let mut record: Value = world.deps.store.get("deferral", &key).await.expect("read").expect("deferred");
    record["since"] = json!(record["since"].as_u64().unwrap_or(0) - 2 * 86_400);
    world.deps.store.put(&key, &record).await.expect("write");
    world.drain(Target::OnTraining).await;
    let blocked = world.published("SweepBlocked");
    assert_eq!(blocked.len(), 1, "{blocked:?}");
    assert!(blocked[0]["problems"][0]
        .as_str()
        .is_some_and(|p| p.contains(FALLBACK) && p.contains("max_queue_seconds")));
    assert_eq!(retrain_jobs(&world), 0, "nothing was launched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_falls_back_to_on_demand_after_a_capacity_failure_and_reports_its_savings() {
    let mut world = gpu_world().await;
    world.reconfigure(|c| {
        let t = &mut c.pipelines[0].training;
        t.keep_alive_seconds = None;
        t.spot = Some(retrain_core::config::Spot {
            max_wait_seconds: t.max_runtime_seconds,
            fallback_to_on_demand_after: Some(1),
        });
    });
    world.emulator.post("sagemaker/capacity", json!({PREFERRED: "spot"}));
    world.deliver(Target::StartSweep, start("spot")).await;
    let mut delivered = BTreeSet::new();
    for _ in 0..60 {
        if !world.published_once("SweepCompleted").is_empty() {
            break;
        }
        let job = jobs(&world)
            .into_iter()
            .find(|j| !delivered.contains(j["name"].as_str().unwrap_or_default()))
            .expect("a job to end");
        let name = job["name"].as_str().unwrap_or_default().to_owned();
        let event = match job["status"].as_str() {
            Some("InProgress") => world.emulator.post(
                &format!("sagemaker/jobs/{name}/complete"),
                json!({"metrics": {"validation:auc": 0.8}, "billable_seconds": 30, "training_seconds": 100}),
            ),
            _ => world.emulator.get(&format!("sagemaker/jobs/{name}/event")),
        };
        delivered.insert(name);
        world.deliver(Target::OnTraining, event).await;
    }
    let all = jobs(&world);
    // Each lane's first variant waited for spot on the preferred type, then ran on-demand on the next one.
    let stopped: Vec<&Value> = all.iter().filter(|j| j["secondary_status"] == "MaxWaitTimeExceeded").collect();
    assert_eq!(stopped.len(), 2, "{all:?}");
    assert!(stopped.iter().all(|j| j["managed_spot"] == true && j["instance_type"] == PREFERRED));
    let retries: Vec<&Value> = all.iter().filter(|j| j["tags"]["retrain:attempt"] == "2").collect();
    assert_eq!(retries.len(), 2);
    assert!(retries
        .iter()
        .all(|j| j["managed_spot"] == false && j["instance_type"] == FALLBACK && j["status"] == "Completed"));
    // The lanes' next variants start on spot again, on the type that worked.
    let later: Vec<&Value> = all
        .iter()
        .filter(|j| j["tags"]["retrain:attempt"] == "1" && j["instance_type"] == FALLBACK)
        .collect();
    assert_eq!(later.len(), 4);
    assert!(later.iter().all(|j| j["managed_spot"] == true));
    let completed = &world.published_once("SweepCompleted")[0];
    assert_eq!(
        completed["spot_savings"],
        json!({"jobs": 4, "training_seconds": 400, "billable_seconds": 120, "savings_percent": 70.0}),
        "{completed}"
    );
}

const PLAN_TYPE: &str = "ml.p5.48xlarge";
const PLAN_FALLBACK: &str = "ml.p4d.24xlarge";

/// The churn pipeline on a training plan of `status` that reserves two ml.p5.48xlarge.
async fn plan_world(status: &str) -> (World, String) {
    let mut world = World::start().await;
    let plan = world.emulator.post(
        "sagemaker/training-plans",
        json!({"name": "churn-p5", "status": status, "instance_type": PLAN_TYPE, "instance_count": 2}),
    );
    let arn = plan["TrainingPlanArn"].as_str().expect("plan arn").to_owned();
    let for_config = arn.clone();
    world.reconfigure(move |c| {
        let t = &mut c.pipelines[0].training;
        t.instance_type = Some(PLAN_TYPE.to_owned());
        t.instance_types = vec![InstanceChoice {
            instance_type: PLAN_FALLBACK.to_owned(),
            instance_count: None,
            volume_size_gb: None,
        }];
        t.keep_alive_seconds = None;
        t.training_plan_arn = Some(for_config);
    });
    (world, arn)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_training_plan_is_in_every_request_and_only_its_types_are_used() {
    let (mut world, arn) = plan_world("Active").await;
    world.deliver(Target::StartSweep, start("plan")).await;
    let started = &world.published_once("SweepStarted")[0];
    assert_eq!(started["instance_types"], json!([PLAN_TYPE]));
    assert!(started["warnings"][0]
        .as_str()
        .is_some_and(|w| w.contains(&format!("reserves 0 {PLAN_FALLBACK}"))));
    let all = jobs(&world);
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(all
        .iter()
        .all(|j| j["training_plan_arn"] == arn.as_str() && j["instance_type"] == PLAN_TYPE && j["status"] == "InProgress"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_training_plan_that_cannot_serve_the_jobs_blocks_the_sweep_naming_it_and_its_state() {
    let (mut world, arn) = plan_world("Expired").await;
    world.deliver(Target::StartSweep, start("expired")).await;
    let blocked = world.published("SweepBlocked");
    assert_eq!(blocked.len(), 1, "{blocked:?}");
    let problem = blocked[0]["problems"][0].as_str().unwrap_or_default();
    assert!(
        problem.starts_with(&format!("{arn}: training plan churn-p5 is Expired")) && problem.contains("buy a new plan"),
        "{problem}"
    );
    assert!(jobs(&world).is_empty(), "nothing launched");
    assert!(world.published("SweepStarted").is_empty());
}
