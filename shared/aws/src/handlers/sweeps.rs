//! Starting a sweep and running its lanes: shared by start-sweep,
//! on-training and the reconciler.
//!
//! Every step is ordered so that a retry finishes it: the open marker before
//! the manifest, a job's end record before its lane moves on, the launch
//! marker only after `CreateTrainingJob` took effect and was announced, and
//! the sweep closed only after `SweepCompleted` is out.

use super::sweep_state::{self, SweepState};
use super::{deferral, now_epoch, Outcome, Pass};
use crate::adapters::sagemaker::Launched;
use crate::adapters::store::Created;
use crate::deps::Deps;
use crate::error::Error;
use retrain_core::config::Pipeline;
use retrain_core::events::{DomainEvent, JobLaunched, SweepBlocked, SweepStarted, VariantRetried};
use retrain_core::failure::JobStatus;
use retrain_core::lanes::{decide, JobObservation, Launch, Retry};
use retrain_core::names;
use retrain_core::requests::{CreateTrainingJob, Tag};
use retrain_core::sweep::{SweepManifest, SweepTrigger};
use retrain_core::sweep_records::{event_scope, job_event_scope, open_sweep_key};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

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
            return deps.publish(&event, &event.content_id()).await;
        }
    };
    let mut fresh = fresh;
    let key = fresh.key();
    if deps.store.get::<serde_json::Value>("sweep manifest", &key).await?.is_none() {
        fresh.data_version = Some(super::lineage::of_new_sweep(deps, &pipeline.name, &fresh.trigger).await?);
        // Fail before spending money: nothing launches while a check fails.
        let checked = deps.preflight(pipeline).await?;
        let problems = checked.problems();
        let warnings = checked.warnings();
        for warning in &warnings {
            tracing::warn!(pipeline = %pipeline.name, sweep_id = %fresh.sweep_id, %warning, "preflight warning");
            out.did(format!("warning: {warning}"));
        }
        // The types that can run, in order: skipped ones are never tried.
        fresh.warnings = warnings;
        fresh.instances = checked.instances;
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
            deps.publish_once(&event_scope(&fresh), &event).await?;
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
    // The manifest names its imports now: the next sweep's data version starts after them.
    super::lineage::retire_swept(deps, &manifest).await?;
    announce_start(deps, &manifest, out).await?;
    advance(deps, &manifest, Pass::Event, out).await.map(|_| ())
}

/// Publishes `SweepStarted` (at least once; the reconciler repeats it for an open sweep).
pub async fn announce_start(deps: &Deps, manifest: &SweepManifest, out: &mut Outcome) -> Result<(), Error> {
    let pipeline = &manifest.pipeline;
    let event = DomainEvent::SweepStarted(SweepStarted::of(
        manifest,
        format!("s3://{}/{}", deps.store.bucket(), manifest.key()),
    ));
    if deps.publish_once(&event_scope(manifest), &event).await? {
        out.did(format!(
            "sweep {} of {} started: {} variant(s)",
            manifest.sweep_id,
            pipeline.name,
            manifest.variants.len()
        ));
    }
    Ok(())
}

/// Reads a sweep's manifest (once per cold start); `None` if it does not exist.
pub async fn load(deps: &Deps, pipeline: &str, sweep_id: &str) -> Result<Option<Arc<SweepManifest>>, Error> {
    deps.manifest(pipeline, sweep_id).await
}

/// One pass over every lane from a listing of the sweep's records (a start,
/// a relaunch tick, the reconciler): announce what was created but never
/// announced, launch every lane's next job and, once every variant is
/// final, write the end. State-change events take the cheaper path of
/// [`super::job_end`].
pub async fn advance(deps: &Deps, manifest: &SweepManifest, pass: Pass, out: &mut Outcome) -> Result<Progress, Error> {
    let state = sweep_state::load(&deps.store, manifest).await?;
    advance_from(deps, manifest, &state, pass, out).await
}

