"""EFS mount targets: the security groups and network interface the real
service gives them, which moto 5.2.1 leaves out or gets wrong."""

from typing import Any

import moto.efs.urls
from moto.efs.models import EFSBackend, MountTarget, efs_backends

from . import ec2
from .common import AwsJsonError, swap_backend_class, url_module

MAX_SECURITY_GROUPS = 5


def efs_error(code: str, message: str, status: int = 400) -> AwsJsonError:
    # EFS errors carry the code as ErrorCode as well (REST-JSON).
    return AwsJsonError(code, message, status, ErrorCode=code)


class EmulatedEFSBackend(EFSBackend):
    @property
    def _url_module(self) -> Any:
        return url_module(moto.efs.urls)

    def create_mount_target(
        self,
        file_system_id: str,
        subnet_id: str,
        ip_address: str | None = None,
        security_groups: list[str] | None = None,
    ) -> MountTarget:
        subnet = ec2.find_subnet(self.account_id, self.region_name, subnet_id)
        if subnet is not None and file_system_id in self.file_systems_by_id:
            security_groups = self._mount_target_groups(subnet.vpc_id, security_groups)
        mount_target = super().create_mount_target(file_system_id, subnet_id, ip_address, security_groups)
        eni = self.ec2_backend.get_network_interface(mount_target.network_interface_id)
        ec2.service_managed(eni, f"EFS mount target for {file_system_id} ({mount_target.mount_target_id})")
        return mount_target

    def _mount_target_groups(self, vpc_id: str, requested: list[str] | None) -> list[str]:
        if not requested:
            # AWS: the VPC's default security group (moto: none at all).
            default = ec2.default_group_id(self.account_id, self.region_name, vpc_id)
            return [default] if default else []
        # moto checks these after reserving the subnet's AZ for the mount
        # target, which then blocks that AZ; and it accepts groups of any VPC.
        if len(requested) > MAX_SECURITY_GROUPS:
            raise efs_error(
                "SecurityGroupLimitExceeded", "The maximum number of security groups per interface has been reached."
            )
        outside = ec2.groups_outside_vpc(self.account_id, self.region_name, requested, vpc_id)
        if outside:
            raise efs_error("SecurityGroupNotFound", f"Security group {outside[0]} does not exist in VPC {vpc_id}.")
        return list(requested)


def install() -> None:
    swap_backend_class(efs_backends, EmulatedEFSBackend)
