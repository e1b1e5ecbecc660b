//! The spend cap `sweep.max_instance_hours`: finished jobs' billable time ×
//! instance count, plus every admitted job still running at its worst case
//! (`instance_count` × `max_runtime_seconds`), never exceeds the cap.
//!
//! Admissions form a ledger in the artifacts bucket
//! (`sweeps/<pipeline>/<sweep>/budget/<seq>.json`), each entry created once
//! with `If-None-Match`: of two lanes that want the same slot, one writes it
//! and the other decides again with that entry counted, so concurrent
//! launches never both take the last of the budget. An entry is the intent:
//! it is written before `CreateTrainingJob`, and a retry (or a redelivery)
//! of the same job finds it and does what it says, launch or skip. A
//! finished job's billed instance-seconds are in its records
//! (`jobs/<job>/billed-<n>`); until then it counts at its worst case.

use crate::config::{Config, ConfigError, Pipeline};
use crate::lanes::JobObservation;
use crate::sweep::SweepManifest;
use crate::sweep_records::{jobs_prefix, sweep_prefix};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Instance-seconds one attempt can bill at most.
pub fn job_worst_case(pipeline: &Pipeline) -> u64 {
    u64::from(pipeline.training.max_instance_count().max(1)) * pipeline.training.max_runtime_seconds
}

/// Instance-hours a sweep of `variants` can bill at most: every attempt of every variant runs to `max_runtime_seconds`.
pub fn sweep_worst_case_hours(pipeline: &Pipeline, variants: usize) -> f64 {
    // One attempt per instance type, plus the retries (as `SweepManifest::max_attempts`).
    let attempts = u64::from(pipeline.sweep.max_retries) + pipeline.training.instances().len().max(1) as u64;
    hours(variants as u64 * attempts * job_worst_case(pipeline))
}

pub fn hours(instance_seconds: u64) -> f64 {
    // Rounded to the hundredth: events and plans state it, nobody bills on it.
    (instance_seconds as f64 / 36.0).round() / 100.0
}

fn cap_seconds(cap_hours: f64) -> u64 {
    (cap_hours * 3600.0).floor().max(0.0) as u64
}

/// Configurations that are valid but cannot work as meant: a cap below one job's worst case trains nothing.
pub fn warnings(config: &Config) -> Vec<ConfigError> {
    config
        .pipelines
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let cap = p.sweep.max_instance_hours?;
            let one = job_worst_case(p);
            (cap_seconds(cap) < one).then(|| {
                ConfigError::new(
                    &format!("pipelines[{i}].sweep.max_instance_hours"),
                    format!(
                        "the cap of {cap} instance-hours cannot fit even one variant: one job may bill {} instance-hours (the largest training.instance_count {} × training.max_runtime_seconds {}), so every variant would be skipped for budget",
                        hours(one),
                        p.training.max_instance_count(),
                        p.training.max_runtime_seconds
                    ),
                    format!("raise max_instance_hours to at least {}, or lower max_runtime_seconds", hours(one)),
                )
            })
        })
        .collect()
}

/// One admission decision, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetEntry {
    pub seq: u32,
    pub training_job_name: String,
    pub variant_id: String,
    pub attempt: u32,
    pub admitted: bool,
    /// This job's worst case (instance-seconds).
    pub worst_case: u64,
    /// What the sweep had used or reserved when this was decided (instance-seconds).
    pub committed: u64,
    /// The cap (instance-seconds).
    pub cap: u64,
}

impl BudgetEntry {
    /// Why a variant was skipped, in words, naming the field to change.
    pub fn reason(&self) -> String {
        format!(
            "SkippedForBudget: launching {} could bill {} more instance-hours on top of {} used or reserved, over sweep.max_instance_hours {}; raise the cap to train it",
            self.training_job_name,
            hours(self.worst_case),
            hours(self.committed),
            hours(self.cap)
        )
    }
}

pub fn ledger_prefix(manifest: &SweepManifest) -> String {
    format!("{}budget/", sweep_prefix(manifest))
}

pub fn ledger_key(manifest: &SweepManifest, seq: u32) -> String {
    format!("{}{seq:05}.json", ledger_prefix(manifest))
}

/// The next free slot, from a listing of the ledger.
pub fn next_seq(manifest: &SweepManifest, keys: &[String]) -> u32 {
    let prefix = ledger_prefix(manifest);
    keys.iter()
        .filter_map(|k| k.strip_prefix(prefix.as_str())?.strip_suffix(".json")?.parse::<u32>().ok())
        .max()
        .map_or(0, |s| s + 1)
}

/// `jobs/<job>/billed-<instance-seconds>`: what a finished job billed, beside its end record.
pub fn billed_key(manifest: &SweepManifest, job_name: &str, instance_seconds: u64) -> String {
    format!("{}{job_name}/billed-{instance_seconds}", jobs_prefix(manifest))
}

