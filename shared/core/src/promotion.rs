//! Registering a sweep's best variant in the SageMaker Model Registry and
//! the promotion gate: the decision is made once, from the sweep's best
//! result and the group's Approved package, and recorded before any
//! registry write so every retry registers the same package the same way.

use crate::config::{Direction, Pipeline};
use crate::lanes::VariantResult;
use crate::names;
use crate::sweep::SweepManifest;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `CustomerMetadataProperties` keys retrain writes on its packages.
pub const META_SWEEP: &str = "retrain:sweep";
pub const META_PIPELINE: &str = "retrain:pipeline";
pub const META_JOB: &str = "retrain:training-job";
pub const META_METRIC: &str = "retrain:metric";
pub const META_VALUE: &str = "retrain:metric-value";
pub const META_CONFIG: &str = "retrain:config-digest";
pub const META_DATA_VERSION: &str = "retrain:data-version";
pub const META_DATA_AS_OF: &str = "retrain:data-as-of";
pub const META_DATA_IMPORTS: &str = "retrain:data-imports";
pub const META_DATA_OBJECTS: &str = "retrain:data-objects";
pub const META_DATA_DIGEST: &str = "retrain:data-digest";
/// SageMaker: a `CustomerMetadataProperties` value is at most 256 characters.
const MAX_META_VALUE: usize = 256;

/// A model package's `ModelApprovalStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ApprovalStatus {
    Approved,
    Rejected,
    PendingManualApproval,
}

impl ApprovalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Approved => "Approved",
            ApprovalStatus::Rejected => "Rejected",
            ApprovalStatus::PendingManualApproval => "PendingManualApproval",
        }
    }
}

/// The package production runs: the group's newest Approved package, with
/// the objective value retrain recorded on it (none when another tool registered it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Production {
    pub arn: String,
    pub value: Option<f64>,
}

/// The recorded decision: what to register and with which status. Written
/// create-once before `CreateModelPackage`; retries read it back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registration {
    pub group: String,
    /// `ClientToken` of `CreateModelPackage`: the same for every retry of this sweep.
    pub client_token: String,
    pub training_job_name: String,
    pub metric: String,
    pub value: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub production: Option<Production>,
    pub status: ApprovalStatus,
    pub passed_gate: bool,
    /// The comparison in words: the package description and, when rejected, `ApprovalDescription`.
    pub comparison: String,
    pub metadata: BTreeMap<String, String>,
    /// Epoch seconds when the decision was recorded: packages created before cannot be this sweep's.
    pub decided_at: u64,
}

/// Whether `value` beats production's by the configured margin, and why.
pub fn gate(pipeline: &Pipeline, value: f64, production: Option<&Production>) -> (bool, String) {
    let Some(promotion) = &pipeline.promotion else {
        return (false, "no promotion section".to_owned());
    };
    let metric = &pipeline.training.objective.metric;
    let Some(production) = production else {
        return (
            true,
            format!("{metric} {value}: no Approved package in {} yet", promotion.model_package_group),
        );
    };
    let Some(current) = production.value else {
        return (
            false,
            format!(
                "{metric} {value}: the Approved package {} records no {}; approve by hand",
                production.arn, META_VALUE
            ),
        );
    };
    let margin = match promotion.improvement {
        crate::config::Improvement::Absolute => promotion.min_improvement,
        crate::config::Improvement::Relative => promotion.min_improvement * current.abs(),
    };
    let (passed, sense) = match pipeline.training.objective.direction {
        Direction::Maximize => (value > current + margin || (margin == 0.0 && value > current), "above"),
        Direction::Minimize => (value < current - margin || (margin == 0.0 && value < current), "below"),
    };
    let verdict = if passed { "beats" } else { "does not beat" };
    (
        passed,
        format!(
            "{metric} {value} {verdict} production {current} ({}) by the required {margin} {sense}",
            production.arn
        ),
    )
}

