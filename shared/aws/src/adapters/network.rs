//! Read-only descriptions of a pipeline's file system, subnets and security
//! groups, turned into the facts that `retrain_core::preflight` checks.

use crate::error::{aws, Error};
use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::SubnetCidrBlockStateCode;
use aws_sdk_fsx::types::{Filter, FilterName};
use retrain_core::config::{FileSystemKind, Pipeline};
use retrain_core::preflight::{
    EfsFacts, Facts, FileSystemFacts, InterfaceFacts, LustreFacts, MountTargetFacts, Permission, SecurityGroupFacts, SubnetFacts,
};
use std::collections::BTreeMap;
use tracing::instrument;

#[derive(Clone, Debug)]
pub struct Network {
    fsx: aws_sdk_fsx::Client,
    efs: aws_sdk_efs::Client,
    ec2: aws_sdk_ec2::Client,
}

impl Network {
    pub fn new(fsx: aws_sdk_fsx::Client, efs: aws_sdk_efs::Client, ec2: aws_sdk_ec2::Client) -> Network {
        Network { fsx, efs, ec2 }
    }

    /// Describes everything preflight needs for `pipeline`.
    #[instrument(skip(self, pipeline), fields(pipeline = %pipeline.name, file_system_id = %pipeline.file_system.id))]
    pub async fn facts(&self, pipeline: &Pipeline) -> Result<Facts, Error> {
        // The training subnets first: the Lustre file system's own subnet is
        // usually one of them, and is then not described twice.
        let mut subnets = BTreeMap::new();
        for id in &pipeline.vpc.subnets {
            subnets.insert(id.clone(), self.subnet(id).await?);
        }
        let file_system = match pipeline.file_system.kind {
            FileSystemKind::FsxLustre => self.lustre(&pipeline.file_system.id, &subnets).await?,
            FileSystemKind::Efs => self.efs(&pipeline.file_system.id, &subnets).await?,
        };
        let job_groups = &pipeline.vpc.security_groups;
        let fs_groups: Vec<String> = match &file_system {
            FileSystemFacts::Lustre(l) => l.security_groups.clone(),
            FileSystemFacts::Efs(e) => e.mount_targets.iter().flat_map(|m| m.security_groups.iter().cloned()).collect(),
            FileSystemFacts::Missing => Vec::new(),
        };
        let mut groups: Vec<String> = job_groups.iter().chain(&fs_groups).cloned().collect();
        groups.sort();
        groups.dedup();
        let mut security_groups = BTreeMap::new();
        for id in groups {
            let found = self.security_group(&id).await?;
            security_groups.insert(id, found);
        }
        // The prefix lists of the rules preflight reads: the jobs' outbound
        // rules and the file system's inbound ones.
        let mut lists: Vec<String> = Vec::new();
        for (ids, outbound) in [(job_groups, true), (&fs_groups, false)] {
            for sg in ids.iter().filter_map(|id| security_groups.get(id).and_then(Option::as_ref)) {
                let rules = if outbound { &sg.egress } else { &sg.ingress };
                lists.extend(rules.iter().flat_map(|r| r.prefix_lists.iter().cloned()));
            }
        }
        lists.sort();
        lists.dedup();
        let mut prefix_lists = BTreeMap::new();
        for id in lists {
            let entries = self.prefix_list(&id).await?;
            prefix_lists.insert(id, entries);
        }
        Ok(Facts {
            file_system,
            subnets,
            security_groups,
            prefix_lists,
        })
    }

