//! Starting a sweep and running its lanes: shared by start-sweep and on-training.

use super::Outcome;
use crate::adapters::sagemaker::{Launched, SageMaker};
use crate::adapters::store::Created;
use crate::deps::Deps;
use crate::error::Error;
use retrain_core::config::Pipeline;
use retrain_core::events::{DomainEvent, JobLaunched, SweepBlocked, SweepCompleted, SweepStarted, VariantRetried};
use retrain_core::failure::classify;
use retrain_core::failure::JobStatus;
use retrain_core::lanes::{decide, JobObservation, Retry};
use retrain_core::messages::{Message, SweepTick};
use retrain_core::names;
use retrain_core::plan::file_system_type;
use retrain_core::sweep::{manifest_key, SweepManifest, SweepTrigger};
use retrain_core::telemetry::{emf, timing};
use std::collections::HashMap;

/// Seconds before a launch refused by a quota or throttling is tried again.
pub const RELAUNCH_DELAY_SECONDS: u32 = 60;

fn scope(manifest: &SweepManifest) -> String {
    format!("sweeps/{}/{}", manifest.pipeline.name, manifest.sweep_id)
}

/// Starts (or, for a duplicate trigger, resumes) a sweep of `pipeline`.
pub async fn start(
    deps: &Deps,
    pipeline: &Pipeline,
    trigger: SweepTrigger,
    only: Option<&[String]>,
    out: &mut Outcome,
) -> Result<(), Error> {
    let mount = deps.mount_name(pipeline).await?;
    let fresh = match SweepManifest::new(pipeline, trigger, mount, only) {
        Ok(m) => m,
        Err(e) => {
            out.did(format!("refused: {e}"));
            let event = DomainEvent::SweepBlocked(SweepBlocked {
                pipeline: pipeline.name.clone(),
                sweep_id: None,
                problems: vec![e.to_string()],
            });
            return deps.bus.publish(&event).await;
        }
    };
    let key = fresh.key();
    if deps.store.get::<serde_json::Value>("sweep manifest", &key).await?.is_none() {
        // Fail before spending money: nothing launches while a check fails.
        let problems: Vec<String> = deps
            .preflight(pipeline)
            .await?
            .iter()
            .filter(|f| !f.ok)
            .map(|f| f.problem())
            .collect();
        if !problems.is_empty() {
            out.did(format!(
                "sweep {} of {} blocked by preflight: {}",
                fresh.sweep_id,
                pipeline.name,
                problems.join("; ")
            ));
            let event = DomainEvent::SweepBlocked(SweepBlocked {
                pipeline: pipeline.name.clone(),
                sweep_id: Some(fresh.sweep_id.clone()),
                problems,
            });
            deps.bus.publish_once(&deps.store, &scope(&fresh), &event).await?;
            return Ok(());
        }
    }
    let manifest = match deps.store.put_once(&key, &fresh).await? {
        Created::Now => fresh,
        // A duplicate trigger: the first manifest is the truth.
        Created::AlreadyThere => deps.store.get("sweep manifest", &key).await?.unwrap_or(fresh),
    };
    let event = DomainEvent::SweepStarted(SweepStarted {
        pipeline: pipeline.name.clone(),
        sweep_id: manifest.sweep_id.clone(),
        trigger: manifest.trigger.clone(),
        variants: manifest.variants.len(),
        max_parallel: manifest.max_parallel(),
        file_system_id: pipeline.file_system.id.clone(),
        file_system_type: file_system_type(pipeline).to_owned(),
        manifest: format!("s3://{}/{key}", deps.store.bucket()),
    });
    if deps.bus.publish_once(&deps.store, &scope(&manifest), &event).await? {
        out.did(format!(
            "sweep {} of {} started: {} variant(s)",
            manifest.sweep_id,
            pipeline.name,
            manifest.variants.len()
        ));
    }
    reconcile(deps, &manifest, None, out).await
}

/// Reads a sweep's manifest; `None` if it does not exist.
pub async fn load(deps: &Deps, pipeline: &str, sweep_id: &str) -> Result<Option<SweepManifest>, Error> {
    deps.store.get("sweep manifest", &manifest_key(pipeline, sweep_id)).await
}

