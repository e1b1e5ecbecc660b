//! A sweep's state in the artifacts bucket, strongly consistent where
//! SageMaker's `ListTrainingJobs` lags: under `sweeps/<pipeline>/<sweep>/jobs/<job>/`
//! each job attempt has the once-markers of its announcements
//! (`published/TrainingJobLaunched` means created and announced) and the
//! record of its end. A single listing of that prefix is enough to decide
//! every lane (the reconciler and relaunch ticks do so): the end's key
//! carries the status and whether a retry can help, its body the details.
//!
//! A job's state-change event needs no listing: the lane's next step follows
//! from the job alone ([`crate::lanes::after`]). Only a lane's last variant
//! writes `lanes-done/<lane>`, and the listing of that prefix (at most
//! `max_parallel` keys) tells when the sweep is over. The end is then written
//! from the job records in pages (`finish/part-<n>`), so no invocation reads
//! more than one page of them.
//!
//! Of two invocations that record two ends at the same time, the one that
//! lists second sees both (S3 lists are strongly consistent after a write),
//! so a sweep's last two jobs ending together never leave it open.

use crate::failure::{classify, FailureClass, JobStatus};
use crate::lanes::JobObservation;
use crate::sweep::SweepManifest;
use std::collections::HashMap;

/// Where the sweep's open marker lives while the sweep is not completed.
pub fn open_sweeps_prefix() -> &'static str {
    "open/sweeps/"
}

/// `open/sweeps/<pipeline>/<sweep>`: written before the manifest, deleted once `SweepCompleted` is out.
pub fn open_sweep_key(pipeline: &str, sweep_id: &str) -> String {
    format!("{}{pipeline}/{sweep_id}", open_sweeps_prefix())
}

/// Pipeline and sweep id of an open-sweep key.
pub fn parse_open_sweep_key(key: &str) -> Option<(String, String)> {
    let rest = key.strip_prefix(open_sweeps_prefix())?;
    let (pipeline, sweep) = rest.split_once('/')?;
    (!pipeline.is_empty() && !sweep.is_empty() && !sweep.contains('/')).then(|| (pipeline.to_owned(), sweep.to_owned()))
}

/// Prefix of the sweep's own files (manifest, records, markers).
pub fn sweep_prefix(manifest: &SweepManifest) -> String {
    format!("sweeps/{}/{}/", manifest.pipeline.name, manifest.sweep_id)
}

/// Scope of the sweep's own domain events (their once-markers and ids).
pub fn event_scope(manifest: &SweepManifest) -> String {
    format!("sweeps/{}/{}", manifest.pipeline.name, manifest.sweep_id)
}

/// Scope of one job's `TrainingJobLaunched` and `VariantRetried`: their
/// once-markers sit among the job's records, so the listing shows them.
pub fn job_event_scope(manifest: &SweepManifest, job_name: &str) -> String {
    format!("{}{job_name}", jobs_prefix(manifest))
}

/// Prefix of the job records: list it to know every lane's state.
pub fn jobs_prefix(manifest: &SweepManifest) -> String {
    format!("{}jobs/", sweep_prefix(manifest))
}

/// The once-marker of a job's `TrainingJobLaunched`: the job was created and announced.
pub fn launched_key(manifest: &SweepManifest, job_name: &str) -> String {
    crate::events::once_marker_key(&job_event_scope(manifest, job_name), "TrainingJobLaunched")
}

/// Prefix of the lanes whose last variant is final.
pub fn lanes_done_prefix(manifest: &SweepManifest) -> String {
    format!("{}lanes-done/", sweep_prefix(manifest))
}

/// `lanes-done/<lane>`: written once the lane's last variant is final.
pub fn lane_done_key(manifest: &SweepManifest, lane: usize) -> String {
    format!("{}{lane:03}", lanes_done_prefix(manifest))
}

