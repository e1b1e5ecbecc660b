//! Data lineage: the data version of a sweep, so anyone can trace a model
//! to the data it was trained on. An FSx sweep started by imports names the
//! tasks, how many objects they covered, the newest object's time and a
//! digest of the covered keys with their sequencers (or ETags); any other
//! sweep (EFS, a schedule, a request) names its trigger and its time.
//!
//! Each import that succeeds records its part per pipeline
//! (`lineage/<pipeline>/unswept/<started>-<task>.json`, create-once, written
//! before its pending entries are retired). The pipeline's next import
//! sweep takes every unswept part into its manifest (create-once, so the
//! version is fixed when the sweep starts) and only then retires them: a
//! pipeline that waited for a follow-up import trains on both, and names both.

use crate::names;
use crate::sweep::SweepTrigger;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Tag on every training job: the sweep's data version.
pub const TAG_DATA_VERSION: &str = "retrain:data-version";

/// The data a sweep trains on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DataVersion {
    /// Short stable id (`dv-<16 hex>`): the `retrain:data-version` tag of every job.
    pub version: String,
    /// What the version stands on: `import` (FSx imports), `schedule` or `request`.
    pub trigger: String,
    /// The import tasks whose success started the sweep, oldest first (FSx only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub imports: Vec<String>,
    /// How many uploaded objects those imports covered for the pipeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objects: Option<usize>,
    /// "Data as of": the newest covered object's time; for other sweeps, when the sweep started (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_as_of: Option<String>,
    /// SHA-256 of the covered keys with their sequencers or ETags (FSx imports only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// What one succeeded import covered for one pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportLineage {
    pub task_id: String,
    pub pipeline: String,
    pub started_at: u64,
    pub objects: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest: Option<String>,
    /// SHA-256 of the covered entries' ids, each a digest of its `bucket/key@sequencer` lines.
    pub digest: String,
}

/// Prefix of a pipeline's import parts that no sweep has taken yet.
pub fn unswept_prefix(pipeline: &str) -> String {
    format!("lineage/{pipeline}/unswept/")
}

pub fn unswept_key(pipeline: &str, started_at: u64, task_id: &str) -> String {
    format!("{}{started_at:012}-{task_id}.json", unswept_prefix(pipeline))
}

/// One pending entry an import covered, as its listing shows it: the
/// entry's id is already a digest of its objects with their sequencers (or
/// ETags), so the lineage needs no read of the entry's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoveredUpload {
    pub entry_id: String,
    pub objects: usize,
    /// When retrain recorded the upload (the entry's `LastModified`, epoch
    /// seconds): within one batching window of the objects' writes.
    pub recorded_at: u64,
}

/// What an import covered for `pipeline`, from the pending entries it retires.
pub fn import_part(pipeline: &str, task_id: &str, started_at: u64, covered: &[CoveredUpload]) -> ImportLineage {
    let mut covered: Vec<&CoveredUpload> = covered.iter().collect();
    covered.sort_by(|a, b| a.entry_id.cmp(&b.entry_id));
    // A redelivered batch computes the same entry id: counted once.
    covered.dedup_by(|a, b| a.entry_id == b.entry_id);
    let ids: Vec<&str> = covered.iter().map(|c| c.entry_id.as_str()).collect();
    ImportLineage {
        task_id: task_id.to_owned(),
        pipeline: pipeline.to_owned(),
        started_at,
        objects: covered.iter().map(|c| c.objects).sum(),
        newest: covered.iter().map(|c| c.recorded_at).max().map(rfc3339),
        digest: names::digest(&ids),
    }
}

/// The data version of a sweep started by imports, from their parts (any order).
pub fn of_imports(trigger: &SweepTrigger, parts: &[ImportLineage]) -> DataVersion {
    let mut parts: Vec<&ImportLineage> = parts.iter().collect();
    parts.sort_by(|a, b| (a.started_at, &a.task_id).cmp(&(b.started_at, &b.task_id)));
    parts.dedup_by(|a, b| a.task_id == b.task_id);
    if parts.is_empty() {
        // Imports recorded before lineage existed: the trigger is all there is to name.
        return of_trigger(trigger, None);
    }
    let digests: Vec<&str> = parts.iter().map(|p| p.digest.as_str()).collect();
    let digest = if digests.len() == 1 {
        digests[0].to_owned()
    } else {
        names::digest(&digests)
    };
    DataVersion {
        version: format!("dv-{}", &digest[..16]),
        trigger: trigger.kind.clone(),
        imports: parts.iter().map(|p| p.task_id.clone()).collect(),
        objects: Some(parts.iter().map(|p| p.objects).sum()),
        data_as_of: parts.iter().filter_map(|p| p.newest.clone()).max(),
        digest: Some(digest),
    }
}

/// The data version of a sweep that no import started: its trigger and time.
/// A schedule's time is the trigger's own; otherwise `started_at` (epoch seconds).
pub fn of_trigger(trigger: &SweepTrigger, started_at: Option<u64>) -> DataVersion {
    let time = match trigger.kind.as_str() {
        "schedule" => Some(normalize_time(&trigger.id)),
        _ => started_at.map(rfc3339),
    };
    let stamp = time.clone().unwrap_or_default();
    DataVersion {
        version: format!("dv-{}", &names::digest(&[&trigger.kind, &trigger.id, &stamp])[..16]),
        trigger: trigger.kind.clone(),
        // An import sweep whose imports left no record names its trigger's task at least.
        imports: if trigger.kind == "import" {
            vec![trigger.id.clone()]
        } else {
            Vec::new()
        },
        objects: None,
        data_as_of: time,
        digest: None,
    }
}

