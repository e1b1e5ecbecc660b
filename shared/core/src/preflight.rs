//! Preflight: pure checks over described resources, run before any money is
//! spent. Each finding names the resource, what is wrong and the fix; passing
//! checks are findings too, so `retrain validate --live` can show a full table.

use crate::config::{FileSystemKind, Pipeline};
use crate::s3_uri::S3Uri;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// TCP ports FSx for Lustre clients use: 988, and 1018-1023.
pub const LUSTRE_PORTS: &[(u16, u16)] = &[(988, 988), (1018, 1023)];
/// NFS, for EFS.
pub const NFS_PORTS: &[(u16, u16)] = &[(2049, 2049)];

/// An FSx for Lustre file system as DescribeFileSystems (and its ENIs) show it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LustreFacts {
    /// `FileSystemType`: must be `LUSTRE`.
    pub file_system_type: String,
    pub lifecycle: String,
    pub mount_name: Option<String>,
    pub vpc_id: Option<String>,
    /// Availability zone of its subnet (Lustre lives in one).
    pub availability_zone: Option<String>,
    /// `ImportPath` and every data repository association's `DataRepositoryPath`.
    pub data_repository_paths: Vec<String>,
    /// Security groups of its network interfaces.
    pub security_groups: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MountTargetFacts {
    pub id: String,
    pub subnet_id: String,
    pub availability_zone: String,
    pub security_groups: Vec<String>,
}

/// An EFS file system and its mount targets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EfsFacts {
    pub lifecycle: String,
    pub mount_targets: Vec<MountTargetFacts>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FileSystemFacts {
    Lustre(LustreFacts),
    Efs(EfsFacts),
    /// The describe call said it does not exist.
    Missing,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SubnetFacts {
    pub vpc_id: String,
    pub availability_zone: String,
    pub cidr: String,
}

/// One rule of a security group (`IpPermissions` / `IpPermissionsEgress`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Permission {
    /// `tcp`, `6`, or `-1` (all traffic).
    pub protocol: String,
    pub from_port: Option<i32>,
    pub to_port: Option<i32>,
    pub cidrs: Vec<String>,
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SecurityGroupFacts {
    pub vpc_id: String,
    pub ingress: Vec<Permission>,
    pub egress: Vec<Permission>,
}

/// Everything preflight needs about one pipeline's resources. `None` in a
/// map means the describe call did not find that id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    pub file_system: FileSystemFacts,
    pub subnets: BTreeMap<String, Option<SubnetFacts>>,
    pub security_groups: BTreeMap<String, Option<SecurityGroupFacts>>,
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub pipeline: String,
    pub check: String,
    pub resource: String,
    pub ok: bool,
    /// What was found (for a failure: what is wrong).
    pub message: String,
    /// Empty when the check passed.
    pub fix: String,
}

impl Finding {
    /// One line for `SweepBlocked.problems`: resource, problem, fix.
    pub fn problem(&self) -> String {
        format!("{}: {} — fix: {}", self.resource, self.message, self.fix)
    }
}

struct Report<'a> {
    pipeline: &'a str,
    findings: Vec<Finding>,
}

impl Report<'_> {
    fn add(&mut self, check: &str, resource: &str, ok: bool, message: String, fix: impl Into<String>) {
        self.findings.push(Finding {
            pipeline: self.pipeline.to_owned(),
            check: check.to_owned(),
            resource: resource.to_owned(),
            ok,
            message,
            fix: if ok { String::new() } else { fix.into() },
        });
    }
}

