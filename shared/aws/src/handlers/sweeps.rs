//! Starting a sweep and running its lanes: shared by start-sweep,
//! on-training and the reconciler.
//!
//! Every step is ordered so that a retry finishes it: the open marker before
//! the manifest, a job's end record before the lanes are decided, the launch
//! record only after `CreateTrainingJob` took effect and was announced, and
//! the sweep closed only after `SweepCompleted` is out.

use super::sweep_state::{self, SweepState};
use super::{deferral, now_epoch, Outcome, Pass};
use crate::adapters::sagemaker::Launched;
use crate::adapters::store::Created;
use crate::deps::Deps;
use crate::error::Error;
use retrain_core::config::Pipeline;
use retrain_core::events::{once_marker_key, DomainEvent, JobLaunched, SweepBlocked, SweepCompleted, SweepStarted, VariantRetried};
use retrain_core::failure::JobStatus;
use retrain_core::lanes::{decide, rank, JobObservation, Launch, Retry};
use retrain_core::names;
use retrain_core::plan::file_system_type;
use retrain_core::sweep::{manifest_key, SweepManifest, SweepTrigger};
use retrain_core::sweep_records::{attempt_names, event_scope, job_event_scope, launched_key, open_sweep_key, results_key};
use serde::{Deserialize, Serialize};

/// The body of `open/sweeps/<pipeline>/<sweep>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenSweep {
    pub pipeline: String,
    pub sweep_id: String,
    pub opened_at: u64,
}

/// What one pass over a sweep's lanes left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Jobs run (or are being launched); their state changes drive the next pass.
    Running,
    /// A launch waits for a quota; the tick chain or the reconciler tries again.
    Deferred,
    /// Every variant is final and `SweepCompleted` is published.
    Completed,
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
            return deps.bus.publish(&event, &event.content_id()).await;
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
            deps.bus.publish_once(&deps.store, &event_scope(&fresh), &event).await?;
            return Ok(());
        }
    }
    // The intent first: the reconciler finds every open sweep from these markers.
    let open = OpenSweep {
        pipeline: pipeline.name.clone(),
        sweep_id: fresh.sweep_id.clone(),
        opened_at: now_epoch(),
    };
    deps.store.put_once(&open_sweep_key(&pipeline.name, &fresh.sweep_id), &open).await?;
    let manifest = match deps.store.put_once(&key, &fresh).await? {
        Created::Now => fresh,
        // A duplicate trigger: the first manifest is the truth.
        Created::AlreadyThere => deps.store.get("sweep manifest", &key).await?.unwrap_or(fresh),
    };
    announce_start(deps, &manifest, out).await?;
    advance(deps, &manifest, None, Pass::Event, out).await.map(|_| ())
}

/// Publishes `SweepStarted` (at least once; the reconciler repeats it for an open sweep).
pub async fn announce_start(deps: &Deps, manifest: &SweepManifest, out: &mut Outcome) -> Result<(), Error> {
    let pipeline = &manifest.pipeline;
    let event = DomainEvent::SweepStarted(SweepStarted {
        pipeline: pipeline.name.clone(),
        sweep_id: manifest.sweep_id.clone(),
        trigger: manifest.trigger.clone(),
        variants: manifest.variants.len(),
        max_parallel: manifest.max_parallel(),
        file_system_id: pipeline.file_system.id.clone(),
        file_system_type: file_system_type(pipeline).to_owned(),
        manifest: format!("s3://{}/{}", deps.store.bucket(), manifest.key()),
    });
    if deps.bus.publish_once(&deps.store, &event_scope(manifest), &event).await? {
        out.did(format!(
            "sweep {} of {} started: {} variant(s)",
            manifest.sweep_id,
            pipeline.name,
            manifest.variants.len()
        ));
    }
    Ok(())
}

/// Reads a sweep's manifest; `None` if it does not exist.
pub async fn load(deps: &Deps, pipeline: &str, sweep_id: &str) -> Result<Option<SweepManifest>, Error> {
    deps.store.get("sweep manifest", &manifest_key(pipeline, sweep_id)).await
}

