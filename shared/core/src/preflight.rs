//! Preflight: pure checks over described resources, run before any money is
//! spent. Each finding names the resource, what is wrong and the fix; passing
//! checks are findings too, so `retrain validate --live` can show a full table.

use crate::config::{FileSystemKind, Pipeline};
use crate::s3_uri::S3Uri;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

pub mod capacity;

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
    /// Its network interfaces (`NetworkInterfaceIds`), with their addresses.
    #[serde(default)]
    pub interfaces: Vec<InterfaceFacts>,
    /// IPv4 and IPv6 CIDRs of its subnet: where its interfaces are when
    /// their addresses are unknown.
    #[serde(default)]
    pub subnet_cidrs: Vec<String>,
}

/// A network interface as DescribeNetworkInterfaces shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InterfaceFacts {
    pub id: String,
    /// Private IPv4 and IPv6 addresses.
    pub addresses: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MountTargetFacts {
    pub id: String,
    pub subnet_id: String,
    pub availability_zone: String,
    pub security_groups: Vec<String>,
    /// `IpAddress` and `Ipv6Address`, where set.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// IPv4 and IPv6 CIDRs of its subnet, described only when its addresses are unknown.
    #[serde(default)]
    pub subnet_cidrs: Vec<String>,
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
    /// Its associated IPv6 CIDR blocks.
    #[serde(default)]
    pub ipv6_cidrs: Vec<String>,
}

