//! Writing a finished sweep's end, one page of job records per invocation:
//! read the page's end records (what each job's event recorded), announce
//! any job whose launch was never announced, keep the page's observations
//! in `finish/part-<n>`, and hand the next page to a `sweep-finish` message.
//! The last page ranks every part, writes `results.json`, publishes
//! `SweepCompleted` and closes the sweep.
//!
//! Each page is idempotent (a part is rewritten with the same content), so
//! a redelivered or duplicated message only repeats work; the reconciler
//! starts the pages again for a sweep that stays open.

use super::sweep_state::{self, SweepState};
use super::sweeps::{announce_unrecorded, Progress};
use super::Outcome;
use crate::deps::Deps;
use crate::error::Error;
use retrain_core::events::{once_marker_key, DomainEvent, SweepCompleted};
use retrain_core::lanes::{decide, JobObservation};
use retrain_core::messages::{Message, SweepFinish};
use retrain_core::sweep::SweepManifest;
use retrain_core::sweep_records::{
    deferred_key, event_scope, finish_part_key, jobs_prefix, launched, observations, open_sweep_key, results_key, whole_jobs,
};

/// Page `part` of the sweep's end, listing after `start_after`.
pub async fn page(
    deps: &Deps,
    manifest: &SweepManifest,
    part: u32,
    start_after: Option<&str>,
    out: &mut Outcome,
) -> Result<Progress, Error> {
    let scope = event_scope(manifest);
    let open = open_sweep_key(&manifest.pipeline.name, &manifest.sweep_id);
    if part == 0 && deps.store.exists(&once_marker_key(&scope, "SweepCompleted")).await? {
        // A late duplicate, or the reconciler: the end is out; finish a
        // registration left open and make sure the sweep is closed.
        // Boxed: the registration's future is large and this one is nested deep.
        Box::pin(super::register::after_sweep(deps, manifest, None, out)).await?;
        deps.store.delete(&open).await?;
        return Ok(Progress::Completed);
    }
    let (keys, truncated) = deps
        .store
        .list_page(&jobs_prefix(manifest), start_after, deps.settings.finish_page_keys)
        .await?;
    let (keys, next) = whole_jobs(manifest, &keys, truncated);
    let mut jobs = observations(manifest, keys);
    for job in jobs.iter_mut().filter(|j| j.status.is_terminal()) {
        if let Some(record) = sweep_state::end_record(&deps.store, manifest, job).await? {
            // The key's status and class are the truth; the body adds the details.
            *job = JobObservation {
                status: job.status,
                failure_class: job.failure_class,
                ..record.job
            };
        }
    }
    let state = SweepState {
        jobs,
        launched: launched(manifest, keys),
        deferred: keys.contains(&deferred_key(manifest)),
        last_change: 0,
    };
    announce_unrecorded(deps, manifest, &state, out).await?;
    let mut jobs = state.jobs;
    if let Some(next) = next {
        deps.store.put(&finish_part_key(manifest, part), &jobs).await?;
        let message = Message::SweepFinish(SweepFinish {
            pipeline: manifest.pipeline.name.clone(),
            sweep_id: manifest.sweep_id.clone(),
            part: part + 1,
            start_after: Some(next),
        });
        deps.timers.arm(&deps.settings.tick_queue_url, &message, 0).await?;
        out.did(format!("sweep {}: results page {part} written", manifest.sweep_id));
        return Ok(Progress::Running);
    }
    for earlier in 0..part {
        let kept: Option<Vec<JobObservation>> = deps.store.get("sweep results page", &finish_part_key(manifest, earlier)).await?;
        jobs.extend(kept.unwrap_or_default());
    }
    let Some(outcome) = decide(manifest, &jobs).completed else {
        // Pages from before a relaunch: the lanes are not all final. The
        // reconciler drives the sweep on and writes its end afresh.
        out.did(format!("sweep {}: not every variant is final yet", manifest.sweep_id));
        return Ok(Progress::Running);
    };
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
        data_version: manifest.data_version(),
        // Every attempt counts, not only each variant's last.
        instance_hours: retrain_core::budget::used(manifest, &jobs),
        spot_savings: retrain_core::budget::spot_savings(&jobs),
    });
    if deps.publish_once(&scope, &event).await? {
        out.did(format!("sweep {} of {} completed", manifest.sweep_id, manifest.pipeline.name));
    }
    Box::pin(super::register::after_sweep(deps, manifest, Some(&outcome), out)).await?;
    deps.store.delete(&open).await?;
    Ok(Progress::Completed)
}
