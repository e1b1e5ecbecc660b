//! on-import: the watch timer of an import task. Running → re-arm with
//! capped backoff (and `ImportStalled` once, past `max_wait_seconds`; the
//! watch never gives up); succeeded → retire its entries, start the
//! follow-up, announce completion (which starts the settled pipelines'
//! sweeps); failed or canceled → retry, or block. A task retrain did not
//! start is watched too: when it ends, whatever is pending gets its import.

use super::imports::{
    arm_watch, pending, pipelines_of, settings_for, start_covering_import, start_import_of, touch_lease, watch_alive, Pending, Started,
};
use super::{now_epoch, Outcome, Pass};
use crate::adapters::fsx::TaskState;
use crate::adapters::store::Created;
use crate::deps::Deps;
use crate::error::Error;
use retrain_core::events::{DomainEvent, ImportCompleted, ImportFailed, ImportStalled, SweepBlocked};
use retrain_core::import_plan::{import_record_key, open_import_key, waiting_key, watch_link_key, ImportRecord};
use retrain_core::inbound::{decode, Inbound};
use retrain_core::messages::{watch_delay, ImportWatch, Message};
use retrain_core::pending::imported_index_key;
use std::collections::BTreeSet;
use tracing::info;

pub async fn handle(deps: &Deps, payload: &serde_json::Value) -> Result<serde_json::Value, Error> {
    let decoded = decode(payload);
    let mut out = Outcome::from_decoded(&decoded);
    let mut fatal = None;
    for item in &decoded.items {
        let ids = BTreeSet::from([item.message_id.clone()]);
        match &item.event {
            Inbound::Message(Message::ImportWatch(w)) => {
                if let Err(e) = check(deps, w, Pass::Event, &mut out).await {
                    out.failed(&ids, e, &mut fatal);
                }
            }
            _ => out.did(format!("ignored {:?}: on-import takes import-watch messages", item.message_id)),
        }
    }
    out.finish(fatal)
}

/// Looks at one import task and does what its state calls for. Its watch
/// timer (`Pass::Event`) re-arms the next poll while the task runs; the
/// reconciler arms a watch only if the task's chain died.
pub async fn check(deps: &Deps, w: &ImportWatch, pass: Pass, out: &mut Outcome) -> Result<(), Error> {
    let fs = &w.file_system_id;
    let Some(task) = deps.fsx.task(&w.task_id).await? else {
        out.did(format!("task {} is gone; importing what is pending on {fs}", w.task_id));
        let started = start_covering_import(deps, fs, 1).await?;
        return release(deps, fs, &w.task_id, started == Started::Nothing, out).await;
    };
    let record: Option<ImportRecord> = deps.store.get("import record", &import_record_key(&w.task_id)).await?;
    match task.lifecycle.as_str() {
        // Boxed: each outcome's future is large; inline, the check's would be their sum.
        _ if task.is_running() => Box::pin(running(deps, w, &task, record.as_ref(), pass, out)).await?,
        "SUCCEEDED" => Box::pin(succeeded(deps, w, record.as_ref(), out)).await?,
        _ => Box::pin(ended_badly(deps, w, &task, record.as_ref(), out)).await?,
    }
    Ok(())
}

