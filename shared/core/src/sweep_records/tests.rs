use super::*;
use crate::config::parse;
use crate::lanes::decide;
use crate::sweep::SweepTrigger;

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

fn ended(m: &SweepManifest, position: usize, attempt: u32, status: JobStatus, reason: Option<&str>) -> String {
    let job = JobObservation {
        variant_id: m.variants[position].id.clone(),
        attempt,
        training_job_name: m.job_name(position, attempt),
        status,
        secondary_status: None,
        failure_reason: reason.map(str::to_owned),
        metrics: Vec::new(),
        timing: None,
        failure_class: None,
        instance_type: None,
        capacity_failures: 0,
    };
    ended_key(m, &job)
}

#[test]
fn the_end_key_carries_status_and_retry_class() {
    let m = manifest();
    let capacity = ended(&m, 0, 1, JobStatus::Failed, Some("CapacityError: Unable to provision"));
    assert!(
        capacity.ends_with(&format!("{}/ended-Failed-capacity", m.job_name(0, 1))),
        "{capacity}"
    );
    let algorithm = ended(&m, 0, 1, JobStatus::Failed, Some("AlgorithmError: exit 1"));
    assert!(algorithm.ends_with("/ended-Failed-final"), "{algorithm}");
    assert!(ended(&m, 1, 1, JobStatus::Completed, None).ends_with("/ended-Completed-final"));
}

#[test]
fn a_listing_decides_the_lanes_like_the_jobs_themselves() {
    let m = manifest();
    // Lane 0: v0 failed for capacity (a retry is due); lane 1: v1 completed, v3 launched.
    let keys = vec![
        launched_key(&m, &m.job_name(0, 1)),
        ended(&m, 0, 1, JobStatus::Failed, Some("CapacityError: Unable to provision")),
        launched_key(&m, &m.job_name(1, 1)),
        ended(&m, 1, 1, JobStatus::Completed, None),
        launched_key(&m, &m.job_name(3, 1)),
        // Not a record of this sweep: ignored.
        format!("{}published/SweepStarted", sweep_prefix(&m)),
        format!("{}{}/launched", jobs_prefix(&m), "someone-else-a1"),
    ];
    let jobs = observations(&m, &keys);
    assert_eq!(jobs.len(), 3);
    let running: Vec<&str> = jobs
        .iter()
        .filter(|j| j.status == JobStatus::InProgress)
        .map(|j| j.training_job_name.as_str())
        .collect();
    assert_eq!(running, vec![m.job_name(3, 1).as_str()]);
    let d = decide(&m, &jobs);
    let launches: Vec<(usize, u32)> = d.launches.iter().map(|l| (l.position, l.attempt)).collect();
    assert_eq!(launches, vec![(0, 2)], "the capacity failure is retried; lane 1 waits for v3");
    assert!(d.completed.is_none());
    let launched = launched(&m, &keys);
    assert!(launched.contains(&m.job_name(3, 1)) && launched.contains(&m.job_name(0, 1)));
    assert!(!launched.contains(&m.job_name(5, 1)));
}

#[test]
fn an_end_recorded_without_its_launch_record_still_counts() {
    let m = manifest();
    let keys = vec![ended(&m, 0, 1, JobStatus::Failed, Some("AlgorithmError: exit 1"))];
    let jobs = observations(&m, &keys);
    assert_eq!(jobs[0].status, JobStatus::Failed);
    assert_eq!(jobs[0].failure_class, Some(FailureClass::Permanent));
    let d = decide(&m, &jobs);
    assert_eq!(d.launches.iter().map(|l| l.position).collect::<Vec<_>>(), vec![2, 1]);
}

#[test]
fn every_variant_ended_completes_the_sweep() {
    let m = manifest();
    let keys: Vec<String> = (0..m.variants.len()).map(|p| ended(&m, p, 1, JobStatus::Completed, None)).collect();
    assert!(decide(&m, &observations(&m, &keys)).completed.is_some());
}

#[test]
fn open_sweep_keys_round_trip() {
    let key = open_sweep_key("churn", "5d41402abc");
    assert_eq!(parse_open_sweep_key(&key), Some(("churn".into(), "5d41402abc".into())));
    assert_eq!(parse_open_sweep_key("open/sweeps/churn/"), None);
    assert_eq!(parse_open_sweep_key("open/imports/task-1"), None);
}

