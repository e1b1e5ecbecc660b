//! The pending set's key format: a pending entry's key says everything an
//! import needs from it, so one `ListObjectsV2` page (1,000 keys) gives a
//! follow-up import the paths of 1,000 batches without a single GET.
//!
//! `pending/<fs>/<id>~<objects>~<pipelines>~<paths>`:
//! - `id`: the batch's hash (a redelivered batch writes the same key);
//! - `objects`: how many uploads the batch holds;
//! - `pipelines`: comma-separated, `*` for "every pipeline of the file system";
//! - `paths`: the batch's objects collapsed to S3 prefixes (`bucket/key`,
//!   comma-separated, never above a data repository path), collapsed further
//!   until the key fits S3's 1,024 bytes; `*` for the whole file system.
//!
//! Each field is percent-encoded, so no separator can appear inside one.
//! The object's body still holds the whole [`PendingEntry`] for people and
//! for entries written before this format (`pending/<fs>/<id>.json`), which
//! are read the old way.
//!
//! What an import covered is recorded as the exact ids of the entries it
//! listed ([`crate::import_plan::ImportRecord::entries`], sorted, about 40
//! bytes each: one GET for 1,000 entries). A listing watermark would be
//! smaller, but many on-upload invocations write entries with no order
//! among them: one whose write was in flight while the task's listing ran
//! could sort below the mark without being in the task, and retiring it
//! would lose its uploads.

use crate::import_plan::{collapse, ObjectRef, PendingEntry};
use crate::s3_uri::S3Uri;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::collections::BTreeSet;

/// S3: a key is at most 1,024 bytes of UTF-8.
pub const MAX_KEY_BYTES: usize = 1024;
/// How many keys one `ListObjectsV2` page and one `DeleteObjects` call take.
pub const PAGE: usize = 1000;
/// Field separator in a pending key.
const FIELD: char = '~';
/// List separator inside a field.
const ITEM: char = ',';
/// "All of them": every pipeline, or the whole file system.
const ALL: &str = "*";
/// Kept readable in a listing; everything else (`~`, `,`, `%`, `*`, spaces, non-ASCII) is escaped.
const ESCAPED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'/').remove(b'=');
/// The path budgets tried, widest first, until the key fits.
const PATH_BUDGETS: [usize; 6] = [100, 30, 10, 3, 2, 1];

pub fn pending_prefix(file_system_id: &str) -> String {
    format!("pending/{file_system_id}/")
}

/// One pending entry as its key describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingKey {
    pub id: String,
    pub file_system_id: String,
    pub objects: usize,
    /// `None`: every pipeline of the file system (the names did not fit).
    pub pipelines: Option<BTreeSet<String>>,
    /// Empty: the whole file system (no prefix short enough fitted).
    pub paths: Vec<S3Uri>,
}

/// A key under `pending/<fs>/`, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listed {
    Summary(PendingKey),
    /// `pending/<fs>/<id>.json`, written before keys carried the summary: read its body.
    Legacy {
        id: String,
    },
}

impl Listed {
    pub fn id(&self) -> &str {
        match self {
            Listed::Summary(k) => &k.id,
            Listed::Legacy { id } => id,
        }
    }
}

impl PendingEntry {
    /// The entry's summary: its objects collapsed to prefixes short enough for the key.
    pub fn summary(&self, floors: &[S3Uri]) -> PendingKey {
        let mut key = PendingKey {
            id: self.id.clone(),
            file_system_id: self.file_system_id.clone(),
            objects: self.objects.len(),
            pipelines: Some(self.pipelines.clone()),
            paths: Vec::new(),
        };
        if key.head().len() + 2 > MAX_KEY_BYTES {
            key.pipelines = None;
        }
        let uris: Vec<S3Uri> = self.objects.iter().map(ObjectRef::uri).collect();
        let budget = MAX_KEY_BYTES - key.head().len();
        for max in PATH_BUDGETS {
            let paths = collapse(uris.clone(), floors, max);
            if !paths.is_empty() && encode_paths(&paths).len() <= budget {
                key.paths = paths;
                break;
            }
        }
        key
    }

    /// Where the entry is written: its summary's key.
    pub fn key(&self, floors: &[S3Uri]) -> String {
        self.summary(floors).key()
    }
}