/// One pass over the sweep's lanes. `fresh` is a job state from an event:
/// its end is recorded first, so the listing that follows includes it. Then
/// every lane's next job is launched and, once every variant is final, the
/// end is announced.
pub async fn advance(
    deps: &Deps,
    manifest: &SweepManifest,
    fresh: Option<JobObservation>,
    pass: Pass,
    out: &mut Outcome,
) -> Result<Progress, Error> {
    if let Some(f) = fresh.as_ref().filter(|f| f.status.is_terminal()) {
        sweep_state::record_end(&deps.store, manifest, f).await?;
    }
    let mut state = sweep_state::load(&deps.store, manifest).await?;
    if let Some(f) = &fresh {
        // The event carries the details (reason, metrics) the record's key does not.
        if let Some(job) = state.jobs.iter_mut().find(|j| j.training_job_name == f.training_job_name) {
            if f.status.is_terminal() || !job.status.is_terminal() {
                *job = JobObservation {
                    failure_class: job.failure_class,
                    ..f.clone()
                };
            }
        }
        if f.status.is_terminal() {
            sweep_state::emit_metrics(deps, manifest, f, &state.jobs).await?;
        }
    }
    announce_unrecorded(deps, manifest, &state, out).await?;
    let decision = decide(manifest, &state.jobs);
    if decision.completed.is_some() {
        complete(deps, manifest, state.jobs, out).await?;
        return Ok(Progress::Completed);
    }
    for launch in &decision.launches {
        if !self::launch(deps, manifest, &state, launch, pass, out).await? {
            return Ok(Progress::Deferred);
        }
    }
    if state.deferred {
        deferral::clear(deps, manifest).await?;
    }
    Ok(Progress::Running)
}

/// Creates one job, announces it, then records the launch. Returns false
/// when SageMaker refused it for a quota or throttling (deferred).
///
/// The invocation whose create made the job announces it. A job that was
/// already there belongs to a concurrent invocation that is announcing it
/// now, or to one that died before it could: the reconciler (or the job's
/// end, see `announce_unrecorded`) finishes that one, so concurrent
/// duplicate events do not each announce the job again.
async fn launch(
    deps: &Deps,
    manifest: &SweepManifest,
    state: &SweepState,
    launch: &Launch,
    pass: Pass,
    out: &mut Outcome,
) -> Result<bool, Error> {
    let request = match manifest.training_job(launch.position, launch.attempt) {
        Ok(r) => r,
        Err(e) => {
            let event = DomainEvent::SweepBlocked(SweepBlocked {
                pipeline: manifest.pipeline.name.clone(),
                sweep_id: Some(manifest.sweep_id.clone()),
                problems: vec![e.to_string()],
            });
            deps.bus.publish_once(&deps.store, &event_scope(manifest), &event).await?;
            out.did(format!("blocked: {e}"));
            return Ok(false);
        }
    };
    let name = request.training_job_name.clone();
    match deps.sagemaker.launch(&request).await? {
        Launched::Deferred { code, message } => {
            deferral::defer(deps, manifest, &name, &code, &message, out).await?;
            return Ok(false);
        }
        Launched::Created => out.did(format!("launched {name} (lane {}, attempt {})", launch.lane, launch.attempt)),
        Launched::AlreadyExists if pass == Pass::Event => {
            out.did(format!("{name} already launched"));
            return Ok(true);
        }
        Launched::AlreadyExists => out.did(format!("{name} was created, but its launch was never recorded")),
    }
    let retry = match &launch.retry_of {
        Some(r) => Some(retry_details(deps, manifest, state, r).await?),
        None => None,
    };
    announce(deps, manifest, &launch.variant_id, launch.lane, launch.attempt, &name, retry).await?;
    record_launch(deps, manifest, &name).await?;
    Ok(true)
}

async fn record_launch(deps: &Deps, manifest: &SweepManifest, name: &str) -> Result<(), Error> {
    let at = serde_json::json!({"launched_at": now_epoch()});
    deps.store.put_once(&launched_key(manifest, name), &at).await.map(|_| ())
}

/// A retry's previous failure as recorded, when the decision came from a listing without it.
async fn retry_details(deps: &Deps, manifest: &SweepManifest, state: &SweepState, retry: &Retry) -> Result<Retry, Error> {
    if !retry.failure_reason.is_empty() {
        return Ok(retry.clone());
    }
    let Some(previous) = state.jobs.iter().find(|j| j.training_job_name == retry.training_job_name) else {
        return Ok(retry.clone());
    };
    let record = sweep_state::end_record(&deps.store, manifest, previous).await?;
    let Some(job) = record.map(|r| r.job) else {
        return Ok(retry.clone());
    };
    let (_, why) = retrain_core::failure::classify(job.status, job.secondary_status.as_deref(), job.failure_reason.as_deref());
    Ok(Retry {
        training_job_name: retry.training_job_name.clone(),
        failure_reason: job.failure_reason.unwrap_or_default(),
        why: why.to_owned(),
    })
}

