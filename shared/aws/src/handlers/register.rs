//! Registering a completed sweep's best model, exactly once: the decision
//! (package contents, gate result, status) is recorded create-once before
//! any registry write; the package is looked up by the sweep id before it
//! is created, and created with a `ClientToken` derived from the sweep, so
//! a lost reply, a crash or a concurrent duplicate finds the same package;
//! `registration/done` is written last. The sweep's open marker stays until
//! then, so the reconciler drives a registration left open to its end.
//!
//! Cost once the sweep is done: one S3 HEAD. A first registration: about
//! ten calls (group, production, decision, job, list, create, update, event).

use super::Outcome;
use crate::adapters::registry::Contents;
use crate::adapters::store::Created;
use crate::deps::Deps;
use crate::error::Error;
use retrain_core::events::{DomainEvent, ModelRegistered};
use retrain_core::lanes::SweepOutcome;
use retrain_core::names::TAG_PIPELINE;
use retrain_core::promotion::{self, Registration};
use retrain_core::sweep::SweepManifest;
use retrain_core::sweep_records::{event_scope, results_key, sweep_prefix};
use std::collections::BTreeMap;

fn decision_key(manifest: &SweepManifest) -> String {
    format!("{}registration/decision.json", sweep_prefix(manifest))
}

fn done_key(manifest: &SweepManifest) -> String {
    format!("{}registration/done.json", sweep_prefix(manifest))
}

/// Registers the sweep's best model if its pipeline has a `promotion`
/// section and it is not registered yet. `outcome` is the sweep's result
/// when the caller has it; otherwise `results.json` is read.
pub async fn after_sweep(deps: &Deps, manifest: &SweepManifest, outcome: Option<&SweepOutcome>, out: &mut Outcome) -> Result<(), Error> {
    let Some(settings) = &manifest.pipeline.promotion else {
        return Ok(());
    };
    let done = done_key(manifest);
    if deps.store.exists(&done).await? {
        return Ok(());
    }
    let registration = match deps
        .store
        .get::<Registration>("registration decision", &decision_key(manifest))
        .await?
    {
        Some(recorded) => recorded,
        None => {
            let read;
            let outcome = match outcome {
                Some(o) => o,
                None => {
                    read = deps.store.get::<SweepOutcome>("sweep results", &results_key(manifest)).await?;
                    match &read {
                        Some(o) => o,
                        None => return Ok(()),
                    }
                }
            };
            let Some(best) = outcome.best().filter(|b| b.metric.is_some()) else {
                let why = format!(
                    "sweep {}: no variant reported {}, so no model is registered",
                    manifest.sweep_id, outcome.metric
                );
                deps.store
                    .put(&done, &serde_json::json!({ "registered": false, "why": why }))
                    .await?;
                out.did(why);
                return Ok(());
            };
            let mut tags = settings.tags.clone();
            tags.insert(TAG_PIPELINE.to_owned(), manifest.pipeline.name.clone());
            let description = settings
                .description
                .clone()
                .unwrap_or_else(|| format!("Models of the retrain pipeline {}", manifest.pipeline.name));
            deps.sagemaker
                .ensure_group(&settings.model_package_group, &description, &tags)
                .await?;
            let production = deps.sagemaker.production(&settings.model_package_group).await?;
            let Some(decided) = promotion::decide(manifest, best, production, super::now_epoch()) else {
                return Ok(());
            };
            match deps.store.put_once(&decision_key(manifest), &decided).await? {
                Created::Now => decided,
                // Another delivery decided first: its decision stands.
                Created::AlreadyThere => deps
                    .store
                    .get::<Registration>("registration decision", &decision_key(manifest))
                    .await?
                    .unwrap_or(decided),
            }
        }
    };
    let arn = match deps
        .sagemaker
        .registered(&registration.group, &manifest.sweep_id, registration.decided_at)
        .await?
    {
        Some(package) => package.arn,
        None => {
            let job = deps.sagemaker.describe(&registration.training_job_name).await?;
            let artifacts = job.model_artifacts.ok_or_else(|| {
                Error::Setup(format!(
                    "training job {} reports no ModelArtifacts.S3ModelArtifacts: nothing to register in {}",
                    registration.training_job_name, registration.group
                ))
            })?;
            let training = &manifest.pipeline.training;
            let contents = Contents {
                model_data_url: &artifacts,
                image: training.image.as_deref(),
                algorithm_name: training.algorithm_name.as_deref(),
            };
            deps.sagemaker.create_package(&registration, &contents).await?
        }
    };
    deps.sagemaker
        .set_status(&arn, registration.status, &registration.comparison)
        .await?;
    let event = DomainEvent::ModelRegistered(ModelRegistered {
        pipeline: manifest.pipeline.name.clone(),
        sweep_id: manifest.sweep_id.clone(),
        model_package_group: registration.group.clone(),
        model_package_arn: arn.clone(),
        status: registration.status,
        training_job_name: registration.training_job_name.clone(),
        metric: registration.metric.clone(),
        value: registration.value,
        production_package_arn: registration.production.as_ref().map(|p| p.arn.clone()),
        production_value: registration.production.as_ref().and_then(|p| p.value),
        passed_gate: registration.passed_gate,
        reason: registration.comparison.clone(),
        data_version: manifest.data_version(),
    });
    deps.publish_once(&event_scope(manifest), &event).await?;
    let record = BTreeMap::from([
        ("model_package_arn", arn.clone()),
        ("status", registration.status.as_str().to_owned()),
    ]);
    deps.store.put(&done, &record).await?;
    out.did(format!(
        "sweep {}: {arn} registered {}",
        manifest.sweep_id,
        registration.status.as_str()
    ));
    Ok(())
}
