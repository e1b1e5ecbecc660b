use super::*;
use crate::config::{parse, Spot};

const GPU: &str = include_str!("../../../../../examples/gpu-pipeline.yaml");
const PLAN: &str = "arn:aws:sagemaker:us-east-1:123456789012:training-plan/vision-p5";

fn vision() -> Pipeline {
    parse(GPU).expect("valid").pipelines[0].clone()
}

fn quotas(values: &[(&str, f64)]) -> QuotaFacts {
    QuotaFacts {
        quotas: values
            .iter()
            .map(|(name, value)| {
                (
                    (*name).to_owned(),
                    Quota {
                        code: format!("L-{}", name.len()),
                        value: *value,
                    },
                )
            })
            .collect(),
        unreadable: None,
    }
}

fn types(c: &Capacity) -> Vec<&str> {
    c.instances.iter().map(|i| i.instance_type.as_str()).collect()
}

fn warnings(c: &Capacity) -> Vec<&Finding> {
    c.findings.iter().filter(|f| f.warning).collect()
}

fn failures(c: &Capacity) -> Vec<&Finding> {
    c.findings.iter().filter(|f| !f.ok).collect()
}

#[test]
fn a_type_whose_quota_is_below_its_count_is_skipped_with_the_quota_and_how_to_raise_it() {
    let facts = CapacityFacts {
        quotas: quotas(&[
            ("ml.g5.2xlarge for training job usage", 0.0),
            ("ml.g5.4xlarge for training job usage", 4.0),
            ("ml.g4dn.2xlarge for training job usage", 1.0),
            (TOTAL_INSTANCES_QUOTA, 8.0),
        ]),
        ..CapacityFacts::default()
    };
    let c = check(&vision(), &facts);
    assert_eq!(types(&c), ["ml.g5.4xlarge"]);
    assert!(failures(&c).is_empty(), "{:?}", failures(&c));
    let w = warnings(&c);
    assert_eq!(w.len(), 2, "{w:?}");
    assert_eq!(w[0].resource, "ml.g5.2xlarge");
    assert!(
        w[0].message.contains("'ml.g5.2xlarge for training job usage' is 0 instances"),
        "{}",
        w[0].message
    );
    assert!(w[0].message.ends_with("ml.g5.2xlarge is skipped"), "{}", w[0].message);
    let code = &facts.quotas.quotas["ml.g5.2xlarge for training job usage"].code;
    assert!(w[0].fix.contains(&format!("--quota-code {code} --desired-value 1")), "{}", w[0].fix);
    // Two instances per job on g4dn: a quota of one cannot run a single job.
    assert!(
        w[1].message.contains("below the 2 a job on ml.g4dn.2xlarge needs"),
        "{}",
        w[1].message
    );
}

#[test]
fn no_type_that_fits_blocks_the_sweep_with_every_reason() {
    let facts = CapacityFacts {
        quotas: quotas(&[
            ("ml.g5.2xlarge for training job usage", 0.0),
            ("ml.g5.4xlarge for training job usage", 0.0),
            (TOTAL_INSTANCES_QUOTA, 1.0),
        ]),
        ..CapacityFacts::default()
    };
    let c = check(&vision(), &facts);
    assert!(c.instances.is_empty());
    let f = failures(&c);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].check, "an instance type can run");
    for reason in [
        "'ml.g5.2xlarge for training job usage' is 0",
        "'ml.g5.4xlarge for training job usage' is 0",
        "'Number of instances across all training jobs' is 1 instances, below the 2 a job on ml.g4dn.2xlarge needs",
    ] {
        assert!(f[0].message.contains(reason), "{reason} not in {}", f[0].message);
    }
}

#[test]
fn quotas_that_are_not_listed_or_cannot_be_read_do_not_block() {
    let c = check(&vision(), &CapacityFacts::default());
    assert_eq!(types(&c), ["ml.g5.2xlarge", "ml.g5.4xlarge", "ml.g4dn.2xlarge"]);
    assert!(c.findings.iter().all(|f| f.ok && !f.warning), "{:?}", c.findings);
    let denied = CapacityFacts {
        quotas: QuotaFacts {
            quotas: BTreeMap::new(),
            unreadable: Some("AccessDeniedException: not authorized to perform servicequotas:ListServiceQuotas".into()),
        },
        ..CapacityFacts::default()
    };
    let c = check(&vision(), &denied);
    assert_eq!(c.instances.len(), 3);
    let w = warnings(&c);
    assert_eq!(w.len(), 1);
    assert!(w[0].message.contains("AccessDeniedException"), "{}", w[0].message);
    assert!(w[0].fix.contains("servicequotas:ListServiceQuotas"));
}

