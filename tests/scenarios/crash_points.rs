//! The crash-point explorer: the whole loop (a burst of uploads, an import,
//! a follow-up import, a sweep with a capacity retry, a scheduled EFS sweep)
//! with every invocation dying, or losing a reply, at a seeded call. A dead
//! invocation acknowledges nothing: SQS and EventBridge deliver its message
//! again. Every run must end in the fault-free end state.

use retrain_core::config::{Approval, Promotion};
use retrain_tests::crash::Mode;
use retrain_tests::world::{Options, Target, World};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

const CAPACITY: &str = "CapacityError: Unable to provision requested ML compute capacity. Please retry using a different ML instance type.";

fn keys(batch: usize, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("datasets/churn/batch {batch}/part={i:04}.csv")).collect()
}

/// The end state a run is judged by, free of the run's random ids.
#[derive(Debug, Clone, PartialEq, Eq)]
struct EndState {
    /// Per pipeline: (variant, attempt) of every job.
    jobs: BTreeMap<String, BTreeSet<(String, String)>>,
    /// Distinct event ids per detail-type.
    events: BTreeMap<String, usize>,
    /// Sweeps that announced their end, per pipeline.
    completed: BTreeMap<String, usize>,
}

fn end_state(world: &World) -> EndState {
    let mut jobs: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    for j in world.emulator.jobs()["jobs"].as_array().cloned().unwrap_or_default() {
        let tag = |k: &str| j["tags"][k].as_str().unwrap_or_default().to_owned();
        jobs.entry(tag("retrain:pipeline"))
            .or_default()
            .insert((tag("retrain:variant"), tag("retrain:attempt")));
    }
    let types = [
        "DataImportStarted",
        "DataImportCompleted",
        "SweepStarted",
        "TrainingJobLaunched",
        "VariantRetried",
        "SweepCompleted",
        "ModelRegistered",
    ];
    let events = types.iter().map(|t| (t.to_string(), world.published_once(t).len())).collect();
    let mut completed = BTreeMap::new();
    for e in world.published_once("SweepCompleted") {
        *completed.entry(e["pipeline"].as_str().unwrap_or_default().to_owned()).or_default() += 1;
    }
    EndState { jobs, events, completed }
}

/// Ends what runs, the way FSx and SageMaker would: imports succeed, v0's
/// first attempt fails for capacity, v3 fails with an algorithm error, the
/// rest complete. Each job's state change is delivered once (EventBridge
/// retries a failed delivery).
async fn play_services(world: &mut World, capacity_failed: &mut bool) {
    let tasks = world.emulator.tasks()["tasks"].as_array().cloned().unwrap_or_default();
    for t in tasks.iter().filter(|t| t["Lifecycle"] == "EXECUTING") {
        world.emulator.finish_task(t["TaskId"].as_str().unwrap_or_default(), "SUCCEEDED");
    }
    let jobs = world.emulator.jobs()["jobs"].as_array().cloned().unwrap_or_default();
    for job in jobs.iter().filter(|j| j["status"] == "InProgress") {
        let name = job["name"].as_str().unwrap_or_default();
        let variant = job["tags"]["retrain:variant"].as_str().unwrap_or_default();
        let churn = job["tags"]["retrain:pipeline"] == "churn";
        let event = if churn && variant == "v0" && !*capacity_failed {
            *capacity_failed = true;
            world.emulator.fail_job(name, CAPACITY)
        } else if churn && variant == "v3" {
            world.emulator.fail_job(name, "AlgorithmError: exit code 1")
        } else {
            let metric = 0.7 + variant.trim_start_matches('v').parse::<f64>().unwrap_or(0.0) / 100.0;
            world
                .emulator
                .complete_job(name, json!({"validation:auc": metric, "validation:logloss": 1.0 - metric}))
        };
        world.deliver(Target::OnTraining, event).await;
    }
}