/// One rule of a security group (`IpPermissions` / `IpPermissionsEgress`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Permission {
    /// `tcp`, `6`, or `-1` (all traffic).
    pub protocol: String,
    pub from_port: Option<i32>,
    pub to_port: Option<i32>,
    /// `IpRanges`.
    pub cidrs: Vec<String>,
    /// `Ipv6Ranges`.
    #[serde(default)]
    pub ipv6_cidrs: Vec<String>,
    /// `PrefixListIds`: managed prefix lists, whose entries are in [`Facts::prefix_lists`].
    #[serde(default)]
    pub prefix_lists: Vec<String>,
    /// `UserIdGroupPairs`.
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
    /// The CIDRs of each managed prefix list that the checked rules name
    /// (GetManagedPrefixListEntries).
    #[serde(default)]
    pub prefix_lists: BTreeMap<String, Option<Vec<String>>>,
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
    /// Empty when the check passed without a warning.
    pub fix: String,
    /// Passed, but something will not be used (an instance type skipped) or
    /// could not be checked (a quota read that was denied).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub warning: bool,
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
            warning: false,
        });
    }

    /// A check that passed with a warning: the fix says how to stop it.
    fn warn(&mut self, check: &str, resource: &str, message: String, fix: impl Into<String>) {
        self.findings.push(Finding {
            pipeline: self.pipeline.to_owned(),
            check: check.to_owned(),
            resource: resource.to_owned(),
            ok: true,
            message,
            fix: fix.into(),
            warning: true,
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
    let (vpc, file_system) = match (&facts.file_system, fs.kind) {
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
            (l.vpc_id.clone(), Peer::new(l.security_groups.clone(), lustre_endpoints(l)))
        }
        (FileSystemFacts::Efs(e), FileSystemKind::Efs) => {
            efs(&mut r, pipeline, e, facts);
            let groups = e.mount_targets.iter().flat_map(|m| m.security_groups.iter().cloned()).collect();
            let vpc = first_vpc(pipeline, facts);
            (vpc, Peer::new(groups, efs_endpoints(pipeline, e, facts)))
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
    traffic(&mut r, pipeline, facts, &file_system, ports, service);
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

/// One place traffic must reach (a network interface, a mount target) or
/// come from (a job subnet), by its IPv4 and IPv6 addresses or CIDRs: a rule
/// covers it when one of them lies inside the rule's CIDR or one of its
/// prefix list's entries. `networks` is `0.0.0.0/0` and `::/0` when nothing
/// about it is known, so that only rules open to anywhere cover it.
struct Endpoint {
    networks: Vec<IpNet>,
    known: bool,
}

impl Endpoint {
    /// The networks among `items` (CIDRs or plain addresses); `None` when none parses.
    fn of(items: &[String]) -> Option<Endpoint> {
        let networks: Vec<IpNet> = items.iter().filter_map(|i| parse_net(i)).collect();
        (!networks.is_empty()).then_some(Endpoint { networks, known: true })
    }

    fn unknown() -> Endpoint {
        Endpoint {
            networks: vec![IpNet::V4(Ipv4Net::default()), IpNet::V6(Ipv6Net::default())],
            known: false,
        }
    }

    /// `10.0.1.4`, or `10.0.1.4 or 2600:1f18::4` for a dual-stack one.
    fn label(&self) -> String {
        let show = |n: &IpNet| {
            if n.prefix_len() == n.max_prefix_len() {
                n.addr().to_string()
            } else {
                n.to_string()
            }
        };
        self.networks.iter().map(show).collect::<Vec<_>>().join(" or ")
    }
}

/// The other side of the traffic a group's rules must let through: its
/// security groups, and where it is.
struct Peer {
    groups: Vec<String>,
    /// Never empty: every one of them must be reachable.
    endpoints: Vec<Endpoint>,
}

impl Peer {
    fn new(groups: Vec<String>, mut endpoints: Vec<Endpoint>) -> Peer {
        if endpoints.is_empty() {
            endpoints.push(Endpoint::unknown());
        }
        Peer { groups, endpoints }
    }

    /// The known addresses or CIDRs, for messages: `10.0.1.4, 10.0.1.5`.
    fn addresses(&self) -> Option<String> {
        let known: Vec<String> = self.endpoints.iter().filter(|e| e.known).map(Endpoint::label).collect();
        (!known.is_empty()).then(|| known.join(", "))
    }

    /// `sg-1, sg-2 or 10.0.1.4, 10.0.1.5`.
    fn describe(&self) -> String {
        match self.addresses() {
            Some(a) if self.groups.is_empty() => a,
            Some(a) => format!("{} or {a}", self.groups.join(", ")),
            None => self.groups.join(", "),
        }
    }

    /// `sg-1 (or a CIDR or prefix list containing 10.0.1.4, 10.0.1.5)`.
    fn suggest(&self, fallback: &str) -> String {
        let group = self.groups.first().map(String::as_str).unwrap_or(fallback);
        match self.addresses() {
            Some(a) => format!("{group} (or a CIDR or prefix list containing {a})"),
            None => group.to_owned(),
        }
    }
}

/// The file system's network interfaces, each where its addresses say or,
/// when DescribeNetworkInterfaces gave none, anywhere in its subnet.
fn lustre_endpoints(l: &LustreFacts) -> Vec<Endpoint> {
    let in_subnet = || Endpoint::of(&l.subnet_cidrs).unwrap_or_else(Endpoint::unknown);
    if l.interfaces.is_empty() {
        return vec![in_subnet()];
    }
    l.interfaces
        .iter()
        .map(|i| Endpoint::of(&i.addresses).unwrap_or_else(in_subnet))
        .collect()
}

/// The mount targets the job's subnets use (the one in each subnet's zone),
/// each at its address or, when unknown, anywhere in its subnet.
fn efs_endpoints(p: &Pipeline, e: &EfsFacts, facts: &Facts) -> Vec<Endpoint> {
    let zones: Vec<String> = p
        .vpc
        .subnets
        .iter()
        .filter_map(|s| facts.subnets.get(s).cloned().flatten())
        .map(|s| s.availability_zone)
        .collect();
    e.mount_targets
        .iter()
        .filter(|m| zones.contains(&m.availability_zone))
        .map(|m| {
            Endpoint::of(&m.addresses)
                .or_else(|| Endpoint::of(&m.subnet_cidrs))
                .unwrap_or_else(Endpoint::unknown)
        })
        .collect()
}

fn traffic(r: &mut Report, p: &Pipeline, facts: &Facts, file_system: &Peer, ports: &[(u16, u16)], service: &str) {
    let fs_groups = &file_system.groups;
    let job = Peer::new(
        p.vpc.security_groups.clone(),
        p.vpc
            .subnets
            .iter()
            .filter_map(|s| facts.subnets.get(s).cloned().flatten())
            .map(|s| {
                let cidrs: Vec<String> = std::iter::once(s.cidr).chain(s.ipv6_cidrs).collect();
                Endpoint::of(&cidrs).unwrap_or_else(Endpoint::unknown)
            })
            .collect(),
    );
    let job_groups = &job.groups;
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
    // Whether one of `groups` lets every port range through to/from `peer`.
    let lets_through = |groups: &[String], rules: fn(&SecurityGroupFacts) -> &[Permission], peer: &Peer| {
        groups.iter().any(|g| {
            facts.security_groups.get(g).and_then(Option::as_ref).is_some_and(|sg| {
                ports
                    .iter()
                    .all(|&(from, to)| allows(rules(sg), from, to, peer, &facts.prefix_lists))
            })
        })
    };
    // Inbound on the file system's side, from the job's groups or subnets.
    let inbound_ok = lets_through(fs_groups, |sg| sg.ingress.as_slice(), &job);
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
                job.describe()
            )
        },
        format!(
            "add inbound rules for {service} to {} with source {}",
            fs_groups.first().map(String::as_str).unwrap_or("the file system's group"),
            job.suggest("the job's group")
        ),
    );
    // Outbound on the job's side, to the file system's groups or addresses.
    let outbound_ok = lets_through(job_groups, |sg| sg.egress.as_slice(), file_system);
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
                file_system.describe()
            )
        },
        format!(
            "add outbound rules for {service} to {} with destination {}",
            job_groups.first().map(String::as_str).unwrap_or("the job's group"),
            file_system.suggest("the file system's group")
        ),
    );
}