/// Looks at the sweep's jobs in SageMaker, launches each lane's next job, and
/// announces the end once every variant is final. `fresh` is a job state
/// from an event, newer than what ListTrainingJobs may show.
pub async fn reconcile(deps: &Deps, manifest: &SweepManifest, fresh: Option<JobObservation>, out: &mut Outcome) -> Result<(), Error> {
    let fresh_name = fresh.as_ref().map(|f| f.training_job_name.clone());
    let mut jobs = observe(&deps.sagemaker, manifest, fresh.clone(), Details::Needed).await?;
    if let Some(job) = fresh_name.as_ref().and_then(|n| jobs.iter().find(|j| &j.training_job_name == n)) {
        emit_metrics(deps, manifest, job).await?;
    }
    // A job whose create succeeded but whose announcement failed (the
    // invocation was then retried) is announced now: while it runs, or when
    // its own state change arrives.
    for job in jobs
        .iter()
        .filter(|j| !j.status.is_terminal() || Some(&j.training_job_name) == fresh_name.as_ref())
    {
        let Some(position) = manifest.position_of(&job.variant_id) else {
            continue;
        };
        let retry = (job.attempt > 1)
            .then(|| jobs.iter().find(|p| p.variant_id == job.variant_id && p.attempt == job.attempt - 1))
            .flatten()
            .map(|previous| Retry {
                training_job_name: previous.training_job_name.clone(),
                failure_reason: previous.failure_reason.clone().unwrap_or_default(),
                why: classify(
                    previous.status,
                    previous.secondary_status.as_deref(),
                    previous.failure_reason.as_deref(),
                )
                .1
                .to_owned(),
            });
        announce(
            deps,
            manifest,
            &job.variant_id,
            manifest.lane_of(position),
            job.attempt,
            &job.training_job_name,
            retry,
        )
        .await?;
    }
    let mut decision = decide(manifest, &jobs);
    if decision.completed.is_some() {
        // The end: describe every job once, for the ranking and its timing.
        jobs = observe(&deps.sagemaker, manifest, fresh, Details::All).await?;
        decision = decide(manifest, &jobs);
    }
    for launch in &decision.launches {
        let request = match manifest.training_job(launch.position, launch.attempt) {
            Ok(r) => r,
            Err(e) => {
                let event = DomainEvent::SweepBlocked(SweepBlocked {
                    pipeline: manifest.pipeline.name.clone(),
                    sweep_id: Some(manifest.sweep_id.clone()),
                    problems: vec![e.to_string()],
                });
                deps.bus.publish_once(&deps.store, &scope(manifest), &event).await?;
                out.did(format!("blocked: {e}"));
                return Ok(());
            }
        };
        let name = request.training_job_name.clone();
        let launched = deps.sagemaker.launch(&request).await?;
        if let Launched::Deferred { code, message } = &launched {
            let tick = Message::SweepTick(SweepTick {
                pipeline: manifest.pipeline.name.clone(),
                sweep_id: manifest.sweep_id.clone(),
                ticks: 0,
            });
            deps.timers
                .arm(&deps.settings.tick_queue_url, &tick, RELAUNCH_DELAY_SECONDS)
                .await?;
            out.did(format!(
                "{name} deferred ({code}: {message}); lanes run again in {RELAUNCH_DELAY_SECONDS} s"
            ));
            return Ok(());
        }
        out.did(match launched {
            Launched::Created => format!("launched {name} (lane {}, attempt {})", launch.lane, launch.attempt),
            _ => format!("{name} already launched"),
        });
        announce(
            deps,
            manifest,
            &launch.variant_id,
            launch.lane,
            launch.attempt,
            &name,
            launch.retry_of.clone(),
        )
        .await?;
    }
    if let Some(outcome) = decision.completed {
        let event = DomainEvent::SweepCompleted(SweepCompleted {
            pipeline: manifest.pipeline.name.clone(),
            sweep_id: manifest.sweep_id.clone(),
            best: outcome.best().cloned(),
            outcome,
        });
        if deps.bus.publish_once(&deps.store, &scope(manifest), &event).await? {
            out.did(format!("sweep {} of {} completed", manifest.sweep_id, manifest.pipeline.name));
        }
    }
    Ok(())
}

/// Publishes `TrainingJobLaunched` (and `VariantRetried` for a retry) once
/// per job, whichever invocation gets there first.
async fn announce(
    deps: &Deps,
    manifest: &SweepManifest,
    variant_id: &str,
    lane: usize,
    attempt: u32,
    name: &str,
    retry: Option<Retry>,
) -> Result<(), Error> {
    let job_scope = format!("{}/jobs/{name}", scope(manifest));
    let base = JobLaunched {
        pipeline: manifest.pipeline.name.clone(),
        sweep_id: manifest.sweep_id.clone(),
        variant_id: variant_id.to_owned(),
        lane,
        attempt,
        training_job_name: name.to_owned(),
    };
    if let Some(retry) = retry {
        let event = DomainEvent::VariantRetried(VariantRetried {
            pipeline: base.pipeline.clone(),
            sweep_id: base.sweep_id.clone(),
            variant_id: base.variant_id.clone(),
            lane,
            attempt,
            training_job_name: name.to_owned(),
            previous_training_job_name: retry.training_job_name,
            failure_reason: retry.failure_reason,
            why: retry.why,
        });
        deps.bus.publish_once(&deps.store, &job_scope, &event).await?;
    }
    deps.bus
        .publish_once(&deps.store, &job_scope, &DomainEvent::TrainingJobLaunched(base))
        .await?;
    Ok(())
}

/// Writes the finished job's start-up breakdown as one CloudWatch embedded
/// metric format record, once per job even if its event comes twice.
async fn emit_metrics(deps: &Deps, manifest: &SweepManifest, job: &JobObservation) -> Result<(), Error> {
    let Some(t) = job.timing.as_ref().filter(|_| job.status.is_terminal()) else {
        return Ok(());
    };
    let marker = format!("{}/metrics/{}", scope(manifest), job.training_job_name);
    if deps.store.put_once(&marker, t).await? == Created::Now {
        let record = emf(
            &manifest.pipeline.name,
            file_system_type(&manifest.pipeline),
            &job.training_job_name,
            t,
            super::now_epoch() * 1000,
        );
        deps.metrics.emit(&record);
    }
    Ok(())
}

