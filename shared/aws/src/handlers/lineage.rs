//! Data lineage in the artifacts bucket (layout in `retrain_core::lineage`):
//! an import's part is recorded before its pending entries are retired, a
//! sweep's data version is fixed in its manifest, and the parts the
//! manifest names are retired only after it is written.

use super::imports::{pipelines_on, Pending};
use crate::deps::Deps;
use crate::error::Error;
use retrain_core::import_plan::ImportRecord;
use retrain_core::lineage::{self, unswept_key, unswept_prefix, CoveredUpload, DataVersion, ImportLineage};
use retrain_core::sweep::{SweepManifest, SweepTrigger};

/// Records what a succeeded import covered for each of its pipelines, from
/// the listing of the entries it retires (no entry is read). Create-once,
/// and only while those entries exist.
pub async fn record_import(deps: &Deps, record: &ImportRecord, covered: &[Pending]) -> Result<(), Error> {
    // The part is written before the entries go, so none left means it was
    // recorded (and may since have been swept and retired): a replayed
    // success must not bring it back for the next sweep to claim.
    if covered.is_empty() {
        return Ok(());
    }
    let all = pipelines_on(deps, &record.file_system_id);
    for name in &record.pipelines {
        let key = unswept_key(name, record.started_at, &record.task_id);
        if deps.config.pipeline(name).is_none() || deps.store.exists(&key).await? {
            continue;
        }
        let uploads: Vec<CoveredUpload> = covered
            .iter()
            .filter(|p| p.entry.pipelines_or(&all).contains(name))
            .map(|p| CoveredUpload {
                entry_id: p.entry.id.clone(),
                objects: p.entry.objects,
                recorded_at: p.written,
            })
            .collect();
        let part = lineage::import_part(name, &record.task_id, record.started_at, &uploads);
        deps.store.put_once(&key, &part).await?;
    }
    Ok(())
}

/// The data version of a new sweep of `pipeline`: every unswept import part
/// for an import trigger, else the trigger and the time.
pub async fn of_new_sweep(deps: &Deps, pipeline: &str, trigger: &SweepTrigger) -> Result<DataVersion, Error> {
    if trigger.kind != "import" {
        return Ok(lineage::of_trigger(trigger, Some(super::now_epoch())));
    }
    let mut parts: Vec<ImportLineage> = Vec::new();
    for key in deps.store.list(&unswept_prefix(pipeline)).await? {
        if let Some(part) = deps.store.get::<ImportLineage>("import lineage", &key).await? {
            parts.push(part);
        }
    }
    Ok(lineage::of_imports(trigger, &parts))
}

/// Retires the import parts the manifest's data version names: the next
/// sweep names only imports that came after. Parts of later imports stay.
pub async fn retire_swept(deps: &Deps, manifest: &SweepManifest) -> Result<(), Error> {
    let Some(version) = &manifest.data_version else {
        return Ok(());
    };
    if version.imports.is_empty() {
        return Ok(());
    }
    let prefix = unswept_prefix(&manifest.pipeline.name);
    let swept: Vec<String> = deps
        .store
        .list(&prefix)
        .await?
        .into_iter()
        .filter(|k| {
            k.strip_prefix(prefix.as_str())
                .and_then(|rest| rest.split_once('-'))
                .and_then(|(_, task)| task.strip_suffix(".json"))
                .is_some_and(|task| version.imports.iter().any(|t| t == task))
        })
        .collect();
    if !swept.is_empty() {
        deps.store.delete_many(&swept).await?;
    }
    Ok(())
}