/// Runs every check of `pipeline` against `facts`.
pub fn check(pipeline: &Pipeline, facts: &Facts) -> Vec<Finding> {
    let mut r = Report {
        pipeline: &pipeline.name,
        findings: Vec::new(),
    };
    let fs = &pipeline.file_system;
    let (vpc, peer_groups) = match (&facts.file_system, fs.kind) {
        (FileSystemFacts::Missing, _) => {
            r.add(
                "file system exists",
                &fs.id,
                false,
                format!("{} was not found in this account and region", fs.id),
                "check file_system.id (and AWS_REGION): `aws fsx describe-file-systems` / `aws efs describe-file-systems` lists the ids",
            );
            return r.findings;
        }
        (FileSystemFacts::Lustre(l), FileSystemKind::FsxLustre) => {
            lustre(&mut r, pipeline, l, facts);
            (l.vpc_id.clone(), l.security_groups.clone())
        }
        (FileSystemFacts::Efs(e), FileSystemKind::Efs) => {
            efs(&mut r, pipeline, e, facts);
            let groups = e.mount_targets.iter().flat_map(|m| m.security_groups.iter().cloned()).collect();
            let vpc = first_vpc(pipeline, facts);
            (vpc, groups)
        }
        (FileSystemFacts::Lustre(_), FileSystemKind::Efs) | (FileSystemFacts::Efs(_), FileSystemKind::FsxLustre) => {
            r.add(
                "file system type",
                &fs.id,
                false,
                format!("{} is not the type the config says ({:?})", fs.id, fs.kind),
                "set file_system.type to the file system's real type",
            );
            return r.findings;
        }
    };
    network(&mut r, pipeline, facts, vpc.as_deref());
    let ports = if fs.kind == FileSystemKind::FsxLustre {
        LUSTRE_PORTS
    } else {
        NFS_PORTS
    };
    let service = if fs.kind == FileSystemKind::FsxLustre {
        "Lustre (TCP 988, 1018-1023)"
    } else {
        "NFS (TCP 2049)"
    };
    traffic(&mut r, pipeline, facts, &peer_groups, ports, service);
    r.findings
}

fn first_vpc(pipeline: &Pipeline, facts: &Facts) -> Option<String> {
    pipeline
        .vpc
        .subnets
        .iter()
        .find_map(|s| facts.subnets.get(s).cloned().flatten())
        .map(|s| s.vpc_id)
}

fn lustre(r: &mut Report, p: &Pipeline, l: &LustreFacts, facts: &Facts) {
    let id = &p.file_system.id;
    r.add("file system exists", id, true, format!("{id} found"), "");
    r.add(
        "file system type",
        id,
        l.file_system_type == "LUSTRE",
        format!("FileSystemType is {}", l.file_system_type),
        "use an FSx for Lustre file system, or set file_system.type: efs",
    );
    r.add(
        "file system available",
        id,
        l.lifecycle == "AVAILABLE",
        format!("Lifecycle is {}", l.lifecycle),
        "wait until the file system is AVAILABLE; MISCONFIGURED or FAILED file systems need fixing in the FSx console first",
    );
    let mount = p.file_system.mount_name.clone().or_else(|| l.mount_name.clone());
    r.add(
        "mount name known",
        id,
        mount.is_some(),
        match &mount {
            Some(m) => format!("mount name {m}"),
            None => "no LustreConfiguration.MountName".to_owned(),
        },
        "set file_system.mount_name",
    );
    if let (Some(configured), Some(actual)) = (&p.file_system.mount_name, &l.mount_name) {
        r.add(
            "mount name matches",
            id,
            configured == actual,
            format!("config says {configured}, FSx says {actual}"),
            format!("set file_system.mount_name to {actual} or remove it"),
        );
    }
    let repos: Vec<S3Uri> = l.data_repository_paths.iter().filter_map(|p| S3Uri::parse(p)).collect();
    for prefix in &p.trigger.prefixes {
        let watched = S3Uri::new(&p.trigger.bucket, prefix);
        let covered = repos.iter().any(|repo| repo.covers(&watched));
        r.add(
            "data repository covers trigger",
            id,
            covered,
            if covered {
                format!("{watched} is inside {}", l.data_repository_paths.join(", "))
            } else if repos.is_empty() {
                format!("{id} has no data repository (no import path, no data repository association), so {watched} never reaches it")
            } else {
                format!(
                    "{watched} is outside the file system's data repositories ({})",
                    l.data_repository_paths.join(", ")
                )
            },
            format!(
                "link {id} to s3://{}/{prefix} (a data repository association), or watch a prefix inside its data repository",
                p.trigger.bucket
            ),
        );
    }
    if let Some(zone) = &l.availability_zone {
        let zones: Vec<(String, String)> = p
            .vpc
            .subnets
            .iter()
            .filter_map(|s| facts.subnets.get(s).cloned().flatten().map(|f| (s.clone(), f.availability_zone)))
            .collect();
        let inside: Vec<&String> = zones.iter().filter(|(_, z)| z == zone).map(|(s, _)| s).collect();
        let outside: Vec<String> = zones
            .iter()
            .filter(|(_, z)| z != zone)
            .map(|(s, z)| format!("{s} is in {z}"))
            .collect();
        r.add(
            "subnet in file system's zone",
            &p.vpc.subnets.join(","),
            !inside.is_empty(),
            if inside.is_empty() {
                format!("{}; {id} is in {zone}", outside.join(", "))
            } else {
                format!(
                    "{} in {zone} like {id}",
                    inside.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                )
            },
            format!("use a subnet in {zone}"),
        );
    }
}