/// Whether the listed `lanes-done/` keys cover every lane of the sweep.
pub fn every_lane_done(manifest: &SweepManifest, keys: &[String]) -> bool {
    let prefix = lanes_done_prefix(manifest);
    let lanes = manifest.max_parallel().min(manifest.variants.len());
    let done: std::collections::HashSet<usize> = keys
        .iter()
        .filter_map(|k| k.strip_prefix(prefix.as_str())?.parse().ok())
        .filter(|&lane| lane < lanes)
        .collect();
    done.len() == lanes
}

/// The observations read from one page of job records while the sweep's end is written.
pub fn finish_part_key(manifest: &SweepManifest, part: u32) -> String {
    format!("{}finish/part-{part:05}.json", sweep_prefix(manifest))
}

/// Job records read per page while the sweep's end is written: a page of a
/// 1,000-variant sweep's records takes a few seconds of GETs, far inside
/// the function timeout even when S3 slows down.
pub const FINISH_PAGE_KEYS: i32 = 600;

/// Of a page of job-record keys, those of whole jobs: a job's keys never
/// straddle two pages. Returns the keys to use and the key to list after,
/// `None` when the page is the last. A page whose first job alone fills it
/// is used whole (its rest follows on the next page).
pub fn whole_jobs<'a>(manifest: &SweepManifest, keys: &'a [String], truncated: bool) -> (&'a [String], Option<String>) {
    if !truncated {
        return (keys, None);
    }
    let prefix = jobs_prefix(manifest);
    let job_of = |k: &str| {
        k.strip_prefix(prefix.as_str())
            .and_then(|r| r.split_once('/'))
            .map(|(j, _)| j.to_owned())
    };
    let last_job = keys.last().and_then(|k| job_of(k));
    let cut = keys.iter().rposition(|k| job_of(k) != last_job).map_or(keys.len(), |i| i + 1);
    let used = &keys[..cut];
    (used, used.last().cloned())
}
/// The end of a job: `.../jobs/<name>/ended-<Status>-<retry|capacity|final>[-t<n>][-c<k>]`,
/// `n` the position of its instance type in the manifest's list, when known,
/// `k` the variant's capacity failures so far, when counted and not zero.
pub fn ended_key(manifest: &SweepManifest, job: &JobObservation) -> String {
    let class = match end_class(job) {
        FailureClass::Transient => "retry",
        FailureClass::Capacity => "capacity",
        FailureClass::Permanent => "final",
    };
    let instance = match job.instance_type.as_deref().and_then(|t| manifest.instance_position(t)) {
        Some(n) => format!("-t{n}"),
        None => String::new(),
    };
    let failures = match job.capacity_failures {
        0 => String::new(),
        k => format!("-c{k}"),
    };
    format!(
        "{}{}/ended-{}-{class}{instance}{failures}",
        jobs_prefix(manifest),
        job.training_job_name,
        job.status.as_str()
    )
}

/// The full ranking, written before `SweepCompleted` names it.
pub fn results_key(manifest: &SweepManifest) -> String {
    format!("{}results.json", sweep_prefix(manifest))
}

/// The marker of a launch refused for a quota: its presence means one tick
/// chain runs. It sits among the job records (a name with a dot is never a
/// job's), so the listing that decides the lanes also shows it.
pub fn deferred_key(manifest: &SweepManifest) -> String {
    format!("{}deferred.json", jobs_prefix(manifest))
}

/// Once-marker of tick `n` of the chain that began at `since`, so a redelivered tick arms no second chain.
pub fn tick_marker_key(manifest: &SweepManifest, since: u64, n: u32) -> String {
    format!("{}deferred/{since}/tick-{n}", sweep_prefix(manifest))
}

/// How a terminal job counts for its lane: completed jobs are final.
pub fn end_class(job: &JobObservation) -> FailureClass {
    match job.status {
        JobStatus::Failed | JobStatus::Stopped => job
            .failure_class
            .unwrap_or_else(|| classify(job.status, job.secondary_status.as_deref(), job.failure_reason.as_deref()).0),
        _ => FailureClass::Permanent,
    }
}