/// Whether `rules` let TCP `from..=to` through to/from `peer`: one of them
/// names a group of the peer, or each of the peer's endpoints lies inside a
/// CIDR (IPv4 or IPv6) or prefix list entry of one of them.
fn allows(rules: &[Permission], from: u16, to: u16, peer: &Peer, prefix_lists: &BTreeMap<String, Option<Vec<String>>>) -> bool {
    let open: Vec<&Permission> = rules
        .iter()
        .filter(|rule| {
            let protocol_ok = matches!(rule.protocol.as_str(), "-1" | "tcp" | "6");
            let all_ports = rule.protocol == "-1" || rule.from_port.is_none();
            let ports_ok = all_ports || (rule.from_port.unwrap_or(0) <= i32::from(from) && rule.to_port.unwrap_or(65535) >= i32::from(to));
            protocol_ok && ports_ok
        })
        .collect();
    if open.iter().any(|rule| rule.groups.iter().any(|g| peer.groups.contains(g))) {
        return true;
    }
    let networks: Vec<IpNet> = open
        .iter()
        .flat_map(|rule| {
            let listed = rule
                .prefix_lists
                .iter()
                .filter_map(|id| prefix_lists.get(id).cloned().flatten())
                .flatten();
            rule.cidrs.iter().chain(&rule.ipv6_cidrs).cloned().chain(listed).collect::<Vec<_>>()
        })
        .filter_map(|c| parse_net(&c))
        .collect();
    peer.endpoints
        .iter()
        .all(|e| e.networks.iter().any(|n| networks.iter().any(|outer| outer.contains(n))))
}

/// An IPv4 or IPv6 CIDR, or a single address as its /32 or /128.
fn parse_net(text: &str) -> Option<IpNet> {
    let text = text.trim();
    text.parse::<IpNet>().ok().or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from))
}

#[cfg(test)]
mod tests;