fn efs(r: &mut Report, p: &Pipeline, e: &EfsFacts, facts: &Facts) {
    let id = &p.file_system.id;
    r.add("file system exists", id, true, format!("{id} found"), "");
    r.add(
        "file system available",
        id,
        e.lifecycle == "available",
        format!("LifeCycleState is {}", e.lifecycle),
        "wait until the file system is available",
    );
    for subnet in &p.vpc.subnets {
        let Some(Some(s)) = facts.subnets.get(subnet) else { continue };
        let target = e.mount_targets.iter().find(|m| m.availability_zone == s.availability_zone);
        r.add(
            "mount target in subnet's zone",
            subnet,
            target.is_some(),
            match target {
                Some(m) => format!("{} serves {}", m.id, s.availability_zone),
                None => format!("{subnet} is in {}, where {id} has no mount target", s.availability_zone),
            },
            format!(
                "create a mount target of {id} in {} (aws efs create-mount-target), or use a subnet where it has one",
                s.availability_zone
            ),
        );
    }
}

fn network(r: &mut Report, p: &Pipeline, facts: &Facts, vpc: Option<&str>) {
    let fs = &p.file_system.id;
    for subnet in &p.vpc.subnets {
        match facts.subnets.get(subnet).cloned().flatten() {
            None => r.add(
                "subnet exists",
                subnet,
                false,
                format!("{subnet} was not found"),
                "check vpc.subnets",
            ),
            Some(s) => match vpc {
                Some(v) if v != s.vpc_id => r.add(
                    "subnet in file system's VPC",
                    subnet,
                    false,
                    format!("{subnet} is in {}; {fs} is in {v}", s.vpc_id),
                    format!("use subnets of {v}"),
                ),
                _ => r.add(
                    "subnet in file system's VPC",
                    subnet,
                    true,
                    format!("{subnet} is in {}", s.vpc_id),
                    "",
                ),
            },
        }
    }
    for group in &p.vpc.security_groups {
        match facts.security_groups.get(group).cloned().flatten() {
            None => r.add(
                "security group exists",
                group,
                false,
                format!("{group} was not found"),
                "check vpc.security_groups",
            ),
            Some(g) => match vpc {
                Some(v) if v != g.vpc_id => r.add(
                    "security group in file system's VPC",
                    group,
                    false,
                    format!("{group} is in {}; {fs} is in {v}", g.vpc_id),
                    format!("use security groups of {v}"),
                ),
                _ => r.add(
                    "security group in file system's VPC",
                    group,
                    true,
                    format!("{group} is in {}", g.vpc_id),
                    "",
                ),
            },
        }
    }
}

