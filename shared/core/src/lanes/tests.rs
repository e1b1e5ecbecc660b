use super::*;
use crate::config::parse;
use crate::sweep::{SweepManifest, SweepTrigger};
use proptest::prelude::*;

const EXAMPLE: &str = include_str!("../../../../examples/pipelines.yaml");

/// The example's churn pipeline: a 3 × 2 grid, max_parallel 2, one retry.
fn manifest() -> SweepManifest {
    let config = parse(EXAMPLE).expect("valid example");
    let trigger = SweepTrigger {
        kind: "request".into(),
        id: "r1".into(),
        reason: None,
    };
    SweepManifest::new(&config.pipelines[0], trigger, None, None).expect("manifest")
}

fn job(m: &SweepManifest, position: usize, attempt: u32, status: JobStatus) -> JobObservation {
    JobObservation {
        variant_id: m.variants[position].id.clone(),
        attempt,
        training_job_name: m.job_name(position, attempt),
        status,
        secondary_status: None,
        failure_reason: None,
        metrics: Vec::new(),
        timing: None,
        failure_class: None,
        instance_type: None,
        capacity_failures: 0,
    }
}

fn failed(m: &SweepManifest, position: usize, attempt: u32, reason: &str) -> JobObservation {
    JobObservation {
        failure_reason: Some(reason.into()),
        ..job(m, position, attempt, JobStatus::Failed)
    }
}

fn completed(m: &SweepManifest, position: usize, auc: f64) -> JobObservation {
    JobObservation {
        metrics: vec![("validation:auc".into(), auc)],
        ..job(m, position, 1, JobStatus::Completed)
    }
}

const CAPACITY: &str = "CapacityError: Unable to provision requested ML compute capacity. Please retry using a different ML instance type.";

#[test]
fn a_new_sweep_launches_one_variant_per_lane() {
    let m = manifest();
    assert_eq!(m.variants.len(), 6);
    let d = decide(&m, &[]);
    let firsts: Vec<(usize, usize, u32)> = d.launches.iter().map(|l| (l.position, l.lane, l.attempt)).collect();
    assert_eq!(firsts, vec![(0, 0, 1), (1, 1, 1)]);
    assert!(d.completed.is_none());
}

#[test]
fn a_finished_job_hands_its_lane_to_the_next_variant() {
    let m = manifest();
    let d = decide(&m, &[completed(&m, 0, 0.8), job(&m, 1, 1, JobStatus::InProgress)]);
    assert_eq!(d.launches.len(), 1);
    assert_eq!((d.launches[0].position, d.launches[0].lane), (2, 0));
    assert_eq!(d.running, 1);
}

#[test]
fn a_capacity_failure_is_retried_with_the_next_attempt() {
    let m = manifest();
    let d = decide(&m, &[failed(&m, 0, 1, CAPACITY), job(&m, 1, 1, JobStatus::InProgress)]);
    assert_eq!(d.launches.len(), 1);
    let l = &d.launches[0];
    assert_eq!((l.position, l.attempt), (0, 2));
    let retry = l.retry_of.as_ref().expect("a retry");
    assert_eq!(retry.training_job_name, m.job_name(0, 1));
    assert!(retry.failure_reason.starts_with("CapacityError"));
    assert_ne!(m.job_name(0, 2), m.job_name(0, 1));
}

#[test]
fn retries_stop_after_max_retries() {
    let m = manifest();
    let d = decide(
        &m,
        &[
            failed(&m, 0, 1, CAPACITY),
            failed(&m, 0, 2, CAPACITY),
            job(&m, 1, 1, JobStatus::InProgress),
        ],
    );
    assert_eq!(d.launches.len(), 1);
    assert_eq!((d.launches[0].position, d.launches[0].attempt), (2, 1), "lane 0 moves on");
}

