//! start-sweep: from an import completion, a schedule or a request.

use super::sweeps::start;
use super::Outcome;
use crate::deps::Deps;
use crate::error::Error;
use retrain_core::inbound::{decode, Inbound, Skip};
use retrain_core::messages::Message;
use retrain_core::sweep::SweepTrigger;
use std::collections::BTreeSet;

/// `request_id` is the Lambda request id: the idempotency key of a direct
/// request without its own. A request that came through EventBridge is keyed
/// on the event's `id`, which stays the same when EventBridge delivers it twice.
pub async fn handle(deps: &Deps, payload: &serde_json::Value, request_id: &str) -> Result<serde_json::Value, Error> {
    let decoded = decode(payload);
    let mut out = Outcome::from_decoded(&decoded);
    let mut fatal = None;
    for item in &decoded.items {
        let ids = BTreeSet::from([item.message_id.clone()]);
        let mut starts: Vec<(String, SweepTrigger, Option<Vec<String>>)> = Vec::new();
        match &item.event {
            Inbound::Message(Message::DataImportCompleted(done)) => {
                for p in &done.settled {
                    starts.push((
                        p.clone(),
                        SweepTrigger {
                            kind: "import".into(),
                            id: done.task_id.clone(),
                            reason: None,
                        },
                        None,
                    ));
                }
            }
            Inbound::Scheduled(s) => {
                for p in deps.config.pipelines.iter().filter(|p| p.schedule.is_some()) {
                    let schedule = p.schedule.as_deref().unwrap_or_default();
                    match deps.settings.schedule_expression.as_deref() {
                        Some(stack) if schedule != stack => out.skipped.push(Skip {
                            item: format!("pipeline {:?}", p.name),
                            reason: format!(
                                "its schedule {schedule:?} is not this stack's {stack:?}: set the pipeline's schedule to {stack:?}, or deploy a stack with ScheduleExpression={schedule:?} for it"
                            ),
                            message_id: item.message_id.clone(),
                            malformed: false,
                        }),
                        _ => starts.push((p.name.clone(), SweepTrigger { kind: "schedule".into(), id: s.time.clone(), reason: None }, None)),
                    }
                }
            }
            Inbound::Message(Message::StartSweep(req)) => {
                let id = req
                    .request_id
                    .clone()
                    .or_else(|| item.event_id.clone())
                    .unwrap_or_else(|| request_id.to_owned());
                starts.push((
                    req.pipeline.clone(),
                    SweepTrigger {
                        kind: "request".into(),
                        id,
                        reason: req.reason.clone(),
                    },
                    req.variants.clone(),
                ));
            }
            _ => out.skipped.push(Skip {
                item: item.message_id.clone().unwrap_or_else(|| "event".into()),
                reason: "start-sweep takes DataImportCompleted, Scheduled Event and start-sweep requests".into(),
                message_id: item.message_id.clone(),
                malformed: false,
            }),
        }
        for (name, trigger, only) in starts {
            let Some(pipeline) = deps.config.pipeline(&name) else {
                let known: Vec<&str> = deps.config.pipelines.iter().map(|p| p.name.as_str()).collect();
                out.skipped.push(Skip {
                    item: format!("pipeline {name:?}"),
                    reason: format!("no such pipeline in RETRAIN_CONFIG (known: {})", known.join(", ")),
                    message_id: item.message_id.clone(),
                    malformed: false,
                });
                continue;
            };
            if let Err(e) = start(deps, pipeline, trigger, only.as_deref(), &mut out).await {
                out.failed(&ids, e, &mut fatal);
            }
        }
    }
    out.finish(fatal)
}
