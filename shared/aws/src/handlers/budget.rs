//! The spend cap's ledger (decisions in `retrain_core::budget`): each launch
//! of a capped sweep takes the ledger's next slot, create-once, before
//! `CreateTrainingJob`; a retry or a redelivery finds its slot and does the
//! same again. Of two lanes that want one slot, the loser decides again
//! with the winner counted.
//!
//! Cost per launch of a capped sweep: two listings and one GET per ledger
//! entry (launches so far); an uncapped sweep makes no call at all.

use super::sweep_state;
use crate::adapters::store::Created;
use crate::deps::Deps;
use crate::error::Error;
use retrain_core::budget::{self, billed_from_keys, ledger_key, ledger_prefix, next_seq, recorded, BudgetEntry};
use retrain_core::failure::JobStatus;
use retrain_core::lanes::{JobObservation, Launch};
use retrain_core::sweep::SweepManifest;
use retrain_core::sweep_records::jobs_prefix;

/// How often a lost race for a slot is decided again before the message is retried.
const MAX_SLOT_RACES: u32 = 16;

/// What the cap says about a launch.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    Launch,
    /// The variant is skipped: its recorded end, and whether this call recorded it.
    Skipped {
        job: Box<JobObservation>,
        first: bool,
    },
}

/// Decides (or reads back) whether `launch` fits the sweep's cap; a skip is recorded as the attempt's end.
pub async fn admit(deps: &Deps, manifest: &SweepManifest, launch: &Launch) -> Result<Admission, Error> {
    if manifest.pipeline.sweep.max_instance_hours.is_none() {
        return Ok(Admission::Launch);
    }
    let name = manifest.job_name(launch.position, launch.attempt);
    for _ in 0..MAX_SLOT_RACES {
        let keys = deps.store.list(&ledger_prefix(manifest)).await?;
        let mut entries: Vec<BudgetEntry> = Vec::with_capacity(keys.len());
        for key in &keys {
            if let Some(e) = deps.store.get::<BudgetEntry>("budget ledger entry", key).await? {
                entries.push(e);
            }
        }
        entries.sort_by_key(|e| e.seq);
        if let Some(entry) = recorded(&entries, &name) {
            return settle(deps, manifest, launch, entry).await;
        }
        let billed = billed_from_keys(manifest, &deps.store.list(&jobs_prefix(manifest)).await?);
        let seq = next_seq(manifest, &keys);
        let Some(entry) = budget::decide(manifest, &entries, &billed, seq, &name, &launch.variant_id, launch.attempt) else {
            return Ok(Admission::Launch);
        };
        if deps.store.put_once(&ledger_key(manifest, seq), &entry).await? == Created::Now {
            return settle(deps, manifest, launch, &entry).await;
        }
    }
    Err(Error::Aws {
        operation: "s3:PutObject",
        resource: format!("s3://{}/{}", deps.store.bucket(), ledger_prefix(manifest)),
        code: "BudgetLedgerContention".to_owned(),
        message: format!("{MAX_SLOT_RACES} concurrent launches took the ledger's next slot first"),
        fix: "transient: the message is retried".to_owned(),
        retryable: true,
    })
}

/// Acts on a recorded decision: a skip becomes the attempt's end record.
async fn settle(deps: &Deps, manifest: &SweepManifest, launch: &Launch, entry: &BudgetEntry) -> Result<Admission, Error> {
    if entry.admitted {
        return Ok(Admission::Launch);
    }
    let mut job = JobObservation {
        variant_id: launch.variant_id.clone(),
        attempt: launch.attempt,
        training_job_name: entry.training_job_name.clone(),
        status: JobStatus::Skipped,
        secondary_status: None,
        failure_reason: Some(entry.reason()),
        metrics: Vec::new(),
        timing: None,
        failure_class: None,
        // The lane keeps its type past a skipped variant.
        instance_type: Some(manifest.resource_config(launch.choice).instance_type),
        capacity_failures: 0,
    };
    let first = sweep_state::record_end(&deps.store, manifest, &mut job).await? == Created::Now;
    Ok(Admission::Skipped { job: Box::new(job), first })
}

/// After a job's end is recorded: what it billed, beside it, for the cap's next decisions.
pub async fn record_billed(store: &crate::adapters::store::Store, manifest: &SweepManifest, job: &JobObservation) -> Result<(), Error> {
    if manifest.pipeline.sweep.max_instance_hours.is_none() || job.status == JobStatus::Skipped || !job.status.is_terminal() {
        return Ok(());
    }
    let key = budget::billed_key(manifest, &job.training_job_name, budget::billed(manifest, job));
    store.put_once(&key, &job.training_job_name).await?;
    Ok(())
}
