//! The records of an adaptive sweep, beside its job records: under
//! `sweeps/<pipeline>/<sweep>/search/`
//!
//! - `suggested/<variant>.json`: the suggestion, written create-once before
//!   the variant's first launch. Every later launch of the variant (a retry,
//!   a redelivered event, a crashed invocation's successor) uses it.
//! - `trials/<variant>/p-<point>`: the suggested point, encoded in the key;
//! - `trials/<variant>/r-<loss>` or `r-none`: the variant's final result.
//!
//! So one listing of `trials/` (at most two keys per variant, one page for
//! a budget of up to 500) is the whole history a suggestion needs: the next
//! suggestion costs a constant number of calls whatever the sweep's size.

use crate::config::{Direction, Scalar};
use crate::failure::JobStatus;
use crate::lanes::JobObservation;
use crate::search::{suggest, Param, Search, Strategy, Trial};
use crate::sweep::SweepManifest;
use crate::sweep_records::{end_class, sweep_prefix};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A recorded suggestion: the point, and the results it was decided from, so it can be replayed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Suggestion {
    pub variant_id: String,
    pub strategy: Strategy,
    /// The suggested hyperparameters (the pipeline's static ones are added at launch).
    pub point: BTreeMap<String, Scalar>,
    /// The trials known when it was decided: variant id → loss (`None`: still running).
    pub based_on: BTreeMap<String, Option<f64>>,
}

pub fn search_prefix(manifest: &SweepManifest) -> String {
    format!("{}search/", sweep_prefix(manifest))
}

pub fn suggestion_key(manifest: &SweepManifest, variant_id: &str) -> String {
    format!("{}suggested/{variant_id}.json", search_prefix(manifest))
}

/// Prefix of the trial keys: list it for the history.
pub fn trials_prefix(manifest: &SweepManifest) -> String {
    format!("{}trials/", search_prefix(manifest))
}

/// The key that carries a suggested point (written after the suggestion, before the launch).
pub fn point_key(manifest: &SweepManifest, search: &Search, suggestion: &Suggestion) -> String {
    let encoded: Vec<String> = search.space.iter().map(|(name, p)| encode(p, suggestion.point.get(name))).collect();
    format!("{}{}/p-{}", trials_prefix(manifest), suggestion.variant_id, encoded.join("_"))
}

/// The key of a variant's final result, if `job` is final for its variant in an adaptive sweep.
pub fn result_key(manifest: &SweepManifest, job: &JobObservation) -> Option<String> {
    manifest.pipeline.sweep.search.as_ref()?;
    let max_attempts = manifest.max_attempts();
    let retried = job.status != JobStatus::Completed && end_class(job).retryable() && job.attempt < max_attempts;
    if !job.status.is_terminal() || retried {
        return None;
    }
    let objective = &manifest.pipeline.training.objective;
    let metric = (job.status == JobStatus::Completed)
        .then(|| job.metrics.iter().find(|(n, _)| n == &objective.metric).map(|(_, v)| *v))
        .flatten()
        .filter(|v| v.is_finite());
    let loss = metric.map(|m| match objective.direction {
        Direction::Minimize => m,
        Direction::Maximize => -m,
    });
    let result = loss.map_or_else(|| "none".to_owned(), |l| format!("{:016x}", l.to_bits()));
    Some(format!("{}{}/r-{result}", trials_prefix(manifest), job.variant_id))
}

fn encode(p: &Param, value: Option<&Scalar>) -> String {
    match (p, value) {
        (Param::Float { .. }, Some(Scalar::Float(x))) => format!("f{:016x}", x.to_bits()),
        (Param::Int { .. }, Some(Scalar::Integer(i))) => format!("i{i}"),
        (Param::Categorical { choices }, Some(v)) => match choices.iter().position(|c| c == v) {
            Some(i) => format!("c{i}"),
            None => "n".to_owned(),
        },
        _ => "n".to_owned(),
    }
}

