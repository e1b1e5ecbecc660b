//! Starting the one import that covers a file system's pending set; shared
//! by on-upload (new data), on-import (follow-ups and retries) and the
//! reconciler (pending uploads that nothing covers).

use super::now_epoch;
use crate::adapters::fsx::ImportStart;
use crate::deps::Deps;
use crate::error::Error;
use retrain_core::config::{FileSystemKind, ImportSettings};
use retrain_core::events::{DomainEvent, ImportStarted};
use retrain_core::import_plan::{
    entry_ids, import_record_key, import_task, open_import_key, repository_floors, watch_lease_key, watch_lease_seconds, ImportRecord,
    PendingEntry,
};
use retrain_core::messages::{ImportWatch, Message};
use retrain_core::pending::{parse_pending_key, pending_prefix, Listed, PendingKey};
use serde::{Deserialize, Serialize};
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

/// A pending entry as listed: where it is, and what its key says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub key: String,
    pub entry: PendingKey,
    /// The entry's `LastModified` (epoch seconds): when the upload was recorded.
    pub written: u64,
}

/// Every pending entry of a file system, from its listing alone: one call
/// per 1,000 entries. Only entries written before keys carried their
/// summary are read (one GET each).
pub async fn pending(deps: &Deps, file_system_id: &str) -> Result<Vec<Pending>, Error> {
    let floors = repository_floors(&deps.config, file_system_id);
    let mut entries = Vec::new();
    for (key, written) in deps.store.list_with_times(&pending_prefix(file_system_id)).await? {
        let entry = match parse_pending_key(file_system_id, &key) {
            Some(Listed::Summary(entry)) => entry,
            Some(Listed::Legacy { .. }) => match deps.store.get::<PendingEntry>("pending upload entry", &key).await? {
                Some(old) => old.summary(&floors),
                None => continue,
            },
            None => continue,
        };
        entries.push(Pending { key, entry, written });
    }
    Ok(entries)
}

/// The pipelines of a file system: what a pending key's "every pipeline" stands for.
pub fn pipelines_on(deps: &Deps, file_system_id: &str) -> BTreeSet<String> {
    deps.config
        .pipelines
        .iter()
        .filter(|p| p.file_system.id == file_system_id)
        .map(|p| p.name.clone())
        .collect()
}

