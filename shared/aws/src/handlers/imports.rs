//! Starting the one import that covers a file system's pending set; shared
//! by on-upload (new data) and on-import (follow-ups and retries).

use super::now_epoch;
use crate::adapters::fsx::ImportStart;
use crate::deps::Deps;
use crate::error::Error;
use retrain_core::config::{FileSystemKind, ImportSettings};
use retrain_core::events::{DomainEvent, ImportStarted};
use retrain_core::import_plan::{import_record_key, import_task, pending_prefix, repository_floors, ImportRecord, PendingEntry};
use retrain_core::messages::{ImportWatch, Message};
use std::collections::BTreeSet;
use tracing::info;

/// The import settings of a file system: those of its first pipeline.
pub fn settings_for(deps: &Deps, file_system_id: &str) -> ImportSettings {
    deps.config
        .pipelines
        .iter()
        .find(|p| p.file_system.id == file_system_id && p.file_system.kind == FileSystemKind::FsxLustre)
        .map(|p| p.import.clone())
        .unwrap_or_default()
}

/// Every pending entry of a file system.
pub async fn pending(deps: &Deps, file_system_id: &str) -> Result<Vec<PendingEntry>, Error> {
    let mut entries = Vec::new();
    for key in deps.store.list(&pending_prefix(file_system_id)).await? {
        if let Some(entry) = deps.store.get::<PendingEntry>("pending upload entry", &key).await? {
            entries.push(entry);
        }
    }
    Ok(entries)
}

/// What [`start_covering_import`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    Nothing,
    Import {
        task_id: String,
        new: bool,
    },
    /// Another task runs; its watcher picks the entries up when it ends.
    Busy,
}

/// Tries to start one import covering every pending entry of the file system.
pub async fn start_covering_import(deps: &Deps, file_system_id: &str, attempt: u32) -> Result<Started, Error> {
    let entries = pending(deps, file_system_id).await?;
    if entries.is_empty() {
        return Ok(Started::Nothing);
    }
    let settings = settings_for(deps, file_system_id);
    let task = import_task(
        file_system_id,
        &entries,
        attempt,
        &settings,
        &repository_floors(&deps.config, file_system_id),
    );
    match deps.fsx.start_import(&task).await? {
        ImportStart::Busy => {
            watch_foreign_task(deps, file_system_id, &settings).await?;
            Ok(Started::Busy)
        }
        ImportStart::Started { task_id } => {
            let key = import_record_key(&task_id);
            // The record is written last, so its presence means this task is fully set up.
            if deps.store.get::<ImportRecord>("import record", &key).await?.is_some() {
                return Ok(Started::Import { task_id, new: false });
            }
            let watch = Message::ImportWatch(ImportWatch {
                file_system_id: file_system_id.to_owned(),
                task_id: task_id.clone(),
                polls: 0,
            });
            deps.timers
                .arm(&deps.settings.watch_queue_url, &watch, settings.poll_interval_seconds)
                .await?;
            let pipelines: BTreeSet<String> = entries.iter().flat_map(|e| e.pipelines.iter().cloned()).collect();
            let record = ImportRecord {
                task_id: task_id.clone(),
                file_system_id: file_system_id.to_owned(),
                entries: entries.iter().map(|e| e.id.clone()).collect(),
                pipelines: pipelines.clone(),
                attempt,
                paths: task.paths.clone(),
                started_at: now_epoch(),
            };
            deps.store.put_once(&key, &record).await?;
            let event = DomainEvent::DataImportStarted(ImportStarted {
                file_system_id: file_system_id.to_owned(),
                task_id: task_id.clone(),
                pipelines: pipelines.into_iter().collect(),
                paths: task.paths,
                objects: entries.iter().map(|e| e.objects.len()).sum(),
                attempt,
            });
            deps.bus.publish_once(&deps.store, &format!("imports/{task_id}"), &event).await?;
            info!(task_id, file_system_id, entries = entries.len(), "import started");
            Ok(Started::Import { task_id, new: true })
        }
    }
}

/// A task retrain did not start (or has not recorded yet) is running: watch
/// it too, so pending entries are taken up when it ends.
async fn watch_foreign_task(deps: &Deps, file_system_id: &str, settings: &ImportSettings) -> Result<(), Error> {
    let Some(running) = deps.fsx.running_task(file_system_id).await? else {
        return Ok(());
    };
    if deps
        .store
        .get::<ImportRecord>("import record", &import_record_key(&running.task_id))
        .await?
        .is_some()
    {
        return Ok(());
    }
    info!(task_id = %running.task_id, file_system_id, "watching a task retrain did not record");
    let watch = Message::ImportWatch(ImportWatch {
        file_system_id: file_system_id.to_owned(),
        task_id: running.task_id,
        polls: 0,
    });
    deps.timers
        .arm(&deps.settings.watch_queue_url, &watch, settings.poll_interval_seconds)
        .await
}