/// Instance-seconds an ended job billed: `BillableTimeInSeconds` × count.
/// Without a billable time, a job that trained counts at its worst case,
/// one that never started (capacity, a bad image) at zero.
pub fn billed(manifest: &SweepManifest, job: &JobObservation) -> u64 {
    let count = u64::from(manifest.pipeline.training.max_instance_count().max(1));
    match job.timing.as_ref() {
        Some(t) => match t.billable_seconds {
            Some(s) => s.max(0) as u64 * count,
            None if t.training_seconds > 0.0 || job.status == crate::failure::JobStatus::Completed => job_worst_case(&manifest.pipeline),
            None => 0,
        },
        None => job_worst_case(&manifest.pipeline),
    }
}

/// The billed markers in a listing of the sweep's job records.
pub fn billed_from_keys(manifest: &SweepManifest, keys: &[String]) -> HashMap<String, u64> {
    let prefix = jobs_prefix(manifest);
    keys.iter()
        .filter_map(|k| {
            let (job, what) = k.strip_prefix(prefix.as_str())?.split_once('/')?;
            Some((job.to_owned(), what.strip_prefix("billed-")?.parse().ok()?))
        })
        .collect()
}

/// Used or reserved instance-seconds: billed for finished jobs, worst case for the others admitted.
pub fn committed(entries: &[BudgetEntry], billed: &HashMap<String, u64>) -> u64 {
    entries
        .iter()
        .filter(|e| e.admitted)
        .map(|e| billed.get(&e.training_job_name).copied().unwrap_or(e.worst_case))
        .sum()
}

/// The recorded decision for a job, if there is one.
pub fn recorded<'a>(entries: &'a [BudgetEntry], job_name: &str) -> Option<&'a BudgetEntry> {
    entries.iter().find(|e| e.training_job_name == job_name)
}

/// The decision for the job `job_name` in slot `seq`, given the entries before it.
pub fn decide(
    manifest: &SweepManifest,
    entries: &[BudgetEntry],
    billed: &HashMap<String, u64>,
    seq: u32,
    job_name: &str,
    variant_id: &str,
    attempt: u32,
) -> Option<BudgetEntry> {
    let cap = cap_seconds(manifest.pipeline.sweep.max_instance_hours?);
    let worst_case = job_worst_case(&manifest.pipeline);
    let committed = committed(entries, billed);
    Some(BudgetEntry {
        seq,
        training_job_name: job_name.to_owned(),
        variant_id: variant_id.to_owned(),
        attempt,
        admitted: committed + worst_case <= cap,
        worst_case,
        committed,
        cap,
    })
}

/// Instance-hours a sweep's jobs used: billable × count, and the warm pools' retained time where SageMaker reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InstanceHours {
    /// Σ `BillableTimeInSeconds` × `instance_count` over every attempt, in hours.
    pub billable: f64,
    /// Σ `WarmPoolStatus.ResourceRetainedBillableTimeInSeconds` × `instance_count`, where SageMaker reported it by the sweep's end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm_pool: Option<f64>,
    /// The cap, when the pipeline has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_instance_hours: Option<f64>,
    /// How many variants were not launched because they did not fit the cap (`results` lists them, status `Skipped`).
    #[serde(default)]
    pub skipped_for_budget: usize,
}

/// What managed spot training saved over a sweep's spot jobs (every attempt), as SageMaker counts it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SpotSavings {
    /// Spot jobs that reported both times.
    pub jobs: usize,
    /// Σ `TrainingTimeInSeconds`.
    pub training_seconds: i64,
    /// Σ `BillableTimeInSeconds`.
    pub billable_seconds: i64,
    /// (1 − billable / training) × 100 over those jobs; each job's own is in `results`.
    pub savings_percent: f64,
}

/// The spot savings of a finished sweep's jobs; `None` when none ran on spot.
pub fn spot_savings(jobs: &[JobObservation]) -> Option<SpotSavings> {
    let spot: Vec<(i64, i64)> = jobs
        .iter()
        .filter_map(|j| {
            let t = j.timing.as_ref()?;
            t.spot_savings_percent?;
            Some((t.training_time_seconds?, t.billable_seconds?))
        })
        .collect();
    if spot.is_empty() {
        return None;
    }
    let training: i64 = spot.iter().map(|(t, _)| t).sum();
    let billable: i64 = spot.iter().map(|(_, b)| b).sum();
    Some(SpotSavings {
        jobs: spot.len(),
        training_seconds: training,
        billable_seconds: billable,
        savings_percent: if training > 0 {
            crate::telemetry::spot_savings_percent(billable, training)
        } else {
            0.0
        },
    })
}