/// Delivers each queue and the routed events a few times over (a running
/// import's watch re-arms itself, so its queue is never empty for long),
/// then plays the services.
async fn settle(world: &mut World, capacity_failed: &mut bool) {
    for _ in 0..3 {
        for target in [Target::OnUpload, Target::OnImport, Target::OnTraining] {
            world.drain(target).await;
        }
        world.route_bus().await;
    }
    play_services(world, capacity_failed).await;
}

/// The scenario: burst, import, a batch during the import (follow-up), the
/// sweep with a capacity retry, then a scheduled EFS sweep; the reconciler
/// runs between rounds as the schedule would, and twice at the end.
async fn run(world: &mut World) -> Vec<String> {
    let (b1, b2) = (keys(1, 40), keys(2, 20));
    let mut capacity_failed = false;
    world.upload(&b1).await;
    for _ in 0..3 {
        world.drain(Target::OnUpload).await;
    }
    // The import is seen running; the second batch lands during it.
    world.drain(Target::OnImport).await;
    world.upload(&b2).await;
    for _ in 0..3 {
        world.drain(Target::OnUpload).await;
    }
    let scheduled: Value = serde_json::from_str(include_str!("../../events/scheduled-event.json")).expect("fixture");
    let mut scheduled_sent = false;
    for round in 0..40 {
        settle(world, &mut capacity_failed).await;
        if round % 4 == 3 {
            world
                .deliver(Target::Reconcile, json!({"source": "aws.events", "detail-type": "Scheduled Event"}))
                .await;
        }
        let done = end_state(world).completed;
        if done.contains_key("churn") && !scheduled_sent {
            world.deliver(Target::StartSweep, scheduled.clone()).await;
            scheduled_sent = true;
        }
        if done.len() == 2 {
            break;
        }
    }
    for _ in 0..2 {
        world.reconcile_cleanly().await;
        settle(world, &mut capacity_failed).await;
    }
    b1.into_iter().chain(b2).collect()
}

/// What is still open or pending in the artifacts bucket.
/// Per model package group, the approval status of every package, oldest first.
async fn packages(world: &World) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for group in ["churn", "fraud"] {
        let listed = world
            .clients
            .sagemaker
            .list_model_packages()
            .model_package_group_name(group)
            .sort_by(aws_sdk_sagemaker::types::ModelPackageSortBy::CreationTime)
            .send()
            .await
            .expect("list packages");
        let statuses = listed
            .model_package_summary_list()
            .iter()
            .map(|p| p.model_approval_status().map(|s| s.as_str().to_owned()).unwrap_or_default())
            .collect();
        out.insert(group.to_owned(), statuses);
    }
    out
}

/// Both pipelines register their best model: churn approved by the gate, fraud-efs left for a person.
/// Churn's spend cap leaves room for its two lanes' worst case (2 × 1 h) and
/// the few seconds its finished jobs bill, no more: a launch that took a
/// second ledger slot, or was counted twice, would push a variant out.
fn promote(world: &mut World) {
    world.reconfigure(|config| {
        for p in config.pipelines.iter_mut().filter(|p| p.name == "churn") {
            assert_eq!((p.training.instance_count, p.sweep.max_parallel), (1, 2));
            p.training.max_runtime_seconds = 3600;
            p.sweep.max_instance_hours = Some(2.1);
        }
        for p in &mut config.pipelines {
            let (group, approval) = if p.name == "churn" {
                ("churn", Approval::Auto)
            } else {
                ("fraud", Approval::Manual)
            };
            p.promotion = Some(Promotion {
                model_package_group: group.to_owned(),
                description: None,
                tags: BTreeMap::new(),
                min_improvement: 0.0,
                improvement: Default::default(),
                approval,
            });
        }
    });
}

/// Entries of churn's spend-cap ledger: one per launch decision.
async fn ledger_slots(world: &World) -> usize {
    world
        .artifact_keys("sweeps/churn/")
        .await
        .iter()
        .filter(|k| k.contains("/budget/"))
        .count()
}

async fn left_open(world: &World) -> Vec<String> {
    let mut keys = world.artifact_keys("open/").await;
    keys.extend(world.artifact_keys("pending/").await);
    keys
}