fn traffic(r: &mut Report, p: &Pipeline, facts: &Facts, fs_groups: &[String], ports: &[(u16, u16)], service: &str) {
    let job_groups = &p.vpc.security_groups;
    let job_cidrs: Vec<String> = p
        .vpc
        .subnets
        .iter()
        .filter_map(|s| facts.subnets.get(s).cloned().flatten())
        .map(|s| s.cidr)
        .collect();
    let id = &p.file_system.id;
    if fs_groups.is_empty() {
        r.add(
            "file system security groups",
            id,
            false,
            format!("no security group found on {id}'s network interfaces or mount targets"),
            "check the file system's network interfaces in the EC2 console",
        );
        return;
    }
    // Inbound on the file system's side, from the job's groups or subnets.
    let inbound_ok = fs_groups.iter().any(|g| {
        facts.security_groups.get(g).cloned().flatten().is_some_and(|sg| {
            ports
                .iter()
                .all(|&(from, to)| allows(&sg.ingress, from, to, job_groups, &job_cidrs))
        })
    });
    r.add(
        "inbound traffic to file system",
        &fs_groups.join(","),
        inbound_ok,
        if inbound_ok {
            format!("{service} allowed from the training job")
        } else {
            format!(
                "{} do(es) not allow {service} inbound from {}",
                fs_groups.join(", "),
                job_groups.join(", ")
            )
        },
        format!(
            "add inbound rules for {service} to {} with source {}",
            fs_groups.first().map(String::as_str).unwrap_or("the file system's group"),
            job_groups.first().map(String::as_str).unwrap_or("the job's group")
        ),
    );
    // Outbound on the job's side, to the file system's groups (or anywhere).
    let outbound_ok = job_groups.iter().any(|g| {
        facts
            .security_groups
            .get(g)
            .cloned()
            .flatten()
            .is_some_and(|sg| ports.iter().all(|&(from, to)| allows(&sg.egress, from, to, fs_groups, &[])))
    });
    r.add(
        "outbound traffic from training job",
        &job_groups.join(","),
        outbound_ok,
        if outbound_ok {
            format!("{service} allowed to the file system")
        } else {
            format!(
                "{} do(es) not allow {service} outbound to {}",
                job_groups.join(", "),
                fs_groups.join(", ")
            )
        },
        format!(
            "add outbound rules for {service} to {} with destination {}",
            job_groups.first().map(String::as_str).unwrap_or("the job's group"),
            fs_groups.first().map(String::as_str).unwrap_or("the file system's group")
        ),
    );
}

/// Whether some rule lets TCP `from..=to` through to/from `peers` (groups) or `cidrs`.
fn allows(rules: &[Permission], from: u16, to: u16, peers: &[String], cidrs: &[String]) -> bool {
    rules.iter().any(|rule| {
        let protocol_ok = matches!(rule.protocol.as_str(), "-1" | "tcp" | "6");
        let all_ports = rule.protocol == "-1" || rule.from_port.is_none();
        let ports_ok = all_ports || (rule.from_port.unwrap_or(0) <= i32::from(from) && rule.to_port.unwrap_or(65535) >= i32::from(to));
        let peer_ok = rule.groups.iter().any(|g| peers.contains(g))
            || rule
                .cidrs
                .iter()
                .any(|c| c == "0.0.0.0/0" || cidrs.iter().any(|inner| cidr_contains(c, inner)));
        protocol_ok && ports_ok && peer_ok
    })
}

/// Whether IPv4 CIDR `outer` contains `inner`.
fn cidr_contains(outer: &str, inner: &str) -> bool {
    let parse = |c: &str| -> Option<(u32, u32)> {
        let (ip, len) = c.split_once('/')?;
        let octets: Vec<u32> = ip.split('.').map(|o| o.parse().ok()).collect::<Option<_>>()?;
        let len: u32 = len.parse().ok()?;
        if octets.len() != 4 || len > 32 {
            return None;
        }
        Some((octets.iter().fold(0, |acc, o| (acc << 8) | o), len))
    };
    match (parse(outer), parse(inner)) {
        (Some((o, ol)), Some((i, il))) if il >= ol => {
            let mask = if ol == 0 { 0 } else { u32::MAX << (32 - ol) };
            o & mask == i & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests;
