//! An adaptive sweep's next variant: the recorded suggestion, or a new one
//! recorded create-once before anything launches, so a retry, a redelivered
//! event or a crashed invocation's successor launches the same point.
//!
//! Calls per launch, whatever the sweep's size: one GET of the suggestion;
//! for a new one, one LIST of the trial keys (one page: a budget of at most
//! 500 has at most 1,000 of them) and one create-once PUT (plus a GET when a
//! concurrent invocation won); then one create-once PUT of the point's key.

use crate::adapters::store::Created;
use crate::deps::Deps;
use crate::error::Error;
use retrain_core::config::Scalar;
use retrain_core::search_records::{decide, point_key, suggestion_key, trials_prefix, Suggestion};
use retrain_core::sweep::SweepManifest;
use std::collections::BTreeMap;

/// The suggested hyperparameters of the variant at `position`; `None` for a fixed sweep.
pub async fn point(deps: &Deps, manifest: &SweepManifest, position: usize) -> Result<Option<BTreeMap<String, Scalar>>, Error> {
    let Some(search) = manifest.pipeline.sweep.search.as_ref() else {
        return Ok(None);
    };
    let Some(variant) = manifest.variants.get(position) else {
        return Ok(None);
    };
    let key = suggestion_key(manifest, &variant.id);
    let suggestion = match deps.store.get::<Suggestion>("search suggestion", &key).await? {
        Some(recorded) => recorded,
        None => {
            let keys = deps.store.list(&trials_prefix(manifest)).await?;
            let Some(fresh) = decide(manifest, position, &keys) else {
                return Ok(None);
            };
            match deps.store.put_once(&key, &fresh).await? {
                Created::Now => fresh,
                // A concurrent invocation decided first: its suggestion is the truth.
                Created::AlreadyThere => deps.store.get("search suggestion", &key).await?.unwrap_or(fresh),
            }
        }
    };
    // The point joins the history (as running) before its job exists.
    deps.store
        .put_once(&point_key(manifest, search, &suggestion), &suggestion.variant_id)
        .await?;
    Ok(Some(suggestion.point))
}

/// Every recorded suggestion of the sweep (`retrain status`: one GET per suggested variant).
pub async fn recorded(store: &crate::adapters::store::Store, manifest: &SweepManifest) -> Result<Vec<Suggestion>, Error> {
    if manifest.pipeline.sweep.search.is_none() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for variant in &manifest.variants {
        if let Some(s) = store.get("search suggestion", &suggestion_key(manifest, &variant.id)).await? {
            out.push(s);
        }
    }
    Ok(out)
}
