//! `retrain status`: a sweep's variants with their start-up breakdown, and
//! how much start-up time the file system saved against another job.

use crate::lanes::JobObservation;
use crate::sweep::SweepManifest;
use crate::telemetry::JobTiming;
use serde::{Deserialize, Serialize};

/// One training job of the sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusRow {
    pub variant_id: String,
    pub lane: usize,
    pub attempt: u32,
    pub training_job_name: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing: Option<JobTiming>,
    /// An adaptive sweep's suggested hyperparameters for the variant.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub suggested: std::collections::BTreeMap<String, String>,
    /// How many finished results the suggestion was decided from (and how many trials were still running).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggested_from: Option<(usize, usize)>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub jobs: usize,
    pub completed: usize,
    pub failed: usize,
    pub running: usize,
    /// Variants not launched: they did not fit `sweep.max_instance_hours`.
    #[serde(default)]
    pub skipped: usize,
    pub startup_seconds: f64,
    pub download_seconds: f64,
    pub training_seconds: f64,
    pub warm_pools_reused: usize,
}

/// The sweep set beside another training job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub training_job_name: String,
    /// Start-up plus download of the other job.
    pub other_before_training_seconds: f64,
    /// Mean start-up plus download of the sweep's ended jobs.
    pub sweep_before_training_seconds: f64,
    /// Saved per job (negative if the sweep was slower).
    pub saved_per_job_seconds: f64,
    /// Saved over all the sweep's ended jobs.
    pub saved_total_seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepStatus {
    pub pipeline: String,
    pub sweep_id: String,
    pub metric: String,
    /// The data the sweep trains on: its version and "data as of".
    pub data_version: crate::lineage::DataVersion,
    pub rows: Vec<StatusRow>,
    pub totals: Totals,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compare: Option<Comparison>,
}

/// Rows in manifest order (variant, then attempt), with totals and an optional comparison.
pub fn sweep_status(manifest: &SweepManifest, jobs: &[JobObservation], compare: Option<(String, JobTiming)>) -> SweepStatus {
    let objective = &manifest.pipeline.training.objective.metric;
    let mut rows: Vec<StatusRow> = jobs
        .iter()
        .filter_map(|j| {
            let position = manifest.position_of(&j.variant_id)?;
            Some(StatusRow {
                variant_id: j.variant_id.clone(),
                lane: manifest.lane_of(position),
                attempt: j.attempt,
                training_job_name: j.training_job_name.clone(),
                status: j.status.as_str().to_owned(),
                metric: j.metrics.iter().find(|(n, _)| n == objective).map(|(_, v)| *v),
                timing: j.timing.clone(),
                suggested: Default::default(),
                suggested_from: None,
            })
        })
        .collect();
    rows.sort_by_key(|r| (manifest.position_of(&r.variant_id).unwrap_or(usize::MAX), r.attempt));
    let mut totals = Totals {
        jobs: rows.len(),
        ..Totals::default()
    };
    for r in &rows {
        match r.status.as_str() {
            "Completed" => totals.completed += 1,
            "Failed" | "Stopped" => totals.failed += 1,
            "Skipped" => totals.skipped += 1,
            _ => totals.running += 1,
        }
        if let Some(t) = &r.timing {
            totals.startup_seconds += t.startup_seconds;
            totals.download_seconds += t.download_seconds;
            totals.training_seconds += t.training_seconds;
            totals.warm_pools_reused += usize::from(t.warm_pool_reused);
        }
    }
    let timed: Vec<&JobTiming> = rows.iter().filter_map(|r| r.timing.as_ref()).collect();
    let compare = compare.filter(|_| !timed.is_empty()).map(|(name, other)| {
        let mean = timed.iter().map(|t| t.before_training()).sum::<f64>() / timed.len() as f64;
        let saved = other.before_training() - mean;
        Comparison {
            training_job_name: name,
            other_before_training_seconds: other.before_training(),
            sweep_before_training_seconds: mean,
            saved_per_job_seconds: saved,
            saved_total_seconds: saved * timed.len() as f64,
        }
    });
    SweepStatus {
        pipeline: manifest.pipeline.name.clone(),
        sweep_id: manifest.sweep_id.clone(),
        metric: objective.clone(),
        data_version: manifest.data_version(),
        rows,
        totals,
        compare,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;
    use crate::failure::JobStatus;
    use crate::sweep::SweepTrigger;

    fn manifest() -> SweepManifest {
        let c = parse(include_str!("../../../examples/pipelines.yaml")).expect("valid");
        SweepManifest::new(
            &c.pipelines[0],
            SweepTrigger {
                kind: "request".into(),
                id: "s".into(),
                reason: None,
            },
            None,
            None,
        )
        .expect("manifest")
    }

    fn timed(startup: f64, download: f64, reused: bool) -> JobTiming {
        JobTiming {
            startup_seconds: startup,
            download_seconds: download,
            training_seconds: 100.0,
            upload_seconds: 5.0,
            billable_seconds: None,
            warm_pool_reused: reused,
            warm_pool_billable_seconds: None,
            ..JobTiming::default()
        }
    }

    fn job(m: &SweepManifest, position: usize, attempt: u32, status: JobStatus, timing: Option<JobTiming>) -> JobObservation {
        JobObservation {
            variant_id: m.variants[position].id.clone(),
            attempt,
            training_job_name: m.job_name(position, attempt),
            status,
            secondary_status: None,
            failure_reason: None,
            metrics: vec![("validation:auc".into(), 0.8 + position as f64 / 100.0)],
            timing,
            failure_class: None,
            instance_type: None,
            capacity_failures: 0,
        }
    }

    #[test]
    fn rows_follow_the_manifest_and_totals_add_up() {
        let m = manifest();
        let jobs = vec![
            job(&m, 1, 1, JobStatus::Completed, Some(timed(60.0, 2.0, false))),
            job(&m, 0, 2, JobStatus::Completed, Some(timed(10.0, 1.0, true))),
            job(&m, 0, 1, JobStatus::Failed, Some(timed(30.0, 0.0, false))),
            job(&m, 2, 1, JobStatus::InProgress, None),
        ];
        let s = sweep_status(&m, &jobs, None);
        let order: Vec<(String, u32)> = s.rows.iter().map(|r| (r.variant_id.clone(), r.attempt)).collect();
        assert_eq!(order, vec![("v0".into(), 1), ("v0".into(), 2), ("v1".into(), 1), ("v2".into(), 1)]);
        assert_eq!((s.totals.jobs, s.totals.completed, s.totals.failed, s.totals.running), (4, 2, 1, 1));
        assert_eq!(s.totals.startup_seconds, 100.0);
        assert_eq!(s.totals.warm_pools_reused, 1);
        assert_eq!(s.rows[2].lane, 1);
    }

    #[test]
    fn comparison_shows_the_start_up_saved() {
        let m = manifest();
        let jobs = vec![
            job(&m, 0, 1, JobStatus::Completed, Some(timed(40.0, 2.0, false))),
            job(&m, 1, 1, JobStatus::Completed, Some(timed(20.0, 2.0, true))),
        ];
        let s = sweep_status(&m, &jobs, Some(("s3-file-mode-run".into(), timed(90.0, 300.0, false))));
        let c = s.compare.expect("comparison");
        assert_eq!(c.sweep_before_training_seconds, 32.0);
        assert_eq!(c.other_before_training_seconds, 390.0);
        assert_eq!(c.saved_per_job_seconds, 358.0);
        assert_eq!(c.saved_total_seconds, 716.0);
    }
}
