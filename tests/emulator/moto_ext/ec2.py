"""EC2: the default security group's self-referencing inbound rule, the state
of a subnet's IPv6 CIDR blocks, and the helpers FSx and EFS use to create
their network interfaces the way the real services do (in the caller's
subnet, with the caller's security groups)."""

from typing import Any

import moto.ec2.urls
from moto.ec2.exceptions import InvalidSubnetIdError
from moto.ec2.models import EC2Backend, ec2_backends
from moto.ec2.models.subnets import Subnet

from .common import swap_backend_class, url_module


class EmulatedEC2Backend(EC2Backend):
    @property
    def _url_module(self) -> Any:
        return url_module(moto.ec2.urls)

    def create_security_group(self, *args: Any, **kwargs: Any) -> Any:
        group = super().create_security_group(*args, **kwargs)
        if group.is_default:
            # AWS: a VPC's default group allows all inbound traffic from
            # itself (moto creates it with no inbound rule at all).
            self.authorize_security_group_ingress(
                group.id, "-1", None, None, [], source_groups=[{"GroupId": group.id}], vpc_id=group.vpc_id
            )
        return group


def subnet_ipv6_cidr_blocks(subnet: Subnet) -> list[dict[str, Any]]:
    """A subnet's `Ipv6CidrBlockAssociationSet`, with `Ipv6CidrBlockState.State`
    a state code such as `associated` (moto 5.2.1 puts the whole state
    structure's text there, which no SDK can read)."""
    return [
        {
            "ipv6CidrBlock": association["ipv6CidrBlock"],
            "associationId": association["associationId"],
            "ipv6CidrBlockState": {"state": association["ipv6CidrBlockState"]["State"]},
        }
        for association in subnet.ipv6_cidr_block_associations.values()
        if association["ipv6CidrBlockState"]["State"] == "associated"
    ]


def ec2_backend(account_id: str, region_name: str) -> EC2Backend:
    return ec2_backends[account_id][region_name]


def find_subnet(account_id: str, region_name: str, subnet_id: str | None) -> Any:
    """The moto EC2 subnet, or None when moto's EC2 does not know it."""
    if not subnet_id:
        return None
    try:
        return ec2_backend(account_id, region_name).get_subnet(subnet_id)
    except InvalidSubnetIdError:
        return None


def groups_outside_vpc(account_id: str, region_name: str, group_ids: list[str], vpc_id: str) -> list[str]:
    """The ids in `group_ids` that are not security groups of `vpc_id`."""
    backend = ec2_backend(account_id, region_name)
    groups = {group_id: backend.get_security_group_from_id(group_id) for group_id in group_ids}
    return [group_id for group_id, group in groups.items() if group is None or group.vpc_id != vpc_id]


def default_group_id(account_id: str, region_name: str, vpc_id: str) -> str | None:
    group = ec2_backend(account_id, region_name).get_default_security_group(vpc_id)
    return group.id if group else None


def service_managed(eni: Any, description: str) -> Any:
    """Marks a network interface as created by an AWS service for its resource."""
    eni.description = description
    eni.requester_managed = True
    return eni


def install() -> None:
    swap_backend_class(ec2_backends, EmulatedEC2Backend)
    Subnet.ipv6_cidr_block_association_set = property(subnet_ipv6_cidr_blocks)  # type: ignore[assignment]
