"""FSx for Lustre: the file-system fields moto 5.2.1 leaves out (network
interfaces included), and data repository tasks and associations, which moto
does not implement at all."""

import json
import re
import secrets
import string
import threading
import time
from typing import Any

import moto.fsx.urls
from moto.ec2.exceptions import InvalidNetworkInterfaceIdError
from moto.fsx.models import FileSystem, FSxBackend, fsx_backends
from moto.fsx.responses import FSxResponse

from . import ec2
from .common import CLOCK, AwsJsonError, Conflict, NotFound, on_reset, random_hex, swap_backend_class, url_module

# A CANCELING task is still active: it blocks new tasks until it ends CANCELED.
ACTIVE_LIFECYCLES = ("PENDING", "EXECUTING", "CANCELING")
FINAL_LIFECYCLES = ("SUCCEEDED", "FAILED", "CANCELED")
# What the control API can move a task to: an end, or CANCELING as a user's cancel does.
CONTROL_LIFECYCLES = (*FINAL_LIFECYCLES, "CANCELING")
TASK_TYPES = (
    "EXPORT_TO_REPOSITORY",
    "IMPORT_METADATA_FROM_REPOSITORY",
    "RELEASE_DATA_FROM_FILESYSTEM",
    "AUTO_RELEASE_DATA",
)
# FSx documents the token as 1-63 characters of this set.
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,63}$")
S3_URI_PATTERN = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(/.*)?$")
MAX_PATHS = 100
MAX_PATH_LENGTH = 4096
# Fields of CreateFileSystemLustreConfiguration that the service reports
# under LustreConfiguration.DataRepositoryConfiguration instead.
REPOSITORY_FIELDS = ("ImportPath", "ExportPath", "ImportedFileChunkSize", "AutoImportPolicy")
# Network interfaces a new Lustre file system gets (the service creates
# several; FileSystem.NetworkInterfaceIds documents "more than one").
LUSTRE_ENI_COUNT = 2
# Attributes compared for ClientRequestToken idempotency, with their defaults.
TASK_PARAMETERS = {
    "Type": None,
    "Paths": [],
    "Report": None,
    "Tags": [],
    "CapacityToRelease": None,
    "ReleaseConfiguration": None,
}


class TaskDuration:
    """How long new import tasks run on the emulator's clock (control API);
    None: until the control API ends them. Emulator-wide, like the quotas."""

    def __init__(self) -> None:
        self.seconds: float | None = None
        on_reset(self.clear)

    def clear(self) -> None:
        self.seconds = None


TASK_DURATION = TaskDuration()


def set_task_duration(seconds: float | None) -> float | None:
    TASK_DURATION.seconds = seconds
    return seconds


class FsxNotFound(AwsJsonError, NotFound):
    pass


def bad_request(message: str) -> AwsJsonError:
    return AwsJsonError("BadRequest", message)


def file_system_not_found(file_system_id: str) -> AwsJsonError:
    return FsxNotFound("FileSystemNotFound", f"File system '{file_system_id}' does not exist.")


def task_not_found(task_id: str) -> AwsJsonError:
    return FsxNotFound("DataRepositoryTaskNotFound", f"Data repository task '{task_id}' does not exist.")


def association_not_found(association_id: str) -> AwsJsonError:
    return FsxNotFound(
        "DataRepositoryAssociationNotFound", f"Data repository association '{association_id}' does not exist."
    )


def mount_name(deployment_type: str) -> str:
    # Real FSx: always "fsx" for SCRATCH_1, else 8 random lowercase alphanumerics.
    if deployment_type == "SCRATCH_1":
        return "fsx"
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(8))


def default_export_path(import_path: str, created_at: float) -> str:
    # Documented default: s3://import-bucket/FSxLustre[creation-timestamp].
    bucket = S3_URI_PATTERN.match(import_path)
    root = f"s3://{bucket.group(1)}" if bucket else import_path.rstrip("/")
    return f"{root}/FSxLustre{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(created_at))}"


