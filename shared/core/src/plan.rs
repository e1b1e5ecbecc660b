//! `retrain plan`: what the system would do with an event, as the AWS calls
//! it would make. Pure: the caller resolves anything that needs reading AWS
//! (mount names) beforehand.

use crate::config::{Config, FileSystemKind, Pipeline};
use crate::events::{event_id, DomainEvent, JobLaunched, SweepStarted};
use crate::failure::JobStatus;
use crate::import_plan::{import_task, pending_entries, repository_floors, ObjectRef, Unmatched};
use crate::inbound::{decode, Inbound, JobStateChange, Skip};
use crate::lanes::{decide, JobObservation};
use crate::messages::Message;
use crate::names;
use crate::requests::Action;
use crate::sweep::{SweepManifest, SweepTrigger};
use crate::sweep_records;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The contract output of `retrain plan`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub skipped: Vec<Skip>,
}

/// What the planner knows beyond the config.
#[derive(Debug, Clone, Default)]
pub struct PlanContext {
    /// Lustre mount names looked up by file system id.
    pub mount_names: BTreeMap<String, String>,
    /// The domain-event bus name used in `events:PutEvents` actions.
    pub event_bus: String,
    /// Epoch seconds now: the time a requested sweep's data version names.
    pub now: Option<u64>,
}

impl PlanContext {
    pub fn mount_name(&self, pipeline: &Pipeline) -> Option<String> {
        pipeline
            .file_system
            .mount_name
            .clone()
            .or_else(|| self.mount_names.get(&pipeline.file_system.id).cloned())
    }
}

/// Plans the AWS calls `payload` leads to.
pub fn plan(config: &Config, payload: &serde_json::Value, ctx: &PlanContext) -> Plan {
    let decoded = decode(payload);
    let mut out = Plan {
        actions: Vec::new(),
        skipped: decoded.skipped,
    };
    let mut objects: Vec<ObjectRef> = Vec::new();
    for item in decoded.items {
        match item.event {
            Inbound::ObjectCreated(o) => objects.push(o.object),
            Inbound::Scheduled(s) => {
                let scheduled: Vec<&Pipeline> = config.pipelines.iter().filter(|p| p.schedule.is_some()).collect();
                if scheduled.is_empty() {
                    out.skipped.push(skip(
                        format!("scheduled event {}", s.time),
                        "no pipeline has a `schedule`".to_owned(),
                    ));
                }
                for p in scheduled {
                    let trigger = SweepTrigger {
                        kind: "schedule".to_owned(),
                        id: s.time.clone(),
                        reason: None,
                    };
                    start_sweep(&mut out, p, trigger, None, ctx);
                }
            }
            Inbound::Message(Message::StartSweep(req)) => match config.pipeline(&req.pipeline) {
                Some(p) => {
                    let id = req
                        .request_id
                        .clone()
                        .unwrap_or_else(|| names::digest(&[&format!("{req:?}")])[..16].to_owned());
                    let trigger = SweepTrigger {
                        kind: "request".to_owned(),
                        id,
                        reason: req.reason.clone(),
                    };
                    start_sweep(&mut out, p, trigger, req.variants.as_deref(), ctx);
                }
                None => out.skipped.push(unknown_pipeline(config, &req.pipeline)),
            },
            Inbound::Message(Message::DataImportCompleted(done)) => {
                for name in &done.settled {
                    match config.pipeline(name) {
                        Some(p) => {
                            let trigger = SweepTrigger {
                                kind: "import".to_owned(),
                                id: done.task_id.clone(),
                                reason: None,
                            };
                            start_sweep(&mut out, p, trigger, None, ctx);
                        }
                        None => out.skipped.push(unknown_pipeline(config, name)),
                    }
                }
            }
            Inbound::Message(Message::ImportWatch(w)) => out.skipped.push(skip(
                format!("import-watch {}", w.task_id),
                "the watch timer acts on the task's live state in FSx; plan does not simulate it (see `retrain status`)".to_owned(),
            )),
            Inbound::Message(Message::SweepTick(t)) => out.skipped.push(skip(
                format!("sweep-tick {}", t.sweep_id),
                "a sweep tick acts on the sweep's live jobs in SageMaker; plan does not simulate it".to_owned(),
            )),
            Inbound::Message(Message::SweepFinish(f)) => out.skipped.push(skip(
                format!("sweep-finish {} page {}", f.sweep_id, f.part),
                "a sweep-finish page reads the sweep's records in S3; plan does not simulate it".to_owned(),
            )),
            Inbound::TrainingJobStateChange(change) => plan_job_change(&mut out, config, &change, ctx),
        }
    }
    plan_imports(&mut out, config, &objects);
    out
}