#[test]
fn an_algorithm_error_is_not_retried() {
    let m = manifest();
    let d = decide(
        &m,
        &[
            failed(&m, 0, 1, "AlgorithmError: ExecuteUserScriptError"),
            job(&m, 1, 1, JobStatus::InProgress),
        ],
    );
    assert_eq!(d.launches.len(), 1);
    assert_eq!((d.launches[0].position, d.launches[0].attempt), (2, 1));
    assert!(d.launches[0].retry_of.is_none());
}

#[test]
fn the_last_terminal_job_completes_the_sweep_with_a_ranking() {
    let m = manifest();
    let jobs = vec![
        completed(&m, 0, 0.81),
        completed(&m, 1, 0.93),
        completed(&m, 2, 0.77),
        failed(&m, 3, 1, "AlgorithmError: boom"),
        completed(&m, 4, 0.88),
        JobObservation {
            metrics: vec![("train:auc".into(), 0.99)],
            ..job(&m, 5, 1, JobStatus::Completed)
        },
    ];
    let d = decide(&m, &jobs);
    assert!(d.launches.is_empty());
    let outcome = d.completed.expect("sweep complete");
    let order: Vec<&str> = outcome.ranked.iter().map(|r| r.variant_id.as_str()).collect();
    assert_eq!(order, vec!["v1", "v4", "v0", "v2"]);
    assert_eq!(outcome.best().map(|b| b.metric), Some(Some(0.93)));
    let unranked: Vec<&str> = outcome.unranked.iter().map(|r| r.variant_id.as_str()).collect();
    assert_eq!(unranked, vec!["v3", "v5"], "failed and metric-less jobs are listed, not ranked");
}

#[test]
fn minimize_ranks_lowest_first() {
    let mut m = manifest();
    m.pipeline.training.objective.direction = Direction::Minimize;
    let results = [completed(&m, 0, 0.3), completed(&m, 1, 0.1)];
    let ranked = rank(&m, results.iter().map(|j| result(&m, 0, j)).collect());
    assert_eq!(ranked.ranked[0].variant_id, "v1");
}

#[test]
fn a_running_job_keeps_the_sweep_open() {
    let m = manifest();
    let mut jobs: Vec<_> = (0..6).map(|p| completed(&m, p, 0.5)).collect();
    jobs[5].status = JobStatus::InProgress;
    assert!(decide(&m, &jobs).completed.is_none());
}

/// Drives a whole sweep through `decide`, ending jobs in arbitrary order and
/// delivering each decision twice, and checks the lane invariants.
fn simulate(outcomes: Vec<u8>, order: Vec<usize>, max_parallel: u32) -> Result<(), TestCaseError> {
    let mut m = manifest();
    m.pipeline.sweep.max_parallel = max_parallel;
    let mut jobs: Vec<JobObservation> = Vec::new();
    let mut created = std::collections::BTreeSet::new();
    let mut pick = order.into_iter().cycle();
    for _ in 0..200 {
        let d = decide(&m, &jobs);
        for l in d.launches.iter().chain(d.launches.iter()) {
            let name = m.job_name(l.position, l.attempt);
            // A duplicate create is ResourceInUse: it changes nothing.
            if created.insert(name.clone()) {
                jobs.push(JobObservation {
                    training_job_name: name,
                    ..job(&m, l.position, l.attempt, JobStatus::InProgress)
                });
            }
        }
        let running: Vec<usize> = (0..jobs.len()).filter(|&i| jobs[i].status == JobStatus::InProgress).collect();
        prop_assert!(
            running.len() <= max_parallel as usize,
            "{} running > {}",
            running.len(),
            max_parallel
        );
        if running.is_empty() {
            prop_assert!(d.completed.is_some() || !d.launches.is_empty());
            if d.completed.is_some() {
                return Ok(());
            }
            continue;
        }
        let i = running[pick.next().unwrap_or(0) % running.len()];
        let outcome = outcomes.get(i).copied().unwrap_or(0) % 3;
        jobs[i].status = match outcome {
            0 => JobStatus::Completed,
            _ => JobStatus::Failed,
        };
        if outcome == 1 {
            jobs[i].failure_reason = Some(CAPACITY.into());
        } else if outcome == 2 {
            jobs[i].failure_reason = Some("AlgorithmError: x".into());
        }
    }
    prop_assert!(false, "sweep did not finish");
    Ok(())
}