/// [`advance`] from a listing the caller already made.
pub async fn advance_from(
    deps: &Deps,
    manifest: &SweepManifest,
    state: &SweepState,
    pass: Pass,
    out: &mut Outcome,
) -> Result<Progress, Error> {
    announce_unrecorded(deps, manifest, state, out).await?;
    let decision = decide(manifest, &state.jobs);
    if decision.completed.is_some() {
        return super::finish::page(deps, manifest, 0, None, out).await;
    }
    for launch in &decision.launches {
        match self::launch(deps, manifest, &state.jobs, launch, pass, out).await? {
            LaunchResult::Made => {}
            LaunchResult::Deferred => return Ok(Progress::Deferred),
            // The lane goes on past the skipped variant, as after any final end.
            LaunchResult::Skipped { job, first } => match Box::pin(super::job_end::next_in_lane(deps, manifest, *job, first, out)).await? {
                Progress::Running => {}
                other => return Ok(other),
            },
        }
    }
    if state.deferred {
        deferral::clear(deps, manifest).await?;
    }
    Ok(Progress::Running)
}

/// What became of one launch.
#[derive(Debug, Clone, PartialEq)]
pub enum LaunchResult {
    /// Created (now or before) and announced.
    Made,
    /// SageMaker refused it for a quota or throttling, or the sweep is blocked.
    Deferred,
    /// It did not fit `sweep.max_instance_hours`: its end is recorded as `Skipped`.
    Skipped { job: Box<JobObservation>, first: bool },
}

/// Creates one job, then announces it: its `TrainingJobLaunched` marker is
/// the record that the launch is complete. A capped sweep first takes the
/// job's slot in the budget ledger. `jobs` are the ended jobs known to the
/// caller (a retry names its predecessor's failure).
///
/// The invocation whose create made the job announces it. A job that was
/// already there belongs to a concurrent invocation that is announcing it
/// now, or to one that died before it could: the reconciler (or the
/// sweep's end, see `announce_unrecorded`) finishes that one, so concurrent
/// duplicate events do not each announce the job again.
pub async fn launch(
    deps: &Deps,
    manifest: &SweepManifest,
    jobs: &[JobObservation],
    launch: &Launch,
    pass: Pass,
    out: &mut Outcome,
) -> Result<LaunchResult, Error> {
    let mut request = match manifest.launch_request(launch) {
        Ok(r) => r,
        Err(e) => {
            let event = DomainEvent::SweepBlocked(SweepBlocked {
                pipeline: manifest.pipeline.name.clone(),
                sweep_id: Some(manifest.sweep_id.clone()),
                problems: vec![e.to_string()],
            });
            deps.publish_once(&event_scope(manifest), &event).await?;
            out.did(format!("blocked: {e}"));
            return Ok(LaunchResult::Deferred);
        }
    };
    // Boxed: the ledger's reads would otherwise grow every caller's future (and stack) by their size.
    if let super::budget::Admission::Skipped { job, first } = Box::pin(super::budget::admit(deps, manifest, launch)).await? {
        out.did(format!("skipped {} for budget", job.training_job_name));
        return Ok(LaunchResult::Skipped { job, first });
    }
    if let Some(point) = super::suggestions::point(deps, manifest, launch.position).await? {
        request.hyper_parameters.extend(retrain_core::search::hyperparameters(&point));
    }
    if let Some(after) = &launch.after {
        request.tags.push(Tag {
            key: names::TAG_AFTER.to_owned(),
            value: after.clone(),
        });
    }
    // The stack's IAM policy allows the create only with this tag (aws:RequestTag).
    if let Some(stack) = &deps.settings.stack_name {
        request.tags.push(Tag {
            key: names::TAG_STACK.to_owned(),
            value: stack.clone(),
        });
    }
    let name = request.training_job_name.clone();
    let fresh = match create_on_some_type(deps, manifest, launch, &mut request, out).await? {
        Launched::Deferred { code, message } => {
            deferral::defer(deps, manifest, &name, &code, &message, out).await?;
            return Ok(LaunchResult::Deferred);
        }
        Launched::Created => {
            out.did(format!(
                "launched {name} on {} (lane {}, attempt {})",
                request.resource_config.instance_type, launch.lane, launch.attempt
            ));
            true
        }
        Launched::AlreadyExists if pass == Pass::Event => {
            out.did(format!("{name} already launched"));
            return Ok(LaunchResult::Made);
        }
        Launched::AlreadyExists => {
            out.did(format!("{name} was created, but its launch was never announced"));
            false
        }
    };
    let retry = match &launch.retry_of {
        Some(r) => Some(retry_details(deps, manifest, jobs, r).await?),
        None => None,
    };
    // A job that was already there may have been created on another type: SageMaker knows which.
    let instance_type = match fresh {
        true => Some(request.resource_config.instance_type.clone()),
        false => deps.sagemaker.describe(&name).await?.instance_type,
    };
    let announced = Announced {
        variant_id: &launch.variant_id,
        lane: launch.lane,
        attempt: launch.attempt,
        name: &name,
        instance_type,
    };
    announce(deps, manifest, announced, retry, fresh).await?;
    Ok(LaunchResult::Made)
}

