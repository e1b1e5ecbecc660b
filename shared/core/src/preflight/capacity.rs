//! Capacity preflight: which of a pipeline's instance types the account can
//! run at all, from the applied values of its SageMaker quotas (Service
//! Quotas) and from its training plan. A type that cannot run is skipped
//! with a warning; when none can, the sweep is blocked before any launch.
//! A quota that cannot be read is not a reason to block: the launch itself
//! still answers `ResourceLimitExceeded`, which moves to the next type.

use super::{Finding, Report};
use crate::config::{Instances, Pipeline};
use crate::names;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The account-wide quota every training job counts against.
pub const TOTAL_INSTANCES_QUOTA: &str = "Number of instances across all training jobs";
/// Service Quotas' service code of SageMaker.
pub const SERVICE_CODE: &str = "sagemaker";
/// Training plan states whose capacity a job may use (now or once it starts).
const USABLE_PLAN_STATES: &[&str] = &["Active", "Scheduled"];

/// Quota name of an instance type's on-demand training instances.
pub fn on_demand_quota(instance_type: &str) -> String {
    format!("{instance_type} for training job usage")
}

/// Quota name of an instance type's managed spot training instances.
pub fn spot_quota(instance_type: &str) -> String {
    format!("{instance_type} for spot training job usage")
}

/// One applied quota value, as `ListServiceQuotas` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quota {
    pub code: String,
    pub value: f64,
}

/// The account's SageMaker quotas.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QuotaFacts {
    /// Applied values by quota name (those listed; a name absent here was not listed).
    pub quotas: BTreeMap<String, Quota>,
    /// Why they could not be read (access denied, throttled), when they could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
}

/// Capacity a training plan reserves for one instance type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reserved {
    pub instance_type: String,
    pub instance_count: u32,
}

/// A training plan as `DescribeTrainingPlan` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanFacts {
    pub name: String,
    /// `Pending`, `Active`, `Scheduled`, `Expired` or `Failed`.
    pub status: String,
    /// `TargetResources`: `training-job`, `hyperpod-cluster`, …
    pub target_resources: Vec<String>,
    /// `ReservedCapacitySummaries`.
    pub reserved: Vec<Reserved>,
}

/// What capacity preflight reads about a pipeline's account.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CapacityFacts {
    pub quotas: QuotaFacts,
    /// The described training plan; `None` when it was not found (or none is configured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanFacts>,
    /// The region the jobs are created in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// The result: every finding, and the instance types a sweep may use, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Capacity {
    pub findings: Vec<Finding>,
    pub instances: Vec<Instances>,
}

/// The quota names preflight reads for `pipeline`.
pub fn quota_names(pipeline: &Pipeline) -> Vec<String> {
    let mut names: Vec<String> = pipeline
        .training
        .instances()
        .iter()
        .flat_map(|i| applicable_quotas(pipeline, &i.instance_type))
        .collect();
    names.push(TOTAL_INSTANCES_QUOTA.to_owned());
    names.sort();
    names.dedup();
    names
}

/// The per-type quotas a job on `instance_type` counts against: the spot one
/// for spot jobs, the on-demand one otherwise and for a spot pipeline that
/// falls back to on-demand. Jobs on a training plan use its capacity instead.
fn applicable_quotas(pipeline: &Pipeline, instance_type: &str) -> Vec<String> {
    let t = &pipeline.training;
    match &t.spot {
        Some(spot) if spot.fallback_to_on_demand_after.is_some() => vec![spot_quota(instance_type), on_demand_quota(instance_type)],
        Some(_) => vec![spot_quota(instance_type)],
        None => vec![on_demand_quota(instance_type)],
    }
}

/// Which of `pipeline`'s instance types can run, and why the others cannot.
pub fn check(pipeline: &Pipeline, facts: &CapacityFacts) -> Capacity {
    let mut r = Report {
        pipeline: &pipeline.name,
        findings: Vec::new(),
    };
    let t = &pipeline.training;
    let mut candidates = t.instances();
    let mut reasons: Vec<String> = Vec::new();
    if let Some(arn) = &t.training_plan_arn {
        match plan(&mut r, arn, facts) {
            Some(plan) => candidates.retain(|i| covered(&mut r, arn, plan, i, &mut reasons)),
            None => candidates.clear(),
        }
    }
    let quotas = &facts.quotas;
    if let Some(why) = &quotas.unreadable {
        r.warn(
            "instance quotas",
            SERVICE_CODE,
            format!("the SageMaker quotas could not be read ({why}), so no instance type was checked against them; a launch a quota refuses moves to the next type"),
            "allow servicequotas:ListServiceQuotas to the function's role (the template does)",
        );
    } else {
        candidates.retain(|i| fits_quotas(&mut r, pipeline, quotas, i, &mut reasons));
    }
    if candidates.is_empty() && !r.findings.iter().any(|f| !f.ok) {
        r.add(
            "an instance type can run",
            &pipeline.name,
            false,
            format!("no instance type of the pipeline can run: {}", reasons.join("; ")),
            "raise a quota named above in Service Quotas, or add an instance type the account can run to training.instance_types",
        );
    }
    Capacity {
        findings: r.findings,
        instances: candidates,
    }
}

