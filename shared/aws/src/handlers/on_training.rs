//! on-training: a training job of ours changed state (or a relaunch timer
//! fired): run the sweep's lanes.

use super::sweeps::{advance, load, Progress};
use super::{deferral, finish, job_end};
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
        let (pipeline, sweep_id) = match &item.event {
            Inbound::TrainingJobStateChange(c) => {
                let (Some(p), Some(s)) = (c.tags.get(names::TAG_PIPELINE), c.tags.get(names::TAG_SWEEP)) else {
                    out.skipped.push(skip(format!(
                        "{} is not a retrain job (no retrain:pipeline / retrain:sweep tags)",
                        c.training_job_name
                    )));
                    continue;
                };
                if JobStatus::parse(&c.status).is_none() {
                    out.skipped.push(skip(format!("unknown TrainingJobStatus {:?}", c.status)));
                    continue;
                }
                (p.clone(), s.clone())
            }
            Inbound::Message(Message::SweepTick(t)) => (t.pipeline.clone(), t.sweep_id.clone()),
            Inbound::Message(Message::SweepFinish(f)) => (f.pipeline.clone(), f.sweep_id.clone()),
            _ => {
                out.skipped.push(skip(
                    "on-training takes SageMaker Training Job State Change events, sweep ticks and sweep-finish pages".into(),
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
            match &item.event {
                Inbound::TrainingJobStateChange(c) => job_end::handle(deps, &manifest, c, &mut out).await.map(|_| ()),
                Inbound::Message(Message::SweepFinish(f)) => finish::page(deps, &manifest, f.part, f.start_after.as_deref(), &mut out)
                    .await
                    .map(|_| ()),
                Inbound::Message(Message::SweepTick(t)) => match advance(deps, &manifest, Pass::Event, &mut out).await? {
                    // A tick that found the launch still refused keeps its chain going.
                    Progress::Deferred => deferral::next_tick(deps, &manifest, t).await,
                    _ => Ok(()),
                },
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