    async fn lustre(&self, id: &str, known_subnets: &BTreeMap<String, Option<SubnetFacts>>) -> Result<FileSystemFacts, Error> {
        let described = self.fsx.describe_file_systems().file_system_ids(id).send().await;
        let out = match described {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_file_system_not_found()) => return Ok(FileSystemFacts::Missing),
            Err(e) => return Err(aws("fsx:DescribeFileSystems", format!("file system {id}"), e)),
        };
        let Some(fs) = out.file_systems().first() else {
            return Ok(FileSystemFacts::Missing);
        };
        let lustre = fs.lustre_configuration();
        let mut repositories: Vec<String> = lustre
            .and_then(|l| l.data_repository_configuration())
            .and_then(|d| d.import_path())
            .map(str::to_owned)
            .into_iter()
            .collect();
        let associations = self
            .fsx
            .describe_data_repository_associations()
            .filters(Filter::builder().name(FilterName::FileSystemId).values(id).build())
            .send()
            .await
            .map_err(|e| aws("fsx:DescribeDataRepositoryAssociations", format!("file system {id}"), e))?;
        repositories.extend(
            associations
                .associations()
                .iter()
                .filter_map(|a| a.data_repository_path().map(str::to_owned)),
        );
        let subnet = match fs.subnet_ids().first() {
            Some(subnet) => self.known_subnet(subnet, known_subnets).await?,
            None => None,
        };
        let mut security_groups = Vec::new();
        let mut interfaces = Vec::new();
        if !fs.network_interface_ids().is_empty() {
            let enis = self
                .ec2
                .describe_network_interfaces()
                .set_network_interface_ids(Some(fs.network_interface_ids().to_vec()))
                .send()
                .await
                .map_err(|e| aws("ec2:DescribeNetworkInterfaces", format!("network interfaces of {id}"), e))?;
            for eni in enis.network_interfaces() {
                security_groups.extend(eni.groups().iter().filter_map(|g| g.group_id().map(str::to_owned)));
                let mut addresses: Vec<String> = eni
                    .private_ip_addresses()
                    .iter()
                    .filter_map(|a| a.private_ip_address().map(str::to_owned))
                    .collect();
                if addresses.is_empty() {
                    addresses.extend(eni.private_ip_address().map(str::to_owned));
                }
                addresses.extend(eni.ipv6_addresses().iter().filter_map(|a| a.ipv6_address().map(str::to_owned)));
                interfaces.push(InterfaceFacts {
                    id: eni.network_interface_id().unwrap_or_default().to_owned(),
                    addresses,
                });
            }
            security_groups.sort();
            security_groups.dedup();
        }
        Ok(FileSystemFacts::Lustre(LustreFacts {
            file_system_type: fs.file_system_type().map(|t| t.as_str().to_owned()).unwrap_or_default(),
            lifecycle: fs.lifecycle().map(|l| l.as_str().to_owned()).unwrap_or_default(),
            mount_name: lustre.and_then(|l| l.mount_name()).map(str::to_owned),
            vpc_id: fs.vpc_id().map(str::to_owned),
            availability_zone: subnet.as_ref().map(|s| s.availability_zone.clone()),
            data_repository_paths: repositories,
            security_groups,
            interfaces,
            subnet_cidrs: subnet.map(cidrs).unwrap_or_default(),
        }))
    }

    async fn efs(&self, id: &str, known_subnets: &BTreeMap<String, Option<SubnetFacts>>) -> Result<FileSystemFacts, Error> {
        let described = self.efs.describe_file_systems().file_system_id(id).send().await;
        let out = match described {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_file_system_not_found()) => return Ok(FileSystemFacts::Missing),
            Err(e) => return Err(aws("elasticfilesystem:DescribeFileSystems", format!("file system {id}"), e)),
        };
        let Some(fs) = out.file_systems().first() else {
            return Ok(FileSystemFacts::Missing);
        };
        let targets = self
            .efs
            .describe_mount_targets()
            .file_system_id(id)
            .send()
            .await
            .map_err(|e| aws("elasticfilesystem:DescribeMountTargets", format!("file system {id}"), e))?;
        let mut mount_targets = Vec::new();
        for t in targets.mount_targets() {
            let groups = self
                .efs
                .describe_mount_target_security_groups()
                .mount_target_id(t.mount_target_id())
                .send()
                .await
                .map_err(|e| {
                    aws(
                        "elasticfilesystem:DescribeMountTargetSecurityGroups",
                        format!("mount target {}", t.mount_target_id()),
                        e,
                    )
                })?;
            let addresses: Vec<String> = [t.ip_address(), t.ipv6_address()]
                .into_iter()
                .flatten()
                .map(str::to_owned)
                .collect();
            // Its subnet only stands in for an address EFS did not report.
            let subnet_cidrs = if addresses.is_empty() {
                self.known_subnet(t.subnet_id(), known_subnets)
                    .await?
                    .map(cidrs)
                    .unwrap_or_default()
            } else {
                Vec::new()
            };
            mount_targets.push(MountTargetFacts {
                id: t.mount_target_id().to_owned(),
                subnet_id: t.subnet_id().to_owned(),
                availability_zone: t.availability_zone_name().unwrap_or_default().to_owned(),
                security_groups: groups.security_groups().to_vec(),
                addresses,
                subnet_cidrs,
            });
        }
        Ok(FileSystemFacts::Efs(EfsFacts {
            lifecycle: fs.life_cycle_state().as_str().to_owned(),
            mount_targets,
        }))
    }

    /// A subnet from `known` (the training subnets, already described), or described now.
    async fn known_subnet(&self, id: &str, known: &BTreeMap<String, Option<SubnetFacts>>) -> Result<Option<SubnetFacts>, Error> {
        match known.get(id) {
            Some(found) => Ok(found.clone()),
            None => self.subnet(id).await,
        }
    }

    async fn subnet(&self, id: &str) -> Result<Option<SubnetFacts>, Error> {
        match self.ec2.describe_subnets().subnet_ids(id).send().await {
            Ok(out) => Ok(out.subnets().first().map(|s| SubnetFacts {
                vpc_id: s.vpc_id().unwrap_or_default().to_owned(),
                availability_zone: s.availability_zone().unwrap_or_default().to_owned(),
                cidr: s.cidr_block().unwrap_or_default().to_owned(),
                ipv6_cidrs: s
                    .ipv6_cidr_block_association_set()
                    .iter()
                    .filter(|a| a.ipv6_cidr_block_state().and_then(|st| st.state()) == Some(&SubnetCidrBlockStateCode::Associated))
                    .filter_map(|a| a.ipv6_cidr_block().map(str::to_owned))
                    .collect(),
            })),
            Err(e) if e.code() == Some("InvalidSubnetID.NotFound") => Ok(None),
            Err(e) => Err(aws("ec2:DescribeSubnets", id.to_owned(), e)),
        }
    }

    async fn security_group(&self, id: &str) -> Result<Option<SecurityGroupFacts>, Error> {
        match self.ec2.describe_security_groups().group_ids(id).send().await {
            Ok(out) => Ok(out.security_groups().first().map(|g| SecurityGroupFacts {
                vpc_id: g.vpc_id().unwrap_or_default().to_owned(),
                ingress: g.ip_permissions().iter().map(permission).collect(),
                egress: g.ip_permissions_egress().iter().map(permission).collect(),
            })),
            Err(e) if e.code() == Some("InvalidGroup.NotFound") => Ok(None),
            Err(e) => Err(aws("ec2:DescribeSecurityGroups", id.to_owned(), e)),
        }
    }

    /// The CIDRs of a managed prefix list, or `None` when it does not exist.
    async fn prefix_list(&self, id: &str) -> Result<Option<Vec<String>>, Error> {
        let mut cidrs = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .ec2
                .get_managed_prefix_list_entries()
                .prefix_list_id(id)
                .set_next_token(token)
                .send()
                .await;
            let out = match page {
                Ok(out) => out,
                Err(e) if matches!(e.code(), Some("InvalidPrefixListID.NotFound" | "InvalidPrefixListId.NotFound")) => return Ok(None),
                Err(e) => return Err(aws("ec2:GetManagedPrefixListEntries", format!("prefix list {id}"), e)),
            };
            cidrs.extend(out.entries().iter().filter_map(|e| e.cidr().map(str::to_owned)));
            token = out.next_token().filter(|t| !t.is_empty()).map(str::to_owned);
            if token.is_none() {
                return Ok(Some(cidrs));
            }
        }
    }
}

/// A subnet's IPv4 and IPv6 CIDRs.
fn cidrs(s: SubnetFacts) -> Vec<String> {
    std::iter::once(s.cidr).filter(|c| !c.is_empty()).chain(s.ipv6_cidrs).collect()
}

fn permission(p: &aws_sdk_ec2::types::IpPermission) -> Permission {
    Permission {
        protocol: p.ip_protocol().unwrap_or("-1").to_owned(),
        from_port: p.from_port(),
        to_port: p.to_port(),
        cidrs: p.ip_ranges().iter().filter_map(|r| r.cidr_ip().map(str::to_owned)).collect(),
        ipv6_cidrs: p.ipv6_ranges().iter().filter_map(|r| r.cidr_ipv6().map(str::to_owned)).collect(),
        prefix_lists: p
            .prefix_list_ids()
            .iter()
            .filter_map(|l| l.prefix_list_id().map(str::to_owned))
            .collect(),
        groups: p
            .user_id_group_pairs()
            .iter()
            .filter_map(|g| g.group_id().map(str::to_owned))
            .collect(),
    }
}
