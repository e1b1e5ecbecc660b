//! on-upload: SQS batches of S3 notifications → pending set → one import per file system.

use super::imports::{start_covering_import, Started};
use super::Outcome;
use crate::deps::Deps;
use crate::error::Error;
use retrain_core::import_plan::{imported_key, pending_entries, ObjectRef, PendingEntry, Unmatched};
use retrain_core::inbound::{decode, decode_str, Decoded, Inbound, Skip};
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
        match record(deps, entry).await {
            Ok(false) => out.did(format!(
                "{} upload(s) for {} were already imported ({})",
                entry.objects.len(),
                entry.file_system_id,
                entry.id
            )),
            Ok(true) => {
                out.did(format!(
                    "recorded {} upload(s) for {} as {}",
                    entry.objects.len(),
                    entry.file_system_id,
                    entry.key()
                ));
                recorded.entry(entry.file_system_id.clone()).or_default().extend(ids);
            }
            Err(e) => out.failed(&ids, e, &mut fatal),
        }
    }
    // 2. One import per file system covering its whole pending set.
    for (fs, ids) in recorded {
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

/// Adds the entry to the pending set unless a succeeded import already
/// covered it (a redelivered batch). Returns whether it is pending now.
async fn record(deps: &Deps, entry: &PendingEntry) -> Result<bool, Error> {
    let imported = imported_key(&entry.file_system_id, &entry.id);
    if deps.store.get::<serde_json::Value>("imported marker", &imported).await?.is_some() {
        return Ok(false);
    }
    deps.store.put_once(&entry.key(), entry).await?;
    Ok(true)
}

fn kind(event: &Inbound) -> &'static str {
    match event {
        Inbound::ObjectCreated(_) => "object notifications",
        Inbound::TrainingJobStateChange(_) => "training job state changes",
        Inbound::Scheduled(_) => "scheduled events",
        Inbound::Message(_) => "retrain messages",
    }
}