#[test]
fn spot_jobs_count_against_the_spot_quota_and_a_fallback_against_both() {
    let mut p = vision();
    p.training.keep_alive_seconds = None;
    p.training.spot = Some(Spot {
        max_wait_seconds: 7200,
        fallback_to_on_demand_after: None,
    });
    let names = quota_names(&p);
    assert!(names.contains(&"ml.g5.2xlarge for spot training job usage".to_owned()));
    assert!(!names.contains(&"ml.g5.2xlarge for training job usage".to_owned()));
    let facts = CapacityFacts {
        quotas: quotas(&[
            ("ml.g5.2xlarge for spot training job usage", 0.0),
            ("ml.g5.2xlarge for training job usage", 4.0),
        ]),
        ..CapacityFacts::default()
    };
    assert_eq!(types(&check(&p, &facts)), ["ml.g5.4xlarge", "ml.g4dn.2xlarge"]);
    p.training.spot = Some(Spot {
        max_wait_seconds: 7200,
        fallback_to_on_demand_after: Some(1),
    });
    assert!(quota_names(&p).contains(&"ml.g5.2xlarge for training job usage".to_owned()));
    let facts = CapacityFacts {
        quotas: quotas(&[
            ("ml.g5.2xlarge for spot training job usage", 4.0),
            ("ml.g5.4xlarge for training job usage", 0.0),
        ]),
        ..CapacityFacts::default()
    };
    assert_eq!(types(&check(&p, &facts)), ["ml.g5.2xlarge", "ml.g4dn.2xlarge"]);
}

fn with_plan() -> Pipeline {
    let mut p = vision();
    p.training.training_plan_arn = Some(PLAN.to_owned());
    p
}

fn plan(status: &str, reserved: &[(&str, u32)]) -> CapacityFacts {
    CapacityFacts {
        quotas: quotas(&[("ml.g5.2xlarge for training job usage", 0.0)]),
        plan: Some(PlanFacts {
            name: "vision-p5".into(),
            status: status.into(),
            target_resources: vec!["training-job".into()],
            reserved: reserved
                .iter()
                .map(|(t, n)| Reserved {
                    instance_type: (*t).into(),
                    instance_count: *n,
                })
                .collect(),
        }),
        region: Some("us-east-1".into()),
    }
}

#[test]
fn a_plan_serves_the_types_it_reserves_without_their_on_demand_quota() {
    for status in ["Active", "Scheduled"] {
        let c = check(&with_plan(), &plan(status, &[("ml.g5.2xlarge", 2), ("ml.g4dn.2xlarge", 1)]));
        // g5.2xlarge's on-demand quota of 0 does not apply to reserved capacity.
        assert_eq!(types(&c), ["ml.g5.2xlarge"], "{status}");
        assert_eq!(c.instances[0].training_plan_arn.as_deref(), Some(PLAN));
        let w = warnings(&c);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].message.contains("reserves 0 ml.g5.4xlarge"), "{}", w[0].message);
        assert!(
            w[1].message.contains("reserves 1 ml.g4dn.2xlarge but a job needs 2"),
            "{}",
            w[1].message
        );
    }
}

#[test]
fn a_plan_that_cannot_serve_the_jobs_blocks_naming_the_plan_and_its_state() {
    for (status, fix) in [
        ("Expired", "buy a new plan"),
        ("Pending", "wait until"),
        ("Failed", "buy a new plan"),
    ] {
        let c = check(&with_plan(), &plan(status, &[("ml.g5.2xlarge", 2)]));
        assert!(c.instances.is_empty());
        let f = failures(&c);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].message, format!("training plan vision-p5 is {status}"));
        assert_eq!(f[0].resource, PLAN);
        assert!(f[0].fix.contains(fix), "{}", f[0].fix);
    }
    let c = check(&with_plan(), &plan("Active", &[("ml.p5.48xlarge", 8)]));
    let f = failures(&c);
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(
        f[0].message.contains("training plan vision-p5 reserves 0 ml.g5.2xlarge"),
        "{}",
        f[0].message
    );
    let mut missing = plan("Active", &[]);
    missing.plan = None;
    let f = check(&with_plan(), &missing).findings;
    assert_eq!(f.iter().filter(|f| !f.ok).count(), 1);
    assert!(
        f.iter().any(|f| f.message == "training plan vision-p5 was not found in us-east-1"),
        "{f:?}"
    );
    let mut elsewhere = plan("Active", &[("ml.g5.2xlarge", 2)]);
    elsewhere.region = Some("eu-west-1".into());
    let f = check(&with_plan(), &elsewhere).findings;
    assert!(
        f.iter()
            .any(|f| !f.ok && f.message.contains("is in us-east-1, but the jobs are created in eu-west-1")),
        "{f:?}"
    );
    let mut hyperpod = plan("Active", &[("ml.g5.2xlarge", 2)]);
    if let Some(p) = hyperpod.plan.as_mut() {
        p.target_resources = vec!["hyperpod-cluster".into()];
    }
    let c = check(&with_plan(), &hyperpod);
    assert!(c.instances.is_empty());
    assert!(failures(&c)[0].message.contains("reserves capacity for hyperpod-cluster"));
}
