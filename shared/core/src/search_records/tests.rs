use super::*;
use crate::config::parse;
use crate::search::STARTUP_TRIALS;
use crate::sweep::SweepTrigger;

const EXAMPLE: &str = include_str!("../../../../examples/pipelines.yaml");

/// The example's churn pipeline with its grid replaced by a tpe search (objective: maximize validation:auc).
fn manifest() -> SweepManifest {
    let yaml = EXAMPLE.replacen(
        "    sweep:\n      grid:\n        eta: [0.1, 0.3, 0.5]\n        max_depth: [4, 6]\n",
        "    sweep:\n      search:\n        strategy: tpe\n        budget: 30\n        seed: 3\n        space:\n          eta: { type: float, low: 0.01, high: 0.5, log: true }\n          max_depth: { type: int, low: 3, high: 10 }\n          booster: { type: categorical, choices: [gbtree, dart] }\n",
        1,
    );
    let config = parse(&yaml).expect("valid search config");
    let trigger = SweepTrigger {
        kind: "request".into(),
        id: "r1".into(),
        reason: None,
    };
    SweepManifest::new(&config.pipelines[0], trigger, None, None).expect("manifest")
}

fn job(m: &SweepManifest, position: usize, attempt: u32, status: JobStatus, reason: Option<&str>, auc: Option<f64>) -> JobObservation {
    JobObservation {
        variant_id: m.variants[position].id.clone(),
        attempt,
        training_job_name: m.job_name(position, attempt),
        status,
        secondary_status: None,
        failure_reason: reason.map(str::to_owned),
        metrics: auc.map(|a| vec![("validation:auc".to_owned(), a)]).unwrap_or_default(),
        timing: None,
        failure_class: None,
        instance_type: None,
        capacity_failures: 0,
    }
}

#[test]
fn a_search_sweep_has_budget_slots() {
    let m = manifest();
    assert_eq!(m.variants.len(), 30);
    assert!(m.variants.iter().all(|v| v.hyperparameters.is_empty()));
}

#[test]
fn points_and_results_round_trip_through_the_keys() {
    let m = manifest();
    let search = m.pipeline.sweep.search.clone().expect("search");
    let s = decide(&m, 0, &[]).expect("adaptive");
    let keys = vec![
        point_key(&m, &search, &s),
        result_key(&m, &job(&m, 0, 1, JobStatus::Completed, None, Some(0.8))).expect("final"),
    ];
    let h = history(&m, &search, &keys, "v9");
    assert_eq!(h["v0"].point, s.point);
    // Maximize: the loss is the negated metric.
    assert_eq!(h["v0"].loss, Some(-0.8));
    assert!(keys.iter().all(|k| k.len() < 1024));
}

#[test]
fn only_final_ends_are_results() {
    let m = manifest();
    // A capacity failure with a retry left is not the variant's result.
    assert_eq!(
        result_key(
            &m,
            &job(&m, 1, 1, JobStatus::Failed, Some("CapacityError: Unable to provision"), None)
        ),
        None
    );
    let last = result_key(
        &m,
        &job(&m, 1, 2, JobStatus::Failed, Some("CapacityError: Unable to provision"), None),
    )
    .expect("final");
    assert!(last.ends_with("/v1/r-none"), "{last}");
    // A failed trial drops out of the history instead of counting as running.
    let search = m.pipeline.sweep.search.clone().expect("search");
    let s = decide(&m, 1, &[]).expect("adaptive");
    assert!(history(&m, &search, &[point_key(&m, &search, &s), last], "v0").is_empty());
}

#[test]
fn a_suggestion_replays_from_what_it_records() {
    let m = manifest();
    let search = m.pipeline.sweep.search.clone().expect("search");
    let mut keys: Vec<String> = Vec::new();
    let mut suggestions = Vec::new();
    for position in 0..(STARTUP_TRIALS + 4) {
        let s = decide(&m, position, &keys).expect("adaptive");
        keys.push(point_key(&m, &search, &s));
        if position != STARTUP_TRIALS + 2 {
            // One trial stays running.
            let auc = 0.5 + 0.01 * position as f64;
            keys.push(result_key(&m, &job(&m, position, 1, JobStatus::Completed, None, Some(auc))).expect("final"));
        }
        suggestions.push(s);
    }
    let last = suggestions.last().expect("some");
    assert_eq!(last.based_on.len(), STARTUP_TRIALS + 3);
    assert_eq!(last.based_on["v12"], None);
    // The point is a pure function of the seed and the recorded basis.
    let trials: Vec<Trial> = last
        .based_on
        .iter()
        .map(|(v, loss)| Trial {
            point: suggestions.iter().find(|s| &s.variant_id == v).expect("suggested").point.clone(),
            loss: *loss,
        })
        .collect();
    assert_eq!(suggest(&search, STARTUP_TRIALS + 3, &trials), last.point);
}

#[test]
fn the_first_suggestions_are_one_per_lane() {
    let mut m = manifest();
    m.pipeline.sweep.max_parallel = 4;
    let first = first_suggestions(&m);
    assert_eq!(
        first.iter().map(|s| s.variant_id.as_str()).collect::<Vec<_>>(),
        ["v0", "v1", "v2", "v3"]
    );
    assert_eq!(first[3].based_on.len(), 3);
    assert_ne!(first[0].point, first[1].point);
}

#[test]
fn status_shows_each_variants_suggestion_and_its_basis() {
    let m = manifest();
    let search = m.pipeline.sweep.search.clone().expect("search");
    let first = decide(&m, 0, &[]).expect("adaptive");
    let second = decide(&m, 1, &[point_key(&m, &search, &first)]).expect("adaptive");
    let jobs = [
        job(&m, 0, 1, JobStatus::Completed, None, Some(0.7)),
        job(&m, 1, 1, JobStatus::InProgress, None, None),
    ];
    let mut status = crate::status::sweep_status(&m, &jobs, None);
    annotate(&mut status, &[first.clone(), second]);
    assert_eq!(status.rows[0].suggested, crate::search::hyperparameters(&first.point));
    assert_eq!(status.rows[0].suggested_from, Some((0, 0)));
    assert_eq!(status.rows[1].suggested_from, Some((0, 1)), "v1 was decided with v0 running");
}

#[test]
fn a_recorded_suggestion_reads_back_bit_for_bit() {
    let m = manifest();
    for position in 0..30 {
        let s = decide(&m, position, &[]).expect("adaptive");
        let back: Suggestion = serde_json::from_slice(&serde_json::to_vec_pretty(&s).expect("encode")).expect("decode");
        assert_eq!(back, s, "the launched point is the recorded one");
    }
}