fn skip(item: String, reason: String) -> Skip {
    Skip {
        item,
        reason,
        message_id: None,
        malformed: false,
    }
}

fn unknown_pipeline(config: &Config, name: &str) -> Skip {
    let known: Vec<&str> = config.pipelines.iter().map(|p| p.name.as_str()).collect();
    skip(
        format!("pipeline {name:?}"),
        format!("no pipeline named {name:?} in the config (known: {})", known.join(", ")),
    )
}

fn plan_imports(out: &mut Plan, config: &Config, objects: &[ObjectRef]) {
    let (entries, unmatched) = pending_entries(config, objects);
    for (object, why) in unmatched {
        let reason = match why {
            Unmatched::NoPipeline => "no pipeline's trigger (bucket, prefixes, suffix) matches this key".to_owned(),
            Unmatched::OnlyEfs(names) => format!(
                "only EFS pipelines ({}) match: EFS needs no import; start their sweeps by schedule or request",
                names.join(", ")
            ),
        };
        out.skipped.push(skip(object.uri().to_string(), reason));
    }
    let file_systems: BTreeSet<&str> = entries.iter().map(|e| e.file_system_id.as_str()).collect();
    for fs in file_systems {
        let floors = repository_floors(config, fs);
        // As on-upload writes them: the task is built from the entries' keys.
        let of_fs: Vec<_> = entries
            .iter()
            .filter(|e| e.file_system_id == fs)
            .map(|e| e.summary(&floors))
            .collect();
        let settings = config
            .pipelines
            .iter()
            .find(|p| p.file_system.id == fs && p.file_system.kind == FileSystemKind::FsxLustre)
            .map(|p| p.import.clone())
            .unwrap_or_default();
        let task = import_task(fs, &of_fs, 1, &settings, &floors);
        out.actions.push(Action::CreateDataRepositoryTask(task));
    }
}

/// The first `max_parallel` launches of a new sweep, and its `SweepStarted`.
fn start_sweep(out: &mut Plan, p: &Pipeline, trigger: SweepTrigger, only: Option<&[String]>, ctx: &PlanContext) {
    let mut manifest = match SweepManifest::new(p, trigger, ctx.mount_name(p), only) {
        Ok(m) => m,
        Err(e) => {
            out.skipped.push(skip(format!("pipeline {:?}", p.name), e.to_string()));
            return;
        }
    };
    manifest.data_version = Some(crate::lineage::of_trigger(&manifest.trigger, ctx.now));
    let decision = decide(&manifest, &[]);
    let mut events = vec![DomainEvent::SweepStarted(SweepStarted::of(&manifest, manifest.key()))];
    // An adaptive sweep's first launches run the first suggestions (no results yet: the seed alone decides them).
    let suggested = crate::search_records::first_suggestions(&manifest);
    let mut ledger: Vec<crate::budget::BudgetEntry> = Vec::new();
    for launch in decision.launches {
        let name = manifest.job_name(launch.position, launch.attempt);
        let seq = ledger.len() as u32;
        if let Some(entry) = crate::budget::decide(
            &manifest,
            &ledger,
            &std::collections::HashMap::new(),
            seq,
            &name,
            &launch.variant_id,
            launch.attempt,
        ) {
            let admitted = entry.admitted;
            if !admitted {
                out.skipped
                    .push(skip(format!("pipeline {:?} variant {}", p.name, launch.variant_id), entry.reason()));
            }
            ledger.push(entry);
            if !admitted {
                continue;
            }
        }
        match manifest.launch_request(&launch) {
            Ok(mut job) => {
                if let Some(s) = suggested.iter().find(|s| s.variant_id == launch.variant_id) {
                    job.hyper_parameters.extend(crate::search::hyperparameters(&s.point));
                }
                events.push(DomainEvent::TrainingJobLaunched(JobLaunched {
                    pipeline: p.name.clone(),
                    sweep_id: manifest.sweep_id.clone(),
                    variant_id: launch.variant_id.clone(),
                    lane: launch.lane,
                    attempt: launch.attempt,
                    training_job_name: job.training_job_name.clone(),
                    instance_type: Some(job.resource_config.instance_type.clone()),
                }));
                out.actions.push(Action::CreateTrainingJob(Box::new(job)));
            }
            Err(e) => {
                out.skipped
                    .push(skip(format!("pipeline {:?} variant {}", p.name, launch.variant_id), e.to_string()));
                return;
            }
        }
    }
    // The same event ids the handlers publish with, so a plan names the events subscribers will see.
    out.actions.push(Action::PutEvents {
        entries: events
            .iter()
            .map(|e| {
                let scope = match e {
                    DomainEvent::TrainingJobLaunched(j) => sweep_records::job_event_scope(&manifest, &j.training_job_name),
                    _ => sweep_records::event_scope(&manifest),
                };
                e.entry(&ctx.event_bus, &event_id(&scope, e.detail_type()))
            })
            .collect(),
    });
}

