use super::*;
use crate::config::parse;

const EXAMPLE: &str = include_str!("../../../../examples/pipelines.yaml");
const SUBNET: &str = "subnet-0a1b2c3d4e5f60718";
const JOB_SG: &str = "sg-0a1b2c3d4e5f60718";
const FS_SG: &str = "sg-0fedcba9876543210";

fn pipelines() -> (Pipeline, Pipeline) {
    let c = parse(EXAMPLE).expect("valid");
    (c.pipelines[0].clone(), c.pipelines[1].clone())
}

fn tcp(from: i32, to: i32, groups: &[&str]) -> Permission {
    Permission {
        protocol: "tcp".into(),
        from_port: Some(from),
        to_port: Some(to),
        cidrs: vec![],
        groups: groups.iter().map(|g| g.to_string()).collect(),
    }
}

fn all_out() -> Permission {
    Permission {
        protocol: "-1".into(),
        from_port: None,
        to_port: None,
        cidrs: vec!["0.0.0.0/0".into()],
        groups: vec![],
    }
}

/// A correct FSx for Lustre setup for the example's churn pipeline.
fn lustre_facts() -> Facts {
    Facts {
        file_system: FileSystemFacts::Lustre(LustreFacts {
            file_system_type: "LUSTRE".into(),
            lifecycle: "AVAILABLE".into(),
            mount_name: Some("fsx1234".into()),
            vpc_id: Some("vpc-1".into()),
            availability_zone: Some("us-east-1a".into()),
            data_repository_paths: vec!["s3://example-training-data/".into()],
            security_groups: vec![FS_SG.into()],
        }),
        subnets: [(
            SUBNET.to_owned(),
            Some(SubnetFacts {
                vpc_id: "vpc-1".into(),
                availability_zone: "us-east-1a".into(),
                cidr: "10.0.1.0/24".into(),
            }),
        )]
        .into(),
        security_groups: [
            (
                JOB_SG.to_owned(),
                Some(SecurityGroupFacts {
                    vpc_id: "vpc-1".into(),
                    ingress: vec![],
                    egress: vec![all_out()],
                }),
            ),
            (
                FS_SG.to_owned(),
                Some(SecurityGroupFacts {
                    vpc_id: "vpc-1".into(),
                    ingress: vec![tcp(988, 988, &[JOB_SG]), tcp(1018, 1023, &[JOB_SG])],
                    egress: vec![all_out()],
                }),
            ),
        ]
        .into(),
    }
}

fn failures(findings: &[Finding]) -> Vec<&Finding> {
    findings.iter().filter(|f| !f.ok).collect()
}

fn lustre_mut(facts: &mut Facts) -> &mut LustreFacts {
    match &mut facts.file_system {
        FileSystemFacts::Lustre(l) => l,
        _ => unreachable!("lustre facts"),
    }
}

#[test]
fn a_correct_lustre_setup_passes_every_check() {
    let (churn, _) = pipelines();
    let findings = check(&churn, &lustre_facts());
    assert!(failures(&findings).is_empty(), "{findings:#?}");
    for name in [
        "file system available",
        "mount name known",
        "data repository covers trigger",
        "subnet in file system's zone",
        "inbound traffic to file system",
        "outbound traffic from training job",
    ] {
        assert!(findings.iter().any(|f| f.check == name), "missing check {name}");
    }
}

#[test]
fn a_subnet_in_another_zone_names_both_zones_and_the_fix() {
    let (churn, _) = pipelines();
    let mut facts = lustre_facts();
    facts.subnets.insert(
        SUBNET.into(),
        Some(SubnetFacts {
            vpc_id: "vpc-1".into(),
            availability_zone: "us-east-1b".into(),
            cidr: "10.0.1.0/24".into(),
        }),
    );
    let findings = check(&churn, &facts);
    let bad = failures(&findings);
    assert_eq!(bad.len(), 1, "{bad:#?}");
    assert!(
        bad[0].message.contains("us-east-1b") && bad[0].message.contains("us-east-1a") && bad[0].message.contains(SUBNET),
        "{:?}",
        bad[0]
    );
    assert_eq!(bad[0].fix, "use a subnet in us-east-1a");
}

#[test]
fn a_security_group_without_port_988_fails_inbound() {
    let (churn, _) = pipelines();
    let mut facts = lustre_facts();
    facts.security_groups.insert(
        FS_SG.into(),
        Some(SecurityGroupFacts {
            vpc_id: "vpc-1".into(),
            ingress: vec![tcp(1018, 1023, &[JOB_SG])],
            egress: vec![],
        }),
    );
    let bad: Vec<String> = failures(&check(&churn, &facts)).iter().map(|f| f.check.clone()).collect();
    assert_eq!(bad, vec!["inbound traffic to file system"]);
}