/// What a finished sweep's jobs (every attempt) used.
pub fn used(manifest: &SweepManifest, jobs: &[JobObservation]) -> InstanceHours {
    let count = u64::from(manifest.pipeline.training.max_instance_count().max(1));
    let ran = jobs.iter().filter(|j| j.status != crate::failure::JobStatus::Skipped);
    let billable: u64 = ran
        .clone()
        .filter_map(|j| j.timing.as_ref()?.billable_seconds)
        .map(|s| s.max(0) as u64 * count)
        .sum();
    let warm: Vec<u64> = ran
        .filter_map(|j| j.timing.as_ref()?.warm_pool_billable_seconds)
        .map(|s| s.max(0) as u64 * count)
        .collect();
    let skipped: std::collections::BTreeSet<&str> = jobs
        .iter()
        .filter(|j| j.status == crate::failure::JobStatus::Skipped)
        .map(|j| j.variant_id.as_str())
        .collect();
    InstanceHours {
        billable: hours(billable),
        warm_pool: (!warm.is_empty()).then(|| hours(warm.iter().sum())),
        max_instance_hours: manifest.pipeline.sweep.max_instance_hours,
        skipped_for_budget: skipped.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::SweepTrigger;

    fn manifest(cap: Option<f64>) -> SweepManifest {
        let mut config: Config = serde_yaml::from_str(include_str!("../../../examples/pipelines.yaml")).expect("example config");
        let mut p = config.pipelines.remove(0);
        p.training.instance_count = 2;
        p.training.max_runtime_seconds = 3600;
        p.sweep.max_instance_hours = cap;
        let trigger = SweepTrigger {
            kind: "request".into(),
            id: "r".into(),
            reason: None,
        };
        SweepManifest::new(&p, trigger, Some("mnt".into()), None).expect("manifest")
    }

    fn admit(m: &SweepManifest, entries: &mut Vec<BudgetEntry>, billed: &HashMap<String, u64>, job: &str) -> bool {
        let e = decide(m, entries, billed, entries.len() as u32, job, job, 1).expect("capped");
        let ok = e.admitted;
        entries.push(e);
        ok
    }

    #[test]
    fn the_worst_case_is_variants_times_attempts_times_count_times_runtime() {
        let m = manifest(None);
        let attempts = m.pipeline.sweep.max_retries as f64 + 1.0;
        assert_eq!(sweep_worst_case_hours(&m.pipeline, 3), 3.0 * attempts * 2.0);
        assert!(decide(&m, &[], &HashMap::new(), 0, "j", "v0", 1).is_none(), "no cap, no ledger");
    }

    #[test]
    fn running_jobs_count_at_their_worst_case_and_finished_ones_at_what_they_billed() {
        let m = manifest(Some(5.0));
        let mut entries = Vec::new();
        let mut billed = HashMap::new();
        assert!(admit(&m, &mut entries, &billed, "a"), "2 h of 5");
        assert!(admit(&m, &mut entries, &billed, "b"), "4 h of 5");
        assert!(!admit(&m, &mut entries, &billed, "c"), "6 h would exceed 5");
        billed.insert("a".to_owned(), 1200);
        assert!(admit(&m, &mut entries, &billed, "d"), "a billed 1/3 h: 1/3 + 2 + 2 fits 5");
        assert!(!entries[2].reason().is_empty() && entries[2].reason().contains("sweep.max_instance_hours"));
        let committed = committed(&entries, &billed);
        assert!(committed <= cap_seconds(5.0), "{committed}");
    }

    #[test]
    fn a_cap_below_one_job_is_a_warning() {
        let mut config: Config = serde_yaml::from_str(include_str!("../../../examples/pipelines.yaml")).expect("example config");
        config.pipelines[0].sweep.max_instance_hours = Some(0.1);
        let w = warnings(&config);
        assert_eq!(w.len(), 1);
        assert!(w[0].path.ends_with("sweep.max_instance_hours"), "{w:?}");
        config.pipelines[0].sweep.max_instance_hours = Some(1000.0);
        assert!(warnings(&config).is_empty());
    }

    #[test]
    fn ledger_and_billed_keys_parse_back() {
        let m = manifest(Some(5.0));
        let keys = vec![ledger_key(&m, 0), ledger_key(&m, 7)];
        assert_eq!(next_seq(&m, &keys), 8);
        assert_eq!(next_seq(&m, &[]), 0);
        let keys = vec![
            billed_key(&m, "job-a1", 42),
            format!("{}job-a1/ended-Completed-final", jobs_prefix(&m)),
        ];
        assert_eq!(billed_from_keys(&m, &keys).get("job-a1"), Some(&42));
    }
}