pub fn file_system_type(p: &Pipeline) -> &'static str {
    match p.file_system.kind {
        FileSystemKind::FsxLustre => "FSxLustre",
        FileSystemKind::Efs => "EFS",
    }
}

/// A job of one lane ended: plan that lane's next step. Plan sees only this
/// event, so it assumes the lane's earlier variants have finished.
fn plan_job_change(out: &mut Plan, config: &Config, change: &JobStateChange, ctx: &PlanContext) {
    let label = format!("training job {}", change.training_job_name);
    let tag = |k: &str| change.tags.get(k).cloned();
    let (Some(pipeline), Some(sweep_id), Some(variant_id)) = (tag(names::TAG_PIPELINE), tag(names::TAG_SWEEP), tag(names::TAG_VARIANT))
    else {
        out.skipped.push(skip(
            label,
            "not a retrain job: it lacks the retrain:pipeline/sweep/variant tags".to_owned(),
        ));
        return;
    };
    let Some(p) = config.pipeline(&pipeline) else {
        out.skipped.push(unknown_pipeline(config, &pipeline));
        return;
    };
    let Some(status) = JobStatus::parse(&change.status) else {
        out.skipped
            .push(skip(label, format!("unknown TrainingJobStatus {:?}", change.status)));
        return;
    };
    let manifest = match SweepManifest::new(
        p,
        SweepTrigger {
            kind: "unknown".to_owned(),
            id: sweep_id.clone(),
            reason: None,
        },
        ctx.mount_name(p),
        None,
    ) {
        Ok(m) => SweepManifest { sweep_id, ..m },
        Err(e) => {
            out.skipped.push(skip(label, e.to_string()));
            return;
        }
    };
    let Some(position) = manifest.position_of(&variant_id) else {
        out.skipped.push(skip(
            label,
            format!("variant {variant_id} is not in pipeline {pipeline}'s current sweep"),
        ));
        return;
    };
    if manifest.pipeline.sweep.search.is_some() {
        out.skipped.push(skip(
            label,
            "an adaptive sweep's next variant is suggested from the results recorded in S3; plan does not simulate it (see `retrain status`)".to_owned(),
        ));
        return;
    }
    let attempt = tag(names::TAG_ATTEMPT).and_then(|a| a.parse().ok()).unwrap_or(1);
    let lane = manifest.lane_of(position);
    let mut jobs: Vec<JobObservation> = (lane..position)
        .step_by(manifest.max_parallel())
        .map(|earlier| JobObservation {
            variant_id: manifest.variants[earlier].id.clone(),
            attempt: 1,
            training_job_name: manifest.job_name(earlier, 1),
            status: JobStatus::Completed,
            secondary_status: None,
            failure_reason: None,
            metrics: Vec::new(),
            timing: None,
            failure_class: None,
            instance_type: None,
            capacity_failures: 0,
        })
        .collect();
    jobs.push(JobObservation {
        variant_id,
        attempt,
        training_job_name: change.training_job_name.clone(),
        status,
        secondary_status: change.secondary_status.clone(),
        failure_reason: change.failure_reason.clone(),
        metrics: change.metrics.clone(),
        timing: None,
        failure_class: None,
        instance_type: change.instance_type.clone(),
        capacity_failures: 0,
    });
    let decision = decide(&manifest, &jobs);
    let next: Vec<_> = decision.launches.into_iter().filter(|l| l.lane == lane).collect();
    if next.is_empty() {
        out.skipped.push(skip(
            label.clone(),
            format!("lane {lane} has nothing to launch ({})", change.status),
        ));
    }
    for launch in next {
        match manifest.launch_request(&launch) {
            Ok(job) => out.actions.push(Action::CreateTrainingJob(Box::new(job))),
            Err(e) => out.skipped.push(skip(label.clone(), e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests;