proptest! {
    #[test]
    fn lanes_never_exceed_max_parallel_and_every_sweep_finishes(
        outcomes in proptest::collection::vec(any::<u8>(), 30),
        order in proptest::collection::vec(any::<usize>(), 1..10),
        max_parallel in 1u32..5,
    ) {
        simulate(outcomes, order, max_parallel)?;
    }
}

/// Drives a sweep the way state-change events do: each ended job's lane
/// moves by `after` alone. Every step must be the one `decide` takes for
/// that lane from the full record, and the lanes' done markers must cover
/// every lane exactly when `decide` completes the sweep.
fn drive_by_events(outcomes: Vec<u8>, order: Vec<usize>, max_parallel: u32) -> Result<(), TestCaseError> {
    let mut m = manifest();
    m.pipeline.sweep.max_parallel = max_parallel;
    let lanes = m.max_parallel().min(m.variants.len());
    let mut jobs: Vec<JobObservation> = decide(&m, &[])
        .launches
        .iter()
        .map(|l| job(&m, l.position, l.attempt, JobStatus::InProgress))
        .collect();
    let mut done = std::collections::BTreeSet::new();
    let mut pick = order.into_iter().cycle();
    for _ in 0..200 {
        let running: Vec<usize> = (0..jobs.len()).filter(|&i| jobs[i].status == JobStatus::InProgress).collect();
        prop_assert!(!running.is_empty(), "no job runs, yet {} of {lanes} lanes are done", done.len());
        let i = running[pick.next().unwrap_or(0) % running.len()];
        let outcome = outcomes.get(i).copied().unwrap_or(0) % 3;
        jobs[i].status = if outcome == 0 { JobStatus::Completed } else { JobStatus::Failed };
        jobs[i].failure_reason = match outcome {
            1 => Some(CAPACITY.into()),
            2 => Some("AlgorithmError: x".into()),
            _ => None,
        };
        let ended = jobs[i].clone();
        let lane = m.lane_of(m.position_of(&ended.variant_id).expect("a manifest variant"));
        let d = decide(&m, &jobs);
        let lane_launches: Vec<Launch> = d.launches.iter().filter(|l| l.lane == lane).cloned().collect();
        match after(&m, &ended) {
            Some(LaneStep::Launch(l)) => {
                prop_assert_eq!(&lane_launches, &vec![l.clone()]);
                jobs.push(job(&m, l.position, l.attempt, JobStatus::InProgress));
            }
            Some(LaneStep::Done { lane: l }) => {
                prop_assert_eq!(l, lane);
                prop_assert!(lane_launches.is_empty());
                done.insert(l);
            }
            other => prop_assert!(false, "an ended job's lane must move: {other:?}"),
        }
        prop_assert_eq!(done.len() == lanes, d.completed.is_some());
        if d.completed.is_some() {
            return Ok(());
        }
    }
    prop_assert!(false, "sweep did not finish");
    Ok(())
}

proptest! {
    #[test]
    fn a_job_end_moves_its_lane_as_a_full_decision_would(
        outcomes in proptest::collection::vec(any::<u8>(), 30),
        order in proptest::collection::vec(any::<usize>(), 1..10),
        max_parallel in 1u32..8,
    ) {
        drive_by_events(outcomes, order, max_parallel)?;
    }
}

#[test]
fn a_running_job_does_not_move_its_lane() {
    let m = manifest();
    assert_eq!(after(&m, &job(&m, 0, 1, JobStatus::InProgress)), Some(LaneStep::Wait));
    let stranger = JobObservation {
        variant_id: "not-in-the-sweep".into(),
        ..job(&m, 0, 1, JobStatus::Completed)
    };
    assert_eq!(after(&m, &stranger), None);
}

