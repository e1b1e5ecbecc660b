//! on-training: a training job of ours changed state (or a relaunch timer
//! fired): run the sweep's lanes.

use super::deferral;
use super::sweeps::{advance, load, observation, Progress};
use super::{Outcome, Pass};
use crate::deps::Deps;
use crate::error::Error;
use retrain_core::failure::JobStatus;
use retrain_core::inbound::{decode, Inbound, Skip};
use retrain_core::messages::Message;
use retrain_core::names;
use std::collections::BTreeSet;

pub async fn handle(deps: &Deps, payload: &serde_json::Value) -> Result<serde_json::Value, Error> {
    let decoded = decode(payload);
    let mut out = Outcome::from_decoded(&decoded);
    let mut fatal = None;
    for item in &decoded.items {
        let ids = BTreeSet::from([item.message_id.clone()]);
        let skip = |reason: String| Skip {
            item: item.message_id.clone().unwrap_or_else(|| "event".into()),
            reason,
            message_id: item.message_id.clone(),
            malformed: false,
        };
        let mut tick = None;
        let (pipeline, sweep_id, fresh) = match &item.event {
            Inbound::TrainingJobStateChange(c) => {
                let (Some(p), Some(s)) = (c.tags.get(names::TAG_PIPELINE), c.tags.get(names::TAG_SWEEP)) else {
                    out.skipped.push(skip(format!(
                        "{} is not a retrain job (no retrain:pipeline / retrain:sweep tags)",
                        c.training_job_name
                    )));
                    continue;
                };
                let Some(status) = JobStatus::parse(&c.status) else {
                    out.skipped.push(skip(format!("unknown TrainingJobStatus {:?}", c.status)));
                    continue;
                };
                (
                    p.clone(),
                    s.clone(),
                    Some((
                        c.training_job_name.clone(),
                        status,
                        c.secondary_status.clone(),
                        c.failure_reason.clone(),
                        c.metrics.clone(),
                    )),
                )
            }
            Inbound::Message(Message::SweepTick(t)) => {
                tick = Some(t.clone());
                (t.pipeline.clone(), t.sweep_id.clone(), None)
            }
            _ => {
                out.skipped.push(skip(
                    "on-training takes SageMaker Training Job State Change events and sweep ticks".into(),
                ));
                continue;
            }
        };
        let result = async {
            let Some(manifest) = load(deps, &pipeline, &sweep_id).await? else {
                out.skipped.push(skip(format!(
                    "sweep {sweep_id} of {pipeline} has no manifest in s3://{}: not started by this stack",
                    deps.store.bucket()
                )));
                return Ok(());
            };
            let fresh = fresh
                .and_then(|(name, status, secondary, reason, metrics)| observation(&manifest, &name, status, secondary, reason, metrics));
            let progress = advance(deps, &manifest, fresh, Pass::Event, &mut out).await?;
            // A tick that found the launch still refused keeps its chain going.
            match (&tick, progress) {
                (Some(t), Progress::Deferred) => deferral::next_tick(deps, &manifest, t).await,
                _ => Ok(()),
            }
        }
        .await;
        if let Err(e) = result {
            out.failed(&ids, e, &mut fatal);
        }
    }
    out.finish(fatal)
}