/// Creates the job on the launch's instance type or, when that type's quota
/// refuses it (`ResourceLimitExceeded`), on the next types in order at once.
/// Every type gets the same job name, so at most one of them is ever
/// created, whichever reply is lost. Only when every type refuses is the
/// launch deferred, naming each refusal.
async fn create_on_some_type(
    deps: &Deps,
    manifest: &SweepManifest,
    launch: &Launch,
    request: &mut CreateTrainingJob,
    out: &mut Outcome,
) -> Result<Launched, Error> {
    let count = manifest.instances().len().max(1);
    let mut refusals = Vec::new();
    for k in 0..count {
        request.resource_config = manifest.resource_config(launch.choice + k);
        let launched = deps.sagemaker.launch(request).await?;
        let Launched::Deferred { code, message } = &launched else {
            return Ok(launched);
        };
        if code != "ResourceLimitExceeded" {
            return Ok(launched);
        }
        let instance_type = &request.resource_config.instance_type;
        out.did(format!(
            "{} refused on {instance_type} ({code}: {message})",
            request.training_job_name
        ));
        refusals.push(format!("{instance_type}: {message}"));
    }
    Ok(Launched::Deferred {
        code: "ResourceLimitExceeded".to_owned(),
        message: format!("every instance type refused the launch ({})", refusals.join("; ")),
    })
}

/// A retry's previous failure as recorded, when the decision came from a listing without it.
async fn retry_details(deps: &Deps, manifest: &SweepManifest, jobs: &[JobObservation], retry: &Retry) -> Result<Retry, Error> {
    if !retry.failure_reason.is_empty() {
        return Ok(retry.clone());
    }
    let Some(previous) = jobs.iter().find(|j| j.training_job_name == retry.training_job_name) else {
        return Ok(retry.clone());
    };
    let job = match previous.failure_reason {
        Some(_) => previous.clone(),
        None => match sweep_state::end_record(&deps.store, manifest, previous).await? {
            Some(r) => r.job,
            None => return Ok(retry.clone()),
        },
    };
    let (_, why) = retrain_core::failure::classify(job.status, job.secondary_status.as_deref(), job.failure_reason.as_deref());
    Ok(Retry {
        training_job_name: retry.training_job_name.clone(),
        failure_reason: job.failure_reason.unwrap_or_default(),
        why: why.to_owned(),
        instance_type: job.instance_type.or(retry.instance_type.clone()),
        next_instance_type: retry.next_instance_type.clone(),
    })
}

/// Jobs whose create took effect but whose announcement is missing (the
/// invocation died in between) and that have ended since: announce them
/// now, so no `TrainingJobLaunched` is ever lost.
pub async fn announce_unrecorded(deps: &Deps, manifest: &SweepManifest, state: &SweepState, out: &mut Outcome) -> Result<(), Error> {
    for job in state
        .jobs
        .iter()
        .filter(|j| j.status.is_terminal() && j.status != JobStatus::Skipped && !state.launched.contains(&j.training_job_name))
    {
        let Some(position) = manifest.position_of(&job.variant_id) else {
            continue;
        };
        let retry = (job.attempt > 1).then(|| Retry {
            training_job_name: manifest.job_name(position, job.attempt - 1),
            failure_reason: String::new(),
            why: String::new(),
            instance_type: None,
            next_instance_type: job.instance_type.clone(),
        });
        let retry = match retry {
            Some(r) => Some(retry_details(deps, manifest, &state.jobs, &r).await?),
            None => None,
        };
        let announced = Announced {
            variant_id: &job.variant_id,
            lane: manifest.lane_of(position),
            attempt: job.attempt,
            name: &job.training_job_name,
            instance_type: job.instance_type.clone(),
        };
        announce(deps, manifest, announced, retry, false).await?;
        out.did(format!("announced {} late", job.training_job_name));
    }
    Ok(())
}

