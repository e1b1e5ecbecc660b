//! Lanes: with `max_parallel = k`, variant `i` runs in lane `i mod k`, one
//! job at a time, in order. Given what SageMaker says about a sweep's jobs,
//! decide what to launch next and whether the sweep is over. Any handler may
//! run this at any time, with duplicates: it only ever names jobs whose
//! deterministic names make a second launch a no-op.

use crate::config::Direction;
use crate::failure::{classify, FailureClass, JobStatus};
use crate::sweep::SweepManifest;
use crate::telemetry::JobTiming;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// What SageMaker reports about one training job of the sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobObservation {
    pub variant_id: String,
    pub attempt: u32,
    pub training_job_name: String,
    pub status: JobStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secondary_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    /// `FinalMetricDataList` as (name, value).
    #[serde(default)]
    pub metrics: Vec<(String, f64)>,
    /// Where the job's time went, once it has ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing: Option<JobTiming>,
    /// How a failed or stopped job was classified when its end was recorded
    /// (the record's key carries it, so lanes are decided from a listing alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_class: Option<FailureClass>,
    /// `ResourceConfig.InstanceType`, once known (the end record's key carries its position in the manifest's list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
    /// Capacity failures of the variant up to and including this attempt,
    /// counted where they decide something: for spot that falls back to
    /// on-demand (the end record's key carries it).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub capacity_failures: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl JobObservation {
    /// How the job's end counts for its variant: the recorded class, else the table's.
    pub fn class(&self) -> (FailureClass, &'static str) {
        let (classified, why) = classify(self.status, self.secondary_status.as_deref(), self.failure_reason.as_deref());
        (self.failure_class.unwrap_or(classified), why)
    }
}

/// The instance type a variant's next attempt uses after `job` failed: the
/// next one of the list after a capacity failure (back to the first after
/// the last), the same one otherwise.
fn retry_choice(manifest: &SweepManifest, job: &JobObservation, class: FailureClass) -> usize {
    let current = manifest.choice_of(job.instance_type.as_deref());
    match class {
        FailureClass::Capacity => (current + 1) % manifest.instances().len().max(1),
        _ => current,
    }
}

/// The instance type of a variant's first attempt: the one the lane's
/// previous job ran on, so the lane keeps a type that worked (and its warm
/// pool); the preferred type for a lane's first variant.
fn lane_choice(manifest: &SweepManifest, previous: Option<&JobObservation>) -> usize {
    previous.map_or(0, |p| manifest.choice_of(p.instance_type.as_deref()))
}

fn retry_of(manifest: &SweepManifest, job: &JobObservation, why: &str, choice: usize) -> Retry {
    Retry {
        training_job_name: job.training_job_name.clone(),
        failure_reason: job.failure_reason.clone().unwrap_or_default(),
        why: why.to_owned(),
        instance_type: job.instance_type.clone(),
        next_instance_type: Some(manifest.resource_config(choice).instance_type),
    }
}

/// A job to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Launch {
    /// Position of the variant in the manifest.
    pub position: usize,
    pub variant_id: String,
    pub lane: usize,
    pub attempt: u32,
    /// For a retry: the failed job it replaces and why it is retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_of: Option<Retry>,
    /// The job that ran before it in the lane (tagged `retrain:after`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// Position in the manifest's instance types of the type to try first.
    #[serde(default)]
    pub choice: usize,
    /// Run on-demand although the pipeline uses spot: the variant has had
    /// `spot.fallback_to_on_demand_after` capacity failures.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub on_demand: bool,
}

/// What a lane does once one of its jobs has ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaneStep {
    /// The job has not ended: nothing moves.
    Wait,
    /// Retry the variant or start the lane's next one.
    Launch(Launch),
    /// The lane's last variant is final.
    Done { lane: usize },
}

/// The lane's next step after `job` ended, from the job alone: the same
/// step [`decide`] takes for that lane once the job's end is recorded, so a
/// state-change event needs no listing of the sweep. `None` if the job is
/// not one of the manifest's.
pub fn after(manifest: &SweepManifest, job: &JobObservation) -> Option<LaneStep> {
    let position = manifest.position_of(&job.variant_id)?;
    let lane = manifest.lane_of(position);
    if !job.status.is_terminal() {
        return Some(LaneStep::Wait);
    }
    if matches!(job.status, JobStatus::Failed | JobStatus::Stopped) {
        let (class, why) = job.class();
        if class.retryable() && job.attempt < manifest.max_attempts() {
            let choice = retry_choice(manifest, job, class);
            return Some(LaneStep::Launch(Launch {
                position,
                variant_id: job.variant_id.clone(),
                lane,
                attempt: job.attempt + 1,
                retry_of: Some(retry_of(manifest, job, why, choice)),
                after: Some(job.training_job_name.clone()),
                choice,
                on_demand: manifest.on_demand_after(job.capacity_failures),
            }));
        }
    }
    let next = position + manifest.max_parallel();
    Some(match manifest.variants.get(next) {
        Some(variant) => LaneStep::Launch(Launch {
            position: next,
            variant_id: variant.id.clone(),
            lane,
            attempt: 1,
            retry_of: None,
            after: Some(job.training_job_name.clone()),
            choice: lane_choice(manifest, Some(job)),
            on_demand: false,
        }),
        None => LaneStep::Done { lane },
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retry {
    pub training_job_name: String,
    pub failure_reason: String,
    pub why: String,
    /// The type the failed job ran on, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
    /// The type the retry tries first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_instance_type: Option<String>,
}

/// How one variant ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct VariantResult {
    pub variant_id: String,
    pub lane: usize,
    pub attempt: u32,
    pub training_job_name: String,
    pub status: JobStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    /// The objective metric's final value, when the job reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<f64>,
    /// Start-up, download, training and upload seconds, and warm pool reuse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing: Option<JobTiming>,
    /// The instance type the variant's last attempt ran on, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
}

/// The end of a sweep: variants ranked by the objective, then those without the metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SweepOutcome {
    pub metric: String,
    pub direction: Direction,
    pub ranked: Vec<VariantResult>,
    pub unranked: Vec<VariantResult>,
}

impl SweepOutcome {
    pub fn best(&self) -> Option<&VariantResult> {
        self.ranked.first()
    }
}

/// What to do now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub launches: Vec<Launch>,
    /// Jobs currently running (InProgress or Stopping).
    pub running: usize,
    /// Set when every variant has reached its final state.
    pub completed: Option<SweepOutcome>,
}