#[test]
fn the_next_variant_names_the_job_before_it_in_the_lane() {
    let m = manifest();
    let Some(LaneStep::Launch(next)) = after(&m, &completed(&m, 0, 0.9)) else {
        panic!("lane 0 goes on");
    };
    assert_eq!((next.position, next.attempt, next.lane), (2, 1, 0));
    assert_eq!(next.after.as_deref(), Some(m.job_name(0, 1).as_str()));
    let Some(LaneStep::Launch(retry)) = after(&m, &failed(&m, 1, 1, CAPACITY)) else {
        panic!("a capacity failure is retried");
    };
    assert_eq!((retry.position, retry.attempt), (1, 2));
    assert_eq!(retry.retry_of.map(|r| r.training_job_name), Some(m.job_name(1, 1)));
    assert_eq!(after(&m, &completed(&m, 5, 0.8)), Some(LaneStep::Done { lane: 1 }));
}

/// The churn pipeline with two fallback types after its ml.m5.xlarge.
fn with_fallbacks() -> SweepManifest {
    let mut m = manifest();
    m.pipeline.training.instance_types = vec![
        crate::config::InstanceChoice {
            instance_type: "ml.m5.2xlarge".into(),
            instance_count: None,
            volume_size_gb: Some(50),
        },
        crate::config::InstanceChoice {
            instance_type: "ml.c5.2xlarge".into(),
            instance_count: Some(2),
            volume_size_gb: None,
        },
    ];
    m.instances = m.pipeline.training.instances();
    m
}

fn on(mut job: JobObservation, instance_type: &str) -> JobObservation {
    job.instance_type = Some(instance_type.into());
    job
}

fn launch_of(step: Option<LaneStep>) -> Launch {
    match step {
        Some(LaneStep::Launch(l)) => l,
        other => panic!("expected a launch, got {other:?}"),
    }
}

#[test]
fn a_capacity_failure_moves_the_retry_to_the_next_type_by_event_and_by_listing() {
    let m = with_fallbacks();
    let first = on(failed(&m, 0, 1, CAPACITY), "ml.m5.xlarge");
    let by_event = launch_of(after(&m, &first));
    let by_listing = decide(&m, std::slice::from_ref(&first))
        .launches
        .into_iter()
        .find(|l| l.lane == 0)
        .expect("retry");
    assert_eq!(by_event, by_listing);
    assert_eq!((by_event.attempt, by_event.choice), (2, 1));
    let retry = by_event.retry_of.expect("a retry");
    assert_eq!(retry.instance_type.as_deref(), Some("ml.m5.xlarge"));
    assert_eq!(retry.next_instance_type.as_deref(), Some("ml.m5.2xlarge"));
    let request = m.training_job(0, 2, by_event.choice).expect("request");
    assert_eq!(request.resource_config.instance_type, "ml.m5.2xlarge");
    assert_eq!(request.resource_config.volume_size_in_gb, 50);
    assert_eq!(request.training_job_name, m.job_name(0, 2), "the name does not depend on the type");
}

#[test]
fn after_the_last_type_a_capacity_failure_starts_over_and_other_failures_keep_the_type() {
    let m = with_fallbacks();
    let last = on(failed(&m, 0, 3, CAPACITY), "ml.c5.2xlarge");
    assert_eq!(launch_of(after(&m, &last)).choice, 0);
    let internal = on(
        failed(&m, 0, 1, "InternalServerError: We encountered an internal error."),
        "ml.m5.2xlarge",
    );
    assert_eq!(launch_of(after(&m, &internal)).choice, 1);
    assert_eq!(m.resource_config(2).instance_count, 2, "a type's own instance_count");
}

#[test]
fn each_fallback_type_adds_one_attempt() {
    let m = with_fallbacks();
    assert_eq!(m.max_attempts(), m.pipeline.sweep.max_retries + 3);
    let exhausted = on(failed(&m, 0, m.max_attempts(), CAPACITY), "ml.m5.xlarge");
    assert!(matches!(after(&m, &exhausted), Some(LaneStep::Launch(l)) if l.position == 2 && l.attempt == 1));
}

