//! From uploaded objects to FSx import tasks: which pipelines an object
//! concerns, the pending entries a batch becomes, and the one
//! `CreateDataRepositoryTask` that covers a file system's pending set.

use crate::config::{Config, FileSystemKind, ImportSettings, Pipeline};
use crate::names;
use crate::pending::PendingKey;
use crate::requests::{CreateDataRepositoryTask, TaskReport};
use crate::s3_uri::S3Uri;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// FSx: at most 100 paths per data repository task.
pub const MAX_TASK_PATHS: usize = 100;
/// FSx: each path at most 4096 characters.
pub const MAX_PATH_LEN: usize = 4096;

/// An uploaded object, key already URL-decoded.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjectRef {
    pub bucket: String,
    pub key: String,
    /// Which write of the key: the notification's `sequencer` (else its ETag).
    /// A new write of the same key is new data; a redelivered notification is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// When the object was written (`eventTime`, or the EventBridge event's `time`): the data's "as of".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
}

impl ObjectRef {
    pub fn uri(&self) -> S3Uri {
        S3Uri::new(&self.bucket, &self.key)
    }
}

/// Whether `pipeline` watches this object.
pub fn watches(pipeline: &Pipeline, object: &ObjectRef) -> bool {
    let t = &pipeline.trigger;
    t.bucket == object.bucket
        && t.prefixes.iter().any(|p| object.key.starts_with(p.as_str()))
        && t.suffix.as_deref().is_none_or(|s| object.key.ends_with(s))
        // A "folder" placeholder created by the console is not data.
        && !object.key.ends_with('/')
}

/// A batch's objects for one file system, recorded before any import is tried
/// (under `pending/<file-system>/`, see [`crate::pending`]), so no upload is
/// lost between steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingEntry {
    /// Hash of the objects: a redelivered batch computes the same id.
    pub id: String,
    pub file_system_id: String,
    /// Pipelines whose triggers matched these objects.
    pub pipelines: BTreeSet<String>,
    pub objects: Vec<ObjectRef>,
}

/// Why an object of a batch leads to no import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Unmatched {
    /// No pipeline watches it.
    NoPipeline,
    /// Only EFS pipelines watch it: they are not imported, they train on what EFS holds.
    OnlyEfs(Vec<String>),
}

/// Groups a batch's objects into one pending entry per FSx for Lustre file system.
pub fn pending_entries(config: &Config, objects: &[ObjectRef]) -> (Vec<PendingEntry>, Vec<(ObjectRef, Unmatched)>) {
    let mut by_fs: BTreeMap<&str, (BTreeSet<String>, BTreeSet<ObjectRef>)> = BTreeMap::new();
    let mut unmatched = Vec::new();
    for object in objects {
        let matching: Vec<&Pipeline> = config.pipelines.iter().filter(|p| watches(p, object)).collect();
        let lustre: Vec<&&Pipeline> = matching
            .iter()
            .filter(|p| p.file_system.kind == FileSystemKind::FsxLustre)
            .collect();
        if lustre.is_empty() {
            let reason = if matching.is_empty() {
                Unmatched::NoPipeline
            } else {
                Unmatched::OnlyEfs(matching.iter().map(|p| p.name.clone()).collect())
            };
            unmatched.push((object.clone(), reason));
            continue;
        }
        for p in lustre {
            let slot = by_fs.entry(p.file_system.id.as_str()).or_default();
            slot.0.insert(p.name.clone());
            slot.1.insert(object.clone());
        }
    }
    let entries = by_fs
        .into_iter()
        .map(|(fs, (pipelines, objects))| {
            let objects: Vec<ObjectRef> = objects.into_iter().collect();
            let mut parts: Vec<String> = vec![fs.to_owned()];
            parts.extend(
                objects
                    .iter()
                    .map(|o| format!("{}/{}@{}", o.bucket, o.key, o.version.as_deref().unwrap_or(""))),
            );
            let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
            let id = names::digest(&refs)[..32].to_owned();
            PendingEntry {
                id,
                file_system_id: fs.to_owned(),
                pipelines,
                objects,
            }
        })
        .collect();
    (entries, unmatched)
}

/// What an import task covers, recorded as `imports/<task-id>.json` when it starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportRecord {
    pub task_id: String,
    pub file_system_id: String,
    /// Ids of the pending entries the task covers, sorted (retired when it succeeds).
    pub entries: Vec<String>,
    pub pipelines: BTreeSet<String>,
    /// 1 for the first try of these entries; a retry after a failure counts up.
    pub attempt: u32,
    pub paths: Vec<String>,
    /// Epoch seconds when the task was started, for the watch's maximum wait.
    pub started_at: u64,
    /// How many uploaded objects the task covers.
    #[serde(default)]
    pub objects: usize,
}

pub fn import_record_key(task_id: &str) -> String {
    format!("imports/{task_id}.json")
}

/// `open/imports/<file-system>/`: the imports whose end is not processed yet.
pub fn open_imports_prefix(file_system_id: &str) -> String {
    format!("open/imports/{file_system_id}/")
}

/// Written as soon as a task that covers pending uploads is known (before
/// its watch is armed), deleted once its end is processed: the reconciler
/// drives every import listed here, even one whose watch timer was lost.
pub fn open_import_key(file_system_id: &str, task_id: &str) -> String {
    format!("{}{task_id}", open_imports_prefix(file_system_id))
}