/// One spelling of an instant (UTC, `Z`, fractions only when not zero),
/// whether it came as `2026-11-25T09:00:00.000Z` from S3 or as
/// `2026-11-25T09:00:00+00:00` from a parsed event, so the newest is the greatest.
pub fn normalize_time(t: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| d.to_utc().to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_else(|_| t.to_owned())
}

/// Epoch seconds as `YYYY-MM-DDThh:mm:ssZ` (UTC).
pub fn rfc3339(epoch: u64) -> String {
    i64::try_from(epoch)
        .ok()
        .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::import_plan::{pending_entries, ObjectRef};

    fn config() -> Config {
        serde_yaml::from_str(include_str!("../../../examples/pipelines.yaml")).expect("example config")
    }

    /// The entry a batch of `(key, sequencer)` uploads becomes, as an import covers it.
    fn upload(config: &Config, keys: &[(&str, &str)], recorded_at: u64) -> CoveredUpload {
        let p = &config.pipelines[0];
        let objects: Vec<ObjectRef> = keys
            .iter()
            .map(|(k, v)| ObjectRef {
                bucket: p.trigger.bucket.clone(),
                key: format!("{}{k}", p.trigger.prefixes[0]),
                version: Some((*v).to_owned()),
                time: None,
            })
            .collect();
        let (entries, unmatched) = pending_entries(config, &objects);
        assert!(unmatched.is_empty(), "{unmatched:?}");
        CoveredUpload {
            entry_id: entries[0].id.clone(),
            objects: entries[0].objects.len(),
            recorded_at,
        }
    }

    fn trigger() -> SweepTrigger {
        SweepTrigger {
            kind: "import".into(),
            id: "task-b".into(),
            reason: None,
        }
    }

    #[test]
    fn an_import_part_counts_the_objects_once_and_names_the_newest() {
        let c = config();
        let first = upload(
            &c,
            &[("a.csv", "0055AED6DCD90281E5"), ("b.csv", "0055AED6DCD90281E6")],
            1_764_061_200,
        );
        let later = upload(&c, &[("c.csv", "0055AED6DCD90281E7")], 1_764_061_500);
        let part = import_part("churn", "task-a", 10, &[first.clone(), later, first]);
        assert_eq!(part.objects, 3, "a redelivered batch is counted once");
        assert_eq!(part.newest.as_deref(), Some("2025-11-25T09:05:00Z"));
        assert_eq!(part.digest.len(), 64);
    }

    #[test]
    fn a_new_write_of_the_same_key_is_a_new_digest() {
        let c = config();
        let one = import_part("churn", "t", 1, &[upload(&c, &[("a.csv", "01")], 5)]);
        let two = import_part("churn", "t", 1, &[upload(&c, &[("a.csv", "02")], 5)]);
        assert_ne!(one.digest, two.digest);
        let again = import_part("churn", "t", 1, &[upload(&c, &[("a.csv", "01")], 9)]);
        assert_eq!(
            one.digest, again.digest,
            "the same data is the same digest, whenever it was recorded"
        );
    }

    #[test]
    fn a_sweep_after_a_follow_up_names_both_imports_in_order() {
        let c = config();
        let a = import_part("churn", "task-a", 10, &[upload(&c, &[("a.csv", "01")], 1_764_061_200)]);
        let b = import_part("churn", "task-b", 20, &[upload(&c, &[("b.csv", "02")], 1_764_064_800)]);
        let v = of_imports(&trigger(), &[b.clone(), a.clone(), b.clone()]);
        assert_eq!(v.imports, ["task-a", "task-b"]);
        assert_eq!(v.objects, Some(2));
        assert_eq!(v.data_as_of.as_deref(), Some("2025-11-25T10:00:00Z"));
        assert!(v.version.starts_with("dv-") && v.version.len() == 19, "{}", v.version);
        assert_eq!(v, of_imports(&trigger(), &[a, b]), "the parts' order does not matter");
    }

    #[test]
    fn other_sweeps_are_versioned_by_trigger_and_time() {
        let schedule = SweepTrigger {
            kind: "schedule".into(),
            id: "2026-11-25T06:00:00Z".into(),
            reason: None,
        };
        let v = of_trigger(&schedule, Some(0));
        assert_eq!(v.data_as_of.as_deref(), Some("2026-11-25T06:00:00Z"));
        assert_eq!(v.trigger, "schedule");
        let request = SweepTrigger {
            kind: "request".into(),
            id: "r1".into(),
            reason: None,
        };
        let r = of_trigger(&request, Some(1_764_050_400));
        assert_eq!(r.data_as_of.as_deref(), Some("2025-11-25T06:00:00Z"));
        assert_ne!(r.version, of_trigger(&request, Some(1_764_050_401)).version);
    }

    #[test]
    fn every_spelling_of_an_instant_is_normalized_to_one() {
        for t in [
            "2026-11-25T01:23:45Z",
            "2026-11-25T01:23:45.000Z",
            "2026-11-25T01:23:45+00:00",
            "2026-11-25T02:23:45+01:00",
        ] {
            assert_eq!(normalize_time(t), "2026-11-25T01:23:45Z", "{t}");
        }
        assert_eq!(normalize_time("2026-11-25T01:23:45.250Z"), "2026-11-25T01:23:45.250Z");
        assert_eq!(normalize_time("not a time"), "not a time", "kept as given rather than lost");
    }

    #[test]
    fn rfc3339_formats_epoch_seconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_798_761_599), "2026-12-31T23:59:59Z");
    }
}
