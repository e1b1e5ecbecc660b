//! The fast path of a training job's state change: a constant number of
//! AWS calls, whatever the sweep's size. The event names the job and, in
//! its tags, the job before it in the lane; the lane's next step follows
//! from the job alone (`lanes::after`), so nothing lists the sweep.
//!
//! Order: the end record first (create-once, so a redelivery finds it and
//! goes on), then the lane's next launch, or the lane's done marker. The
//! lane whose done marker completes the set writes the sweep's end.

use super::sweeps::{launch, observation, Ended, LaunchResult, Progress};
use super::{finish, sweep_state, Outcome, Pass};
use crate::adapters::store::Created;
use crate::deps::Deps;
use crate::error::Error;
use retrain_core::failure::JobStatus;
use retrain_core::inbound::JobStateChange;
use retrain_core::lanes::{after, JobObservation, LaneStep};
use retrain_core::names;
use retrain_core::plan::file_system_type;
use retrain_core::sweep::SweepManifest;
use retrain_core::sweep_records::{every_lane_done, lane_done_key, lanes_done_prefix, launched_key};
use retrain_core::telemetry::{emf, job_failure_emf, timing};

/// Handles one state change of one of the sweep's jobs.
pub async fn handle(deps: &Deps, manifest: &SweepManifest, change: &JobStateChange, out: &mut Outcome) -> Result<Progress, Error> {
    let Some(status) = JobStatus::parse(&change.status).filter(|s| s.is_terminal() && *s != JobStatus::Skipped) else {
        // Lanes move only when a job ends.
        return Ok(Progress::Running);
    };
    let end = Ended {
        status,
        secondary: change.secondary_status.clone(),
        reason: change.failure_reason.clone(),
        metrics: change.metrics.clone(),
        instance_type: change.instance_type.clone(),
    };
    let Some(mut job) = observation(manifest, &change.training_job_name, end) else {
        out.did(format!("{} is not a job of sweep {}", change.training_job_name, manifest.sweep_id));
        return Ok(Progress::Running);
    };
    complete_details(deps, manifest, change, &mut job).await?;
    let first = sweep_state::record_end(&deps.store, manifest, &mut job).await? == Created::Now;
    if first {
        // The end record is the metric's once-marker: a redelivered event emits nothing.
        if let Some(t) = &job.timing {
            let record = emf(
                &manifest.pipeline.name,
                file_system_type(&manifest.pipeline),
                &job.training_job_name,
                t,
                super::now_epoch() * 1000,
            );
            deps.metrics.emit(&record);
        }
        if job.status == JobStatus::Failed {
            deps.metrics.emit(&job_failure_emf(job.class().0, super::now_epoch() * 1000));
        }
    }
    next_in_lane(deps, manifest, job, first, out).await
}

/// The lane's next step once `job`'s end is recorded (`first`: by this
/// call): launch its next variant or retry, or mark the lane done. A
/// variant skipped for budget is final too, so the lane goes on past it.
pub async fn next_in_lane(
    deps: &Deps,
    manifest: &SweepManifest,
    mut job: JobObservation,
    mut first: bool,
    out: &mut Outcome,
) -> Result<Progress, Error> {
    loop {
        match after(manifest, &job) {
            None | Some(LaneStep::Wait) => return Ok(Progress::Running),
            // A duplicate event (or a retry after a crash) whose next job is already out: nothing to create.
            Some(LaneStep::Launch(next))
                if !first
                    && deps
                        .store
                        .exists(&launched_key(manifest, &manifest.job_name(next.position, next.attempt)))
                        .await? =>
            {
                return Ok(Progress::Running)
            }
            // Boxed, as is the sweep's end below: both futures are large, and
            // inline they would make every caller's future (and stack) as large.
            Some(LaneStep::Launch(next)) => {
                match Box::pin(launch(deps, manifest, std::slice::from_ref(&job), &next, Pass::Event, out)).await? {
                    LaunchResult::Made => return Ok(Progress::Running),
                    LaunchResult::Deferred => return Ok(Progress::Deferred),
                    LaunchResult::Skipped { job: skipped, first: now } => {
                        job = *skipped;
                        first = now;
                    }
                }
            }
            Some(LaneStep::Done { lane }) => {
                deps.store.put_once(&lane_done_key(manifest, lane), &job.training_job_name).await?;
                // Of two lanes that end together, the one that lists second sees both.
                let done = deps.store.list(&lanes_done_prefix(manifest)).await?;
                if !every_lane_done(manifest, &done) {
                    return Ok(Progress::Running);
                }
                return Box::pin(finish::page(deps, manifest, 0, None, out)).await;
            }
        }
    }
}

/// What the ranking and the start-up metrics need, from the event when it
/// carries it (SageMaker's events hold the job's description), else from
/// `DescribeTrainingJob`. The lane predecessor's warm pool tells whether
/// this job reused it.
async fn complete_details(deps: &Deps, manifest: &SweepManifest, change: &JobStateChange, job: &mut JobObservation) -> Result<(), Error> {
    let (transitions, billable, warm_pool, spot) =
        if change.transitions.is_empty() || (job.status == JobStatus::Completed && job.metrics.is_empty()) {
            let d = deps.sagemaker.describe(&job.training_job_name).await?;
            if d.status.is_terminal() {
                job.status = d.status;
                job.secondary_status = d.secondary_status;
                job.failure_reason = d.failure_reason;
                job.metrics = d.metrics;
                job.instance_type = d.instance_type.or(job.instance_type.take());
            }
            (
                d.transitions,
                d.billable_seconds,
                d.warm_pool_billable_seconds,
                (d.managed_spot, d.training_time_seconds),
            )
        } else {
            (
                change.transitions.clone(),
                change.billable_seconds,
                None,
                (change.managed_spot, change.training_time_seconds),
            )
        };
    let previous = change.tags.get(names::TAG_AFTER);
    let reused = match previous {
        Some(previous) if manifest.pipeline.training.keep_alive_seconds.is_some() => deps
            .sagemaker
            .describe(previous)
            .await
            .map(|p| p.warm_pool_reused_by.as_deref() == Some(job.training_job_name.as_str()))
            .unwrap_or(false),
        _ => false,
    };
    let mut t = timing(&transitions, billable, reused).with_spot(spot.0, spot.1);
    t.warm_pool_billable_seconds = warm_pool;
    job.timing = Some(t);
    Ok(())
}