impl PendingKey {
    /// Everything before the paths field.
    fn head(&self) -> String {
        let pipelines = match &self.pipelines {
            Some(p) => p.iter().map(|n| escape(n)).collect::<Vec<_>>().join(&ITEM.to_string()),
            None => ALL.to_owned(),
        };
        format!(
            "{}{}{FIELD}{}{FIELD}{pipelines}{FIELD}",
            pending_prefix(&self.file_system_id),
            escape(&self.id),
            self.objects
        )
    }

    pub fn key(&self) -> String {
        let paths = if self.paths.is_empty() {
            ALL.to_owned()
        } else {
            encode_paths(&self.paths)
        };
        format!("{}{paths}", self.head())
    }

    /// The pipelines whose uploads the entry holds; `on_file_system` when the key says "all".
    pub fn pipelines_or(&self, on_file_system: &BTreeSet<String>) -> BTreeSet<String> {
        self.pipelines.clone().unwrap_or_else(|| on_file_system.clone())
    }
}

fn escape(s: &str) -> String {
    utf8_percent_encode(s, ESCAPED).to_string()
}

fn unescape(s: &str) -> Option<String> {
    percent_decode_str(s).decode_utf8().ok().map(|c| c.into_owned())
}

fn encode_paths(paths: &[S3Uri]) -> String {
    paths
        .iter()
        .map(|p| escape(&format!("{}/{}", p.bucket, p.key)))
        .collect::<Vec<_>>()
        .join(&ITEM.to_string())
}

/// Reads a listed key of `pending/<fs>/`; `None` for a key of another shape.
pub fn parse_pending_key(file_system_id: &str, key: &str) -> Option<Listed> {
    let rest = key.strip_prefix(&pending_prefix(file_system_id))?;
    let fields: Vec<&str> = rest.split(FIELD).collect();
    let [id, objects, pipelines, paths] = fields.as_slice() else {
        let id = rest.strip_suffix(".json")?;
        return (!id.is_empty() && !id.contains('/')).then(|| Listed::Legacy { id: id.to_owned() });
    };
    let pipelines = match *pipelines {
        ALL => None,
        "" => Some(BTreeSet::new()),
        list => Some(list.split(ITEM).map(unescape).collect::<Option<BTreeSet<String>>>()?),
    };
    let paths = match *paths {
        ALL => Vec::new(),
        list => list
            .split(ITEM)
            .map(|p| {
                let p = unescape(p)?;
                let (bucket, key) = p.split_once('/')?;
                Some(S3Uri::new(bucket, key))
            })
            .collect::<Option<Vec<S3Uri>>>()?,
    };
    Some(Listed::Summary(PendingKey {
        id: unescape(id)?,
        file_system_id: file_system_id.to_owned(),
        objects: objects.parse().ok()?,
        pipelines,
        paths,
    }))
}

/// `imported/<fs>/<started-at>-<task-id>`: written when a succeeded import's
/// entries are retired (before they are deleted). Keys sort by the task's
/// start, so a redelivered batch lists only the imports that started after
/// its first delivery and reads their records to see whether one covered it.
pub fn imported_index_key(file_system_id: &str, started_at: u64, task_id: &str) -> String {
    format!("imported/{file_system_id}/{started_at:012}-{task_id}")
}

pub fn imported_index_prefix(file_system_id: &str) -> String {
    format!("imported/{file_system_id}/")
}

/// `StartAfter` for the imports that started at or after `since` (epoch seconds).
pub fn imported_index_start_after(file_system_id: &str, since: u64) -> String {
    // `<since>` sorts before `<since>-<task>` and after `<since - 1>-<task>`.
    format!("{}{since:012}", imported_index_prefix(file_system_id))
}

/// The task id of an imported-index key.
pub fn parse_imported_index_key(file_system_id: &str, key: &str) -> Option<String> {
    let rest = key.strip_prefix(&imported_index_prefix(file_system_id))?;
    let (at, task) = rest.split_once('-')?;
    (at.len() == 12 && at.bytes().all(|b| b.is_ascii_digit()) && !task.is_empty()).then(|| task.to_owned())
}

#[cfg(test)]
mod tests;