def lustre_description(requested: dict[str, Any] | None, created_at: float) -> dict[str, Any]:
    """LustreConfiguration as DescribeFileSystems reports it for a create request."""
    config = dict(requested or {})
    repository = {key: config.pop(key) for key in REPOSITORY_FIELDS if key in config}
    config.setdefault("DeploymentType", "SCRATCH_1")
    config["MountName"] = mount_name(config["DeploymentType"])
    if "ImportPath" in repository:
        import_path = repository["ImportPath"]
        config["DataRepositoryConfiguration"] = {
            "Lifecycle": "AVAILABLE",
            "ImportPath": import_path,
            "ExportPath": repository.get("ExportPath") or default_export_path(import_path, created_at),
            "ImportedFileChunkSize": repository.get("ImportedFileChunkSize", 1024),
            "AutoImportPolicy": repository.get("AutoImportPolicy", "NONE"),
        }
    return config


class EmulatedFileSystem(FileSystem):
    """moto's FileSystem plus Lifecycle, VpcId, CreationTime, OwnerId and the
    Lustre fields the real service fills in."""

    def __init__(self, vpc_id: str, type_version: str | None, **kwargs: Any):
        super().__init__(**kwargs)
        self.lifecycle = "AVAILABLE"
        self.vpc_id = vpc_id
        self.owner_id = kwargs["account_id"]
        self.creation_time = time.time()
        self.type_version = type_version
        if self.file_system_type == "LUSTRE":
            self.lustre_configuration = lustre_description(self.lustre_configuration, self.creation_time)
        # Set by the backend when moto's EC2 knows the subnet.
        self.network_interface_ids: list[str] = []
        # Top-level attributes set through the control API (preflight tests).
        self.overrides: dict[str, Any] = {}

    @property
    def import_path(self) -> str | None:
        repository = (self.lustre_configuration or {}).get("DataRepositoryConfiguration", {})
        return repository.get("ImportPath")

    @property
    def deployment_type(self) -> str | None:
        return (self.lustre_configuration or {}).get("DeploymentType")

    def to_dict(self) -> dict[str, Any]:
        description = super().to_dict()
        # Not a member of the FileSystem shape: the SDKs drop it, and the
        # groups are only visible on the network interfaces.
        description.pop("SecurityGroupIds", None)
        description.update(
            Lifecycle=self.lifecycle,
            VpcId=self.vpc_id,
            OwnerId=self.owner_id,
            CreationTime=self.creation_time,
        )
        if self.network_interface_ids:
            description["NetworkInterfaceIds"] = list(self.network_interface_ids)
        if self.type_version:
            description["FileSystemTypeVersion"] = self.type_version
        description.update(self.overrides)
        return description


def s3_path_inside(path: str, repository: str) -> bool:
    """Whether `path` is `repository` or below it. The repository's prefix is
    a folder: s3://b/data covers s3://b/data/x, not s3://b/database."""
    path, repository = path.rstrip("/"), repository.rstrip("/")
    return path == repository or path.startswith(repository + "/")


def import_path_error(path: str, repositories: list[str]) -> str | None:
    """Why FSx would fail an import of `path` from the file system's linked
    data repositories (its ImportPath, or its associations' paths), or None
    if it is importable."""
    if not S3_URI_PATTERN.match(path):
        return f"The path {path} is not a valid Amazon S3 URI (expected s3://bucket[/prefix])."
    if not repositories:
        return f"The path {path} cannot be imported: no data repository is linked to the file system."
    if not any(s3_path_inside(path, repository) for repository in repositories):
        linked = ", ".join(repositories)
        return f"The path {path} is not within the data repository {linked} linked to the file system."
    return None


def validate_report(report: Any) -> None:
    if not isinstance(report, dict) or not isinstance(report.get("Enabled"), bool):
        raise bad_request("Report is required and must contain Enabled.")
    if not report["Enabled"]:
        return
    if not report.get("Path"):
        raise bad_request("Report.Path is required when the completion report is enabled.")
    if report.get("Format") != "REPORT_CSV_20191124":
        raise bad_request("Report.Format must be REPORT_CSV_20191124 when the completion report is enabled.")
    if report.get("Scope") != "FAILED_FILES_ONLY":
        raise bad_request("Report.Scope must be FAILED_FILES_ONLY when the completion report is enabled.")


