//! on-upload: SQS batches of S3 notifications → pending set → one import per file system.
//!
//! While an import is open, a batch costs two calls: its pending entry, and
//! one look at the open imports. The open import's watcher takes the entry
//! up when the task ends (see `on_import::release` for why no entry is left
//! behind between the two). A batch delivered again takes the full path
//! (`start_covering_import`), which finishes an import whose starter died.

use super::imports::{start_covering_import, Started};
use super::Outcome;
use crate::deps::Deps;
use crate::error::Error;
use retrain_core::import_plan::{
    import_record_key, open_imports_prefix, pending_entries, repository_floors, ImportRecord, ObjectRef, PendingEntry, Unmatched,
};
use retrain_core::inbound::{decode, decode_str, Decoded, Inbound, Skip};
use retrain_core::pending::{imported_index_prefix, imported_index_start_after, parse_imported_index_key};
use std::collections::{BTreeMap, BTreeSet};

pub async fn handle(deps: &Deps, payload: &serde_json::Value) -> Result<serde_json::Value, Error> {
    handle_decoded(deps, decode(payload)).await
}

/// The payload as the JSON text Lambda sent: a large SQS batch is read in
/// place rather than parsed into a `Value` first (the same result, faster).
pub async fn handle_text(deps: &Deps, payload: &str) -> Result<serde_json::Value, Error> {
    handle_decoded(deps, decode_str(payload)).await
}

async fn handle_decoded(deps: &Deps, decoded: Decoded) -> Result<serde_json::Value, Error> {
    let mut out = Outcome::from_decoded(&decoded);
    let mut fatal = None;
    // Which messages each object came from, so a failure fails exactly those.
    let mut sources: BTreeMap<ObjectRef, BTreeSet<Option<String>>> = BTreeMap::new();
    for item in &decoded.items {
        match &item.event {
            Inbound::ObjectCreated(o) => {
                sources.entry(o.object.clone()).or_default().insert(item.message_id.clone());
            }
            other => out.skipped.push(Skip {
                item: item.message_id.clone().unwrap_or_default(),
                reason: format!("on-upload takes S3 object notifications, not {}", kind(other)),
                message_id: item.message_id.clone(),
                malformed: false,
            }),
        }
    }
    let objects: Vec<ObjectRef> = sources.keys().cloned().collect();
    let (entries, unmatched) = pending_entries(&deps.config, &objects);
    for (object, why) in unmatched {
        let reason = match why {
            Unmatched::NoPipeline => "no pipeline watches this key".to_owned(),
            Unmatched::OnlyEfs(p) => format!("only EFS pipelines ({}) watch it: nothing to import", p.join(", ")),
        };
        out.skipped.push(Skip {
            item: object.uri().to_string(),
            reason,
            message_id: None,
            malformed: false,
        });
    }
    // 1. Record every batch durably before trying any import.
    let mut recorded: BTreeMap<String, BTreeSet<Option<String>>> = BTreeMap::new();
    for entry in &entries {
        let ids: BTreeSet<Option<String>> = entry
            .objects
            .iter()
            .flat_map(|o| sources.get(o).cloned().unwrap_or_default())
            .collect();
        // Only a batch with a message received before can have been imported already.
        let first_received = ids.iter().flatten().filter_map(|id| decoded.redelivered.get(id)).min().copied();
        match record(deps, entry, first_received).await {
            Ok(None) => out.did(format!(
                "{} upload(s) for {} were already imported ({})",
                entry.objects.len(),
                entry.file_system_id,
                entry.id
            )),
            Ok(Some(key)) => {
                out.did(format!(
                    "recorded {} upload(s) for {} as {key}",
                    entry.objects.len(),
                    entry.file_system_id,
                ));
                recorded.entry(entry.file_system_id.clone()).or_default().extend(ids);
            }
            Err(e) => out.failed(&ids, e, &mut fatal),
        }
    }
    // 2. One import per file system covering its whole pending set, unless one is open.
    for (fs, ids) in recorded {
        // A batch delivered again may come from an invocation that started
        // the open import and died before its record: the full path finishes it.
        let again = ids.iter().flatten().any(|id| decoded.redelivered.contains_key(id));
        let open = if again {
            Ok(false)
        } else {
            deps.store.any_under(&open_imports_prefix(&fs)).await
        };
        match open {
            Ok(true) => {
                out.did(format!("an import is open on {fs}: its watcher takes these uploads next"));
                continue;
            }
            Ok(false) => {}
            Err(e) => {
                out.failed(&ids, e, &mut fatal);
                continue;
            }
        }
        match start_covering_import(deps, &fs, 1).await {
            Ok(Started::Import { task_id, new }) => out.did(format!(
                "import {task_id} on {fs}{}",
                if new { " started" } else { " already running for these uploads" }
            )),
            Ok(Started::Busy) => out.did(format!("an import is running on {fs}: its watcher takes these uploads next")),
            Ok(Started::Nothing) => {}
            Err(e) => out.failed(&ids, e, &mut fatal),
        }
    }
    out.finish(fatal)
}

/// Seconds of clock difference allowed between SQS's receive time and ours.
const CLOCK_SKEW_SECONDS: u64 = 300;

/// Adds the entry to the pending set unless a succeeded import already
/// covered it (a batch delivered again, first received at `first_received`).
/// Returns its pending key, or `None` when it was imported already.
async fn record(deps: &Deps, entry: &PendingEntry, first_received: Option<u64>) -> Result<Option<String>, Error> {
    if let Some(since) = first_received {
        if imported_since(deps, entry, since.saturating_sub(CLOCK_SKEW_SECONDS)).await? {
            return Ok(None);
        }
    }
    let key = entry.key(&repository_floors(&deps.config, &entry.file_system_id));
    deps.store.put_once(&key, entry).await?;
    Ok(Some(key))
}

/// Whether an import that started at or after `since` covered the entry and
/// succeeded: an import covers only entries written before it started, and
/// the index names only the imports whose entries were retired.
async fn imported_since(deps: &Deps, entry: &PendingEntry, since: u64) -> Result<bool, Error> {
    let fs = &entry.file_system_id;
    let keys = deps
        .store
        .list_after(&imported_index_prefix(fs), &imported_index_start_after(fs, since))
        .await?;
    for task_id in keys.iter().filter_map(|k| parse_imported_index_key(fs, k)) {
        let record: Option<ImportRecord> = deps.store.get("import record", &import_record_key(&task_id)).await?;
        if record.is_some_and(|r| r.entries.contains(&entry.id)) {
            return Ok(true);
        }
    }
    Ok(false)
}

fn kind(event: &Inbound) -> &'static str {
    match event {
        Inbound::ObjectCreated(_) => "object notifications",
        Inbound::TrainingJobStateChange(_) => "training job state changes",
        Inbound::Scheduled(_) => "scheduled events",
        Inbound::Message(_) => "retrain messages",
    }
}
