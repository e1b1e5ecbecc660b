//! reconcile: the scheduled, level-triggered pass. Events move the loop
//! fast; this pass keeps it alive when an event, a timer or an invocation
//! was lost. It looks only at what is open (pending uploads, open imports,
//! open sweeps), drives each forward with the same steps the event path
//! uses, says once what is stuck, and emits the stall metrics.

use super::imports::{announce_started, start_covering_import};
use super::on_import::check;
use super::sweep_state;
use super::sweep_state::SweepState;
use super::sweeps::{advance_from, announce_start, load, Progress};
use super::{now_epoch, Outcome, Pass};
use crate::deps::Deps;
use crate::error::Error;
use retrain_core::config::FileSystemKind;
use retrain_core::events::{DomainEvent, ImportStalled, SweepStalled};
use retrain_core::failure::JobStatus;
use retrain_core::import_plan::{import_record_key, open_imports_prefix, ImportRecord};
use retrain_core::messages::ImportWatch;
use retrain_core::pending::{parse_pending_key, pending_prefix};
use retrain_core::sweep::SweepManifest;
use retrain_core::sweep_records::{event_scope, open_sweeps_prefix, parse_open_sweep_key};
use retrain_core::telemetry::{open_work_emf, OpenWork};
use std::collections::BTreeSet;

/// An open-sweep marker with no manifest this long after it was written is
/// a start that died before its manifest: its trigger's retry writes both.
const ORPHAN_OPEN_MARKER_SECONDS: u64 = 3_600;

/// One pass over everything open. Any payload (the schedule's event) runs it.
pub async fn handle(deps: &Deps, _payload: &serde_json::Value) -> Result<serde_json::Value, Error> {
    let mut out = Outcome::default();
    let mut fatal = None;
    let mut work = OpenWork::default();
    let mut file_systems: BTreeSet<&str> = BTreeSet::new();
    for p in deps
        .config
        .pipelines
        .iter()
        .filter(|p| p.file_system.kind == FileSystemKind::FsxLustre)
    {
        file_systems.insert(&p.file_system.id);
    }
    // One stuck part never keeps the others from being driven.
    for fs in file_systems {
        if let Err(e) = imports(deps, fs, &mut work, &mut out).await {
            out.failed(&BTreeSet::from([None]), e, &mut fatal);
        }
    }
    match deps.store.list(open_sweeps_prefix()).await {
        Ok(keys) => {
            for (pipeline, sweep_id) in keys.iter().filter_map(|k| parse_open_sweep_key(k)) {
                work.open_sweeps += 1;
                if let Err(e) = sweep(deps, &pipeline, &sweep_id, &mut work, &mut out).await {
                    out.failed(&BTreeSet::from([None]), e, &mut fatal);
                }
            }
        }
        Err(e) => out.failed(&BTreeSet::from([None]), e, &mut fatal),
    }
    deps.metrics.emit(&open_work_emf(&work, now_epoch() * 1000));
    out.did(format!("open work: {work:?}"));
    out.finish(fatal)
}

/// A file system's open imports, then its pending uploads.
async fn imports(deps: &Deps, fs: &str, work: &mut OpenWork, out: &mut Outcome) -> Result<(), Error> {
    for key in deps.store.list(&open_imports_prefix(fs)).await? {
        let Some(task_id) = key.strip_prefix(&open_imports_prefix(fs)) else {
            continue;
        };
        if let Some(record) = deps.store.get::<ImportRecord>("import record", &import_record_key(task_id)).await? {
            announce_started(deps, &record).await?;
        }
        let watch = ImportWatch {
            file_system_id: fs.to_owned(),
            task_id: task_id.to_owned(),
            polls: 0,
            chain: None,
        };
        check(deps, &watch, Pass::Reconciler, out).await?;
    }
    let pending = deps.store.list_with_times(&pending_prefix(fs)).await?;
    let Some((oldest_key, oldest)) = pending.iter().min_by_key(|(_, t)| *t).cloned() else {
        return Ok(());
    };
    if deps.store.list(&open_imports_prefix(fs)).await?.is_empty() {
        // Uploads that no import covers or watches: their import now.
        let started = start_covering_import(deps, fs, 1).await?;
        out.did(format!(
            "{} pending upload entr(ies) on {fs} had no import: {started:?}",
            pending.len()
        ));
    }
    let now = now_epoch();
    let age = now.saturating_sub(oldest);
    work.oldest_pending_upload_seconds = work.oldest_pending_upload_seconds.max(age);
    let settings = super::imports::settings_for(deps, fs);
    if age > settings.max_wait_seconds {
        work.imports_stalled += 1;
        let running = deps.fsx.running_task(fs).await?;
        let pipelines: BTreeSet<String> = deps
            .config
            .pipelines
            .iter()
            .filter(|p| p.file_system.id == fs)
            .map(|p| p.name.clone())
            .collect();
        let event = DomainEvent::ImportStalled(ImportStalled {
            file_system_id: fs.to_owned(),
            task_id: running.as_ref().map(|t| t.task_id.clone()),
            pipelines: pipelines.into_iter().collect(),
            since: oldest,
            pending_entries: pending.len(),
            problem: format!(
                "{} upload batch(es) on {fs} have waited {age} s for an import ({})",
                pending.len(),
                running
                    .as_ref()
                    .map(|t| format!("task {} is {}", t.task_id, t.lifecycle))
                    .unwrap_or_else(|| "the last import of them failed, or none could start".to_owned())
            ),
            fix: "look at the file system's data repository tasks in the FSx console (DataImportFailed names the failure); fix the cause and the next pass imports them, or raise import.max_wait_seconds".to_owned(),
        });
        let entry = parse_pending_key(fs, &oldest_key).map(|l| l.id().to_owned()).unwrap_or_default();
        deps.publish_once(&format!("imports/stalled/{fs}/{entry}"), &event).await?;
    }
    Ok(())
}