def validate_task_request(request: dict[str, Any]) -> None:
    if request.get("Type") not in TASK_TYPES:
        raise bad_request(f"Type must be one of {', '.join(TASK_TYPES)}.")
    validate_report(request.get("Report"))
    paths = request.get("Paths") or []
    if len(paths) > MAX_PATHS:
        raise bad_request(f"Paths can contain at most {MAX_PATHS} entries.")
    if any(len(path) > MAX_PATH_LENGTH for path in paths):
        raise bad_request(f"Each path can be at most {MAX_PATH_LENGTH} characters long.")
    token = request.get("ClientRequestToken")
    if token is not None and not TOKEN_PATTERN.match(token):
        raise bad_request("ClientRequestToken must be 1-63 characters of [A-Za-z0-9_.-].")


class DataRepositoryTask:
    """One data repository task. It is PENDING when created and advances on
    the first DescribeDataRepositoryTasks that returns it: to EXECUTING, or to
    FAILED when its paths cannot be imported (the real service also accepts
    such a task and fails it afterwards). The control API ends an EXECUTING
    task, or a task created while a task duration is set ends SUCCEEDED that
    long after its creation on the emulator's clock, whoever looks.
    CancelDataRepositoryTask makes it CANCELING, still active, until the
    control API ends it CANCELED, as the service takes a while to stop a
    task. Times are the emulator's clock (common.CLOCK)."""

    def __init__(self, file_system: EmulatedFileSystem, request: dict[str, Any], repositories: list[str]):
        self.task_id = f"task-{random_hex(17)}"
        self.file_system_id = file_system.file_system_id
        arn_prefix = file_system.resource_arn.rsplit(":", 1)[0]  # arn:aws:fsx:REGION:ACCOUNT
        self.resource_arn = f"{arn_prefix}:task/{self.task_id}"
        self.parameters = {key: request.get(key, default) for key, default in TASK_PARAMETERS.items()}
        self.lifecycle = "PENDING"
        self.creation_time = CLOCK.now()
        # A timed task's work is done at this moment (an import's own pace).
        self.ends_at = None if TASK_DURATION.seconds is None else self.creation_time + TASK_DURATION.seconds
        self.start_time: float | None = None
        self.end_time: float | None = None
        self.failure_message: str | None = None
        self.counts = {"TotalCount": 0, "SucceededCount": 0, "FailedCount": 0}
        self.last_updated_time = self.creation_time
        self.doomed_by = self._path_error(repositories)

    def _path_error(self, repositories: list[str]) -> str | None:
        if self.parameters["Type"] != "IMPORT_METADATA_FROM_REPOSITORY":
            return None
        errors = (import_path_error(path, repositories) for path in self.parameters["Paths"])
        return next((error for error in errors if error), None)

    @property
    def active(self) -> bool:
        return self.lifecycle in ACTIVE_LIFECYCLES

    def same_request(self, request: dict[str, Any]) -> bool:
        return all(request.get(key, default) == self.parameters[key] for key, default in TASK_PARAMETERS.items())

    def advance(self) -> None:
        if self.lifecycle != "PENDING":
            return
        if self.doomed_by:
            self.finish("FAILED", self.doomed_by)
        else:
            self.start_time = self.last_updated_time = CLOCK.now()
            self.lifecycle = "EXECUTING"
        self.run_out()

    def run_out(self) -> None:
        """Ends a timed task whose time has come, at the moment it came."""
        if self.ends_at is None or self.lifecycle not in ("PENDING", "EXECUTING") or CLOCK.now() < self.ends_at:
            return
        if self.doomed_by:
            self.finish("FAILED", self.doomed_by)
            return
        self.start_time = min(self.start_time or self.creation_time, self.ends_at)
        self.finish("SUCCEEDED", at=self.ends_at)

    def cancel(self) -> None:
        self.last_updated_time = CLOCK.now()
        self.lifecycle = "CANCELING"

    def finish(
        self, lifecycle: str, message: str | None = None, counts: dict[str, int] | None = None, at: float | None = None
    ) -> None:
        now = CLOCK.now() if at is None else at
        self.start_time = self.start_time or now
        self.end_time = self.last_updated_time = now
        self.lifecycle = lifecycle
        if lifecycle == "FAILED":
            self.failure_message = message or "The data repository task failed."
        self.counts.update(counts or {})

    def to_dict(self) -> dict[str, Any]:
        description = {
            "TaskId": self.task_id,
            "Lifecycle": self.lifecycle,
            "Type": self.parameters["Type"],
            "CreationTime": self.creation_time,
            "StartTime": self.start_time,
            "EndTime": self.end_time,
            "ResourceARN": self.resource_arn,
            "Tags": self.parameters["Tags"],
            "FileSystemId": self.file_system_id,
            "Paths": self.parameters["Paths"],
            "FailureDetails": {"Message": self.failure_message} if self.failure_message else None,
            "Status": {**self.counts, "LastUpdatedTime": self.last_updated_time},
            "Report": self.parameters["Report"],
            "CapacityToRelease": self.parameters["CapacityToRelease"],
            "ReleaseConfiguration": self.parameters["ReleaseConfiguration"],
        }
        return {key: value for key, value in description.items() if value is not None}