#[test]
fn the_lane_keeps_the_type_that_worked() {
    let m = with_fallbacks();
    let worked = on(completed(&m, 0, 0.8), "ml.m5.2xlarge");
    let next = launch_of(after(&m, &worked));
    assert_eq!((next.position, next.choice), (2, 1));
    let listed = decide(&m, &[worked, on(completed(&m, 1, 0.7), "ml.m5.xlarge")]);
    let choices: Vec<(usize, usize)> = listed.launches.iter().map(|l| (l.position, l.choice)).collect();
    assert_eq!(choices, vec![(2, 1), (3, 0)]);
    let ended = listed.completed;
    assert!(ended.is_none());
}

#[test]
fn results_name_the_type() {
    let m = manifest();
    let jobs: Vec<JobObservation> = (0..6)
        .map(|p| on(completed(&m, p, 0.5 + p as f64 / 100.0), "ml.m5.xlarge"))
        .collect();
    let outcome = decide(&m, &jobs).completed.expect("completed");
    assert!(outcome.ranked.iter().all(|r| r.instance_type.as_deref() == Some("ml.m5.xlarge")));
}

/// The churn pipeline on spot (no warm pool), falling back to on-demand after two capacity failures.
fn spot_with_fallback() -> SweepManifest {
    let mut m = with_fallbacks();
    m.pipeline.training.keep_alive_seconds = None;
    m.pipeline.training.spot = Some(crate::config::Spot {
        max_wait_seconds: m.pipeline.training.max_runtime_seconds,
        fallback_to_on_demand_after: Some(2),
    });
    m
}

#[test]
fn spot_falls_back_to_on_demand_after_the_set_number_of_capacity_failures() {
    let m = spot_with_fallback();
    assert_eq!(
        m.max_attempts(),
        m.pipeline.sweep.max_retries + 3 + 2,
        "room for the on-demand attempt"
    );
    let mut first = on(failed(&m, 0, 1, CAPACITY), "ml.m5.xlarge");
    first.capacity_failures = 1;
    let retry = launch_of(after(&m, &first));
    assert!(!retry.on_demand, "one capacity failure: still spot");
    assert!(m.launch_request(&retry).expect("request").enable_managed_spot_training);
    let mut second = on(failed(&m, 0, 2, CAPACITY), "ml.m5.2xlarge");
    second.capacity_failures = 2;
    let by_event = launch_of(after(&m, &second));
    let by_listing = decide(&m, &[first.clone(), second.clone()])
        .launches
        .into_iter()
        .find(|l| l.lane == 0)
        .expect("retry");
    assert_eq!(by_event, by_listing);
    assert!(by_event.on_demand);
    let request = m.launch_request(&by_event).expect("request");
    assert!(!request.enable_managed_spot_training);
    assert_eq!(
        request.stopping_condition.max_wait_time_in_seconds, None,
        "MaxWaitTimeInSeconds is for spot only"
    );
    assert_eq!(
        request.resource_config.instance_type, "ml.c5.2xlarge",
        "and it still moves to the next type"
    );
    // The lane's next variant starts on spot again.
    let mut done = on(completed(&m, 0, 0.8), "ml.c5.2xlarge");
    done.attempt = 3;
    assert!(!launch_of(after(&m, &done)).on_demand);
}

#[test]
fn without_a_fallback_spot_stays_spot() {
    let mut m = spot_with_fallback();
    if let Some(s) = m.pipeline.training.spot.as_mut() {
        s.fallback_to_on_demand_after = None;
    }
    let mut job = on(failed(&m, 0, 1, CAPACITY), "ml.m5.xlarge");
    job.capacity_failures = 9;
    assert!(!launch_of(after(&m, &job)).on_demand);
    assert_eq!(m.max_attempts(), m.pipeline.sweep.max_retries + 3);
}