/// Which finished jobs [`observe`] describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Details {
    /// What deciding the next launches needs: failed and stopped jobs (their
    /// reasons decide retries), the event's job and the job before it in its
    /// lane (start-up telemetry and warm pool reuse). One state change then
    /// costs a few describes, not one per finished job of the sweep.
    Needed,
    /// Every finished job: metrics and timing for the ranking and `retrain status`.
    All,
}

/// The sweep's jobs as SageMaker knows them, with details (metrics, failure,
/// timing) for the finished ones `details` asks for. `fresh` is the state an
/// event just reported.
pub async fn observe(
    sagemaker: &SageMaker,
    manifest: &SweepManifest,
    fresh: Option<JobObservation>,
    details: Details,
) -> Result<Vec<JobObservation>, Error> {
    let max_attempts = manifest.pipeline.sweep.max_retries + 1;
    let mut by_name: HashMap<String, (usize, u32)> = HashMap::new();
    for position in 0..manifest.variants.len() {
        for attempt in 1..=max_attempts {
            by_name.insert(manifest.job_name(position, attempt), (position, attempt));
        }
    }
    let prefix = names::sweep_job_prefix(&manifest.pipeline.name, &manifest.sweep_id);
    let mut jobs = Vec::new();
    for (name, status) in sagemaker.list(&prefix).await? {
        let Some(&(position, attempt)) = by_name.get(&name) else { continue };
        let mut job = JobObservation {
            variant_id: manifest.variants[position].id.clone(),
            attempt,
            training_job_name: name.clone(),
            status,
            secondary_status: None,
            failure_reason: None,
            metrics: Vec::new(),
            timing: None,
        };
        if let Some(f) = fresh
            .as_ref()
            .filter(|f| f.training_job_name == name && !status.is_terminal() && f.status.is_terminal())
        {
            // The list lags behind the event.
            job = f.clone();
        }
        jobs.push(job);
    }
    // The event may be about a job the list does not show yet.
    if let Some(f) = &fresh {
        if !jobs.iter().any(|j| j.training_job_name == f.training_job_name) && by_name.contains_key(&f.training_job_name) {
            jobs.push(f.clone());
        }
    }
    let fresh_name = fresh.as_ref().map(|f| f.training_job_name.clone());
    let before_fresh = fresh.as_ref().and_then(|f| lane_predecessor(manifest, &jobs, f));
    let mut reused: Vec<String> = Vec::new();
    for job in jobs.iter_mut().filter(|j| j.status.is_terminal()) {
        let wanted = details == Details::All
            || job.status != JobStatus::Completed
            || Some(&job.training_job_name) == fresh_name.as_ref()
            || Some(&job.training_job_name) == before_fresh.as_ref();
        if !wanted {
            continue;
        }
        let d = sagemaker.describe(&job.training_job_name).await?;
        if d.status.is_terminal() {
            job.status = d.status;
            job.secondary_status = d.secondary_status;
            job.failure_reason = d.failure_reason;
            job.metrics = d.metrics;
        }
        job.timing = Some(timing(&d.transitions, d.billable_seconds, false));
        reused.extend(d.warm_pool_reused_by);
    }
    for job in &mut jobs {
        if let Some(t) = job.timing.as_mut() {
            t.warm_pool_reused = reused.contains(&job.training_job_name);
        }
    }
    Ok(jobs)
}

/// The job that ran in `job`'s lane just before it (whose warm pool `job` may have reused).
fn lane_predecessor(manifest: &SweepManifest, jobs: &[JobObservation], job: &JobObservation) -> Option<String> {
    if job.attempt > 1 {
        let position = manifest.position_of(&job.variant_id)?;
        return Some(manifest.job_name(position, job.attempt - 1));
    }
    let position = manifest.position_of(&job.variant_id)?.checked_sub(manifest.max_parallel())?;
    let previous = &manifest.variants[position].id;
    jobs.iter()
        .filter(|j| &j.variant_id == previous)
        .max_by_key(|j| j.attempt)
        .map(|j| j.training_job_name.clone())
}

/// A job state from an event, if it belongs to the manifest.
pub fn observation(
    manifest: &SweepManifest,
    name: &str,
    status: JobStatus,
    secondary: Option<String>,
    reason: Option<String>,
    metrics: Vec<(String, f64)>,
) -> Option<JobObservation> {
    let max_attempts = manifest.pipeline.sweep.max_retries + 1;
    (0..manifest.variants.len())
        .flat_map(|p| (1..=max_attempts).map(move |a| (p, a)))
        .find(|&(p, a)| manifest.job_name(p, a) == name)
        .map(|(p, a)| JobObservation {
            variant_id: manifest.variants[p].id.clone(),
            attempt: a,
            training_job_name: name.to_owned(),
            status,
            secondary_status: secondary,
            failure_reason: reason,
            metrics,
            timing: None,
        })
}