class DataRepositoryAssociation:
    """A data repository association, AVAILABLE as soon as it is created."""

    def __init__(self, file_system: EmulatedFileSystem, request: dict[str, Any]):
        self.association_id = f"dra-{random_hex(17)}"
        self.file_system_id = file_system.file_system_id
        arn_prefix = file_system.resource_arn.rsplit(":", 1)[0]  # arn:aws:fsx:REGION:ACCOUNT
        self.resource_arn = f"{arn_prefix}:association/{self.file_system_id}/{self.association_id}"
        self.request = request
        self.file_system_path = request.get("FileSystemPath") or "/"
        self.creation_time = CLOCK.now()

    def to_dict(self) -> dict[str, Any]:
        description = {
            "AssociationId": self.association_id,
            "ResourceARN": self.resource_arn,
            "FileSystemId": self.file_system_id,
            "Lifecycle": "AVAILABLE",
            "FileSystemPath": self.file_system_path,
            "DataRepositoryPath": self.request["DataRepositoryPath"],
            "BatchImportMetaDataOnCreate": bool(self.request.get("BatchImportMetaDataOnCreate", False)),
            "ImportedFileChunkSize": self.request.get("ImportedFileChunkSize", 1024),
            "S3": self.request.get("S3"),
            "Tags": self.request.get("Tags") or [],
            "CreationTime": self.creation_time,
        }
        return {key: value for key, value in description.items() if value is not None}


def paths_overlap(first: str, second: str) -> bool:
    first, second = first.rstrip("/") + "/", second.rstrip("/") + "/"
    return first.startswith(second) or second.startswith(first)


def validate_association_request(file_system: EmulatedFileSystem, request: dict[str, Any]) -> None:
    if file_system.file_system_type != "LUSTRE":
        raise bad_request("Data repository associations are supported on FSx for Lustre file systems only.")
    if file_system.import_path:
        raise bad_request(
            f"File system {file_system.file_system_id} has a data repository linked through ImportPath; "
            "it cannot have data repository associations."
        )
    if file_system.deployment_type == "SCRATCH_1":
        raise bad_request("Data repository associations are not supported on SCRATCH_1 file systems.")
    if not S3_URI_PATTERN.match(request.get("DataRepositoryPath") or ""):
        raise bad_request("DataRepositoryPath must be an Amazon S3 URI (s3://bucket[/prefix]).")
    path = request.get("FileSystemPath") or "/"
    if not path.startswith("/"):
        raise bad_request("FileSystemPath must start with /.")


def association_matches(association: DataRepositoryAssociation, filters: list[dict[str, Any]]) -> bool:
    attribute = {
        "file-system-id": association.file_system_id,
        "data-repository-type": "S3",
        "file-cache-id": None,
    }
    return all(attribute.get(f.get("Name")) in (f.get("Values") or []) for f in filters)


def matches_filters(task: DataRepositoryTask, filters: list[dict[str, Any]]) -> bool:
    attribute = {
        "file-system-id": task.file_system_id,
        "task-lifecycle": task.lifecycle,
        # Tasks here never belong to an association or a cache.
        "data-repository-association-id": None,
        "file-cache-id": None,
    }
    return all(attribute.get(f.get("Name")) in (f.get("Values") or []) for f in filters)