fn decode(p: &Param, text: &str) -> Option<Scalar> {
    let (kind, rest) = text.split_at_checked(1)?;
    match (p, kind) {
        (Param::Float { .. }, "f") => u64::from_str_radix(rest, 16).ok().map(|b| Scalar::Float(f64::from_bits(b))),
        (Param::Int { .. }, "i") => rest.parse().ok().map(Scalar::Integer),
        (Param::Categorical { choices }, "c") => choices.get(rest.parse::<usize>().ok()?).cloned(),
        _ => None,
    }
}

/// The history in a listing of `trials/`: every suggested variant but
/// `except`, with its loss once final. Variants that ended without the
/// metric are left out (they say nothing about the objective).
pub fn history(manifest: &SweepManifest, search: &Search, keys: &[String], except: &str) -> BTreeMap<String, Trial> {
    let prefix = trials_prefix(manifest);
    let mut points: BTreeMap<String, BTreeMap<String, Scalar>> = BTreeMap::new();
    let mut results: BTreeMap<String, Option<f64>> = BTreeMap::new();
    for key in keys {
        let Some((variant, fact)) = key.strip_prefix(prefix.as_str()).and_then(|r| r.split_once('/')) else {
            continue;
        };
        if variant == except {
            continue;
        }
        if let Some(encoded) = fact.strip_prefix("p-") {
            let parts: Vec<&str> = encoded.split('_').collect();
            if parts.len() != search.space.len() {
                continue;
            }
            let point: Option<BTreeMap<String, Scalar>> = search
                .space
                .iter()
                .zip(parts)
                .map(|((name, p), text)| decode(p, text).map(|v| (name.clone(), v)))
                .collect();
            if let Some(point) = point {
                points.insert(variant.to_owned(), point);
            }
        } else if let Some(result) = fact.strip_prefix("r-") {
            let loss = u64::from_str_radix(result, 16).ok().map(f64::from_bits).filter(|l| l.is_finite());
            results.insert(variant.to_owned(), loss);
        }
    }
    points
        .into_iter()
        .filter_map(|(variant, point)| match results.get(&variant) {
            Some(None) => None,
            Some(Some(loss)) => Some((variant, Trial { point, loss: Some(*loss) })),
            None => Some((variant, Trial { point, loss: None })),
        })
        .collect()
}

/// The suggestion for the variant at `position`, from a listing of `trials/`.
/// `None` if the sweep is not adaptive.
pub fn decide(manifest: &SweepManifest, position: usize, keys: &[String]) -> Option<Suggestion> {
    let search = manifest.pipeline.sweep.search.as_ref()?;
    let variant_id = manifest.variants.get(position)?.id.clone();
    let known = history(manifest, search, keys, &variant_id);
    let trials: Vec<Trial> = known.values().cloned().collect();
    Some(Suggestion {
        point: suggest(search, position, &trials),
        strategy: search.strategy,
        based_on: known.into_iter().map(|(v, t)| (v, t.loss)).collect(),
        variant_id,
    })
}

/// The first `max_parallel` suggestions of a new sweep, as its start launches them (one after another, each seeing the ones before as running).
pub fn first_suggestions(manifest: &SweepManifest) -> Vec<Suggestion> {
    let Some(search) = manifest.pipeline.sweep.search.as_ref() else {
        return Vec::new();
    };
    let mut keys: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for position in 0..manifest.max_parallel().min(manifest.variants.len()) {
        let Some(s) = decide(manifest, position, &keys) else { break };
        keys.push(point_key(manifest, search, &s));
        out.push(s);
    }
    out
}

/// `retrain status` of an adaptive sweep: each job's suggested point and what it was decided from.
pub fn annotate(status: &mut crate::status::SweepStatus, suggestions: &[Suggestion]) {
    for row in &mut status.rows {
        if let Some(s) = suggestions.iter().find(|s| s.variant_id == row.variant_id) {
            row.suggested = crate::search::hyperparameters(&s.point);
            let finished = s.based_on.values().filter(|l| l.is_some()).count();
            row.suggested_from = Some((finished, s.based_on.len() - finished));
        }
    }
}

#[cfg(test)]
mod tests;
