//! A sweep's records in the artifacts bucket (layout in
//! `retrain_core::sweep_records`): recording job ends once, reading every
//! lane's state with one listing, and the describes that only the end of a
//! sweep (or `retrain status`) needs.

use crate::adapters::sagemaker::SageMaker;
use crate::adapters::store::{Created, Store};
use crate::error::Error;
use retrain_core::failure::{FailureClass, JobStatus};
use retrain_core::lanes::JobObservation;
use retrain_core::sweep::SweepManifest;
use retrain_core::sweep_records::{end_class, ended_key, jobs_prefix, launched, observations};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// The body of a job's end record: the state change as the event reported it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EndRecord {
    pub job: JobObservation,
    /// Epoch seconds when it was recorded.
    pub recorded_at: u64,
}

/// What the records say about a sweep.
#[derive(Debug, Clone, Default)]
pub struct SweepState {
    pub jobs: Vec<JobObservation>,
    /// Jobs whose launch is complete (created and announced: their `TrainingJobLaunched` marker).
    pub launched: HashSet<String>,
    /// Whether a launch of this sweep is waiting for a quota.
    pub deferred: bool,
    /// The newest record's `LastModified` (epoch seconds): when the sweep last moved.
    pub last_change: u64,
}

/// Records a job's end, once: the first record of a job's end is the truth.
/// Sets the variant's capacity failures so far on `job` where they count.
pub async fn record_end(store: &Store, manifest: &SweepManifest, job: &mut JobObservation) -> Result<Created, Error> {
    job.capacity_failures = capacity_failures(store, manifest, job).await?;
    let job = &*job;
    let record = EndRecord {
        job: job.clone(),
        recorded_at: super::now_epoch(),
    };
    let created = store.put_once(&ended_key(manifest, job), &record).await?;
    // A capped sweep's next launches count what this job billed; a retry writes it again.
    super::budget::record_billed(store, manifest, job).await?;
    // An adaptive sweep's result joins the history only after the end is recorded: a retry writes it again.
    if let Some(result) = retrain_core::search_records::result_key(manifest, job) {
        store.put_once(&result, &job.training_job_name).await?;
    }
    Ok(created)
}

/// The variant's capacity failures up to and including `job`: the previous
/// attempt's count (its end record's key), plus one for a capacity failure.
/// Only spot that falls back to on-demand needs it; elsewhere it stays 0.
async fn capacity_failures(store: &Store, manifest: &SweepManifest, job: &JobObservation) -> Result<u32, Error> {
    if manifest.spot_fallback_after().is_none() || !matches!(job.status, JobStatus::Failed | JobStatus::Stopped) {
        return Ok(job.capacity_failures);
    }
    let this = u32::from(end_class(job) == FailureClass::Capacity);
    let before = match (manifest.position_of(&job.variant_id), job.attempt) {
        (Some(position), attempt) if attempt > 1 => {
            let previous = manifest.job_name(position, attempt - 1);
            let keys = store.list(&format!("{}{previous}/", jobs_prefix(manifest))).await?;
            observations(manifest, &keys).first().map_or(0, |j| j.capacity_failures)
        }
        _ => 0,
    };
    Ok(before + this)
}

/// Every lane's state, from one listing of the sweep's records.
pub async fn load(store: &Store, manifest: &SweepManifest) -> Result<SweepState, Error> {
    let listed = store.list_with_times(&jobs_prefix(manifest)).await?;
    let last_change = listed.iter().map(|(_, t)| *t).max().unwrap_or(0);
    let keys: Vec<String> = listed.into_iter().map(|(k, _)| k).collect();
    let deferred_key = retrain_core::sweep_records::deferred_key(manifest);
    Ok(SweepState {
        jobs: observations(manifest, &keys),
        launched: launched(manifest, &keys),
        deferred: keys.contains(&deferred_key),
        last_change,
    })
}

/// Reads a recorded end (its failure reason and metrics).
pub async fn end_record(store: &Store, manifest: &SweepManifest, job: &JobObservation) -> Result<Option<EndRecord>, Error> {
    store.get("job end record", &ended_key(manifest, job)).await
}

/// Fills metrics, failures and timing of every finished job from SageMaker:
/// what the ranking and `retrain status` show. Done once, at the end.
pub async fn describe_finished(sagemaker: &SageMaker, jobs: &mut [JobObservation]) -> Result<(), Error> {
    let mut reused: Vec<String> = Vec::new();
    // A skipped variant never reached SageMaker.
    for job in jobs.iter_mut().filter(|j| j.status.is_terminal() && j.status != JobStatus::Skipped) {
        let d = sagemaker.describe(&job.training_job_name).await?;
        let mut t = d.timing(false);
        if d.status.is_terminal() {
            job.status = d.status;
            job.secondary_status = d.secondary_status;
            job.failure_reason = d.failure_reason;
            job.metrics = d.metrics;
        }
        t.warm_pool_billable_seconds = d.warm_pool_billable_seconds;
        job.timing = Some(t);
        reused.extend(d.warm_pool_reused_by);
    }
    for job in jobs.iter_mut() {
        if let Some(t) = job.timing.as_mut() {
            t.warm_pool_reused = reused.contains(&job.training_job_name);
        }
    }
    Ok(())
}

/// The records plus SageMaker's details of every finished job (`retrain status`).
pub async fn observe(store: &Store, sagemaker: &SageMaker, manifest: &SweepManifest) -> Result<Vec<JobObservation>, Error> {
    let mut jobs = load(store, manifest).await?.jobs;
    describe_finished(sagemaker, &mut jobs).await?;
    Ok(jobs)
}