def page(items: list[Any], max_results: int | None, next_token: str | None) -> tuple[list[Any], str | None]:
    if next_token is not None and not next_token.isdigit():
        raise bad_request("NextToken is invalid.")
    start = int(next_token or 0)
    end = start + max_results if max_results else len(items)
    return items[start:end], (str(end) if end < len(items) else None)


class EmulatedFSxBackend(FSxBackend):
    def __init__(self, region_name: str, account_id: str):
        super().__init__(region_name, account_id)
        self.tasks: dict[str, DataRepositoryTask] = {}
        self.associations: dict[str, DataRepositoryAssociation] = {}
        self.tokens: dict[tuple[str, str], DataRepositoryTask] = {}
        # Highest number of PENDING/EXECUTING tasks seen at once, per file system.
        self.max_active: dict[str, int] = {}
        # Requests run on concurrent server threads; the one-active-task rule
        # needs check-and-insert to be atomic.
        self.lock = threading.RLock()

    @property
    def _url_module(self) -> Any:
        return url_module(moto.fsx.urls, FSxResponse, RetrainFSxResponse)

    def create_file_system(self, **kwargs: Any) -> FileSystem:  # type: ignore[override]
        kwargs.pop("client_request_token", None)
        type_version = kwargs.pop("file_system_type_version", None)
        subnet = ec2.find_subnet(self.account_id, self.region_name, (kwargs.get("subnet_ids") or [None])[0])
        if subnet is not None:
            self._check_security_groups(kwargs.get("security_group_ids") or [], subnet.vpc_id)
        file_system = EmulatedFileSystem(
            vpc_id=subnet.vpc_id if subnet is not None else f"vpc-{random_hex(17)}",
            type_version=type_version,
            account_id=self.account_id,
            region_name=self.region_name,
            backend=self,
            **kwargs,
        )
        if subnet is not None and file_system.file_system_type == "LUSTRE":
            file_system.network_interface_ids = self._create_interfaces(file_system, subnet)
        self.file_systems[file_system.file_system_id] = file_system
        return file_system

    def _check_security_groups(self, group_ids: list[str], vpc_id: str) -> None:
        # moto's EC2 would invent a group for an unknown id; FSx rejects it.
        outside = ec2.groups_outside_vpc(self.account_id, self.region_name, group_ids, vpc_id)
        if outside:
            raise AwsJsonError(
                "InvalidNetworkSettings",
                f"The security group {outside[0]} does not exist in VPC {vpc_id}.",
                InvalidSecurityGroupId=outside[0],
            )

    def _create_interfaces(self, file_system: EmulatedFileSystem, subnet: Any) -> list[str]:
        """The file system's network interfaces, in its first subnet, with its
        security groups (none given: the VPC's default group)."""
        backend = ec2.ec2_backend(self.account_id, self.region_name)
        description = f"ENI for Lustre file system {file_system.file_system_id}"
        interfaces = [
            # Reserving the address like EFS does keeps it from being handed out twice.
            backend.create_network_interface(
                subnet, [subnet.get_available_subnet_ip(file_system)], group_ids=file_system.security_group_ids or None
            )
            for _ in range(LUSTRE_ENI_COUNT)
        ]
        return [ec2.service_managed(eni, description).id for eni in interfaces]

    def delete_file_system(self, file_system_id: str, **kwargs: Any) -> Any:  # type: ignore[override]
        file_system = self.get_file_system(file_system_id)
        backend = ec2.ec2_backend(self.account_id, self.region_name)
        for eni_id in file_system.network_interface_ids:
            try:
                eni = backend.get_network_interface(eni_id)
            except InvalidNetworkInterfaceIdError:
                continue  # deleted through EC2 already
            eni.subnet.del_subnet_ip(eni.private_ip_address)
            backend.delete_network_interface(eni_id)
        for association_id in [a for a, dra in self.associations.items() if dra.file_system_id == file_system_id]:
            del self.associations[association_id]
        return super().delete_file_system(file_system_id=file_system_id, **kwargs)

    def describe_file_systems(self, file_system_ids: list[str], **kwargs: Any) -> Any:  # type: ignore[override]
        # moto silently drops unknown ids; FSx answers FileSystemNotFound.
        for file_system_id in file_system_ids or []:
            self.get_file_system(file_system_id)
        return super().describe_file_systems(file_system_ids=file_system_ids, **kwargs)

    def get_file_system(self, file_system_id: str) -> EmulatedFileSystem:
        if file_system_id not in self.file_systems:
            raise file_system_not_found(file_system_id)
        return self.file_systems[file_system_id]  # type: ignore[return-value]

    def create_data_repository_association(self, request: dict[str, Any]) -> DataRepositoryAssociation:
        with self.lock:
            file_system = self.get_file_system(request.get("FileSystemId", ""))
            validate_association_request(file_system, request)
            path = request.get("FileSystemPath") or "/"
            for other in self.associations.values():
                if other.file_system_id == file_system.file_system_id and paths_overlap(path, other.file_system_path):
                    raise bad_request(
                        f"FileSystemPath {path} overlaps the path {other.file_system_path} "
                        f"of data repository association {other.association_id}."
                    )
            association = DataRepositoryAssociation(file_system, request)
            self.associations[association.association_id] = association
            return association

    def describe_data_repository_associations(
        self,
        association_ids: list[str] | None,
        filters: list[dict[str, Any]] | None,
        max_results: int | None,
        next_token: str | None,
    ) -> tuple[list[DataRepositoryAssociation], str | None]:
        for association_id in association_ids or []:
            if association_id not in self.associations:
                raise association_not_found(association_id)
        associations = (
            [self.associations[a] for a in association_ids] if association_ids else list(self.associations.values())
        )
        associations = [a for a in associations if association_matches(a, filters or [])]
        return page(associations, max_results, next_token)

    def run_out_tasks(self) -> None:
        """Ends the timed tasks whose time has come: before anything reads the
        task list, as the service ends a task whether or not anyone looks."""
        with self.lock:
            for task in self.tasks.values():
                task.run_out()

    def create_data_repository_task(self, request: dict[str, Any]) -> DataRepositoryTask:
        with self.lock:
            self.run_out_tasks()
            file_system = self.get_file_system(request.get("FileSystemId", ""))
            validate_task_request(request)
            original = self._idempotent_replay(request)
            if original:
                return original
            self._check_can_start(file_system)
            task = DataRepositoryTask(file_system, request, self.linked_repositories(file_system))
            self.tasks[task.task_id] = task
            if request.get("ClientRequestToken"):
                self.tokens[(task.file_system_id, request["ClientRequestToken"])] = task
            self._observe(task.file_system_id)
            return task

    def _idempotent_replay(self, request: dict[str, Any]) -> DataRepositoryTask | None:
        token = request.get("ClientRequestToken")
        original = self.tokens.get((request["FileSystemId"], token)) if token else None
        if original and not original.same_request(request):
            raise AwsJsonError(
                "IncompatibleParameterError",
                f"The client request token {token} was already used with different parameters.",
                Parameter="ClientRequestToken",
            )
        return original

    def _check_can_start(self, file_system: EmulatedFileSystem) -> None:
        lifecycle = file_system.to_dict().get("Lifecycle")
        if lifecycle not in ("AVAILABLE", "UPDATING"):
            raise bad_request(f"File system {file_system.file_system_id} is in lifecycle {lifecycle}.")
        active = self.active_tasks(file_system.file_system_id)
        if active:
            raise AwsJsonError(
                "DataRepositoryTaskExecuting",
                f"Data repository task {active[0].task_id} is already {active[0].lifecycle} "
                f"on file system {file_system.file_system_id}.",
            )

    def linked_repositories(self, file_system: EmulatedFileSystem) -> list[str]:
        """The S3 paths imports may come from: the legacy ImportPath, else
        the paths of the file system's data repository associations."""
        if file_system.import_path:
            return [file_system.import_path]
        return [
            association.request["DataRepositoryPath"]
            for association in self.associations.values()
            if association.file_system_id == file_system.file_system_id
        ]

    def active_tasks(self, file_system_id: str) -> list[DataRepositoryTask]:
        return [t for t in self.tasks.values() if t.file_system_id == file_system_id and t.active]

    def _observe(self, file_system_id: str) -> None:
        count = len(self.active_tasks(file_system_id))
        self.max_active[file_system_id] = max(self.max_active.get(file_system_id, 0), count)

    def describe_data_repository_tasks(
        self,
        task_ids: list[str] | None,
        filters: list[dict[str, Any]] | None,
        max_results: int | None,
        next_token: str | None,
    ) -> tuple[list[DataRepositoryTask], str | None]:
        with self.lock:
            self.run_out_tasks()
            for task_id in task_ids or []:
                self.get_task(task_id)
            tasks = [self.tasks[t] for t in task_ids] if task_ids else list(self.tasks.values())
            tasks = [t for t in tasks if matches_filters(t, filters or [])]
            selected, token = page(tasks, max_results, next_token)
            for task in selected:
                task.advance()
            return selected, token

    def get_task(self, task_id: str) -> DataRepositoryTask:
        if task_id not in self.tasks:
            raise task_not_found(task_id)
        return self.tasks[task_id]

    def cancel_data_repository_task(self, task_id: str) -> DataRepositoryTask:
        """Makes the task CANCELING (cancelling a CANCELING task again changes nothing)."""
        with self.lock:
            self.run_out_tasks()
            task = self._active_task(task_id)
            if task.lifecycle != "CANCELING":
                task.cancel()
            return task

    def end_task(
        self, task_id: str, lifecycle: str, message: str | None = None, counts: dict[str, int] | None = None
    ) -> DataRepositoryTask:
        """Ends a task as the service would once its work is done (or its
        cancellation), or makes it CANCELING as a user's cancel would."""
        with self.lock:
            self.run_out_tasks()
            task = self._active_task(task_id)
            if task.lifecycle == "CANCELING" and lifecycle != "CANCELED":
                raise Conflict(f"Data repository task {task_id} is CANCELING; it can only end CANCELED.")
            if lifecycle == "CANCELING":
                task.cancel()
            else:
                task.finish(lifecycle, message, counts)
            return task

    def _active_task(self, task_id: str) -> DataRepositoryTask:
        task = self.get_task(task_id)
        if not task.active:
            raise AwsJsonError("DataRepositoryTaskEnded", f"Data repository task {task_id} has already ended.")
        return task