/// The pipelines whose uploads `entries` hold.
pub fn pipelines_of(deps: &Deps, file_system_id: &str, entries: &[Pending]) -> BTreeSet<String> {
    let all = pipelines_on(deps, file_system_id);
    entries.iter().flat_map(|p| p.entry.pipelines_or(&all)).collect()
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
///
/// Crash-safe order: the task (idempotent through its `ClientRequestToken`),
/// then the open marker, the watch timer and the record; `DataImportStarted`
/// is published on every pass, at least once. A retry after a crash gets the
/// same task back and finishes whatever step was missing.
pub async fn start_covering_import(deps: &Deps, file_system_id: &str, attempt: u32) -> Result<Started, Error> {
    let entries = pending(deps, file_system_id).await?;
    start_import_of(deps, file_system_id, attempt, &entries).await
}

/// [`start_covering_import`] over a pending set already listed.
pub async fn start_import_of(deps: &Deps, file_system_id: &str, attempt: u32, entries: &[Pending]) -> Result<Started, Error> {
    if entries.is_empty() {
        return Ok(Started::Nothing);
    }
    let settings = settings_for(deps, file_system_id);
    let keys: Vec<PendingKey> = entries.iter().map(|p| p.entry.clone()).collect();
    let task = import_task(
        file_system_id,
        &keys,
        attempt,
        &settings,
        &repository_floors(&deps.config, file_system_id),
    );
    // A task that ends between the refusal and the look at what runs leaves
    // nothing to watch: the slot is free again, so try once more.
    let mut started = deps.fsx.start_import(&task).await?;
    if started == ImportStart::Busy && watch_running_task(deps, file_system_id, &settings).await? {
        return Ok(Started::Busy);
    }
    if started == ImportStart::Busy {
        started = deps.fsx.start_import(&task).await?;
        if started == ImportStart::Busy {
            return match watch_running_task(deps, file_system_id, &settings).await? {
                true => Ok(Started::Busy),
                false => Err(Error::Aws {
                    operation: "fsx:CreateDataRepositoryTask",
                    resource: format!("file system {file_system_id}"),
                    code: "DataRepositoryTaskExecuting".to_owned(),
                    message: "a task is said to run, yet none is listed as PENDING, EXECUTING or CANCELING".to_owned(),
                    fix: "transient: it is retried".to_owned(),
                    retryable: true,
                }),
            };
        }
    }
    let ImportStart::Started { task_id } = started else {
        return Ok(Started::Busy);
    };
    let key = import_record_key(&task_id);
    let existing = deps.store.get::<ImportRecord>("import record", &key).await?;
    let new = existing.is_none();
    let pipelines = pipelines_of(deps, file_system_id, entries);
    let record = match existing {
        Some(record) => record,
        None => {
            deps.store
                .put_once(&open_import_key(file_system_id, &task_id), &serde_json::json!({"task_id": task_id}))
                .await?;
            arm_watch(deps, file_system_id, &task_id, &settings).await?;
            let record = ImportRecord {
                task_id: task_id.clone(),
                file_system_id: file_system_id.to_owned(),
                entries: entry_ids(&keys),
                pipelines,
                attempt,
                paths: task.paths.clone(),
                started_at: now_epoch(),
                objects: keys.iter().map(|e| e.objects).sum(),
            };
            // Written last, so its presence means the task is fully set up.
            deps.store.put_once(&key, &record).await?;
            record
        }
    };
    announce_started(deps, &record).await?;
    if new {
        info!(task_id, file_system_id, entries = entries.len(), "import started");
    }
    Ok(Started::Import { task_id, new })
}

/// Publishes `DataImportStarted` from the task's record (at least once).
pub async fn announce_started(deps: &Deps, record: &ImportRecord) -> Result<(), Error> {
    let event = DomainEvent::DataImportStarted(ImportStarted {
        file_system_id: record.file_system_id.clone(),
        task_id: record.task_id.clone(),
        pipelines: record.pipelines.iter().cloned().collect(),
        paths: record.paths.clone(),
        objects: record.objects,
        attempt: record.attempt,
    });
    deps.publish_once(&format!("imports/{}", record.task_id), &event).await?;
    Ok(())
}

/// The last poll of a task's watch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchLease {
    pub polled_at: u64,
}

/// Arms a task's watch timer and refreshes its lease.
pub async fn arm_watch(deps: &Deps, file_system_id: &str, task_id: &str, settings: &ImportSettings) -> Result<(), Error> {
    let watch = Message::ImportWatch(ImportWatch {
        file_system_id: file_system_id.to_owned(),
        task_id: task_id.to_owned(),
        polls: 0,
        // Arms in the same second share a chain, which is one chain more than needed.
        chain: Some(now_epoch()),
    });
    deps.timers
        .arm(&deps.settings.watch_queue_url, &watch, settings.poll_interval_seconds)
        .await?;
    touch_lease(deps, task_id).await
}

/// Marks the task's watch as alive now.
pub async fn touch_lease(deps: &Deps, task_id: &str) -> Result<(), Error> {
    deps.store
        .put(&watch_lease_key(task_id), &WatchLease { polled_at: now_epoch() })
        .await
}

/// Whether the task's watch chain has polled recently enough to be alive.
pub async fn watch_alive(deps: &Deps, task_id: &str, settings: &ImportSettings) -> Result<bool, Error> {
    let lease: Option<WatchLease> = deps.store.get("watch lease", &watch_lease_key(task_id)).await?;
    Ok(lease.is_some_and(|l| now_epoch().saturating_sub(l.polled_at) <= watch_lease_seconds(settings.max_poll_lag_seconds)))
}

/// Another task holds the file system (one retrain did not start, or one
/// whose record is not written yet): make sure it is watched, so the pending
/// entries are taken up when it ends. Returns false when nothing runs.
async fn watch_running_task(deps: &Deps, file_system_id: &str, settings: &ImportSettings) -> Result<bool, Error> {
    let Some(running) = deps.fsx.running_task(file_system_id).await? else {
        return Ok(false);
    };
    deps.store
        .put_once(
            &open_import_key(file_system_id, &running.task_id),
            &serde_json::json!({"task_id": running.task_id}),
        )
        .await?;
    // One watch chain per task: many uploads during a long task arm no more.
    if !watch_alive(deps, &running.task_id, settings).await? {
        info!(task_id = %running.task_id, file_system_id, "watching the running task");
        arm_watch(deps, file_system_id, &running.task_id, settings).await?;
    }
    Ok(true)
}