#[test]
fn outbound_must_reach_the_file_system() {
    let (churn, _) = pipelines();
    let mut facts = lustre_facts();
    facts.security_groups.insert(
        JOB_SG.into(),
        Some(SecurityGroupFacts {
            vpc_id: "vpc-1".into(),
            ingress: vec![],
            egress: vec![tcp(443, 443, &[])],
        }),
    );
    let bad: Vec<String> = failures(&check(&churn, &facts)).iter().map(|f| f.check.clone()).collect();
    assert_eq!(bad, vec!["outbound traffic from training job"]);
}

#[test]
fn a_file_system_that_is_not_available_fails() {
    let (churn, _) = pipelines();
    let mut facts = lustre_facts();
    lustre_mut(&mut facts).lifecycle = "MISCONFIGURED".into();
    let findings = check(&churn, &facts);
    let bad = failures(&findings);
    assert_eq!(bad.len(), 1);
    assert!(bad[0].message.contains("MISCONFIGURED"));
}

#[test]
fn a_trigger_outside_the_data_repository_fails() {
    let (churn, _) = pipelines();
    let mut facts = lustre_facts();
    lustre_mut(&mut facts).data_repository_paths = vec!["s3://example-training-data/other/".into()];
    let bad = failures(&check(&churn, &facts)).into_iter().cloned().collect::<Vec<_>>();
    assert_eq!(bad.len(), 1);
    assert!(bad[0].message.contains("outside"), "{:?}", bad[0]);
}

#[test]
fn a_missing_file_system_stops_the_checks() {
    let (churn, _) = pipelines();
    let mut facts = lustre_facts();
    facts.file_system = FileSystemFacts::Missing;
    let findings = check(&churn, &facts);
    assert_eq!(findings.len(), 1);
    assert!(!findings[0].ok);
}

#[test]
fn subnets_and_groups_must_be_in_the_file_system_vpc() {
    let (churn, _) = pipelines();
    let mut facts = lustre_facts();
    facts.subnets.insert(
        SUBNET.into(),
        Some(SubnetFacts {
            vpc_id: "vpc-2".into(),
            availability_zone: "us-east-1a".into(),
            cidr: "10.9.0.0/24".into(),
        }),
    );
    let bad: Vec<String> = failures(&check(&churn, &facts)).iter().map(|f| f.check.clone()).collect();
    assert!(bad.contains(&"subnet in file system's VPC".to_owned()), "{bad:?}");
}

fn efs_facts(zone: &str) -> Facts {
    Facts {
        file_system: FileSystemFacts::Efs(EfsFacts {
            lifecycle: "available".into(),
            mount_targets: vec![MountTargetFacts {
                id: "fsmt-1".into(),
                subnet_id: SUBNET.into(),
                availability_zone: zone.into(),
                security_groups: vec![FS_SG.into()],
            }],
        }),
        subnets: [(
            SUBNET.to_owned(),
            Some(SubnetFacts {
                vpc_id: "vpc-1".into(),
                availability_zone: "us-east-1a".into(),
                cidr: "10.0.1.0/24".into(),
            }),
        )]
        .into(),
        security_groups: [
            (
                JOB_SG.to_owned(),
                Some(SecurityGroupFacts {
                    vpc_id: "vpc-1".into(),
                    ingress: vec![],
                    egress: vec![all_out()],
                }),
            ),
            (
                FS_SG.to_owned(),
                Some(SecurityGroupFacts {
                    vpc_id: "vpc-1".into(),
                    ingress: vec![tcp(2049, 2049, &[JOB_SG])],
                    egress: vec![],
                }),
            ),
        ]
        .into(),
    }
}

#[test]
fn efs_needs_a_mount_target_in_the_subnet_zone_and_nfs() {
    let (_, fraud) = pipelines();
    assert!(failures(&check(&fraud, &efs_facts("us-east-1a"))).is_empty());
    let findings = check(&fraud, &efs_facts("us-east-1c"));
    let bad = failures(&findings);
    assert_eq!(bad.len(), 1, "{bad:#?}");
    assert_eq!(bad[0].check, "mount target in subnet's zone");
    assert!(bad[0].fix.contains("create a mount target"));
    let mut no_nfs = efs_facts("us-east-1a");
    no_nfs.security_groups.insert(
        FS_SG.into(),
        Some(SecurityGroupFacts {
            vpc_id: "vpc-1".into(),
            ingress: vec![tcp(22, 22, &[JOB_SG])],
            egress: vec![],
        }),
    );
    let bad: Vec<String> = failures(&check(&fraud, &no_nfs)).iter().map(|f| f.check.clone()).collect();
    assert_eq!(bad, vec!["inbound traffic to file system"]);
}

#[test]
fn cidr_sources_count_when_they_contain_the_job_subnet() {
    assert!(cidr_contains("10.0.0.0/16", "10.0.1.0/24"));
    assert!(!cidr_contains("10.0.1.0/24", "10.0.0.0/16"));
    assert!(!cidr_contains("192.168.0.0/16", "10.0.1.0/24"));
    assert!(cidr_contains("0.0.0.0/0", "10.0.1.0/24"));
    assert!(!cidr_contains("garbage", "10.0.1.0/24"));
}