class RetrainFSxResponse(FSxResponse):
    def create_data_repository_association(self) -> str:
        association = self.fsx_backend.create_data_repository_association(json.loads(self.body or "{}"))
        return json.dumps({"Association": association.to_dict()})

    def describe_data_repository_associations(self) -> str:
        params = json.loads(self.body or "{}")
        associations, next_token = self.fsx_backend.describe_data_repository_associations(
            association_ids=params.get("AssociationIds"),
            filters=params.get("Filters"),
            max_results=params.get("MaxResults"),
            next_token=params.get("NextToken"),
        )
        response: dict[str, Any] = {"Associations": [association.to_dict() for association in associations]}
        if next_token:
            response["NextToken"] = next_token
        return json.dumps(response)

    def create_data_repository_task(self) -> str:
        task = self.fsx_backend.create_data_repository_task(json.loads(self.body or "{}"))
        return json.dumps({"DataRepositoryTask": task.to_dict()})

    def describe_data_repository_tasks(self) -> str:
        params = json.loads(self.body or "{}")
        tasks, next_token = self.fsx_backend.describe_data_repository_tasks(
            task_ids=params.get("TaskIds"),
            filters=params.get("Filters"),
            max_results=params.get("MaxResults"),
            next_token=params.get("NextToken"),
        )
        response: dict[str, Any] = {"DataRepositoryTasks": [task.to_dict() for task in tasks]}
        if next_token:
            response["NextToken"] = next_token
        return json.dumps(response)

    def cancel_data_repository_task(self) -> str:
        task = self.fsx_backend.cancel_data_repository_task(json.loads(self.body or "{}").get("TaskId", ""))
        return json.dumps({"TaskId": task.task_id, "Lifecycle": task.lifecycle})


def install() -> None:
    swap_backend_class(fsx_backends, EmulatedFSxBackend)