/// Publishes `TrainingJobLaunched` (and `VariantRetried` for a retry), at
/// least once per job, each with the job's own event id. `fresh`: this
/// invocation's create made the job, so nobody can have announced it yet
/// and both go out in one `PutEvents` without looking for the markers.
async fn announce(deps: &Deps, manifest: &SweepManifest, job: Announced<'_>, retry: Option<Retry>, fresh: bool) -> Result<(), Error> {
    let scope = job_event_scope(manifest, job.name);
    let base = JobLaunched {
        pipeline: manifest.pipeline.name.clone(),
        sweep_id: manifest.sweep_id.clone(),
        variant_id: job.variant_id.to_owned(),
        lane: job.lane,
        attempt: job.attempt,
        training_job_name: job.name.to_owned(),
        instance_type: job.instance_type.clone(),
    };
    let mut events = Vec::with_capacity(2);
    if let Some(retry) = retry {
        events.push(DomainEvent::VariantRetried(VariantRetried {
            pipeline: base.pipeline.clone(),
            sweep_id: base.sweep_id.clone(),
            variant_id: base.variant_id.clone(),
            lane: job.lane,
            attempt: job.attempt,
            training_job_name: job.name.to_owned(),
            previous_training_job_name: retry.training_job_name,
            failure_reason: retry.failure_reason,
            why: retry.why,
            previous_instance_type: retry.instance_type,
            instance_type: job.instance_type.or(retry.next_instance_type),
        }));
    }
    // Last, so its marker (the launch record) means both are out.
    events.push(DomainEvent::TrainingJobLaunched(base));
    if fresh {
        return deps.publish_new(&scope, &events).await;
    }
    for event in &events {
        deps.publish_once(&scope, event).await?;
    }
    Ok(())
}

/// The job a `TrainingJobLaunched` announces.
struct Announced<'a> {
    variant_id: &'a str,
    lane: usize,
    attempt: u32,
    name: &'a str,
    instance_type: Option<String>,
}

/// What an event or `DescribeTrainingJob` says of a job that ended.
pub struct Ended {
    pub status: JobStatus,
    pub secondary: Option<String>,
    pub reason: Option<String>,
    pub metrics: Vec<(String, f64)>,
    pub instance_type: Option<String>,
}

/// A job state from an event, if it belongs to the manifest.
pub fn observation(manifest: &SweepManifest, name: &str, ended: Ended) -> Option<JobObservation> {
    let (position, attempt) = attempt_of(manifest, name)?;
    Some(JobObservation {
        variant_id: manifest.variants[position].id.clone(),
        attempt,
        training_job_name: name.to_owned(),
        status: ended.status,
        secondary_status: ended.secondary,
        failure_reason: ended.reason,
        metrics: ended.metrics,
        timing: None,
        failure_class: None,
        instance_type: ended.instance_type,
        capacity_failures: 0,
    })
}

/// Variant position and attempt of one of the sweep's job names.
fn attempt_of(manifest: &SweepManifest, name: &str) -> Option<(usize, u32)> {
    if !name.starts_with(&names::sweep_job_prefix(&manifest.pipeline.name, &manifest.sweep_id)) {
        return None;
    }
    let max_attempts = manifest.max_attempts();
    // The attempt ends the name unless a long name was shortened with a hash.
    let hinted = name
        .rsplit_once("-a")
        .and_then(|(_, a)| a.parse::<u32>().ok())
        .filter(|a| (1..=max_attempts).contains(a));
    let attempts: Vec<u32> = match hinted {
        Some(a) => vec![a],
        None => (1..=max_attempts).collect(),
    };
    attempts.into_iter().find_map(|a| {
        (0..manifest.variants.len())
            .find(|&p| manifest.job_name(p, a) == name)
            .map(|p| (p, a))
    })
}
