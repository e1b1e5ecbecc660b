//! Launches refused for a quota (`ResourceLimitExceeded`) or throttling:
//! never dropped, one tick chain per sweep with backoff, announced once, and
//! blocked after `sweep.max_queue_seconds`.

use super::now_epoch;
use super::Outcome;
use crate::adapters::store::Created;
use crate::deps::Deps;
use crate::error::Error;
use retrain_core::events::{DomainEvent, LaunchDeferred, SweepBlocked};
use retrain_core::messages::{tick_delay, Message, SweepTick};
use retrain_core::sweep::SweepManifest;
use retrain_core::sweep_records::{deferred_key, event_scope, tick_marker_key};
use serde::{Deserialize, Serialize};

/// `.../jobs/deferred.json`: the first refusal of the current wait.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deferred {
    pub since: u64,
    pub training_job_name: String,
    pub code: String,
    pub message: String,
}

/// What to raise, for each refusal SageMaker gives.
fn fix_for(code: &str, manifest: &SweepManifest) -> String {
    let quotas: Vec<String> = manifest
        .instances()
        .iter()
        .map(|i| format!("\"{} for training job usage\"", i.instance_type))
        .collect();
    match code {
        "ResourceLimitExceeded" => format!(
            "raise the SageMaker quota {} (or \"Number of instances across all training jobs\") in Service Quotas, add a type to training.instance_types, or lower sweep.max_parallel; the launch is retried until then",
            quotas.join(" or ")
        ),
        _ => "SageMaker throttled the launch: it is retried with backoff".to_owned(),
    }
}

/// Records that a launch was refused; the first refusal of a wait starts the
/// sweep's one tick chain and announces `LaunchDeferred`. After
/// `max_queue_seconds` the sweep is blocked (the reconciler keeps trying, so
/// a raised quota lets it go on).
pub async fn defer(deps: &Deps, manifest: &SweepManifest, name: &str, code: &str, message: &str, out: &mut Outcome) -> Result<(), Error> {
    let record = Deferred {
        since: now_epoch(),
        training_job_name: name.to_owned(),
        code: code.to_owned(),
        message: message.to_owned(),
    };
    let key = deferred_key(manifest);
    let (record, first) = match deps.store.put_once(&key, &record).await? {
        Created::Now => (record, true),
        Created::AlreadyThere => (deps.store.get("launch deferral", &key).await?.unwrap_or(record), false),
    };
    if first {
        arm(deps, manifest, record.since, 0).await?;
    }
    let scope = format!("{}/deferred/{}", event_scope(manifest), record.since);
    let limit = manifest.pipeline.sweep.max_queue_seconds;
    let event = DomainEvent::LaunchDeferred(LaunchDeferred {
        pipeline: manifest.pipeline.name.clone(),
        sweep_id: manifest.sweep_id.clone(),
        training_job_name: record.training_job_name.clone(),
        code: record.code.clone(),
        message: record.message.clone(),
        fix: fix_for(&record.code, manifest),
        since: record.since,
        gives_up_at: record.since + limit,
    });
    deps.publish_once(&scope, &event).await?;
    let waited = now_epoch().saturating_sub(record.since);
    if waited > limit {
        let event = DomainEvent::SweepBlocked(SweepBlocked {
            pipeline: manifest.pipeline.name.clone(),
            sweep_id: Some(manifest.sweep_id.clone()),
            problems: vec![format!(
                "training job {} could not be launched for {waited} s ({}: {}) — fix: {}; or raise sweep.max_queue_seconds ({limit})",
                record.training_job_name,
                record.code,
                record.message,
                fix_for(&record.code, manifest)
            )],
        });
        deps.publish_once(&scope, &event).await?;
    }
    out.did(format!("{name} deferred ({code}: {message}), waiting since {}", record.since));
    Ok(())
}

/// The launch went through: the wait is over, and its chain stops at its next tick.
pub async fn clear(deps: &Deps, manifest: &SweepManifest) -> Result<(), Error> {
    deps.store.delete(&deferred_key(manifest)).await
}

/// After a tick found the launch still refused: arms the chain's next tick,
/// once per tick number, unless the chain is stale or the wait has expired.
pub async fn next_tick(deps: &Deps, manifest: &SweepManifest, tick: &SweepTick) -> Result<(), Error> {
    let Some(record) = deps.store.get::<Deferred>("launch deferral", &deferred_key(manifest)).await? else {
        return Ok(());
    };
    // A tick of an earlier wait: the current wait has a chain of its own.
    if tick.since.is_some_and(|s| s != record.since) {
        return Ok(());
    }
    if now_epoch().saturating_sub(record.since) > manifest.pipeline.sweep.max_queue_seconds {
        return Ok(());
    }
    arm(deps, manifest, record.since, tick.ticks + 1).await
}

async fn arm(deps: &Deps, manifest: &SweepManifest, since: u64, ticks: u32) -> Result<(), Error> {
    if deps.store.put_once(&tick_marker_key(manifest, since, ticks), &ticks).await? == Created::AlreadyThere {
        return Ok(());
    }
    let tick = Message::SweepTick(SweepTick {
        pipeline: manifest.pipeline.name.clone(),
        sweep_id: manifest.sweep_id.clone(),
        ticks,
        since: Some(since),
    });
    deps.timers.arm(&deps.settings.tick_queue_url, &tick, tick_delay(ticks)).await
}