async fn running(
    deps: &Deps,
    w: &ImportWatch,
    task: &TaskState,
    record: Option<&ImportRecord>,
    pass: Pass,
    out: &mut Outcome,
) -> Result<(), Error> {
    let fs = &w.file_system_id;
    let settings = settings_for(deps, fs);
    if let Some(r) = record {
        let waited = now_epoch().saturating_sub(r.started_at);
        if waited > settings.max_wait_seconds {
            let event = DomainEvent::ImportStalled(ImportStalled {
                file_system_id: fs.clone(),
                task_id: Some(w.task_id.clone()),
                pipelines: r.pipelines.iter().cloned().collect(),
                since: r.started_at,
                pending_entries: r.entries.len(),
                problem: format!("import {} on {fs} is still {} after {waited} s", w.task_id, task.lifecycle),
                fix: format!(
                    "check the task in the FSx console (a very large prefix, or a file system under load); retrain keeps watching, and raise import.max_wait_seconds ({}) if imports this long are normal",
                    settings.max_wait_seconds
                ),
            });
            deps.publish_once(&format!("imports/{}", w.task_id), &event).await?;
        }
    }
    match pass {
        Pass::Event => {
            let next = ImportWatch {
                polls: w.polls + 1,
                ..w.clone()
            };
            // A duplicate of this timer message arms no second link.
            if let Some(chain) = w.chain {
                let link = watch_link_key(&w.task_id, chain, next.polls);
                if deps.store.put_once(&link, &next.polls).await? == Created::AlreadyThere {
                    out.did(format!(
                        "import {} is {}; this chain's next poll is armed already",
                        w.task_id, task.lifecycle
                    ));
                    return Ok(());
                }
            }
            let delay = watch_delay(settings.poll_interval_seconds, next.polls, settings.max_poll_lag_seconds);
            deps.timers
                .arm(&deps.settings.watch_queue_url, &Message::ImportWatch(next), delay)
                .await?;
            touch_lease(deps, &w.task_id).await?;
            out.did(format!("import {} is {}; next look in {delay} s", w.task_id, task.lifecycle));
        }
        Pass::Reconciler if !watch_alive(deps, &w.task_id, &settings).await? => {
            arm_watch(deps, fs, &w.task_id, &settings).await?;
            out.did(format!(
                "import {} is {}; its watch had stopped, armed a new one",
                w.task_id, task.lifecycle
            ));
        }
        Pass::Reconciler => {}
    }
    Ok(())
}

async fn succeeded(deps: &Deps, w: &ImportWatch, record: Option<&ImportRecord>, out: &mut Outcome) -> Result<(), Error> {
    let fs = &w.file_system_id;
    let settings = settings_for(deps, fs);
    // One listing serves both the retire and the follow-up: what the task
    // covered goes, the rest is the follow-up's.
    let mut remaining = pending(deps, fs).await?;
    if let Some(r) = record {
        let covered: BTreeSet<&str> = r.entries.iter().map(String::as_str).collect();
        let (gone, kept): (Vec<Pending>, Vec<Pending>) = remaining.into_iter().partition(|p| covered.contains(p.entry.id.as_str()));
        remaining = kept;
        // The lineage first: it is read from the entries about to go.
        super::lineage::record_import(deps, r, &gone).await?;
        let retired: Vec<String> = gone.into_iter().map(|p| p.key).collect();
        // Indexed before deleting, so a redelivered batch never finds neither.
        let indexed = deps
            .store
            .put_once(
                &imported_index_key(fs, r.started_at, &w.task_id),
                &serde_json::json!({"task_id": w.task_id}),
            )
            .await?;
        // The index is the duration's once-marker: a replayed success emits nothing.
        if indexed == Created::Now {
            let now = super::now_epoch();
            deps.metrics
                .emit(&retrain_core::telemetry::import_emf(now.saturating_sub(r.started_at), now * 1000));
        }
        deps.store.delete_many(&retired).await?;
    }
    let waiting = pipelines_of(deps, fs, &remaining);
    let mut followed_up = false;
    if !remaining.is_empty() {
        let started = Box::pin(start_import_of(deps, fs, 1, &remaining)).await?;
        followed_up = started != Started::Nothing;
        out.did(format!(
            "follow-up import for {} pending entr(ies) on {fs}: {started:?}",
            remaining.len()
        ));
    }
    let pipelines: Vec<String> = record.map(|r| r.pipelines.iter().cloned().collect()).unwrap_or_default();
    // Under steady uploads something is always pending: a pipeline that has
    // waited longer than max_pending_seconds trains on what is imported now.
    let mut settled = Vec::new();
    for p in &pipelines {
        if !waiting.contains(p) || waited_too_long(deps, p, settings.max_pending_seconds).await? {
            settled.push(p.clone());
        }
    }
    let event = DomainEvent::DataImportCompleted(ImportCompleted {
        file_system_id: fs.clone(),
        task_id: w.task_id.clone(),
        pipelines,
        settled: settled.clone(),
    });
    if deps.publish_once(&format!("imports/{}", w.task_id), &event).await? {
        info!(task_id = %w.task_id, ?settled, "import completed");
    }
    for p in &settled {
        deps.store.delete(&waiting_key(p)).await?;
    }
    out.did(format!("import {} succeeded; sweeps to start: {settled:?}", w.task_id));
    release(deps, fs, &w.task_id, !followed_up, out).await
}

