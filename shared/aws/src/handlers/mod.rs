//! The five Lambda handlers. Each is decode → decide (retrain-core) →
//! execute (adapters) → report, callable from tests with a plain payload.

pub mod budget;
pub mod deferral;
pub mod finish;
pub mod imports;
pub mod job_end;
pub mod lineage;
pub mod on_import;
pub mod on_training;
pub mod on_upload;
pub mod reconcile;
pub mod register;
pub mod start_sweep;
pub mod suggestions;
pub mod sweep_state;
pub mod sweeps;

use crate::error::Error;
use retrain_core::inbound::{Decoded, Skip};
use serde::Serialize;
use std::collections::BTreeSet;
use tracing::{error, info, warn};

/// Who drives a step: an event (the fast path) or the scheduled reconciler.
/// Some repairs are left to the reconciler, so that concurrent duplicate
/// events do not each repeat them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// An event or timer: the fast path.
    Event,
    /// The reconciler: drives what the fast path left open.
    Reconciler,
}

/// One entry of an SQS partial batch response.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ItemFailure {
    #[serde(rename = "itemIdentifier")]
    pub item_identifier: String,
}

/// What an invocation did. Its JSON is the SQS partial batch response
/// (`batchItemFailures`) plus a summary that is harmless to Lambda.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Outcome {
    #[serde(rename = "batchItemFailures")]
    pub batch_item_failures: Vec<ItemFailure>,
    pub skipped: Vec<Skip>,
    /// Short descriptions of what was done, for logs and tests.
    pub done: Vec<String>,
}

impl Outcome {
    /// Starts from a decode: malformed items inside SQS messages fail back
    /// (after maxReceiveCount they land in the DLQ, kept for inspection);
    /// benign skips are logged and acknowledged.
    pub fn from_decoded(decoded: &Decoded) -> Outcome {
        let mut out = Outcome::default();
        for s in &decoded.skipped {
            if s.malformed {
                warn!(item = %s.item, message_id = ?s.message_id, reason = %s.reason, "malformed input");
                if let Some(id) = &s.message_id {
                    out.fail(id);
                }
            } else {
                info!(item = %s.item, reason = %s.reason, "skipped");
            }
        }
        out.skipped = decoded.skipped.clone();
        out
    }

    pub fn fail(&mut self, message_id: &str) {
        let f = ItemFailure {
            item_identifier: message_id.to_owned(),
        };
        if !self.batch_item_failures.contains(&f) {
            self.batch_item_failures.push(f);
        }
    }

    pub fn did(&mut self, what: impl Into<String>) {
        let what = what.into();
        info!(action = %what, "done");
        self.done.push(what);
    }

    /// Records the failure of work that came from `message_ids`. Work that
    /// came from no SQS message fails the whole invocation so Lambda retries it.
    pub fn failed(&mut self, message_ids: &BTreeSet<Option<String>>, err: Error, fatal: &mut Option<Error>) {
        error!(error = %err, retryable = err.is_retryable(), "step failed");
        let mut direct = false;
        for id in message_ids {
            match id {
                Some(id) => self.fail(id),
                None => direct = true,
            }
        }
        if direct && fatal.is_none() {
            *fatal = Some(err);
        }
    }

    /// The invocation's result: an error if work outside SQS failed.
    pub fn finish(mut self, fatal: Option<Error>) -> Result<serde_json::Value, Error> {
        if let Some(e) = fatal {
            return Err(e);
        }
        self.batch_item_failures.sort();
        Ok(serde_json::to_value(&self).unwrap_or_default())
    }
}

/// Current time in epoch seconds.
pub fn now_epoch() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