/// A job whose create took effect but whose launch record is missing (the
/// invocation died in between) and that has ended since: announce it now,
/// so its `TrainingJobLaunched` is never lost.
async fn announce_unrecorded(deps: &Deps, manifest: &SweepManifest, state: &SweepState, out: &mut Outcome) -> Result<(), Error> {
    let names = attempt_names(manifest);
    for job in state
        .jobs
        .iter()
        .filter(|j| j.status.is_terminal() && !state.launched.contains(&j.training_job_name))
    {
        let Some(&(position, attempt)) = names.get(&job.training_job_name) else {
            continue;
        };
        let retry = (attempt > 1).then(|| Retry {
            training_job_name: manifest.job_name(position, attempt - 1),
            failure_reason: String::new(),
            why: String::new(),
        });
        let retry = match retry {
            Some(r) => Some(retry_details(deps, manifest, state, &r).await?),
            None => None,
        };
        announce(
            deps,
            manifest,
            &job.variant_id,
            manifest.lane_of(position),
            attempt,
            &job.training_job_name,
            retry,
        )
        .await?;
        record_launch(deps, manifest, &job.training_job_name).await?;
        out.did(format!("announced {} late", job.training_job_name));
    }
    Ok(())
}

/// Publishes `TrainingJobLaunched` (and `VariantRetried` for a retry), at
/// least once per job, each with the job's own event id.
async fn announce(
    deps: &Deps,
    manifest: &SweepManifest,
    variant_id: &str,
    lane: usize,
    attempt: u32,
    name: &str,
    retry: Option<Retry>,
) -> Result<(), Error> {
    let scope = job_event_scope(manifest, name);
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
        deps.bus.publish_once(&deps.store, &scope, &event).await?;
    }
    deps.bus
        .publish_once(&deps.store, &scope, &DomainEvent::TrainingJobLaunched(base))
        .await?;
    Ok(())
}

/// Every variant is final: rank them once (one describe per job), write the
/// full results to S3, announce the end with the best variant and the
/// counts, then close the sweep.
async fn complete(deps: &Deps, manifest: &SweepManifest, mut jobs: Vec<JobObservation>, out: &mut Outcome) -> Result<(), Error> {
    let scope = event_scope(manifest);
    let open = open_sweep_key(&manifest.pipeline.name, &manifest.sweep_id);
    if deps.store.exists(&once_marker_key(&scope, "SweepCompleted")).await? {
        // A late duplicate: the end is out; make sure the sweep is closed.
        return deps.store.delete(&open).await;
    }
    sweep_state::describe_finished(&deps.sagemaker, &mut jobs).await?;
    let outcome = decide(manifest, &jobs).completed.unwrap_or_else(|| rank(manifest, Vec::new()));
    let key = results_key(manifest);
    deps.store.put(&key, &outcome).await?;
    let event = DomainEvent::SweepCompleted(SweepCompleted {
        pipeline: manifest.pipeline.name.clone(),
        sweep_id: manifest.sweep_id.clone(),
        best: outcome.best().cloned(),
        metric: outcome.metric.clone(),
        direction: outcome.direction,
        ranked: outcome.ranked.len(),
        unranked: outcome.unranked.len(),
        results: format!("s3://{}/{key}", deps.store.bucket()),
    });
    if deps.bus.publish_once(&deps.store, &scope, &event).await? {
        out.did(format!("sweep {} of {} completed", manifest.sweep_id, manifest.pipeline.name));
    }
    deps.store.delete(&open).await
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
    if !name.starts_with(&names::sweep_job_prefix(&manifest.pipeline.name, &manifest.sweep_id)) {
        return None;
    }
    attempt_names(manifest).get(name).map(|&(p, a)| JobObservation {
        variant_id: manifest.variants[p].id.clone(),
        attempt: a,
        training_job_name: name.to_owned(),
        status,
        secondary_status: secondary,
        failure_reason: reason,
        metrics,
        timing: None,
        failure_class: None,
    })
}