/// The end of a task is processed: its open marker goes. With `recheck`
/// (no follow-up was started), the pending set is looked at once more.
///
/// on-upload writes its entry, then looks for an open marker, and leaves
/// the entry to the watcher when it sees one. The watcher read the pending
/// set before deleting the marker, so an entry written after that read by
/// an upload that still saw the marker would wait for the reconciler. Each
/// side looks at the other's write after making its own, so one of them
/// sees it: this second look is the watcher's. A follow-up's own marker is
/// written before this one is deleted, and its watcher takes such an entry.
async fn release(deps: &Deps, fs: &str, task_id: &str, recheck: bool, out: &mut Outcome) -> Result<(), Error> {
    deps.store.delete(&open_import_key(fs, task_id)).await?;
    if recheck {
        let started = start_covering_import(deps, fs, 1).await?;
        if started != Started::Nothing {
            out.did(format!("uploads pending on {fs} after {task_id} ended: {started:?}"));
        }
    }
    Ok(())
}

/// Notes since when the pipeline waits (once); true when that is longer than `limit`.
async fn waited_too_long(deps: &Deps, pipeline: &str, limit: u64) -> Result<bool, Error> {
    let key = waiting_key(pipeline);
    let now = now_epoch();
    let since = match deps.store.put_once(&key, &serde_json::json!({ "since": now })).await? {
        Created::Now => now,
        Created::AlreadyThere => deps
            .store
            .get::<serde_json::Value>("pipeline wait", &key)
            .await?
            .and_then(|v| v["since"].as_u64())
            .unwrap_or(now),
    };
    Ok(now.saturating_sub(since) > limit)
}

async fn ended_badly(
    deps: &Deps,
    w: &ImportWatch,
    task: &TaskState,
    record: Option<&ImportRecord>,
    out: &mut Outcome,
) -> Result<(), Error> {
    let fs = &w.file_system_id;
    let settings = settings_for(deps, fs);
    let scope = format!("imports/{}", w.task_id);
    let failure = task.failure.clone().unwrap_or_else(|| format!("task ended {}", task.lifecycle));
    let Some(record) = record else {
        // Not retrain's task (a manual export, a cancel): it held the file
        // system; now the uploads pending behind it get their import.
        let started = start_covering_import(deps, fs, 1).await?;
        out.did(format!(
            "task {} ({}) is not retrain's; pending uploads: {started:?}",
            w.task_id, task.lifecycle
        ));
        return release(deps, fs, &w.task_id, started == Started::Nothing, out).await;
    };
    let pipelines: Vec<String> = record.pipelines.iter().cloned().collect();
    let will_retry = record.attempt < settings.max_attempts;
    let event = DomainEvent::DataImportFailed(ImportFailed {
        file_system_id: fs.clone(),
        task_id: w.task_id.clone(),
        pipelines: pipelines.clone(),
        failure: failure.clone(),
        attempt: record.attempt,
        will_retry,
    });
    deps.publish_once(&scope, &event).await?;
    // A task that failed for good leaves its entries pending without a
    // second look: the next upload or the reconciler retries them.
    let mut recheck = false;
    if will_retry {
        let started = start_covering_import(deps, fs, record.attempt + 1).await?;
        recheck = started == Started::Nothing;
        out.did(format!(
            "import {} {}: retry {}: {started:?}",
            w.task_id,
            task.lifecycle,
            record.attempt + 1
        ));
    } else {
        for p in &pipelines {
            let event = DomainEvent::SweepBlocked(SweepBlocked {
                pipeline: p.clone(),
                sweep_id: None,
                problems: vec![format!("import {} on {fs} {}: {failure}; uploads stay pending and the next upload retries them — fix the cause (paths inside the data repository, file system AVAILABLE)", w.task_id, task.lifecycle)],
            });
            deps.publish_once(&format!("{scope}/{p}"), &event).await?;
        }
        out.did(format!("import {} {}: no retry left", w.task_id, task.lifecycle));
    }
    release(deps, fs, &w.task_id, recheck, out).await
}