/// Checks the plan itself; `Some` when it can serve training jobs.
fn plan<'f>(r: &mut Report, arn: &str, facts: &'f CapacityFacts) -> Option<&'f PlanFacts> {
    let Some(parts) = names::training_plan_arn(arn) else {
        r.add(
            "training plan",
            arn,
            false,
            "is not a training plan ARN".to_owned(),
            "set training.training_plan_arn to arn:aws:sagemaker:<region>:<account>:training-plan/<name>",
        );
        return None;
    };
    if let Some(region) = facts.region.as_deref().filter(|r| *r != parts.region) {
        r.add(
            "training plan in the jobs' region",
            arn,
            false,
            format!(
                "training plan {} is in {}, but the jobs are created in {region}",
                parts.name, parts.region
            ),
            format!("use a training plan of {region}, or deploy retrain in {}", parts.region),
        );
        return None;
    }
    let Some(plan) = &facts.plan else {
        r.add(
            "training plan exists",
            arn,
            false,
            format!("training plan {} was not found in {}", parts.name, parts.region),
            format!(
                "check training.training_plan_arn: `aws sagemaker list-training-plans --region {}` lists the plans",
                parts.region
            ),
        );
        return None;
    };
    let usable = USABLE_PLAN_STATES.contains(&plan.status.as_str());
    r.add(
        "training plan usable",
        arn,
        usable,
        format!("training plan {} is {}", plan.name, plan.status),
        match plan.status.as_str() {
            "Pending" => "wait until the plan is Scheduled or Active (its payment is being processed), then start the sweep again",
            _ => "buy a new plan (`aws sagemaker search-training-offerings`, `create-training-plan`) and set training.training_plan_arn to it",
        },
    );
    let for_jobs = plan.target_resources.iter().any(|t| t == "training-job");
    r.add(
        "training plan serves training jobs",
        arn,
        for_jobs,
        format!(
            "training plan {} reserves capacity for {}",
            plan.name,
            plan.target_resources.join(", ")
        ),
        "use a plan created with --target-resources training-job",
    );
    (usable && for_jobs).then_some(plan)
}

/// Whether the plan reserves enough of `instances`' type; warns when it does not.
fn covered(r: &mut Report, arn: &str, plan: &PlanFacts, instances: &Instances, reasons: &mut Vec<String>) -> bool {
    let it = &instances.instance_type;
    let reserved: u32 = plan
        .reserved
        .iter()
        .filter(|c| &c.instance_type == it)
        .map(|c| c.instance_count)
        .sum();
    if reserved >= instances.instance_count {
        r.add(
            "training plan covers instance type",
            it,
            true,
            format!("training plan {} reserves {reserved} {it}", plan.name),
            "",
        );
        return true;
    }
    let why = format!(
        "training plan {} reserves {reserved} {it} but a job needs {}",
        plan.name, instances.instance_count
    );
    r.warn(
        "training plan covers instance type",
        it,
        format!("{why}: {it} is skipped"),
        format!(
            "use a plan that reserves {} {it} ({arn} cannot), or lower its instance_count",
            instances.instance_count
        ),
    );
    reasons.push(why);
    false
}

/// Whether every quota a job on `instances` counts against admits one job; warns when not.
fn fits_quotas(r: &mut Report, p: &Pipeline, quotas: &QuotaFacts, instances: &Instances, reasons: &mut Vec<String>) -> bool {
    let it = &instances.instance_type;
    let needed = instances.instance_count;
    let mut names = if instances.training_plan_arn.is_some() {
        Vec::new()
    } else {
        applicable_quotas(p, it)
    };
    names.push(TOTAL_INSTANCES_QUOTA.to_owned());
    let mut fits = true;
    for name in names {
        let Some(quota) = quotas.quotas.get(&name) else {
            r.add(
                "instance quota",
                it,
                true,
                format!("no applied value of '{name}' is listed, so it was not checked"),
                "",
            );
            continue;
        };
        if quota.value >= f64::from(needed) {
            r.add(
                "instance quota",
                it,
                true,
                format!("'{name}' is {} instances, a job needs {needed}", quota.value),
                "",
            );
            continue;
        }
        fits = false;
        let why = format!("'{name}' is {} instances, below the {needed} a job on {it} needs", quota.value);
        r.warn(
            "instance quota",
            it,
            format!("{why}: {it} is skipped"),
            format!(
                "raise it in Service Quotas: `aws service-quotas request-service-quota-increase --service-code {SERVICE_CODE} --quota-code {} --desired-value {needed}`",
                quota.code
            ),
        );
        reasons.push(why);
    }
    fits
}

#[cfg(test)]
mod tests;
