//! on-import: the watch timer of an import task. Running → re-arm with
//! backoff; succeeded → retire its entries, start the follow-up, announce
//! completion (which starts the settled pipelines' sweeps); failed → retry
//! or block.

use super::imports::{pending, settings_for, start_covering_import};
use super::{now_epoch, Outcome};
use crate::deps::Deps;
use crate::error::Error;
use retrain_core::events::{DomainEvent, ImportCompleted, ImportFailed, SweepBlocked};
use retrain_core::import_plan::{import_record_key, imported_key, pending_key, ImportRecord};
use retrain_core::inbound::{decode, Inbound};
use retrain_core::messages::{watch_delay, ImportWatch, Message};
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
                if let Err(e) = watch(deps, w, &mut out).await {
                    out.failed(&ids, e, &mut fatal);
                }
            }
            _ => out.did(format!("ignored {:?}: on-import takes import-watch messages", item.message_id)),
        }
    }
    out.finish(fatal)
}

async fn watch(deps: &Deps, w: &ImportWatch, out: &mut Outcome) -> Result<(), Error> {
    let fs = &w.file_system_id;
    let Some(task) = deps.fsx.task(&w.task_id).await? else {
        out.did(format!("task {} is gone; importing what is pending on {fs}", w.task_id));
        start_covering_import(deps, fs, 1).await?;
        return Ok(());
    };
    let record: Option<ImportRecord> = deps.store.get("import record", &import_record_key(&w.task_id)).await?;
    let settings = settings_for(deps, fs);
    let pipelines: Vec<String> = record.as_ref().map(|r| r.pipelines.iter().cloned().collect()).unwrap_or_default();
    let scope = format!("imports/{}", w.task_id);
    match task.lifecycle.as_str() {
        _ if task.is_running() => {
            let waited = record.as_ref().map(|r| now_epoch().saturating_sub(r.started_at)).unwrap_or(0);
            if waited > settings.max_wait_seconds {
                let failure = format!(
                    "still {} after {waited} s (import.max_wait_seconds = {})",
                    task.lifecycle, settings.max_wait_seconds
                );
                let event = DomainEvent::DataImportFailed(ImportFailed {
                    file_system_id: fs.clone(),
                    task_id: w.task_id.clone(),
                    pipelines: pipelines.clone(),
                    failure: failure.clone(),
                    attempt: record.as_ref().map(|r| r.attempt).unwrap_or(1),
                    will_retry: false,
                });
                deps.bus.publish_once(&deps.store, &scope, &event).await?;
                block(deps, &scope, &pipelines, &format!("import {} on {fs} is {failure}: its uploads stay pending; check the task in the FSx console, or raise max_wait_seconds", w.task_id)).await?;
                out.did(format!("gave up watching {}", w.task_id));
                return Ok(());
            }
            let next = ImportWatch {
                polls: w.polls + 1,
                ..w.clone()
            };
            let delay = watch_delay(settings.poll_interval_seconds, next.polls);
            deps.timers
                .arm(&deps.settings.watch_queue_url, &Message::ImportWatch(next), delay)
                .await?;
            out.did(format!("import {} is {}; next look in {delay} s", w.task_id, task.lifecycle));
        }
        "SUCCEEDED" => {
            if let Some(r) = &record {
                // Mark before deleting, so a redelivered batch never finds neither.
                for entry in &r.entries {
                    deps.store
                        .put_once(&imported_key(fs, entry), &serde_json::json!({"task_id": w.task_id}))
                        .await?;
                    deps.store.delete(&pending_key(fs, entry)).await?;
                }
            }
            let remaining = pending(deps, fs).await?;
            let waiting: BTreeSet<String> = remaining.iter().flat_map(|e| e.pipelines.iter().cloned()).collect();
            if !remaining.is_empty() {
                let started = start_covering_import(deps, fs, 1).await?;
                out.did(format!(
                    "follow-up import for {} pending entr(ies) on {fs}: {started:?}",
                    remaining.len()
                ));
            }
            let settled: Vec<String> = pipelines.iter().filter(|p| !waiting.contains(*p)).cloned().collect();
            let event = DomainEvent::DataImportCompleted(ImportCompleted {
                file_system_id: fs.clone(),
                task_id: w.task_id.clone(),
                pipelines: pipelines.clone(),
                settled: settled.clone(),
            });
            if deps.bus.publish_once(&deps.store, &scope, &event).await? {
                info!(task_id = %w.task_id, ?settled, "import completed");
            }
            out.did(format!("import {} succeeded; sweeps to start: {settled:?}", w.task_id));
        }
        _ => {
            let failure = task.failure.clone().unwrap_or_else(|| format!("task ended {}", task.lifecycle));
            let attempt = record.as_ref().map(|r| r.attempt).unwrap_or(1);
            let will_retry = record.is_some() && attempt < settings.max_attempts;
            let event = DomainEvent::DataImportFailed(ImportFailed {
                file_system_id: fs.clone(),
                task_id: w.task_id.clone(),
                pipelines: pipelines.clone(),
                failure: failure.clone(),
                attempt,
                will_retry,
            });
            deps.bus.publish_once(&deps.store, &scope, &event).await?;
            if will_retry {
                let started = start_covering_import(deps, fs, attempt + 1).await?;
                out.did(format!(
                    "import {} {}: retry {}: {started:?}",
                    w.task_id,
                    task.lifecycle,
                    attempt + 1
                ));
            } else {
                block(deps, &scope, &pipelines, &format!("import {} on {fs} {}: {failure}; uploads stay pending and the next upload retries them — fix the cause (paths inside the data repository, file system AVAILABLE)", w.task_id, task.lifecycle)).await?;
                out.did(format!("import {} {}: no retry left", w.task_id, task.lifecycle));
            }
        }
    }
    Ok(())
}

async fn block(deps: &Deps, scope: &str, pipelines: &[String], problem: &str) -> Result<(), Error> {
    for p in pipelines {
        let event = DomainEvent::SweepBlocked(SweepBlocked {
            pipeline: p.clone(),
            sweep_id: None,
            problems: vec![problem.to_owned()],
        });
        deps.bus.publish_once(&deps.store, &format!("{scope}/{p}"), &event).await?;
    }
    Ok(())
}