/// Every sweep's end is announced under a single event id.
fn one_id_per_sweep(world: &World) -> bool {
    let mut ids: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for e in world.published("SweepCompleted") {
        ids.entry(e["sweep_id"].as_str().unwrap_or_default().to_owned())
            .or_default()
            .insert(e["event_id"].as_str().unwrap_or_default().to_owned());
    }
    !ids.is_empty() && ids.values().all(|s| s.len() == 1)
}

/// Job-record keys per page of a sweep's end: churn's 7 jobs take 4 pages.
const FINISH_PAGE_KEYS: i32 = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_crash_point_ends_in_the_fault_free_state() {
    // Small pages of job records, so the end of a sweep spans several
    // invocations and the crash points reach every one of them.
    let mut clean = World::start_with(Options {
        finish_page_keys: Some(FINISH_PAGE_KEYS),
        ..Options::default()
    })
    .await;
    promote(&mut clean);
    let uploads = run(&mut clean).await;
    let expected = end_state(&clean);
    let registered = packages(&clean).await;
    assert_eq!(
        registered,
        BTreeMap::from([
            ("churn".to_owned(), vec!["Approved".to_owned()]),
            ("fraud".to_owned(), vec!["PendingManualApproval".to_owned()]),
        ]),
        "one package per sweep, gated"
    );
    assert_eq!(
        expected.completed.len(),
        2,
        "the fault-free run completes both sweeps: {expected:?}"
    );
    assert_eq!(expected.jobs["churn"].len(), 7, "six variants and one retry");
    assert_eq!(ledger_slots(&clean).await, 7, "each attempt admitted once by the spend cap");
    assert!(left_open(&clean).await.is_empty());

    // RETRAIN_CRASH_RUNS explores more; the default keeps CI's time in bounds.
    let runs: u64 = std::env::var("RETRAIN_CRASH_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(16);
    let mut struck: Vec<(Target, u32, Mode, String)> = Vec::new();
    let mut duplicates = 0;
    let mut stalls = 0;
    let first: u64 = std::env::var("RETRAIN_CRASH_FIRST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    for seed in first..first + runs {
        let mut world = World::start_with(Options {
            crashes: Some((0xC0FFEE + seed, 5)),
            finish_page_keys: Some(FINISH_PAGE_KEYS),
            ..Options::default()
        })
        .await;
        promote(&mut world);
        run(&mut world).await;
        let crashes = world.crashes.as_ref().map(|c| c.struck.clone()).unwrap_or_default();
        let got = end_state(&world);
        let open = left_open(&world).await;
        let context = format!(
            "seed {seed}, crashes {:?}",
            crashes.iter().map(|(t, s)| (t, s.call, s.mode, &s.operation)).collect::<Vec<_>>()
        );
        assert!(
            world.every_key_imported(&uploads),
            "every upload covered by a succeeded import ({context})"
        );
        assert_eq!(got.jobs, expected.jobs, "each variant attempt created once ({context})");
        assert_eq!(
            got.events, expected.events,
            "no domain event lost, none under a second id ({context})"
        );
        assert_eq!(got.completed, expected.completed, "every sweep announced its end ({context})");
        assert!(one_id_per_sweep(&world), "one event id per sweep's SweepCompleted ({context})");
        assert_eq!(packages(&world).await, registered, "exactly one package per sweep ({context})");
        assert_eq!(ledger_slots(&world).await, 7, "one ledger slot per attempt ({context})");
        assert!(open.is_empty(), "nothing left open after the reconciler: {open:?} ({context})");
        let most = world.deliveries.values().max_by_key(|(n, _)| *n).cloned().unwrap_or_default();
        assert!(
            most.0 < 5,
            "no message reached maxReceiveCount (5), the DLQ's threshold: {most:?} ({context})"
        );
        let all = world.emulator.events(retrain_tests::world::BUS);
        let ids: BTreeSet<String> = all
            .iter()
            .filter_map(|e| {
                serde_json::from_str::<Value>(e["Detail"].as_str()?).ok()?["event_id"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect();
        duplicates += all.len() - ids.len();
        stalls += ["ImportStalled", "SweepStalled"]
            .iter()
            .map(|t| world.published(t).len())
            .sum::<usize>();
        struck.extend(crashes.into_iter().map(|(t, s)| (t, s.call, s.mode, s.operation)));
    }
    let distinct: BTreeSet<(String, u32, Mode)> = struck.iter().map(|(t, c, m, _)| (format!("{t:?}"), *c, *m)).collect();
    let operations: BTreeSet<&str> = struck.iter().map(|(_, _, _, o)| o.as_str()).collect();
    eprintln!(
        "crash points tried: {} ({} distinct handler/call/mode, {} died, {} lost replies) over {runs} runs; operations struck: {}; duplicate publications seen (same event_id): {duplicates}; stalls: {stalls}",
        struck.len(),
        distinct.len(),
        struck.iter().filter(|s| s.2 == Mode::Die).count(),
        struck.iter().filter(|s| s.2 == Mode::LostReply).count(),
        operations.len(),
    );
    assert!(struck.len() >= 500, "at least 500 crash points: {}", struck.len());
    assert_eq!(stalls, 0, "no run stalled");
}

/// The EFS pipeline as a two-lane tpe search of 12 variants: the last two are modelled on ten results.
fn adaptive(world: &mut World) -> retrain_core::search::Search {
    use retrain_core::config::Scalar;
    use retrain_core::search::{Param, Search, Strategy};
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
    let search = Search {
        strategy: Strategy::Tpe,
        space,
        budget: 12,
        seed: 5,
    };
    let s = search.clone();
    world.reconfigure(move |config| {
        let p = config.pipelines.iter_mut().find(|p| p.name == "fraud-efs").expect("fraud-efs");
        p.sweep.variants.clear();
        p.sweep.search = Some(s);
        p.sweep.max_parallel = 2;
        p.sweep.max_retries = 1;
    });
    search
}

fn logloss(hp: &Value) -> f64 {
    let eta: f64 = hp["eta"].as_str().and_then(|s| s.parse().ok()).unwrap_or(1.0);
    let depth: f64 = hp["max_depth"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0.0);
    0.1 + (eta.log10() + 1.5).powi(2) / 4.0 + ((depth - 6.0) / 6.0).powi(2) + if hp["booster"] == "dart" { 0.0 } else { 0.3 }
}

/// Ends what runs: v1's first attempt fails for capacity, the rest complete with their loss.
async fn play_search(world: &mut World) {
    let jobs = world.emulator.jobs()["jobs"].as_array().cloned().unwrap_or_default();
    for job in jobs.iter().filter(|j| j["status"] == "InProgress") {
        let name = job["name"].as_str().unwrap_or_default();
        let event = if job["tags"]["retrain:variant"] == "v1" && job["tags"]["retrain:attempt"] == "1" {
            world.emulator.fail_job(name, CAPACITY)
        } else {
            world
                .emulator
                .complete_job(name, json!({"validation:logloss": logloss(&job["hyperparameters"])}))
        };
        world.deliver(Target::OnTraining, event).await;
    }
}

async fn run_search(world: &mut World) {
    world
        .deliver(
            Target::StartSweep,
            json!({"kind": "start-sweep", "pipeline": "fraud-efs", "request_id": "search-1"}),
        )
        .await;
    for round in 0..60 {
        world.drain(Target::OnTraining).await;
        world.route_bus().await;
        play_search(world).await;
        if round % 4 == 3 {
            world
                .deliver(Target::Reconcile, json!({"source": "aws.events", "detail-type": "Scheduled Event"}))
                .await;
        }
        if !end_state(world).completed.is_empty() {
            break;
        }
    }
    for _ in 0..2 {
        world.reconcile_cleanly().await;
        world.drain(Target::OnTraining).await;
        play_search(world).await;
    }
}

/// Every recorded suggestion, by variant.
async fn suggestions(world: &World) -> BTreeMap<String, retrain_core::search_records::Suggestion> {
    let mut out = BTreeMap::new();
    for key in world
        .artifact_keys("sweeps/fraud-efs/")
        .await
        .into_iter()
        .filter(|k| k.contains("/search/suggested/"))
    {
        let body = world
            .clients
            .s3
            .get_object()
            .bucket(retrain_tests::world::ARTIFACTS_BUCKET)
            .key(&key)
            .send()
            .await
            .expect("get suggestion")
            .body
            .collect()
            .await
            .expect("body")
            .into_bytes();
        let s: retrain_core::search_records::Suggestion = serde_json::from_slice(&body).expect("suggestion JSON");
        out.insert(s.variant_id.clone(), s);
    }
    out
}

/// Each job ran its variant's recorded point, and each point replays from the seed and the results it records.
async fn check_replay(world: &World, search: &retrain_core::search::Search, context: &str) {
    let recorded = suggestions(world).await;
    assert_eq!(recorded.len(), search.budget as usize, "one suggestion per variant ({context})");
    for j in world.emulator.jobs()["jobs"].as_array().cloned().unwrap_or_default() {
        let variant = j["tags"]["retrain:variant"].as_str().unwrap_or_default();
        let s = &recorded[variant];
        for (name, value) in &s.point {
            assert_eq!(
                j["hyperparameters"][name],
                value.to_hyperparameter(),
                "{variant} ran its recorded point ({context})"
            );
        }
    }
    for (variant, s) in &recorded {
        let trials: Vec<retrain_core::search::Trial> = s
            .based_on
            .iter()
            .map(|(v, loss)| retrain_core::search::Trial {
                point: recorded[v].point.clone(),
                loss: *loss,
            })
            .collect();
        let position: usize = variant.trim_start_matches('v').parse().expect("position");
        assert_eq!(
            retrain_core::search::suggest(search, position, &trials),
            s.point,
            "{variant} replays from what it recorded ({context})"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_crash_point_of_a_tpe_sweep_launches_the_recorded_suggestions() {
    let mut clean = World::start().await;
    let search = adaptive(&mut clean);
    run_search(&mut clean).await;
    let expected = end_state(&clean);
    assert_eq!(expected.completed.get("fraud-efs"), Some(&1), "{expected:?}");
    assert_eq!(expected.jobs["fraud-efs"].len(), 13, "twelve variants and one retry");
    check_replay(&clean, &search, "fault-free").await;
    let modelled = suggestions(&clean).await["v11"].based_on.values().filter(|l| l.is_some()).count();
    assert!(
        modelled >= retrain_core::search::STARTUP_TRIALS,
        "the last variant is modelled: {modelled} results"
    );

    let runs: u64 = std::env::var("RETRAIN_CRASH_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(8);
    let mut struck = 0;
    for seed in 0..runs {
        let mut world = World::start_with(Options {
            crashes: Some((0x5EA2C4 + seed, 5)),
            ..Options::default()
        })
        .await;
        adaptive(&mut world);
        run_search(&mut world).await;
        let crashes = world.crashes.as_ref().map(|c| c.struck.clone()).unwrap_or_default();
        let context = format!(
            "seed {seed}, crashes {:?}",
            crashes.iter().map(|(t, s)| (t, s.call, s.mode, &s.operation)).collect::<Vec<_>>()
        );
        let got = end_state(&world);
        assert_eq!(got.jobs, expected.jobs, "each variant attempt created once ({context})");
        assert_eq!(got.events, expected.events, "no domain event lost or doubled ({context})");
        assert_eq!(got.completed, expected.completed, "the sweep announced its end ({context})");
        assert!(left_open(&world).await.is_empty(), "nothing left open ({context})");
        check_replay(&world, &search, &context).await;
        struck += crashes.len();
    }
    eprintln!("tpe sweep: {struck} crash points over {runs} runs");
    assert!(struck as u64 >= 20 * runs, "crash points were struck: {struck}");
}