#[test]
fn the_launch_marker_is_the_announcement_s_once_marker_among_the_job_records() {
    let m = manifest();
    let name = m.job_name(2, 1);
    assert_eq!(
        launched_key(&m, &name),
        crate::events::once_marker_key(&job_event_scope(&m, &name), "TrainingJobLaunched")
    );
    assert!(launched_key(&m, &name).starts_with(&jobs_prefix(&m)));
    let retried = crate::events::once_marker_key(&job_event_scope(&m, &name), "VariantRetried");
    assert!(
        launched(&m, std::slice::from_ref(&retried)).is_empty(),
        "VariantRetried alone is no launch"
    );
    assert!(observations(&m, &[retried]).is_empty());
}

#[test]
fn every_lane_done_needs_each_lane_of_the_sweep_once() {
    let m = manifest();
    assert_eq!((m.variants.len(), m.max_parallel()), (6, 2));
    let lane = |l: usize| lane_done_key(&m, l);
    assert!(!every_lane_done(&m, &[]));
    assert!(!every_lane_done(&m, &[lane(0), lane(0)]), "the same lane twice is one lane");
    assert!(!every_lane_done(&m, &[lane(0), lane(7)]), "a lane the sweep has not is ignored");
    assert!(every_lane_done(&m, &[lane(1), lane(0)]));
    let mut small = m.clone();
    small.variants.truncate(1);
    assert!(every_lane_done(&small, &[lane(0)]), "a sweep with fewer variants than lanes");
}

#[test]
fn a_results_page_never_splits_a_job_s_records() {
    let m = manifest();
    let keys = vec![
        ended(&m, 0, 1, JobStatus::Completed, None),
        launched_key(&m, &m.job_name(0, 1)),
        ended(&m, 1, 1, JobStatus::Completed, None),
        launched_key(&m, &m.job_name(1, 1)),
        ended(&m, 2, 1, JobStatus::Completed, None),
    ];
    let mut sorted = keys.clone();
    sorted.sort();
    let (used, next) = whole_jobs(&m, &sorted, true);
    assert_eq!(used.len(), 4, "the last job's keys wait for the next page");
    assert_eq!(next.as_deref(), used.last().map(String::as_str));
    assert!(used.iter().all(|k| !k.contains(&m.job_name(2, 1))));
    let (all, none) = whole_jobs(&m, &sorted, false);
    assert_eq!((all.len(), none), (5, None), "the last page is used whole");
    let one_job = vec![sorted[0].clone(), sorted[1].clone()];
    let (used, next) = whole_jobs(&m, &one_job, true);
    assert_eq!(used.len(), 2, "a page of one job is used whole");
    assert_eq!(next.as_deref(), Some(one_job[1].as_str()));
}

#[test]
fn the_end_key_carries_the_instance_type_and_reads_back() {
    let mut m = manifest();
    m.pipeline.training.instance_types = vec![crate::config::InstanceChoice {
        instance_type: "ml.g5.2xlarge".into(),
        instance_count: None,
        volume_size_gb: None,
    }];
    m.instances = m.pipeline.training.instances();
    let mut job = JobObservation {
        variant_id: m.variants[0].id.clone(),
        attempt: 1,
        training_job_name: m.job_name(0, 1),
        status: JobStatus::Failed,
        secondary_status: None,
        failure_reason: Some("CapacityError: Unable to provision requested ML compute capacity.".into()),
        metrics: Vec::new(),
        timing: None,
        failure_class: None,
        instance_type: Some("ml.g5.2xlarge".into()),
        capacity_failures: 0,
    };
    let key = ended_key(&m, &job);
    assert!(key.ends_with("/ended-Failed-capacity-t1"), "{key}");
    let jobs = observations(&m, &[key]);
    assert_eq!(jobs[0].instance_type.as_deref(), Some("ml.g5.2xlarge"));
    assert_eq!(jobs[0].failure_class, Some(FailureClass::Capacity));
    // A type the manifest does not list (an event's placeholder) leaves the key as before.
    job.instance_type = Some("InstanceType".into());
    assert!(ended_key(&m, &job).ends_with("/ended-Failed-capacity"));
    // The variant's capacity failures so far, where counted, read back too.
    job.instance_type = Some("ml.g5.2xlarge".into());
    job.capacity_failures = 3;
    let key = ended_key(&m, &job);
    assert!(key.ends_with("/ended-Failed-capacity-t1-c3"), "{key}");
    assert_eq!(observations(&m, &[key])[0].capacity_failures, 3);
    job.instance_type = None;
    let key = ended_key(&m, &job);
    assert!(key.ends_with("/ended-Failed-capacity-c3"), "{key}");
    assert_eq!(observations(&m, &[key])[0].capacity_failures, 3);
    for bad in ["-c0", "-c3-t1", "-c3-c3", "-x1"] {
        let key = format!("{}{}/ended-Failed-capacity{bad}", jobs_prefix(&m), m.job_name(0, 1));
        assert!(observations(&m, &[key]).is_empty(), "{bad}");
    }
}