/// What one key of the jobs prefix says.
#[derive(Debug, Clone, PartialEq)]
enum Fact {
    Launched,
    Ended(JobStatus, FailureClass, Option<usize>, u32),
}

fn parse_fact(rest: &str) -> Option<(&str, Fact)> {
    let (name, what) = rest.split_once('/')?;
    if what == "published/TrainingJobLaunched" {
        return Some((name, Fact::Launched));
    }
    let mut parts = what.strip_prefix("ended-")?.split('-');
    let (status, class) = (parts.next()?, parts.next()?);
    let status = JobStatus::parse_recorded(status).filter(|s| s.is_terminal())?;
    let class = match class {
        "retry" => FailureClass::Transient,
        "capacity" => FailureClass::Capacity,
        "final" => FailureClass::Permanent,
        _ => return None,
    };
    let (mut choice, mut failures) = (None, 0);
    for (i, part) in parts.enumerate() {
        match (i, part.split_at_checked(1)?) {
            (0, ("t", n)) => choice = Some(n.parse().ok()?),
            (0 | 1, ("c", k)) if failures == 0 => failures = k.parse().ok().filter(|k| *k > 0)?,
            _ => return None,
        }
    }
    Some((name, Fact::Ended(status, class, choice, failures)))
}

/// The sweep's jobs as its records show them: a launched job without an end
/// is running; an ended one has its recorded status and class. Keys that are
/// not the sweep's records are ignored.
pub fn observations(manifest: &SweepManifest, keys: &[String]) -> Vec<JobObservation> {
    let prefix = jobs_prefix(manifest);
    let names = attempt_names(manifest);
    let instances = manifest.instances();
    let mut jobs: HashMap<&str, JobObservation> = HashMap::new();
    let mut order: Vec<&str> = Vec::new();
    for key in keys {
        let Some((name, fact)) = key.strip_prefix(prefix.as_str()).and_then(parse_fact) else {
            continue;
        };
        let Some(&(position, attempt)) = names.get(name) else { continue };
        let job = jobs.entry(name).or_insert_with(|| {
            order.push(name);
            JobObservation {
                variant_id: manifest.variants[position].id.clone(),
                attempt,
                training_job_name: name.to_owned(),
                status: JobStatus::InProgress,
                secondary_status: None,
                failure_reason: None,
                metrics: Vec::new(),
                timing: None,
                failure_class: None,
                instance_type: None,
                capacity_failures: 0,
            }
        });
        if let Fact::Ended(status, class, choice, failures) = fact {
            job.status = status;
            job.capacity_failures = failures;
            job.failure_class = (status != JobStatus::Completed).then_some(class);
            job.instance_type = choice.and_then(|c| instances.get(c)).map(|i| i.instance_type.clone());
        }
    }
    order.into_iter().filter_map(|n| jobs.remove(n)).collect()
}

/// Which jobs are created and announced (their `TrainingJobLaunched` marker is there).
pub fn launched(manifest: &SweepManifest, keys: &[String]) -> std::collections::HashSet<String> {
    let prefix = jobs_prefix(manifest);
    keys.iter()
        .filter_map(|k| k.strip_prefix(prefix.as_str()))
        .filter_map(|rest| rest.strip_suffix("/published/TrainingJobLaunched"))
        .map(str::to_owned)
        .collect()
}

/// Every job name the sweep may create, with its variant position and attempt.
pub fn attempt_names(manifest: &SweepManifest) -> HashMap<String, (usize, u32)> {
    let max_attempts = manifest.max_attempts();
    let mut names = HashMap::with_capacity(manifest.variants.len() * max_attempts as usize);
    for position in 0..manifest.variants.len() {
        for attempt in 1..=max_attempts {
            names.insert(manifest.job_name(position, attempt), (position, attempt));
        }
    }
    names
}

#[cfg(test)]
mod tests;