/// The decision for a sweep whose best variant is `best`.
pub fn decide(manifest: &SweepManifest, best: &VariantResult, production: Option<Production>, now: u64) -> Option<Registration> {
    let promotion = manifest.pipeline.promotion.as_ref()?;
    let value = best.metric?;
    let (passed, comparison) = gate(&manifest.pipeline, value, production.as_ref());
    let status = match (promotion.approval, passed) {
        (crate::config::Approval::Manual, _) => ApprovalStatus::PendingManualApproval,
        (crate::config::Approval::Auto, true) => ApprovalStatus::Approved,
        (crate::config::Approval::Auto, false) => ApprovalStatus::Rejected,
    };
    let metric = manifest.pipeline.training.objective.metric.clone();
    let config = serde_json::to_string(&manifest.pipeline).unwrap_or_default();
    let data = manifest.data_version();
    let mut metadata = BTreeMap::from([
        (META_DATA_VERSION.to_owned(), data.version.clone()),
        (META_SWEEP.to_owned(), manifest.sweep_id.clone()),
        (META_PIPELINE.to_owned(), manifest.pipeline.name.clone()),
        (META_JOB.to_owned(), best.training_job_name.clone()),
        (META_METRIC.to_owned(), metric.clone()),
        (META_VALUE.to_owned(), value.to_string()),
        (META_CONFIG.to_owned(), names::digest(&[&config])[..16].to_owned()),
    ]);
    if let Some(t) = &data.data_as_of {
        metadata.insert(META_DATA_AS_OF.to_owned(), t.clone());
    }
    if let Some(n) = data.objects {
        metadata.insert(META_DATA_OBJECTS.to_owned(), n.to_string());
    }
    if let Some(d) = &data.digest {
        metadata.insert(META_DATA_DIGEST.to_owned(), d.clone());
    }
    if !data.imports.is_empty() {
        // The full list is in the manifest and the events; a long one is cut to what SageMaker accepts.
        let mut imports = data.imports.join(",");
        if imports.len() > MAX_META_VALUE {
            let cut = imports[..MAX_META_VALUE - 3].rfind(',').unwrap_or(0);
            imports = format!("{},…", &imports[..cut]);
        }
        metadata.insert(META_DATA_IMPORTS.to_owned(), imports);
    }
    Some(Registration {
        group: promotion.model_package_group.clone(),
        client_token: names::digest(&[&manifest.pipeline.name, &manifest.sweep_id, "register"])[..32].to_owned(),
        training_job_name: best.training_job_name.clone(),
        metric,
        value,
        production,
        status,
        passed_gate: passed,
        comparison,
        metadata,
        decided_at: now,
    })
}

/// The objective value recorded on a package's metadata.
pub fn recorded_value(metadata: &BTreeMap<String, String>) -> Option<f64> {
    metadata.get(META_VALUE)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Approval, Improvement, Promotion};

    fn pipeline(direction: Direction, approval: Approval, min: f64, improvement: Improvement) -> Pipeline {
        let mut config: crate::config::Config =
            serde_yaml::from_str(include_str!("../../../examples/pipelines.yaml")).expect("example config");
        let mut p = config.pipelines.remove(0);
        p.training.objective.direction = direction;
        p.promotion = Some(Promotion {
            model_package_group: "churn".to_owned(),
            description: None,
            tags: BTreeMap::new(),
            min_improvement: min,
            improvement,
            approval,
        });
        p
    }

    fn prod(value: f64) -> Production {
        Production {
            arn: "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/1".to_owned(),
            value: Some(value),
        }
    }

    #[test]
    fn the_first_package_passes_the_gate() {
        let p = pipeline(Direction::Maximize, Approval::Auto, 0.01, Improvement::Absolute);
        assert!(gate(&p, 0.5, None).0);
    }

    #[test]
    fn the_gate_needs_the_margin_in_the_objectives_direction() {
        let p = pipeline(Direction::Maximize, Approval::Auto, 0.01, Improvement::Absolute);
        assert!(gate(&p, 0.92, Some(&prod(0.9))).0);
        assert!(!gate(&p, 0.905, Some(&prod(0.9))).0);
        let p = pipeline(Direction::Minimize, Approval::Auto, 0.1, Improvement::Relative);
        assert!(gate(&p, 0.8, Some(&prod(1.0))).0);
        assert!(!gate(&p, 0.95, Some(&prod(1.0))).0);
        let p = pipeline(Direction::Maximize, Approval::Auto, 0.0, Improvement::Absolute);
        assert!(!gate(&p, 0.9, Some(&prod(0.9))).0, "equal is not better");
    }

    #[test]
    fn a_production_package_without_a_recorded_value_is_not_beaten_automatically() {
        let p = pipeline(Direction::Maximize, Approval::Auto, 0.0, Improvement::Absolute);
        let (passed, why) = gate(
            &p,
            0.99,
            Some(&Production {
                arn: "arn:x".to_owned(),
                value: None,
            }),
        );
        assert!(!passed);
        assert!(why.contains("approve by hand"), "{why}");
    }
}
