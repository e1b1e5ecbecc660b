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
        groups: groups.iter().map(|g| g.to_string()).collect(),
        ..Default::default()
    }
}

/// TCP `from..=to` to/from an IPv4 CIDR.
fn tcp_cidr(from: i32, to: i32, cidr: &str) -> Permission {
    Permission {
        cidrs: vec![cidr.into()],
        ..tcp(from, to, &[])
    }
}

/// TCP `from..=to` to/from a managed prefix list.
fn tcp_list(from: i32, to: i32, list: &str) -> Permission {
    Permission {
        prefix_lists: vec![list.into()],
        ..tcp(from, to, &[])
    }
}

/// The Lustre ports to `cidr`, as a job group's only outbound rules.
fn lustre_out(rule: fn(i32, i32, &str) -> Permission, to: &str) -> Vec<Permission> {
    vec![rule(988, 988, to), rule(1018, 1023, to)]
}

fn all_out() -> Permission {
    Permission {
        protocol: "-1".into(),
        from_port: None,
        to_port: None,
        cidrs: vec!["0.0.0.0/0".into()],
        ..Default::default()
    }
}

/// All traffic to any IPv6 address, and nothing over IPv4.
fn all_out_v6() -> Permission {
    Permission {
        protocol: "-1".into(),
        ipv6_cidrs: vec!["::/0".into()],
        ..Default::default()
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
            interfaces: vec![
                InterfaceFacts {
                    id: "eni-1".into(),
                    addresses: vec!["10.0.1.4".into()],
                },
                InterfaceFacts {
                    id: "eni-2".into(),
                    addresses: vec!["10.0.1.5".into()],
                },
            ],
            subnet_cidrs: vec!["10.0.1.0/24".into()],
        }),
        subnets: [(
            SUBNET.to_owned(),
            Some(SubnetFacts {
                vpc_id: "vpc-1".into(),
                availability_zone: "us-east-1a".into(),
                cidr: "10.0.1.0/24".into(),
                ..Default::default()
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
        prefix_lists: BTreeMap::new(),
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
            ..Default::default()
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
            ..Default::default()
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
                addresses: vec!["10.0.1.6".into()],
                subnet_cidrs: vec![],
            }],
        }),
        subnets: [(
            SUBNET.to_owned(),
            Some(SubnetFacts {
                vpc_id: "vpc-1".into(),
                availability_zone: "us-east-1a".into(),
                cidr: "10.0.1.0/24".into(),
                ..Default::default()
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
        prefix_lists: BTreeMap::new(),
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

fn contains(outer: &str, inner: &str) -> bool {
    match (parse_net(outer), parse_net(inner)) {
        (Some(o), Some(i)) => o.contains(&i),
        _ => false,
    }
}

#[test]
fn cidr_sources_count_when_they_contain_the_job_subnet() {
    assert!(contains("10.0.0.0/16", "10.0.1.0/24"));
    assert!(!contains("10.0.1.0/24", "10.0.0.0/16"));
    assert!(!contains("192.168.0.0/16", "10.0.1.0/24"));
    assert!(contains("0.0.0.0/0", "10.0.1.0/24"));
    assert!(contains("10.0.1.0/24", "10.0.1.4"));
    assert!(contains("2600:1f18:a::/56", "2600:1f18:a:1::/64"));
    assert!(contains("::/0", "2600:1f18:a:1::5"));
    assert!(!contains("::/0", "10.0.1.4"), "an IPv6 range never holds an IPv4 address");
    assert!(!contains("0.0.0.0/0", "2600:1f18:a:1::5"));
    assert!(!contains("garbage", "10.0.1.0/24"));
    assert!(!contains("10.0.0.0/33", "10.0.1.0/24"));
}

/// The churn pipeline's Lustre facts with `egress` as the job group's only outbound rules.
fn lustre_with_job_egress(egress: Vec<Permission>) -> Facts {
    let mut facts = lustre_facts();
    facts.security_groups.insert(
        JOB_SG.into(),
        Some(SecurityGroupFacts {
            vpc_id: "vpc-1".into(),
            ingress: vec![],
            egress,
        }),
    );
    facts
}

fn failed_checks(pipeline: &Pipeline, facts: &Facts) -> Vec<String> {
    failures(&check(pipeline, facts)).iter().map(|f| f.check.clone()).collect()
}

fn the_failure<'a>(findings: &'a [Finding], check: &str) -> &'a Finding {
    let bad = failures(findings);
    assert_eq!(bad.len(), 1, "{bad:#?}");
    assert_eq!(bad[0].check, check);
    bad[0]
}

#[test]
fn outbound_to_a_cidr_containing_the_file_system_interfaces_passes() {
    let (churn, _) = pipelines();
    let facts = lustre_with_job_egress(lustre_out(tcp_cidr, "10.0.0.0/16"));
    let findings = check(&churn, &facts);
    assert!(failures(&findings).is_empty(), "{findings:#?}");
}

#[test]
fn outbound_to_a_cidr_without_the_file_system_fails_and_names_its_addresses() {
    let (churn, _) = pipelines();
    let findings = check(&churn, &lustre_with_job_egress(lustre_out(tcp_cidr, "10.0.2.0/24")));
    let bad = the_failure(&findings, "outbound traffic from training job");
    assert_eq!(bad.resource, JOB_SG);
    assert!(bad.message.contains(FS_SG) && bad.message.contains("10.0.1.4, 10.0.1.5"), "{bad:?}");
    assert!(
        bad.fix.contains(JOB_SG) && bad.fix.contains(FS_SG) && bad.fix.contains("a CIDR or prefix list containing 10.0.1.4"),
        "{bad:?}"
    );
}

#[test]
fn outbound_must_reach_every_interface_of_the_file_system() {
    let (churn, _) = pipelines();
    let facts = lustre_with_job_egress(lustre_out(tcp_cidr, "10.0.1.4/32"));
    assert_eq!(failed_checks(&churn, &facts), vec!["outbound traffic from training job"]);
    let mut both = lustre_out(tcp_cidr, "10.0.1.4/32");
    both.extend(lustre_out(tcp_cidr, "10.0.1.5/32"));
    assert!(failed_checks(&churn, &lustre_with_job_egress(both)).is_empty());
}

#[test]
fn outbound_falls_back_to_the_file_system_subnet_when_its_addresses_are_unknown() {
    let (churn, _) = pipelines();
    let mut facts = lustre_with_job_egress(lustre_out(tcp_cidr, "10.0.1.0/24"));
    lustre_mut(&mut facts).interfaces.clear();
    assert!(failed_checks(&churn, &facts).is_empty());
    // A single address cannot be shown to hold the whole subnet.
    let mut facts = lustre_with_job_egress(lustre_out(tcp_cidr, "10.0.1.4/32"));
    lustre_mut(&mut facts).interfaces.clear();
    let findings = check(&churn, &facts);
    let bad = the_failure(&findings, "outbound traffic from training job");
    assert!(bad.message.contains("10.0.1.0/24"), "{bad:?}");
    // Knowing nothing about where it is, only a rule open to anywhere (or to its group) passes.
    let mut facts = lustre_with_job_egress(lustre_out(tcp_cidr, "10.0.0.0/16"));
    lustre_mut(&mut facts).interfaces.clear();
    lustre_mut(&mut facts).subnet_cidrs.clear();
    assert_eq!(failed_checks(&churn, &facts), vec!["outbound traffic from training job"]);
    let mut open = lustre_with_job_egress(vec![all_out()]);
    lustre_mut(&mut open).interfaces.clear();
    lustre_mut(&mut open).subnet_cidrs.clear();
    assert!(failed_checks(&churn, &open).is_empty());
}

/// Lustre facts where the job subnet and the file system's interfaces are dual-stack.
fn dual_stack(egress: Vec<Permission>) -> Facts {
    let mut facts = lustre_with_job_egress(egress);
    for (i, eni) in lustre_mut(&mut facts).interfaces.iter_mut().enumerate() {
        eni.addresses.push(format!("2600:1f18:a:1::{}", i + 4));
    }
    lustre_mut(&mut facts).subnet_cidrs.push("2600:1f18:a:1::/64".into());
    if let Some(Some(s)) = facts.subnets.get_mut(SUBNET) {
        s.ipv6_cidrs = vec!["2600:1f18:a:1::/64".into()];
    }
    facts
}

#[test]
fn ipv6_outbound_to_anywhere_passes() {
    let (churn, _) = pipelines();
    let findings = check(&churn, &dual_stack(vec![all_out_v6()]));
    assert!(failures(&findings).is_empty(), "{findings:#?}");
}

#[test]
fn an_ipv6_range_containing_the_interfaces_passes_and_one_elsewhere_fails() {
    let (churn, _) = pipelines();
    let within = |cidr: &str| Permission {
        ipv6_cidrs: vec![cidr.into()],
        ..tcp(988, 1023, &[])
    };
    assert!(failed_checks(&churn, &dual_stack(vec![within("2600:1f18:a::/56")])).is_empty());
    assert_eq!(
        failed_checks(&churn, &dual_stack(vec![within("2600:1f18:b::/56")])),
        vec!["outbound traffic from training job"]
    );
}

#[test]
fn ipv6_rules_do_not_reach_an_ipv4_only_file_system() {
    // The fixture's interfaces and subnets have no IPv6 address: the
    // Lustre traffic goes over IPv4, which `::/0` does not let out.
    let (churn, _) = pipelines();
    let findings = check(&churn, &lustre_with_job_egress(vec![all_out_v6()]));
    the_failure(&findings, "outbound traffic from training job");
}

#[test]
fn inbound_from_a_cidr_containing_the_job_subnet_passes() {
    let (churn, _) = pipelines();
    let mut facts = lustre_facts();
    facts.security_groups.insert(
        FS_SG.into(),
        Some(SecurityGroupFacts {
            vpc_id: "vpc-1".into(),
            ingress: lustre_out(tcp_cidr, "10.0.0.0/16"),
            egress: vec![],
        }),
    );
    assert!(failed_checks(&churn, &facts).is_empty());
    facts.security_groups.insert(
        FS_SG.into(),
        Some(SecurityGroupFacts {
            vpc_id: "vpc-1".into(),
            ingress: lustre_out(tcp_cidr, "10.0.2.0/24"),
            egress: vec![],
        }),
    );
    let findings = check(&churn, &facts);
    let bad = the_failure(&findings, "inbound traffic to file system");
    assert!(
        bad.message.contains(JOB_SG) && bad.message.contains("10.0.1.0/24") && bad.fix.contains(FS_SG),
        "{bad:?}"
    );
}

const LIST: &str = "pl-0123456789abcdef0";

#[test]
fn a_prefix_list_containing_the_file_system_subnet_passes_outbound() {
    let (churn, _) = pipelines();
    let mut facts = lustre_with_job_egress(lustre_out(tcp_list, LIST));
    facts
        .prefix_lists
        .insert(LIST.into(), Some(vec!["192.168.0.0/16".into(), "10.0.1.0/24".into()]));
    assert!(failed_checks(&churn, &facts).is_empty());
}

#[test]
fn a_prefix_list_without_the_file_system_fails_outbound() {
    let (churn, _) = pipelines();
    let mut facts = lustre_with_job_egress(lustre_out(tcp_list, LIST));
    facts.prefix_lists.insert(LIST.into(), Some(vec!["10.0.2.0/24".into()]));
    assert_eq!(failed_checks(&churn, &facts), vec!["outbound traffic from training job"]);
    // One that does not exist (or was not described) holds nothing.
    facts.prefix_lists.insert(LIST.into(), None);
    assert_eq!(failed_checks(&churn, &facts), vec!["outbound traffic from training job"]);
    facts.prefix_lists.clear();
    assert_eq!(failed_checks(&churn, &facts), vec!["outbound traffic from training job"]);
}

#[test]
fn a_prefix_list_containing_the_job_subnet_passes_inbound_and_one_without_it_fails() {
    let (churn, _) = pipelines();
    let mut facts = lustre_facts();
    facts.security_groups.insert(
        FS_SG.into(),
        Some(SecurityGroupFacts {
            vpc_id: "vpc-1".into(),
            ingress: lustre_out(tcp_list, LIST),
            egress: vec![],
        }),
    );
    facts.prefix_lists.insert(LIST.into(), Some(vec!["10.0.0.0/16".into()]));
    assert!(failed_checks(&churn, &facts).is_empty());
    facts.prefix_lists.insert(LIST.into(), Some(vec!["10.0.2.0/24".into()]));
    assert_eq!(failed_checks(&churn, &facts), vec!["inbound traffic to file system"]);
}

#[test]
fn efs_outbound_to_a_cidr_must_contain_the_mount_target_of_the_subnet_zone() {
    let (_, fraud) = pipelines();
    let with_egress = |egress: Vec<Permission>| {
        let mut facts = efs_facts("us-east-1a");
        facts.security_groups.insert(
            JOB_SG.into(),
            Some(SecurityGroupFacts {
                vpc_id: "vpc-1".into(),
                ingress: vec![],
                egress,
            }),
        );
        facts
    };
    assert!(failed_checks(&fraud, &with_egress(vec![tcp_cidr(2049, 2049, "10.0.1.6/32")])).is_empty());
    let facts = with_egress(vec![tcp_cidr(2049, 2049, "10.0.1.7/32")]);
    let findings = check(&fraud, &facts);
    let bad = the_failure(&findings, "outbound traffic from training job");
    assert!(bad.message.contains("10.0.1.6") && bad.message.contains("NFS"), "{bad:?}");
}