/// The latest attempt of each variant, in one pass (sweeps have up to 1,000 variants).
fn latest(jobs: &[JobObservation]) -> HashMap<&str, &JobObservation> {
    let mut by_variant: HashMap<&str, &JobObservation> = HashMap::new();
    for job in jobs {
        let slot = by_variant.entry(job.variant_id.as_str()).or_insert(job);
        if job.attempt > slot.attempt {
            *slot = job;
        }
    }
    by_variant
}

/// Decides the next launches of every lane, or the sweep's completion.
pub fn decide(manifest: &SweepManifest, jobs: &[JobObservation]) -> Decision {
    let k = manifest.max_parallel();
    let max_attempts = manifest.max_attempts();
    let mut launches = Vec::new();
    let mut finals: Vec<VariantResult> = Vec::new();
    let mut all_done = true;
    let latest = latest(jobs);
    for lane in 0..k {
        let mut previous: Option<&JobObservation> = None;
        for position in (lane..manifest.variants.len()).step_by(k) {
            let variant = &manifest.variants[position];
            let Some(&job) = latest.get(variant.id.as_str()) else {
                launches.push(Launch {
                    position,
                    variant_id: variant.id.clone(),
                    lane,
                    attempt: 1,
                    retry_of: None,
                    after: previous.map(|p| p.training_job_name.clone()),
                    choice: lane_choice(manifest, previous),
                    on_demand: false,
                });
                all_done = false;
                break;
            };
            match job.status {
                JobStatus::InProgress | JobStatus::Stopping => {
                    all_done = false;
                    break;
                }
                JobStatus::Completed | JobStatus::Skipped => finals.push(result(manifest, lane, job)),
                JobStatus::Failed | JobStatus::Stopped => {
                    let (class, why) = job.class();
                    if class.retryable() && job.attempt < max_attempts {
                        let choice = retry_choice(manifest, job, class);
                        launches.push(Launch {
                            position,
                            variant_id: variant.id.clone(),
                            lane,
                            attempt: job.attempt + 1,
                            retry_of: Some(retry_of(manifest, job, why, choice)),
                            after: Some(job.training_job_name.clone()),
                            choice,
                            on_demand: manifest.on_demand_after(job.capacity_failures),
                        });
                        all_done = false;
                        break;
                    }
                    finals.push(result(manifest, lane, job));
                }
            }
            previous = Some(job);
        }
    }
    let running = jobs
        .iter()
        .filter(|j| matches!(j.status, JobStatus::InProgress | JobStatus::Stopping))
        .count();
    let completed = all_done.then(|| rank(manifest, finals));
    Decision {
        launches,
        running,
        completed,
    }
}

fn result(manifest: &SweepManifest, lane: usize, job: &JobObservation) -> VariantResult {
    let objective = &manifest.pipeline.training.objective.metric;
    VariantResult {
        variant_id: job.variant_id.clone(),
        lane,
        attempt: job.attempt,
        training_job_name: job.training_job_name.clone(),
        status: job.status,
        timing: job.timing.clone(),
        instance_type: job.instance_type.clone(),
        failure_reason: job.failure_reason.clone(),
        metric: if job.status == JobStatus::Completed {
            job.metrics
                .iter()
                .find(|(name, _)| name == objective)
                .map(|(_, v)| *v)
                .filter(|v| v.is_finite())
        } else {
            None
        },
    }
}

/// Ranks results by the objective metric in its direction; ties keep manifest order.
pub fn rank(manifest: &SweepManifest, mut results: Vec<VariantResult>) -> SweepOutcome {
    let objective = &manifest.pipeline.training.objective;
    let positions: HashMap<&str, usize> = manifest.variants.iter().enumerate().map(|(i, v)| (v.id.as_str(), i)).collect();
    results.sort_by_key(|r| positions.get(r.variant_id.as_str()).copied().unwrap_or(usize::MAX));
    let (mut ranked, unranked): (Vec<_>, Vec<_>) = results.into_iter().partition(|r| r.metric.is_some());
    ranked.sort_by(|a, b| {
        let (x, y) = (a.metric.unwrap_or(f64::NAN), b.metric.unwrap_or(f64::NAN));
        match objective.direction {
            Direction::Maximize => y.total_cmp(&x),
            Direction::Minimize => x.total_cmp(&y),
        }
    });
    SweepOutcome {
        metric: objective.metric.clone(),
        direction: objective.direction,
        ranked,
        unranked,
    }
}

#[cfg(test)]
mod tests;