/// One open sweep: recover lost state changes, drive its lanes, report a stall.
async fn sweep(deps: &Deps, pipeline: &str, sweep_id: &str, work: &mut OpenWork, out: &mut Outcome) -> Result<(), Error> {
    let Some(manifest) = load(deps, pipeline, sweep_id).await? else {
        let key = retrain_core::sweep_records::open_sweep_key(pipeline, sweep_id);
        let opened = deps.store.get::<super::sweeps::OpenSweep>("open sweep", &key).await?;
        if opened.is_some_and(|o| now_epoch().saturating_sub(o.opened_at) > ORPHAN_OPEN_MARKER_SECONDS) {
            deps.store.delete(&key).await?;
        }
        return Ok(());
    };
    announce_start(deps, &manifest, out).await?;
    let mut state = sweep_state::load(&deps.store, &manifest).await?;
    // A state change whose event never arrived: SageMaker has the truth.
    let mut recovered = false;
    for job in state.jobs.iter().filter(|j| j.status == JobStatus::InProgress) {
        let d = deps.sagemaker.describe(&job.training_job_name).await?;
        if d.status.is_terminal() {
            let timing = d.timing(false);
            let end = super::sweeps::Ended {
                status: d.status,
                secondary: d.secondary_status,
                reason: d.failure_reason,
                metrics: d.metrics,
                instance_type: d.instance_type,
            };
            let ended = super::sweeps::observation(&manifest, &d.name, end);
            if let Some(mut ended) = ended {
                ended.timing = Some(timing);
                sweep_state::record_end(&deps.store, &manifest, &mut ended).await?;
                out.did(format!("recovered the end of {} ({:?})", d.name, d.status));
                recovered = true;
            }
        }
    }
    if recovered {
        state = sweep_state::load(&deps.store, &manifest).await?;
    }
    let before = out.done.len();
    if advance_from(deps, &manifest, &state, Pass::Reconciler, out).await? == Progress::Completed {
        return Ok(());
    }
    // This very pass moved the sweep (a launch, an announcement): not stalled.
    if recovered || out.done.len() > before {
        return Ok(());
    }
    stall(deps, &manifest, &state, work).await
}

/// `SweepStalled` once when nothing of the sweep moved for `stall_after_seconds`.
async fn stall(deps: &Deps, manifest: &SweepManifest, state: &SweepState, work: &mut OpenWork) -> Result<(), Error> {
    let opened = deps
        .store
        .get::<super::sweeps::OpenSweep>(
            "open sweep",
            &retrain_core::sweep_records::open_sweep_key(&manifest.pipeline.name, &manifest.sweep_id),
        )
        .await?
        .map(|o| o.opened_at)
        .unwrap_or(0);
    let last = state.last_change.max(opened);
    let limit = manifest
        .pipeline
        .sweep
        .stall_after_seconds
        .unwrap_or(manifest.pipeline.training.max_runtime_seconds + 3_600);
    let idle = now_epoch().saturating_sub(last);
    if idle <= limit {
        return Ok(());
    }
    work.sweeps_stalled += 1;
    let waiting_for: Vec<String> = state
        .jobs
        .iter()
        .filter(|j| !j.status.is_terminal())
        .map(|j| j.training_job_name.clone())
        .collect();
    let event = DomainEvent::SweepStalled(SweepStalled {
        pipeline: manifest.pipeline.name.clone(),
        sweep_id: manifest.sweep_id.clone(),
        since: last,
        problem: if state.deferred {
            format!("no launch could be made for {idle} s: SageMaker keeps refusing it (see LaunchDeferred)")
        } else {
            format!("no job of the sweep changed state for {idle} s; it waits for {waiting_for:?}")
        },
        fix: "check the jobs in the SageMaker console (a job stuck in Stopping, a quota, a training plan); stop a stuck job and the sweep goes on, or raise sweep.stall_after_seconds".to_owned(),
        waiting_for,
    });
    deps.publish_once(&format!("{}/stalled/{last}", event_scope(manifest)), &event)
        .await?;
    Ok(())
}