/// Refreshed by every poll of a task's watch: a stale lease means its timer
/// chain died, and the reconciler arms a new one (a fresh one, it leaves alone).
pub fn watch_lease_key(task_id: &str) -> String {
    format!("imports/watching/{task_id}.json")
}

/// Once-marker of link `poll` of a task's watch chain `chain`.
pub fn watch_link_key(task_id: &str, chain: u64, poll: u32) -> String {
    format!("imports/watching/{task_id}/{chain}-{poll}")
}

/// Seconds after the last poll when a watch counts as dead: two of its
/// longest delays and a margin.
pub fn watch_lease_seconds(max_poll_lag: u32) -> u64 {
    2 * u64::from(max_poll_lag.min(900)) + 120
}

/// Since when a pipeline has waited for newer uploads to be imported (see `import.max_pending_seconds`).
pub fn waiting_key(pipeline: &str) -> String {
    format!("imports/waiting/{pipeline}.json")
}

/// The ids of `entries`, sorted and deduplicated: what an import covers.
pub fn entry_ids(entries: &[PendingKey]) -> Vec<String> {
    let ids: BTreeSet<String> = entries.iter().map(|e| e.id.clone()).collect();
    ids.into_iter().collect()
}

/// The single import task covering `entries` (all pending entries of one
/// file system, as their keys describe them).
pub fn import_task(
    file_system_id: &str,
    entries: &[PendingKey],
    attempt: u32,
    settings: &ImportSettings,
    floors: &[S3Uri],
) -> CreateDataRepositoryTask {
    let ids = entry_ids(entries);
    // An entry that could only say "the whole file system" makes the task import everything.
    let paths = if entries.iter().any(|e| e.paths.is_empty()) {
        Vec::new()
    } else {
        let uris: Vec<S3Uri> = entries.iter().flat_map(|e| e.paths.iter().cloned()).collect();
        collapse(uris, floors, MAX_TASK_PATHS).into_iter().map(|u| u.to_string()).collect()
    };
    let report = match &settings.report_path {
        Some(path) => TaskReport {
            enabled: true,
            path: Some(path.clone()),
            format: Some("REPORT_CSV_20191124".to_owned()),
            scope: Some("FAILED_FILES_ONLY".to_owned()),
        },
        None => TaskReport {
            enabled: false,
            path: None,
            format: None,
            scope: None,
        },
    };
    CreateDataRepositoryTask {
        task_type: "IMPORT_METADATA_FROM_REPOSITORY".to_owned(),
        paths,
        file_system_id: file_system_id.to_owned(),
        report,
        client_request_token: names::import_token(file_system_id, &ids, attempt),
    }
}

/// The data repository paths of the pipelines on a file system: imports never reach above them.
pub fn repository_floors(config: &Config, file_system_id: &str) -> Vec<S3Uri> {
    let mut floors: Vec<S3Uri> = config
        .pipelines
        .iter()
        .filter(|p| p.file_system.id == file_system_id)
        .filter_map(|p| p.file_system.data_repository_path.as_deref().and_then(S3Uri::parse))
        .collect();
    floors.sort();
    floors.dedup();
    floors
}

/// Deduplicates `uris` and collapses them to common prefixes until at most
/// `max` remain. Every input stays covered; no path rises above the floor
/// (data repository path) that covers it, since FSx fails a task with a path
/// outside its data repository.
pub fn collapse(uris: Vec<S3Uri>, floors: &[S3Uri], max: usize) -> Vec<S3Uri> {
    // S3 keys are at most 1024 bytes, so a path never nears FSx's 4096.
    let mut set: BTreeSet<S3Uri> = uris.into_iter().collect();
    loop {
        let kept = drop_covered(set);
        if kept.len() <= max {
            return kept;
        }
        let deepest = kept.iter().map(depth).max().unwrap_or(0);
        let before = kept.len();
        let next: BTreeSet<S3Uri> = kept
            .iter()
            .map(|u| {
                if depth(u) < deepest {
                    return u.clone();
                }
                let up = parent(u);
                match floors.iter().filter(|f| f.covers(u)).max_by_key(|f| f.key.len()) {
                    Some(floor) if !floor.covers(&up) => floor.clone(),
                    _ => up,
                }
            })
            .collect();
        if next.len() == before && next.iter().all(|u| kept.contains(u)) {
            // More than `max` data repositories: no paths means "import
            // from all of them", which still covers every object.
            return Vec::new();
        }
        set = next;
    }
}

/// Keeps only paths that no other kept path covers.
fn drop_covered(set: BTreeSet<S3Uri>) -> Vec<S3Uri> {
    let mut kept: Vec<S3Uri> = Vec::new();
    // Sorted order puts a prefix right before everything it covers.
    for uri in set {
        if kept.last().is_some_and(|k| k.covers(&uri)) {
            continue;
        }
        kept.push(uri);
    }
    kept
}

fn depth(u: &S3Uri) -> usize {
    let k = u.key.trim_end_matches('/');
    if k.is_empty() {
        0
    } else {
        k.matches('/').count() + 1
    }
}

/// The enclosing "folder": `a/b/c.csv` → `a/b/`, `a/b/` → `a/`, `a/` → ``.
fn parent(u: &S3Uri) -> S3Uri {
    let k = u.key.trim_end_matches('/');
    let key = match k.rfind('/') {
        Some(i) => k[..=i].to_owned(),
        None => String::new(),
    };
    S3Uri::new(&u.bucket, &key)
}

#[cfg(test)]
mod tests;
