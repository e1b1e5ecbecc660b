"""Tests of the emulator itself, through boto3 and the control API, against
the server started exactly as retrain's tests start it."""

import datetime
import json
import logging
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

HERE = Path(__file__).resolve().parent
FIXTURE = HERE / "fixtures" / "sagemaker-training-job-state-change.doc.json"
ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/retrain-training"
SUBNET = "subnet-0123456789abcdef0"


def start_emulator() -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, str(HERE / "retrain_emulator.py"), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline().strip()
    assert line.startswith("READY http://127.0.0.1:"), line
    return process, line.split()[1]


def stop_emulator(process: subprocess.Popen, how: int) -> int:
    process.send_signal(how)
    return process.wait(timeout=10)


@pytest.fixture(scope="session")
def url():
    process, address = start_emulator()
    yield address
    assert stop_emulator(process, signal.SIGTERM) == 0


@pytest.fixture(autouse=True)
def clean(url):
    requests.post(f"{url}/_retrain/reset", timeout=5).raise_for_status()


def boto_client(url: str, service: str, region: str = "us-east-1", **config):
    return boto3.client(
        service,
        endpoint_url=url,
        region_name=region,
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key="secret",
        config=Config(retries={"max_attempts": 1}, **config),
    )


@pytest.fixture
def client(url):
    def make(service: str, region: str = "us-east-1", **config):
        return boto_client(url, service, region, **config)

    return make


@pytest.fixture(scope="module")
def in_process_url():
    """The emulator served from this process, for tests that slow moto down
    to widen a race window (the GIL keeps moto's own windows too narrow to
    hit from outside)."""
    import moto_ext
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    moto_ext.install()
    server = make_server("127.0.0.1", 0, moto_ext.application(), threaded=True)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    serving.join()


@pytest.fixture
def control(url):
    def call(method: str, path: str, payload=None):
        response = requests.request(method, f"{url}/_retrain/{path}", json=payload, timeout=5)
        return response.status_code, response.json()

    return call


def error_code(raised: pytest.ExceptionInfo) -> str:
    return raised.value.response["Error"]["Code"]


# --- FSx ---------------------------------------------------------------------


@pytest.fixture
def fsx(client):
    return client("fsx")


def create_file_system(fsx, **lustre) -> dict:
    lustre = lustre or {"ImportPath": "s3://retrain-data/raw", "DeploymentType": "PERSISTENT_1"}
    return fsx.create_file_system(
        FileSystemType="LUSTRE", StorageCapacity=1200, SubnetIds=[SUBNET], LustreConfiguration=lustre
    )["FileSystem"]


def create_task(fsx, file_system_id: str, **overrides) -> dict:
    request = {
        "Type": "IMPORT_METADATA_FROM_REPOSITORY",
        "FileSystemId": file_system_id,
        "Paths": ["s3://retrain-data/raw/2024"],
        "Report": {"Enabled": False},
        **overrides,
    }
    return fsx.create_data_repository_task(**request)["DataRepositoryTask"]


def describe_task(fsx, task_id: str) -> dict:
    return fsx.describe_data_repository_tasks(TaskIds=[task_id])["DataRepositoryTasks"][0]


def test_file_system_has_the_fields_moto_omits(client, fsx):
    ec2 = client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    created = fsx.create_file_system(
        FileSystemType="LUSTRE",
        StorageCapacity=1200,
        SubnetIds=[subnet],
        LustreConfiguration={"ImportPath": "s3://retrain-data/raw", "DeploymentType": "PERSISTENT_1"},
    )["FileSystem"]
    described = fsx.describe_file_systems(FileSystemIds=[created["FileSystemId"]])["FileSystems"][0]

    for file_system in (created, described):
        assert file_system["Lifecycle"] == "AVAILABLE"
        assert file_system["VpcId"] == vpc
        assert file_system["DNSName"].startswith(created["FileSystemId"])
        lustre = file_system["LustreConfiguration"]
        assert len(lustre["MountName"]) == 8 and lustre["MountName"].isalnum() and lustre["MountName"].islower()
        repository = lustre["DataRepositoryConfiguration"]
        assert repository["Lifecycle"] == "AVAILABLE"
        assert repository["ImportPath"] == "s3://retrain-data/raw"
        assert repository["ExportPath"].startswith("s3://retrain-data/FSxLustre")
    assert described["LustreConfiguration"]["MountName"] == created["LustreConfiguration"]["MountName"]


def test_scratch_1_mount_name_and_unknown_subnet(fsx):
    file_system = create_file_system(fsx, ImportPath="s3://retrain-data")
    assert file_system["LustreConfiguration"]["MountName"] == "fsx"
    assert file_system["VpcId"].startswith("vpc-")
    assert "NetworkInterfaceIds" not in file_system  # no ENI without a subnet moto's EC2 knows


def test_unknown_file_system_is_not_found(fsx):
    with pytest.raises(ClientError) as raised:
        fsx.describe_file_systems(FileSystemIds=["fs-0123456789abcdef0"])
    assert error_code(raised) == "FileSystemNotFound"


def test_only_one_task_runs_per_file_system(fsx, control):
    first_fs = create_file_system(fsx)["FileSystemId"]
    second_fs = create_file_system(fsx)["FileSystemId"]
    running = create_task(fsx, first_fs)
    assert running["Lifecycle"] == "PENDING"

    with pytest.raises(ClientError) as raised:
        create_task(fsx, first_fs, Paths=["s3://retrain-data/raw/2025"])
    assert error_code(raised) == "DataRepositoryTaskExecuting"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    create_task(fsx, second_fs)  # other file systems are not blocked

    assert control("POST", f"fsx/tasks/{running['TaskId']}/finish", {"lifecycle": "SUCCEEDED"})[0] == 200
    create_task(fsx, first_fs, Paths=["s3://retrain-data/raw/2025"])
    status, listing = control("GET", "fsx/tasks")
    assert status == 200
    assert [task["FileSystemId"] for task in listing["tasks"]] == [first_fs, second_fs, first_fs]
    assert listing["max_executing_per_file_system"] == {first_fs: 1, second_fs: 1}


def test_client_request_token_is_idempotent(fsx, control):
    file_system_id = create_file_system(fsx)["FileSystemId"]
    other_fs = create_file_system(fsx)["FileSystemId"]
    original = create_task(fsx, file_system_id, ClientRequestToken="upload-42")
    assert create_task(fsx, file_system_id, ClientRequestToken="upload-42")["TaskId"] == original["TaskId"]

    control("POST", f"fsx/tasks/{original['TaskId']}/finish", {"lifecycle": "SUCCEEDED"})
    replay = create_task(fsx, file_system_id, ClientRequestToken="upload-42")
    assert (replay["TaskId"], replay["Lifecycle"]) == (original["TaskId"], "SUCCEEDED")

    with pytest.raises(ClientError) as raised:
        create_task(fsx, file_system_id, ClientRequestToken="upload-42", Paths=["s3://retrain-data/other"])
    assert error_code(raised) == "IncompatibleParameterError"
    assert create_task(fsx, other_fs, ClientRequestToken="upload-42")["TaskId"] != original["TaskId"]


def test_invalid_import_path_fails_the_task(fsx):
    file_system_id = create_file_system(fsx)["FileSystemId"]
    for path in ("retrain-data/raw", "s3://another-bucket/raw"):
        task = create_task(fsx, file_system_id, Paths=[path])
        assert task["Lifecycle"] == "PENDING"
        failed = describe_task(fsx, task["TaskId"])
        assert failed["Lifecycle"] == "FAILED"
        assert path in failed["FailureDetails"]["Message"]
        assert failed["EndTime"] >= failed["CreationTime"]


def test_task_lifecycle_through_the_control_api(fsx, control):
    file_system_id = create_file_system(fsx)["FileSystemId"]
    task_id = create_task(fsx, file_system_id)["TaskId"]
    assert describe_task(fsx, task_id)["Lifecycle"] == "EXECUTING"
    assert describe_task(fsx, task_id)["Lifecycle"] == "EXECUTING"

    status, finished = control(
        "POST",
        f"fsx/tasks/{task_id}/finish",
        {"lifecycle": "FAILED", "message": "S3 access denied", "status": {"FailedCount": 3}},
    )
    assert status == 200
    assert (finished["Lifecycle"], finished["FailureDetails"]) == ("FAILED", {"Message": "S3 access denied"})
    described = describe_task(fsx, task_id)
    assert described["FailureDetails"]["Message"] == "S3 access denied"
    assert described["Status"]["FailedCount"] == 3
    assert described["StartTime"] <= described["EndTime"]
    assert described["ResourceARN"].endswith(f":task/{task_id}")
    assert control("POST", f"fsx/tasks/{task_id}/finish", {"lifecycle": "SUCCEEDED"})[0] == 409
    assert control("POST", "fsx/tasks/task-00000000000000000/finish", {"lifecycle": "SUCCEEDED"})[0] == 404
    assert control("POST", f"fsx/tasks/{task_id}/finish", {"lifecycle": "DONE"})[0] == 400


def test_cancel_leaves_the_task_canceling_until_it_is_finished(fsx, control):
    file_system_id = create_file_system(fsx)["FileSystemId"]
    task_id = create_task(fsx, file_system_id)["TaskId"]
    assert describe_task(fsx, task_id)["Lifecycle"] == "EXECUTING"
    for _ in range(2):  # cancelling a CANCELING task again answers the same
        answer = fsx.cancel_data_repository_task(TaskId=task_id)
        assert (answer["TaskId"], answer["Lifecycle"]) == (task_id, "CANCELING")
    canceling = describe_task(fsx, task_id)
    assert canceling["Lifecycle"] == "CANCELING" and "EndTime" not in canceling
    filters = [{"Name": "task-lifecycle", "Values": ["CANCELING"]}]
    assert [t["TaskId"] for t in fsx.describe_data_repository_tasks(Filters=filters)["DataRepositoryTasks"]] == [
        task_id
    ]
    with pytest.raises(ClientError) as raised:
        create_task(fsx, file_system_id, Paths=["s3://retrain-data/raw/2025"])
    assert error_code(raised) == "DataRepositoryTaskExecuting"
    assert "CANCELING" in raised.value.response["Error"]["Message"]

    # A task being cancelled can only end CANCELED.
    assert control("POST", f"fsx/tasks/{task_id}/finish", {"lifecycle": "SUCCEEDED"})[0] == 409
    assert control("POST", f"fsx/tasks/{task_id}/finish", {"lifecycle": "CANCELING"})[0] == 409
    status, canceled = control("POST", f"fsx/tasks/{task_id}/finish", {"lifecycle": "CANCELED"})
    assert (status, canceled["Lifecycle"]) == (200, "CANCELED")
    described = describe_task(fsx, task_id)
    assert described["Lifecycle"] == "CANCELED" and described["EndTime"] >= described["CreationTime"]
    with pytest.raises(ClientError) as raised:
        fsx.cancel_data_repository_task(TaskId=task_id)
    assert error_code(raised) == "DataRepositoryTaskEnded"
    create_task(fsx, file_system_id, Paths=["s3://retrain-data/raw/2025"])  # no longer blocked


def test_control_api_cancels_like_a_user(fsx, control):
    file_system_id = create_file_system(fsx)["FileSystemId"]
    pending = create_task(fsx, file_system_id)["TaskId"]
    status, canceling = control("POST", f"fsx/tasks/{pending}/finish", {"lifecycle": "CANCELING"})
    assert (status, canceling["Lifecycle"]) == (200, "CANCELING")
    assert describe_task(fsx, pending)["Lifecycle"] == "CANCELING"  # not moved on to EXECUTING
    control("POST", f"fsx/tasks/{pending}/finish", {"lifecycle": "CANCELED"})

    # CANCELED straight from PENDING or EXECUTING (a cancel the service completed at once).
    executing = create_task(fsx, file_system_id)["TaskId"]
    assert describe_task(fsx, executing)["Lifecycle"] == "EXECUTING"
    assert control("POST", f"fsx/tasks/{executing}/finish", {"lifecycle": "CANCELED"})[1]["Lifecycle"] == "CANCELED"
    assert control("POST", f"fsx/tasks/{executing}/finish", {"lifecycle": "CANCELING"})[0] == 409
    _, listing = control("GET", "fsx/tasks")
    assert [t["Lifecycle"] for t in listing["tasks"]] == ["CANCELED", "CANCELED"]


def import_outcome(fsx, control, file_system_id: str, path: str) -> str:
    """The lifecycle an import of `path` reaches on its first describe; an
    importable one is then finished, so the next one can start."""
    task = create_task(fsx, file_system_id, Paths=[path])
    described = describe_task(fsx, task["TaskId"])
    if described["Lifecycle"] == "EXECUTING":
        control("POST", f"fsx/tasks/{task['TaskId']}/finish", {"lifecycle": "SUCCEEDED"})
    else:
        assert path in described["FailureDetails"]["Message"]
    return described["Lifecycle"]


def test_import_paths_must_lie_under_the_import_path(fsx, control):
    file_system_id = create_file_system(fsx)["FileSystemId"]  # ImportPath s3://retrain-data/raw
    outcomes = {
        path: import_outcome(fsx, control, file_system_id, path)
        for path in (
            "s3://retrain-data/raw",
            "s3://retrain-data/raw/",
            "s3://retrain-data/raw/2024/05/part-0.csv",
            "s3://retrain-data/rawfiles/2024",  # shares the prefix, not the folder
            "s3://retrain-data/other",
            "s3://retrain-data",
        )
    }
    assert outcomes == {
        "s3://retrain-data/raw": "EXECUTING",
        "s3://retrain-data/raw/": "EXECUTING",
        "s3://retrain-data/raw/2024/05/part-0.csv": "EXECUTING",
        "s3://retrain-data/rawfiles/2024": "FAILED",
        "s3://retrain-data/other": "FAILED",
        "s3://retrain-data": "FAILED",
    }
    bucket_wide = create_file_system(fsx, ImportPath="s3://retrain-data/")["FileSystemId"]
    assert import_outcome(fsx, control, bucket_wide, "s3://retrain-data/anything/at/all") == "EXECUTING"
    assert import_outcome(fsx, control, bucket_wide, "s3://retrain-database/x") == "FAILED"


def test_import_paths_must_lie_in_an_association(fsx, control):
    file_system_id = create_file_system(fsx, DeploymentType="PERSISTENT_2", PerUnitStorageThroughput=125)[
        "FileSystemId"
    ]
    create_association(fsx, file_system_id, FileSystemPath="/data", DataRepositoryPath="s3://retrain-data/raw")
    create_association(fsx, file_system_id, FileSystemPath="/models", DataRepositoryPath="s3://retrain-models/out/")
    outcomes = {
        path: import_outcome(fsx, control, file_system_id, path)
        for path in (
            "s3://retrain-data/raw/2024",
            "s3://retrain-models/out",
            "s3://retrain-models/out/run-1/model.tar.gz",
            "s3://retrain-data/rawfiles",
            "s3://retrain-models/output",
            "s3://retrain-other/raw",
        )
    }
    assert outcomes == {
        "s3://retrain-data/raw/2024": "EXECUTING",
        "s3://retrain-models/out": "EXECUTING",
        "s3://retrain-models/out/run-1/model.tar.gz": "EXECUTING",
        "s3://retrain-data/rawfiles": "FAILED",
        "s3://retrain-models/output": "FAILED",
        "s3://retrain-other/raw": "FAILED",
    }


def test_import_without_a_data_repository_fails(fsx):
    file_system_id = create_file_system(fsx, DeploymentType="PERSISTENT_2", PerUnitStorageThroughput=125)[
        "FileSystemId"
    ]
    task = create_task(fsx, file_system_id, Paths=["s3://retrain-data/raw"])
    assert task["Lifecycle"] == "PENDING"  # accepted, as by the service
    failed = describe_task(fsx, task["TaskId"])
    assert failed["Lifecycle"] == "FAILED"
    assert "no data repository is linked" in failed["FailureDetails"]["Message"]


def test_describe_filters_and_pages(fsx, control):
    first_fs = create_file_system(fsx)["FileSystemId"]
    second_fs = create_file_system(fsx)["FileSystemId"]
    done = create_task(fsx, first_fs)["TaskId"]
    control("POST", f"fsx/tasks/{done}/finish", {"lifecycle": "SUCCEEDED"})
    pending = create_task(fsx, first_fs, Type="EXPORT_TO_REPOSITORY", Paths=["raw/2024"])["TaskId"]
    other = create_task(fsx, second_fs)["TaskId"]

    def ids(**kwargs):
        return [t["TaskId"] for t in fsx.describe_data_repository_tasks(**kwargs)["DataRepositoryTasks"]]

    assert ids(Filters=[{"Name": "file-system-id", "Values": [first_fs]}]) == [done, pending]
    assert ids(Filters=[{"Name": "task-lifecycle", "Values": ["SUCCEEDED"]}]) == [done]
    assert ids(Filters=[{"Name": "data-repository-association-id", "Values": ["dra-0123456789abcdef0"]}]) == []
    first_page = fsx.describe_data_repository_tasks(MaxResults=2)
    assert [t["TaskId"] for t in first_page["DataRepositoryTasks"]] == [done, pending]
    assert ids(MaxResults=2, NextToken=first_page["NextToken"]) == [other]
    with pytest.raises(ClientError) as raised:
        fsx.describe_data_repository_tasks(TaskIds=["task-00000000000000000"])
    assert error_code(raised) == "DataRepositoryTaskNotFound"


@pytest.mark.parametrize(
    "overrides, code",
    [
        ({"FileSystemId": "fs-0123456789abcdef0"}, "FileSystemNotFound"),
        ({"Report": {"Enabled": True}}, "BadRequest"),
        ({"Paths": [f"s3://retrain-data/{n}" for n in range(101)]}, "BadRequest"),
        ({"Paths": ["s3://retrain-data/" + "x" * 4090]}, "BadRequest"),
        ({"ClientRequestToken": "not allowed!"}, "BadRequest"),
    ],
)
def test_task_requests_are_validated(fsx, overrides, code):
    file_system_id = create_file_system(fsx)["FileSystemId"]
    with pytest.raises(ClientError) as raised:
        create_task(fsx, file_system_id, **overrides)
    assert error_code(raised) == code


def test_completion_report_when_enabled(fsx):
    file_system_id = create_file_system(fsx)["FileSystemId"]
    report = {
        "Enabled": True,
        "Path": "s3://retrain-data/reports",
        "Format": "REPORT_CSV_20191124",
        "Scope": "FAILED_FILES_ONLY",
    }
    assert create_task(fsx, file_system_id, Report=report)["Report"] == report


def test_patched_file_system_blocks_tasks(fsx, control):
    file_system_id = create_file_system(fsx)["FileSystemId"]
    status, patched = control("POST", f"fsx/file-systems/{file_system_id}", {"Lifecycle": "MISCONFIGURED"})
    assert (status, patched["Lifecycle"]) == (200, "MISCONFIGURED")
    assert fsx.describe_file_systems(FileSystemIds=[file_system_id])["FileSystems"][0]["Lifecycle"] == "MISCONFIGURED"
    with pytest.raises(ClientError) as raised:
        create_task(fsx, file_system_id)
    assert error_code(raised) == "BadRequest"
    assert control("POST", "fsx/file-systems/fs-0123456789abcdef0", {"Lifecycle": "AVAILABLE"})[0] == 404


# --- Network side of FSx, EFS and EC2 (preflight) ------------------------------


@pytest.fixture
def ec2(client):
    return client("ec2")


@pytest.fixture
def efs(client):
    return client("efs")


def create_network(ec2, cidr: str = "10.0.0.0/16", zone: str = "us-east-1b") -> tuple[str, str]:
    vpc = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    subnet_cidr = cidr.replace(".0.0/16", ".1.0/24")
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=subnet_cidr, AvailabilityZone=zone)["Subnet"]["SubnetId"]
    return vpc, subnet


def create_group(ec2, vpc: str, name: str) -> str:
    return ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc)["GroupId"]


def default_group(ec2, vpc: str) -> str:
    filters = [{"Name": "vpc-id", "Values": [vpc]}, {"Name": "group-name", "Values": ["default"]}]
    return ec2.describe_security_groups(Filters=filters)["SecurityGroups"][0]["GroupId"]


def interfaces(ec2, ids: list[str]) -> list[dict]:
    return ec2.describe_network_interfaces(NetworkInterfaceIds=ids)["NetworkInterfaces"]


def test_lustre_file_system_has_network_interfaces_with_its_groups(ec2, fsx):
    vpc, subnet = create_network(ec2)
    lustre_sg, client_sg = create_group(ec2, vpc, "lustre"), create_group(ec2, vpc, "clients")
    created = fsx.create_file_system(
        FileSystemType="LUSTRE",
        StorageCapacity=1200,
        SubnetIds=[subnet],
        SecurityGroupIds=[lustre_sg, client_sg],
        LustreConfiguration={"DeploymentType": "PERSISTENT_2", "PerUnitStorageThroughput": 125},
    )["FileSystem"]
    file_system_id = created["FileSystemId"]
    described = fsx.describe_file_systems(FileSystemIds=[file_system_id])["FileSystems"][0]

    eni_ids = created["NetworkInterfaceIds"]
    assert len(eni_ids) >= 1 and described["NetworkInterfaceIds"] == eni_ids
    assert (described["SubnetIds"], described["VpcId"]) == ([subnet], vpc)
    for eni in interfaces(ec2, eni_ids):
        assert {group["GroupId"] for group in eni["Groups"]} == {lustre_sg, client_sg}
        assert (eni["SubnetId"], eni["VpcId"], eni["AvailabilityZone"]) == (subnet, vpc, "us-east-1b")
        assert eni["Description"] == f"ENI for Lustre file system {file_system_id}"
        assert eni["RequesterManaged"] is True
    addresses = [eni["PrivateIpAddress"] for eni in interfaces(ec2, eni_ids)]
    assert len(set(addresses)) == len(addresses)

    fsx.delete_file_system(FileSystemId=file_system_id)
    left = ec2.describe_network_interfaces(Filters=[{"Name": "subnet-id", "Values": [subnet]}])
    assert left["NetworkInterfaces"] == []


def test_lustre_without_groups_uses_the_default_group(ec2, fsx):
    vpc, subnet = create_network(ec2)
    file_system = create_file_system(fsx, DeploymentType="PERSISTENT_2", PerUnitStorageThroughput=125)
    assert "NetworkInterfaceIds" not in file_system  # SUBNET is unknown to EC2
    created = fsx.create_file_system(FileSystemType="LUSTRE", StorageCapacity=1200, SubnetIds=[subnet])["FileSystem"]
    for eni in interfaces(ec2, created["NetworkInterfaceIds"]):
        assert [group["GroupId"] for group in eni["Groups"]] == [default_group(ec2, vpc)]


def test_lustre_rejects_groups_outside_the_subnet_vpc(ec2, fsx):
    _, subnet = create_network(ec2)
    other_vpc, _ = create_network(ec2, "10.1.0.0/16")
    for group in (create_group(ec2, other_vpc, "elsewhere"), "sg-0123456789abcdef0"):
        with pytest.raises(ClientError) as raised:
            fsx.create_file_system(
                FileSystemType="LUSTRE", StorageCapacity=1200, SubnetIds=[subnet], SecurityGroupIds=[group]
            )
        assert error_code(raised) == "InvalidNetworkSettings"
        assert raised.value.response["InvalidSecurityGroupId"] == group
    assert fsx.describe_file_systems()["FileSystems"] == []
    assert ec2.describe_network_interfaces()["NetworkInterfaces"] == []


def create_association(fsx, file_system_id: str, **overrides) -> dict:
    request = {
        "FileSystemId": file_system_id,
        "FileSystemPath": "/data",
        "DataRepositoryPath": "s3://retrain-data/raw",
        "BatchImportMetaDataOnCreate": True,
        "S3": {"AutoImportPolicy": {"Events": ["NEW", "CHANGED", "DELETED"]}},
        **overrides,
    }
    return fsx.create_data_repository_association(**request)["Association"]


def test_data_repository_associations(fsx):
    persistent_2 = {"DeploymentType": "PERSISTENT_2", "PerUnitStorageThroughput": 125}
    first_fs = create_file_system(fsx, **persistent_2)["FileSystemId"]
    second_fs = create_file_system(fsx, **persistent_2)["FileSystemId"]
    association = create_association(fsx, first_fs)
    assert association["AssociationId"].startswith("dra-") and len(association["AssociationId"]) == 21
    assert int(association["AssociationId"][4:], 16) >= 0
    assert (association["Lifecycle"], association["FileSystemPath"]) == ("AVAILABLE", "/data")
    assert association["DataRepositoryPath"] == "s3://retrain-data/raw"
    assert association["BatchImportMetaDataOnCreate"] is True
    assert association["S3"] == {"AutoImportPolicy": {"Events": ["NEW", "CHANGED", "DELETED"]}}
    assert association["ResourceARN"].endswith(f":association/{first_fs}/{association['AssociationId']}")
    other = create_association(fsx, second_fs, FileSystemPath="/", S3={})

    def ids(**kwargs):
        return [a["AssociationId"] for a in fsx.describe_data_repository_associations(**kwargs)["Associations"]]

    assert ids(Filters=[{"Name": "file-system-id", "Values": [first_fs]}]) == [association["AssociationId"]]
    assert ids() == [association["AssociationId"], other["AssociationId"]]
    assert ids(AssociationIds=[other["AssociationId"]]) == [other["AssociationId"]]
    assert ids(Filters=[{"Name": "data-repository-type", "Values": ["NFS"]}]) == []
    assert ids(MaxResults=1, NextToken=fsx.describe_data_repository_associations(MaxResults=1)["NextToken"]) == [
        other["AssociationId"]
    ]
    described = fsx.describe_data_repository_associations(AssociationIds=[association["AssociationId"]])
    assert described["Associations"][0] == association
    with pytest.raises(ClientError) as raised:
        fsx.describe_data_repository_associations(AssociationIds=["dra-0123456789abcdef0"])
    assert error_code(raised) == "DataRepositoryAssociationNotFound"


@pytest.mark.parametrize(
    "lustre, overrides",
    [
        ({"DeploymentType": "PERSISTENT_2"}, {"FileSystemPath": "/data/2024"}),  # nested in /data
        ({"DeploymentType": "PERSISTENT_2"}, {"FileSystemPath": "/other", "DataRepositoryPath": "retrain-data"}),
        ({"DeploymentType": "SCRATCH_1"}, {"FileSystemPath": "/other"}),
    ],
)
def test_data_repository_association_requests_are_validated(fsx, lustre, overrides):
    file_system_id = create_file_system(fsx, **lustre)["FileSystemId"]
    if lustre["DeploymentType"] != "SCRATCH_1":
        create_association(fsx, file_system_id)
    with pytest.raises(ClientError) as raised:
        create_association(fsx, file_system_id, **overrides)
    assert error_code(raised) == "BadRequest"


def test_legacy_import_path_has_no_associations(fsx):
    legacy = create_file_system(fsx)  # LustreConfiguration.ImportPath
    assert legacy["LustreConfiguration"]["DataRepositoryConfiguration"]["ImportPath"] == "s3://retrain-data/raw"
    filters = [{"Name": "file-system-id", "Values": [legacy["FileSystemId"]]}]
    assert fsx.describe_data_repository_associations(Filters=filters)["Associations"] == []
    with pytest.raises(ClientError) as raised:
        create_association(fsx, legacy["FileSystemId"])
    assert error_code(raised) == "BadRequest"
    with pytest.raises(ClientError) as raised:
        create_association(fsx, "fs-0123456789abcdef0")
    assert error_code(raised) == "FileSystemNotFound"


def test_efs_mount_targets_describe_their_network(ec2, efs):
    vpc, subnet = create_network(ec2)
    second_subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.2.0/24", AvailabilityZone="us-east-1c")["Subnet"]
    nfs_sg = create_group(ec2, vpc, "nfs")
    file_system_id = efs.create_file_system(CreationToken="retrain-efs")["FileSystemId"]
    assert efs.describe_file_systems(FileSystemId=file_system_id)["FileSystems"][0]["LifeCycleState"] == "available"

    with_group = efs.create_mount_target(FileSystemId=file_system_id, SubnetId=subnet, SecurityGroups=[nfs_sg])
    without_group = efs.create_mount_target(FileSystemId=file_system_id, SubnetId=second_subnet["SubnetId"])
    targets = {t["MountTargetId"]: t for t in efs.describe_mount_targets(FileSystemId=file_system_id)["MountTargets"]}
    first = targets[with_group["MountTargetId"]]
    assert (first["SubnetId"], first["VpcId"], first["LifeCycleState"]) == (subnet, vpc, "available")
    assert (first["AvailabilityZoneName"], first["AvailabilityZoneId"]) == ("us-east-1b", "use1-az1")
    second = targets[without_group["MountTargetId"]]
    assert (second["AvailabilityZoneName"], second["AvailabilityZoneId"]) == (
        "us-east-1c",
        second_subnet["AvailabilityZoneId"],
    )

    def groups(mount_target_id):
        return efs.describe_mount_target_security_groups(MountTargetId=mount_target_id)["SecurityGroups"]

    assert groups(first["MountTargetId"]) == [nfs_sg]
    assert groups(second["MountTargetId"]) == [default_group(ec2, vpc)]
    eni = interfaces(ec2, [first["NetworkInterfaceId"]])[0]
    assert [group["GroupId"] for group in eni["Groups"]] == [nfs_sg]
    assert eni["Description"] == f"EFS mount target for {file_system_id} ({first['MountTargetId']})"


def test_efs_mount_target_groups_must_be_in_the_vpc(ec2, efs):
    _, subnet = create_network(ec2)
    other_vpc, _ = create_network(ec2, "10.1.0.0/16")
    file_system_id = efs.create_file_system(CreationToken="retrain-efs")["FileSystemId"]
    for groups in ([create_group(ec2, other_vpc, "elsewhere")], ["sg-0123456789abcdef0"]):
        with pytest.raises(ClientError) as raised:
            efs.create_mount_target(FileSystemId=file_system_id, SubnetId=subnet, SecurityGroups=groups)
        assert error_code(raised) == "SecurityGroupNotFound"
        assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # The failed requests left the subnet's zone free.
    efs.create_mount_target(FileSystemId=file_system_id, SubnetId=subnet)


def test_security_group_rules(ec2):
    vpc, _ = create_network(ec2)
    lustre_sg, client_sg = create_group(ec2, vpc, "lustre"), create_group(ec2, vpc, "clients")
    ec2.authorize_security_group_ingress(
        GroupId=lustre_sg,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 988, "ToPort": 988, "UserIdGroupPairs": [{"GroupId": client_sg}]},
            {"IpProtocol": "tcp", "FromPort": 1018, "ToPort": 1023, "IpRanges": [{"CidrIp": "10.0.0.0/16"}]},
        ],
    )
    ec2.authorize_security_group_egress(
        GroupId=client_sg,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 988, "ToPort": 988, "UserIdGroupPairs": [{"GroupId": lustre_sg}]}
        ],
    )
    groups = {g["GroupId"]: g for g in ec2.describe_security_groups(GroupIds=[lustre_sg, client_sg])["SecurityGroups"]}

    ingress = groups[lustre_sg]["IpPermissions"]
    by_port = {rule["FromPort"]: rule for rule in ingress}
    assert [pair["GroupId"] for pair in by_port[988]["UserIdGroupPairs"]] == [client_sg]
    assert by_port[1018]["IpRanges"] == [{"CidrIp": "10.0.0.0/16"}] and by_port[1018]["ToPort"] == 1023
    all_traffic = {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
    assert [{k: r[k] for k in all_traffic} for r in groups[lustre_sg]["IpPermissionsEgress"]] == [all_traffic]
    egress = groups[client_sg]["IpPermissionsEgress"]
    assert {k: egress[0][k] for k in all_traffic} == all_traffic
    assert [pair["GroupId"] for pair in egress[1]["UserIdGroupPairs"]] == [lustre_sg]

    # AWS: a VPC's default group admits all traffic from itself.
    default_id = default_group(ec2, vpc)
    default = ec2.describe_security_groups(GroupIds=[default_id])["SecurityGroups"][0]
    assert [(r["IpProtocol"], [p["GroupId"] for p in r["UserIdGroupPairs"]]) for r in default["IpPermissions"]] == [
        ("-1", [default_id])
    ]


def test_subnet_ipv6_cidr_blocks_report_their_state(ec2):
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16", AmazonProvidedIpv6CidrBlock=True)["Vpc"]
    block = vpc["Ipv6CidrBlockAssociationSet"][0]["Ipv6CidrBlock"].replace("::/56", "::/64")
    created = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.1.0/24", Ipv6CidrBlock=block)["Subnet"]
    described = ec2.describe_subnets(SubnetIds=[created["SubnetId"]])["Subnets"][0]
    for subnet in (created, described):
        (association,) = subnet["Ipv6CidrBlockAssociationSet"]
        assert association["Ipv6CidrBlock"] == block
        assert association["Ipv6CidrBlockState"] == {"State": "associated"}


def test_security_group_rules_to_ipv6_ranges_and_prefix_lists(ec2):
    vpc, _ = create_network(ec2)
    client_sg = create_group(ec2, vpc, "clients")
    entries = [{"Cidr": "10.0.0.0/16", "Description": "the VPC"}]
    prefix_list = ec2.create_managed_prefix_list(
        PrefixListName="vpc", AddressFamily="IPv4", MaxEntries=5, Entries=entries
    )["PrefixList"]["PrefixListId"]
    ec2.authorize_security_group_egress(
        GroupId=client_sg,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 988, "ToPort": 988, "PrefixListIds": [{"PrefixListId": prefix_list}]},
            {"IpProtocol": "tcp", "FromPort": 1018, "ToPort": 1023, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]},
        ],
    )
    egress = ec2.describe_security_groups(GroupIds=[client_sg])["SecurityGroups"][0]["IpPermissionsEgress"]
    by_port = {rule.get("FromPort"): rule for rule in egress}
    assert by_port[988]["PrefixListIds"] == [{"PrefixListId": prefix_list}]
    assert by_port[1018]["Ipv6Ranges"] == [{"CidrIpv6": "::/0"}]
    assert ec2.get_managed_prefix_list_entries(PrefixListId=prefix_list)["Entries"] == entries


# --- SageMaker -----------------------------------------------------------------


@pytest.fixture
def sagemaker(client):
    return client("sagemaker")


def training_request(name: str, sweep: str | None = None, **overrides) -> dict:
    request = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {
            "TrainingImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/train:1",
            "TrainingInputMode": "File",
        },
        "RoleArn": ROLE,
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "FileSystemDataSource": {
                        "FileSystemId": "fs-0123456789abcdef0",
                        "FileSystemAccessMode": "ro",
                        "FileSystemType": "FSxLustre",
                        "DirectoryPath": "/abcdefgh/raw",
                    }
                },
            }
        ],
        "OutputDataConfig": {"S3OutputPath": "s3://retrain-models/"},
        "ResourceConfig": {
            "InstanceType": "ml.g5.xlarge",
            "InstanceCount": 1,
            "VolumeSizeInGB": 50,
            "KeepAlivePeriodInSeconds": 900,
        },
        "VpcConfig": {"SecurityGroupIds": ["sg-0123456789abcdef0"], "Subnets": [SUBNET]},
        "StoppingCondition": {"MaxRuntimeInSeconds": 7200},
        "HyperParameters": {"eta": "0.1", "max_depth": "6"},
        "Environment": {"RETRAIN_RUN": name},
        "EnableManagedSpotTraining": False,
        "Tags": [{"Key": "retrain:sweep", "Value": sweep}] if sweep else [{"Key": "team", "Value": "ml"}],
    }
    request.update(overrides)
    return request


def test_duplicate_training_job_name_is_resource_in_use(sagemaker, control):
    sagemaker.create_training_job(**training_request("train-1"))
    with pytest.raises(ClientError) as raised:
        sagemaker.create_training_job(**training_request("train-1", HyperParameters={"eta": "0.3"}))
    assert error_code(raised) == "ResourceInUse"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "training job with this name already exists (arn:aws:sagemaker:" in raised.value.response["Error"]["Message"]
    assert sagemaker.describe_training_job(TrainingJobName="train-1")["HyperParameters"]["eta"] == "0.1"
    _, listing = control("GET", "sagemaker/jobs")
    assert (listing["create_calls"], listing["resource_in_use"], len(listing["jobs"])) == (2, 1, 1)


def test_jobs_stay_in_progress_and_keep_the_request(sagemaker, control):
    request = training_request("train-1", sweep="sweep-a")
    sagemaker.create_training_job(**request)
    sagemaker.create_training_job(**training_request("train-2", sweep="sweep-a"))
    sagemaker.create_training_job(**training_request("train-3"))
    for _ in range(2):
        job = sagemaker.describe_training_job(TrainingJobName="train-1")
        assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("InProgress", "Starting")
    for key in (
        "AlgorithmSpecification",
        "InputDataConfig",
        "ResourceConfig",
        "VpcConfig",
        "HyperParameters",
        "StoppingCondition",
        "OutputDataConfig",
        "RoleArn",
        "Environment",
        "EnableManagedSpotTraining",
    ):
        assert job[key] == request[key], key
    assert "TrainingEndTime" not in job and "FinalMetricDataList" not in job and "FailureReason" not in job

    _, listing = control("GET", "sagemaker/jobs")
    assert listing["max_in_progress"] == 3
    assert listing["max_in_progress_by_tag"] == {"sweep-a": 2}
    first = listing["jobs"][0]
    assert (first["name"], first["status"], first["secondary_status"], first["creation_order"]) == (
        "train-1",
        "InProgress",
        "Starting",
        1,
    )
    assert first["tags"] == {"retrain:sweep": "sweep-a"}


def test_completion_sets_metrics_transitions_and_warm_pool(sagemaker, control):
    sagemaker.create_training_job(**training_request("train-1"))
    status, event = control("POST", "sagemaker/jobs/train-1/complete", {"metrics": {"validation:auc": 0.91}})
    assert status == 200 and event["detail"]["TrainingJobStatus"] == "Completed"

    job = sagemaker.describe_training_job(TrainingJobName="train-1")
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Completed", "Completed")
    assert [(m["MetricName"], m["Value"]) for m in job["FinalMetricDataList"]] == [("validation:auc", 0.91)]
    transitions = job["SecondaryStatusTransitions"]
    assert [t["Status"] for t in transitions] == ["Starting", "Downloading", "Training", "Uploading", "Completed"]
    assert all(t["StartTime"] <= t["EndTime"] and t["StatusMessage"] for t in transitions)
    assert job["CreationTime"] <= job["TrainingStartTime"] <= job["TrainingEndTime"]
    assert job["BillableTimeInSeconds"] >= 1
    assert job["ModelArtifacts"]["S3ModelArtifacts"] == "s3://retrain-models/train-1/output/model.tar.gz"
    assert job["WarmPoolStatus"]["Status"] == "Available"

    sagemaker.create_training_job(**training_request("train-2"))
    control("POST", "sagemaker/jobs/train-2/complete", {"metrics": {}, "warm_pool_reused": True})
    reused = sagemaker.describe_training_job(TrainingJobName="train-1")["WarmPoolStatus"]
    assert (reused["Status"], reused["ReusedByJob"]) == ("Reused", "train-2")
    assert control("POST", "sagemaker/jobs/train-2/complete", {})[0] == 409
    assert control("POST", "sagemaker/jobs/missing/complete", {})[0] == 404


def test_failure_and_stop(sagemaker, control):
    reason = (
        "CapacityError: Unable to provision requested ML compute capacity. "
        "Please retry using a different ML instance type."
    )
    sagemaker.create_training_job(**training_request("train-1"))
    status, event = control("POST", "sagemaker/jobs/train-1/fail", {"reason": reason})
    assert status == 200 and event["detail"]["FailureReason"] == reason
    job = sagemaker.describe_training_job(TrainingJobName="train-1")
    assert (job["TrainingJobStatus"], job["FailureReason"]) == ("Failed", reason)
    assert [t["Status"] for t in job["SecondaryStatusTransitions"]] == ["Starting", "Failed"]
    assert "TrainingStartTime" not in job and "BillableTimeInSeconds" not in job

    sagemaker.create_training_job(**training_request("train-2"))
    sagemaker.stop_training_job(TrainingJobName="train-2")
    job = sagemaker.describe_training_job(TrainingJobName="train-2")
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "Stopped")
    with pytest.raises(ClientError) as raised:
        sagemaker.stop_training_job(TrainingJobName="train-2")
    assert error_code(raised) == "ValidationException"

    sagemaker.create_training_job(**training_request("train-3"))
    status, event = control("POST", "sagemaker/jobs/train-3/stop")
    assert (status, event["detail"]["TrainingJobStatus"]) == (200, "Stopped")
    _, listing = control("GET", "sagemaker/jobs")
    assert [(j["name"], j["status"], j["failure_reason"]) for j in listing["jobs"]] == [
        ("train-1", "Failed", reason),
        ("train-2", "Stopped", None),
        ("train-3", "Stopped", None),
    ]


def json_type(value) -> str:
    return type(value).__name__


def test_state_change_event_matches_the_documented_example(sagemaker, control):
    documented = json.loads(FIXTURE.read_text())
    request = training_request("train-1")
    del request["VpcConfig"]  # the documented event shows an empty map then
    sagemaker.create_training_job(**request)
    _, in_progress = control("GET", "sagemaker/jobs/train-1/event")
    _, event = control("POST", "sagemaker/jobs/train-1/complete", {"metrics": {"validation:auc": 0.9}})

    assert set(event) == set(documented)
    assert {key: json_type(value) for key, value in event.items()} == {
        key: json_type(value) for key, value in documented.items()
    }
    for key, value in documented["detail"].items():
        assert json_type(event["detail"].get(key)) == json_type(value), key
    for key in ("CreationTime", "TrainingStartTime", "TrainingEndTime", "LastModifiedTime"):
        assert len(event["detail"][key]) == 13 and event["detail"][key].isdigit(), key
    assert event["detail"]["VpcConfig"] == {}
    assert event["detail"]["Tags"] == {"team": "ml"}
    assert event["resources"] == [event["detail"]["TrainingJobArn"]]
    assert (event["source"], event["detail-type"], event["account"]) == (
        "aws.sagemaker",
        documented["detail-type"],
        ACCOUNT,
    )
    assert all(t["StartTime"].isdigit() for t in event["detail"]["SecondaryStatusTransitions"])
    assert in_progress["detail"]["TrainingJobStatus"] == "InProgress" and in_progress["id"] != event["id"]
    assert control("GET", "sagemaker/jobs/train-1/event")[1] == event


def test_list_training_jobs(sagemaker, control):
    for name in ("sweep-a-1", "sweep-a-2", "sweep-b-1", "sweep-a-3"):
        sagemaker.create_training_job(**training_request(name))
    control("POST", "sagemaker/jobs/sweep-a-2/complete", {"metrics": {}})

    def names(**kwargs):
        return [s["TrainingJobName"] for s in sagemaker.list_training_jobs(**kwargs)["TrainingJobSummaries"]]

    assert names(NameContains="sweep-a") == ["sweep-a-1", "sweep-a-2", "sweep-a-3"]
    assert names(NameContains="sweep-a", StatusEquals="InProgress") == ["sweep-a-1", "sweep-a-3"]
    assert names(StatusEquals="Completed") == ["sweep-a-2"]
    assert names(SortBy="Name", SortOrder="Descending") == ["sweep-b-1", "sweep-a-3", "sweep-a-2", "sweep-a-1"]
    first_page = sagemaker.list_training_jobs(MaxResults=3)
    assert len(first_page["TrainingJobSummaries"]) == 3
    assert names(MaxResults=3, NextToken=first_page["NextToken"]) == ["sweep-a-3"]
    # Documented: StatusEquals filters the MaxResults jobs picked first.
    assert names(MaxResults=2, StatusEquals="Completed") == ["sweep-a-2"]
    assert names(MaxResults=1, StatusEquals="Completed") == []
    summary = sagemaker.list_training_jobs(NameContains="sweep-a-2")["TrainingJobSummaries"][0]
    assert (summary["SecondaryStatus"], summary["WarmPoolStatus"]["Status"]) == ("Completed", "Available")


def test_list_lag_hides_jobs_created_within_it(sagemaker, control):
    assert control("POST", "sagemaker/list-lag", {"seconds": 3600}) == (200, {"seconds": 3600})
    sagemaker.create_training_job(**training_request("train-1"))
    control("POST", "sagemaker/jobs/train-1/complete", {"metrics": {}})
    assert sagemaker.list_training_jobs()["TrainingJobSummaries"] == []
    assert sagemaker.describe_training_job(TrainingJobName="train-1")["TrainingJobStatus"] == "Completed"

    assert control("POST", "sagemaker/list-lag", {"seconds": 0}) == (200, {"seconds": 0})
    [summary] = sagemaker.list_training_jobs()["TrainingJobSummaries"]
    assert (summary["TrainingJobName"], summary["TrainingJobStatus"]) == ("train-1", "Completed")
    for seconds in (-1, "60", None, True):
        assert control("POST", "sagemaker/list-lag", {"seconds": seconds})[0] == 400


def test_list_lag_shows_the_status_a_job_had(sagemaker, control):
    sagemaker.create_training_job(**training_request("train-1"))
    time.sleep(1.2)
    control("POST", "sagemaker/jobs/train-1/complete", {"metrics": {}})
    control("POST", "sagemaker/list-lag", {"seconds": 0.9})  # after the creation, before the completion

    [summary] = sagemaker.list_training_jobs()["TrainingJobSummaries"]
    assert (summary["TrainingJobStatus"], summary["SecondaryStatus"]) == ("InProgress", "Starting")
    assert "TrainingEndTime" not in summary and summary["LastModifiedTime"] == summary["CreationTime"]
    in_progress = sagemaker.list_training_jobs(StatusEquals="InProgress")["TrainingJobSummaries"]
    assert [s["TrainingJobName"] for s in in_progress] == ["train-1"]
    assert sagemaker.describe_training_job(TrainingJobName="train-1")["TrainingJobStatus"] == "Completed"

    time.sleep(1)
    [summary] = sagemaker.list_training_jobs()["TrainingJobSummaries"]
    assert summary["TrainingJobStatus"] == "Completed"
    assert summary["TrainingEndTime"] == sagemaker.describe_training_job(TrainingJobName="train-1")["TrainingEndTime"]


def quota_request(name: str, instance_type: str, count: int) -> dict:
    request = training_request(name)
    request["ResourceConfig"] = {**request["ResourceConfig"], "InstanceType": instance_type, "InstanceCount": count}
    return request


def test_an_instance_type_without_capacity_fails_its_jobs_while_starting(sagemaker, control):
    assert control("POST", "sagemaker/capacity", {"ml.p4d.24xlarge": "any", "ml.g5.xlarge": "spot"}) == (
        200,
        {"no_capacity": {"ml.p4d.24xlarge": "any", "ml.g5.xlarge": "spot"}},
    )
    assert control("POST", "sagemaker/capacity", {"ml.g5.xlarge": "spot-only"})[0] == 400
    sagemaker.create_training_job(**quota_request("p4d-1", "ml.p4d.24xlarge", 1))
    failed = sagemaker.describe_training_job(TrainingJobName="p4d-1")
    assert (failed["TrainingJobStatus"], failed["SecondaryStatus"]) == ("Failed", "Failed")
    assert failed["FailureReason"].startswith("CapacityError: Unable to provision requested ML compute capacity")
    assert [t["Status"] for t in failed["SecondaryStatusTransitions"]] == ["Starting", "Failed"]
    spot = quota_request("g5-spot", "ml.g5.xlarge", 1)
    spot["EnableManagedSpotTraining"] = True
    spot["StoppingCondition"] = {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 3600}
    sagemaker.create_training_job(**spot)
    stopped = sagemaker.describe_training_job(TrainingJobName="g5-spot")
    assert (stopped["TrainingJobStatus"], stopped["SecondaryStatus"]) == ("Stopped", "MaxWaitTimeExceeded")
    # On-demand capacity of the same type is there; a removed rule frees the type.
    sagemaker.create_training_job(**quota_request("g5-od", "ml.g5.xlarge", 1))
    assert sagemaker.describe_training_job(TrainingJobName="g5-od")["TrainingJobStatus"] == "InProgress"
    assert control("POST", "sagemaker/capacity", {"ml.p4d.24xlarge": None}) == (
        200,
        {"no_capacity": {"ml.g5.xlarge": "spot"}},
    )
    sagemaker.create_training_job(**quota_request("p4d-2", "ml.p4d.24xlarge", 1))
    assert sagemaker.describe_training_job(TrainingJobName="p4d-2")["TrainingJobStatus"] == "InProgress"


M5_QUOTA = "ml.m5.xlarge for training job usage"
G5_QUOTA = "ml.g5.xlarge for training job usage"
G5_SPOT_QUOTA = "ml.g5.xlarge for spot training job usage"
TOTAL_QUOTA = "Number of instances across all training jobs"


def test_quotas_answer_resource_limit_exceeded(sagemaker, control):
    # A bare instance type names its on-demand quota; the answer names quotas in full.
    assert control("POST", "sagemaker/quotas", {"ml.m5.xlarge": 0, "ml.g5.xlarge": 2}) == (
        200,
        {"quotas": {M5_QUOTA: 0, G5_QUOTA: 2}},
    )
    sagemaker.create_training_job(**quota_request("g5-1", "ml.g5.xlarge", 1))
    with pytest.raises(ClientError) as raised:
        sagemaker.create_training_job(**quota_request("g5-2", "ml.g5.xlarge", 2))
    assert error_code(raised) == "ResourceLimitExceeded"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert raised.value.response["Error"]["Message"] == (
        "The account-level service limit 'ml.g5.xlarge for training job usage' is 2 Instances, "
        "with current utilization of 1 Instances and a request delta of 2 Instances. "
        "Please use AWS Service Quotas to request an increase for this quota."
    )
    with pytest.raises(ClientError) as raised:
        sagemaker.create_training_job(**quota_request("m5-1", "ml.m5.xlarge", 1))
    assert "'ml.m5.xlarge for training job usage' is 0 Instances" in raised.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as raised:
        sagemaker.describe_training_job(TrainingJobName="g5-2")
    assert error_code(raised) == "ValidationException"  # not created
    sagemaker.create_training_job(**quota_request("c5-1", "ml.c5.xlarge", 8))  # no quota for the type
    _, listing = control("GET", "sagemaker/jobs")
    assert ([j["name"] for j in listing["jobs"]], listing["create_calls"]) == (["g5-1", "c5-1"], 4)

    # Ended jobs free their instances; a raised quota admits the same name.
    control("POST", "sagemaker/jobs/g5-1/complete", {"metrics": {}})
    sagemaker.create_training_job(**quota_request("g5-2", "ml.g5.xlarge", 2))
    assert control("POST", "sagemaker/quotas", {"ml.m5.xlarge": 1}) == (
        200,
        {"quotas": {M5_QUOTA: 1, G5_QUOTA: 2}},
    )
    sagemaker.create_training_job(**quota_request("m5-1", "ml.m5.xlarge", 1))
    assert control("POST", "sagemaker/quotas", {"ml.m5.xlarge": None}) == (200, {"quotas": {G5_QUOTA: 2}})
    sagemaker.create_training_job(**quota_request("m5-2", "ml.m5.xlarge", 4))
    for bad in ({"ml.m5.xlarge": -1}, {"ml.m5.xlarge": "2"}, {"ml.m5.xlarge": 1.5}, {"ml.m5.xlarge": True}):
        assert control("POST", "sagemaker/quotas", bad)[0] == 400


def spot_request(name: str, instance_type: str, count: int) -> dict:
    request = quota_request(name, instance_type, count)
    request["EnableManagedSpotTraining"] = True
    request["StoppingCondition"] = {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 3600}
    return request


def limit_message(name: str, quota: int, in_use: int, delta: int) -> str:
    return (
        f"The account-level service limit '{name}' is {quota} Instances, with current utilization of {in_use} "
        f"Instances and a request delta of {delta} Instances. "
        "Please use AWS Service Quotas to request an increase for this quota."
    )


def create_refused(sagemaker, request: dict) -> ClientError:
    with pytest.raises(ClientError) as raised:
        sagemaker.create_training_job(**request)
    return raised.value


def test_quotas_by_name_hold_on_demand_spot_and_all_jobs_apart(sagemaker, control):
    assert control("POST", "sagemaker/quotas", {G5_SPOT_QUOTA: 2, TOTAL_QUOTA: 5, "ml.g5.xlarge": 1}) == (
        200,
        {"quotas": {G5_SPOT_QUOTA: 2, TOTAL_QUOTA: 5, G5_QUOTA: 1}},
    )
    sagemaker.create_training_job(**quota_request("od-1", "ml.g5.xlarge", 1))
    refused = create_refused(sagemaker, quota_request("od-2", "ml.g5.xlarge", 1))
    assert refused.response["Error"] == {"Code": "ResourceLimitExceeded", "Message": limit_message(G5_QUOTA, 1, 1, 1)}
    # Spot jobs count against their own quota, not the on-demand one.
    sagemaker.create_training_job(**spot_request("spot-1", "ml.g5.xlarge", 2))
    refused = create_refused(sagemaker, spot_request("spot-2", "ml.g5.xlarge", 1))
    assert refused.response["Error"]["Message"] == limit_message(G5_SPOT_QUOTA, 2, 2, 1)
    # Every job counts against the total: 1 on-demand + 2 spot instances run.
    refused = create_refused(sagemaker, quota_request("c5-1", "ml.c5.xlarge", 3))
    assert refused.response["Error"]["Message"] == limit_message(TOTAL_QUOTA, 5, 3, 3)
    assert refused.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    sagemaker.create_training_job(**quota_request("c5-1", "ml.c5.xlarge", 2))
    refused = create_refused(sagemaker, spot_request("c5-spot", "ml.c5.xlarge", 1))
    assert refused.response["Error"]["Message"] == limit_message(TOTAL_QUOTA, 5, 5, 1)
    _, listing = control("GET", "sagemaker/jobs")
    assert ([j["name"] for j in listing["jobs"]], listing["create_calls"]) == (["od-1", "spot-1", "c5-1"], 7)

    # Ended jobs free their instances on every quota they counted against.
    control("POST", "sagemaker/jobs/spot-1/complete", {})
    sagemaker.create_training_job(**spot_request("spot-2", "ml.g5.xlarge", 2))
    assert control("POST", "sagemaker/quotas", {TOTAL_QUOTA: None, G5_QUOTA: None}) == (
        200,
        {"quotas": {G5_SPOT_QUOTA: 2}},
    )
    sagemaker.create_training_job(**quota_request("od-2", "ml.g5.xlarge", 8))


@pytest.mark.parametrize(
    "key",
    [
        "g5.xlarge",
        "ml.g5",
        "ML.G5.XLARGE",
        "ml.g5.xlarge for inference usage",
        "ml.g5.xlarge for spot training job usage ",
        "Number of instances across all training jobs ",
        "number of instances across all training jobs",
        "",
    ],
)
def test_quota_keys_must_name_a_training_quota(control, key):
    control("POST", "sagemaker/quotas", {"ml.c5.xlarge": 1})
    status, answer = control("POST", "sagemaker/quotas", {"ml.g5.xlarge": 3, key: 1})
    assert status == 400
    assert answer["error"] == (
        f"unknown quota {key!r}: a key must be an instance type (ml.m5.xlarge, for its on-demand quota), "
        "'<type> for training job usage', '<type> for spot training job usage' or "
        "'Number of instances across all training jobs'"
    )
    # Nothing of the refused request applies.
    assert control("POST", "sagemaker/quotas", {}) == (200, {"quotas": {"ml.c5.xlarge for training job usage": 1}})


# --- EventBridge and reset -----------------------------------------------------


def test_put_events_are_recorded(client, control):
    events = client("events")
    events.create_event_bus(Name="retrain")
    events.put_events(
        Entries=[
            {
                "EventBusName": "retrain",
                "Source": "retrain.import",
                "DetailType": "Import Finished",
                "Detail": '{"task":"t-1"}',
                "Resources": ["arn:x"],
            },
            {"Source": "retrain.sweep", "DetailType": "Sweep Started", "Detail": "{}"},
            {"Source": "retrain.sweep", "DetailType": "Broken", "Detail": "not json"},
        ]
    )
    _, recorded = control("GET", "events")
    assert [(e["EventBusName"], e["DetailType"]) for e in recorded["entries"]] == [
        ("retrain", "Import Finished"),
        ("default", "Sweep Started"),
    ]
    first = recorded["entries"][0]
    assert (first["Source"], first["Detail"], first["Resources"]) == ("retrain.import", '{"task":"t-1"}', ["arn:x"])
    assert first["Time"].endswith("Z")
    _, only_retrain = control("GET", "events?bus=retrain")
    assert [e["DetailType"] for e in only_retrain["entries"]] == ["Import Finished"]


def event_entry(detail: str, **fields) -> dict:
    return {"Source": "retrain.sweep", "DetailType": "Trial Finished", "Detail": detail, **fields}


def detail_of_size(size: int, filler: str = "a") -> str:
    """A JSON object string of `size` UTF-8 bytes (`filler` is 1 or 2 bytes)."""
    wide, narrow = divmod(size - len('{"p":""}'), len(filler.encode()))
    return '{"p":"' + filler * wide + "a" * narrow + '"}'


def test_put_events_total_entry_size_must_be_under_256_kb(client, control):
    events = client("events")
    limit = 256 * 1024
    # Documented size: Time 14 bytes, UTF-8 bytes of Source, DetailType, Detail, each Resource.
    fixed = 14 + len("retrain.sweep") + len("Trial Finished") + len("arn:aws:sagemaker:us-east-1:1:x")
    fields = {"Time": 1700000000, "Resources": ["arn:aws:sagemaker:us-east-1:1:x"]}
    just_under = event_entry(detail_of_size(limit - 1 - fixed, "é"), **fields)
    assert len(just_under["Detail"].encode()) == limit - 1 - fixed
    assert events.put_events(Entries=[just_under])["FailedEntryCount"] == 0

    at_limit = event_entry(detail_of_size(limit - fixed), **fields)
    halves = [event_entry(detail_of_size(limit // 2)), event_entry(detail_of_size(limit // 2))]
    for entries in ([at_limit], halves):
        with pytest.raises(ClientError) as raised:
            events.put_events(Entries=entries)
        assert error_code(raised) == "ValidationException"
        message = raised.value.response["Error"]["Message"]
        assert message == "Total size of the entries in the request is over the limit."
    _, recorded = control("GET", "events")
    assert len(recorded["entries"]) == 1  # only the entry under the limit


def test_armed_event_failures_fail_single_entries(client, control):
    events = client("events")
    assert control("POST", "events/failures", {"count": 1, "code": "ThrottlingException"}) == (200, {"armed": 1})
    answer = events.put_events(Entries=[event_entry('{"trial": 1}'), event_entry('{"trial": 2}')])
    assert answer["FailedEntryCount"] == 1
    failed, accepted = answer["Entries"]
    assert (failed["ErrorCode"], "EventId" in failed) == ("ThrottlingException", False)
    assert failed["ErrorMessage"]
    assert "EventId" in accepted and "ErrorCode" not in accepted

    # Armed failures carry over from one call to the next; the default code is InternalFailure.
    assert control("POST", "events/failures", {"count": 2, "message": "try later"}) == (200, {"armed": 2})
    assert events.put_events(Entries=[event_entry('{"trial": 3}')])["Entries"] == [
        {"ErrorCode": "InternalFailure", "ErrorMessage": "try later"}
    ]
    answer = events.put_events(Entries=[event_entry('{"trial": 4}'), event_entry('{"trial": 5}')])
    assert answer["FailedEntryCount"] == 1 and answer["Entries"][0]["ErrorCode"] == "InternalFailure"
    assert events.put_events(Entries=[event_entry('{"trial": 6}')])["FailedEntryCount"] == 0
    _, recorded = control("GET", "events")
    assert [json.loads(e["Detail"])["trial"] for e in recorded["entries"]] == [2, 5, 6]
    for bad in ({}, {"count": -1}, {"count": "2"}, {"count": 1, "code": 5}):
        assert control("POST", "events/failures", bad)[0] == 400


@pytest.mark.parametrize("path", ["_retrain/reset", "moto-api/reset"])
def test_reset_clears_everything(url, fsx, sagemaker, client, control, path):
    file_system_id = create_file_system(fsx)["FileSystemId"]
    create_task(fsx, file_system_id)
    sagemaker.create_training_job(**training_request("train-1"))
    client("events").put_events(Entries=[{"Source": "retrain", "DetailType": "x", "Detail": "{}"}])
    control("POST", "sagemaker/quotas", {"ml.g5.xlarge": 0})
    control("POST", "sagemaker/list-lag", {"seconds": 3600})
    control("POST", "events/failures", {"count": 5})
    control("POST", "s3/conflicts", {"count": 5})
    control("POST", "clock/advance", {"seconds": 3600})
    control("POST", "fsx/task-duration", {"seconds": 60})
    control("POST", "sagemaker/training-plans", plan_body("p5-plan"))
    control("POST", "servicequotas/errors", {"error": "TooManyRequestsException"})

    assert requests.post(f"{url}/{path}", timeout=5).status_code == 200
    assert control("GET", "clock")[1]["offset"] == 0
    assert control("GET", "fsx/tasks")[1] == {"tasks": [], "max_executing_per_file_system": {}}
    assert control("GET", "sagemaker/jobs")[1] == {
        "jobs": [],
        "max_in_progress": 0,
        "create_calls": 0,
        "resource_in_use": 0,
        "max_in_progress_by_tag": {},
    }
    assert control("GET", "events")[1] == {"entries": []}
    assert fsx.describe_file_systems()["FileSystems"] == []
    sagemaker.create_training_job(**training_request("train-1"))  # the name is free, the quota gone
    assert len(sagemaker.list_training_jobs()["TrainingJobSummaries"]) == 1  # no lag
    assert control("POST", "sagemaker/quotas", {}) == (200, {"quotas": {}})
    put = client("events").put_events(Entries=[{"Source": "retrain", "DetailType": "x", "Detail": "{}"}])
    assert put["FailedEntryCount"] == 0  # no failure left armed
    file_system_id = create_file_system(fsx)["FileSystemId"]
    untimed = create_task(fsx, file_system_id)
    control("POST", "clock/advance", {"seconds": 60})
    assert describe_task(fsx, untimed["TaskId"])["Lifecycle"] == "EXECUTING"  # no task duration left
    s3 = client("s3")
    s3.create_bucket(Bucket="retrain-markers")
    s3.put_object(Bucket="retrain-markers", Key="run/started", Body=b"1", IfNoneMatch="*")
    with pytest.raises(ClientError) as raised:
        sagemaker.describe_training_plan(TrainingPlanName="p5-plan")
    assert error_code(raised) == "ResourceNotFound"  # no plan left
    assert client("service-quotas").list_service_quotas(ServiceCode="sagemaker")["Quotas"] == []  # no error left


def test_server_stops_cleanly_on_sigint():
    process, address = start_emulator()
    assert requests.get(f"{address}/_retrain/events", timeout=5).json() == {"entries": []}
    started = time.monotonic()
    assert stop_emulator(process, signal.SIGINT) == 0
    assert time.monotonic() - started < 5


# --- S3 conditional writes and SQS delays ---------------------------------------


def race_conditional_writes(s3, key: str, writers: int = 20) -> list[int]:
    """The HTTP status of each of `writers` concurrent If-None-Match: * puts of `key`."""
    start = threading.Barrier(writers)

    def put(writer: int) -> int:
        start.wait()
        try:
            s3.put_object(Bucket="retrain-markers", Key=key, Body=str(writer).encode(), IfNoneMatch="*")
            return 200
        except ClientError as error:
            assert error.response["Error"]["Code"] == "PreconditionFailed"
            return error.response["ResponseMetadata"]["HTTPStatusCode"]

    with ThreadPoolExecutor(max_workers=writers) as pool:
        statuses = list(pool.map(put, range(writers)))
    winner = str(statuses.index(200)).encode() if 200 in statuses else None
    assert s3.get_object(Bucket="retrain-markers", Key=key)["Body"].read() == winner
    return statuses


def test_delete_objects_takes_at_most_1000_keys(client):
    s3 = client("s3")
    s3.create_bucket(Bucket="retrain-markers")
    for n in range(3):
        s3.put_object(Bucket="retrain-markers", Key=f"pending/{n}", Body=b"1")
    too_many = [{"Key": f"pending/{n}"} for n in range(1001)]
    with pytest.raises(ClientError) as refused:
        s3.delete_objects(Bucket="retrain-markers", Delete={"Objects": too_many, "Quiet": True})
    assert refused.value.response["Error"]["Code"] == "MalformedXML"
    assert s3.list_objects_v2(Bucket="retrain-markers")["KeyCount"] == 3, "nothing deleted"
    out = s3.delete_objects(Bucket="retrain-markers", Delete={"Objects": too_many[:1000], "Quiet": True})
    assert not out.get("Errors")
    assert s3.list_objects_v2(Bucket="retrain-markers").get("KeyCount", 0) == 0


def test_concurrent_conditional_writes_have_one_winner(client):
    s3 = client("s3", max_pool_connections=20)
    s3.create_bucket(Bucket="retrain-markers")
    assert sorted(race_conditional_writes(s3, "sweeps/7/lock")) == [200] + [412] * 19


def test_conditional_write_check_and_write_are_atomic(in_process_url, monkeypatch):
    from moto.s3.models import S3Backend

    write = S3Backend.put_object

    def slow_write(self, *args, **kwargs):
        time.sleep(0.05)  # between moto's "key exists?" check and the write
        return write(self, *args, **kwargs)

    monkeypatch.setattr(S3Backend, "put_object", slow_write)
    s3 = boto_client(in_process_url, "s3", max_pool_connections=20)
    s3.create_bucket(Bucket="retrain-markers")
    assert sorted(race_conditional_writes(s3, "sweeps/7/lock")) == [200] + [412] * 19


def test_armed_conflicts_answer_409_without_writing(client, control):
    s3 = client("s3")
    s3.create_bucket(Bucket="retrain-markers")
    assert control("POST", "s3/conflicts", {"count": 2, "key_prefix": "sweeps/"}) == (200, {"armed": 2})
    s3.put_object(Bucket="retrain-markers", Key="runs/1", Body=b"1", IfNoneMatch="*")  # other prefix
    s3.put_object(Bucket="retrain-markers", Key="sweeps/plain", Body=b"1")  # not conditional
    for _ in range(2):
        with pytest.raises(ClientError) as raised:
            s3.put_object(Bucket="retrain-markers", Key="sweeps/7/lock", Body=b"1", IfNoneMatch="*")
        assert (error_code(raised), raised.value.response["ResponseMetadata"]["HTTPStatusCode"]) == (
            "ConditionalRequestConflict",
            409,
        )
        assert raised.value.response["Error"]["Message"].startswith("A conflicting operation occurred.")
        with pytest.raises(ClientError) as raised:
            s3.head_object(Bucket="retrain-markers", Key="sweeps/7/lock")
        assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404  # nothing written
    s3.put_object(Bucket="retrain-markers", Key="sweeps/7/lock", Body=b"1", IfNoneMatch="*")

    assert control("POST", "s3/conflicts", {"count": 1}) == (200, {"armed": 1})  # any key
    with pytest.raises(ClientError) as raised:
        s3.put_object(Bucket="retrain-markers", Key="runs/2", Body=b"1", IfNoneMatch="*")
    assert error_code(raised) == "ConditionalRequestConflict"
    for bad in ({}, {"count": -1}, {"count": 1, "key_prefix": 3}):
        assert control("POST", "s3/conflicts", bad)[0] == 400


def test_release_delayed_makes_delayed_messages_visible(url, client, control):
    sqs = client("sqs")
    queue = sqs.create_queue(QueueName="retrain-delayed")["QueueUrl"]
    sqs.create_queue(QueueName="retrain-empty")
    sqs.send_message(QueueUrl=queue, MessageBody="in 15 minutes", DelaySeconds=900)
    sqs.send_message(QueueUrl=queue, MessageBody="now")
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]] == ["now"]
    assert "Messages" not in sqs.receive_message(QueueUrl=queue)

    status, listing = control("GET", "sqs/queues")
    assert status == 200
    delayed, empty = listing["queues"]
    assert 899 < delayed.pop("next_delayed_in") <= 900
    assert empty.pop("next_delayed_in") is None
    assert delayed == {
        "name": "retrain-delayed",
        "url": queue,
        "visible": 0,
        "delayed": 1,
        "in_flight": 1,
        "max_receive_count_seen": 1,
    }
    assert (empty["name"], empty["visible"], empty["delayed"], empty["max_receive_count_seen"]) == (
        "retrain-empty",
        0,
        0,
        0,
    )

    assert control("POST", "sqs/release-delayed") == (200, {"released": 1})
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=queue)["Messages"]] == ["in 15 minutes"]
    assert control("POST", "sqs/release-delayed") == (200, {"released": 0})
    assert control("GET", "sqs/queues")[1]["queues"][0]["in_flight"] == 2
    assert url in queue


def test_advancing_the_clock_delivers_timers_in_order(client, control):
    sqs = client("sqs")
    queue = sqs.create_queue(QueueName="retrain-watch")["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody="in a minute", DelaySeconds=60)
    sqs.send_message(QueueUrl=queue, MessageBody="in 30 s", DelaySeconds=30)
    status, before = control("GET", "clock")
    assert status == 200 and before["offset"] == 0

    def next_in() -> float:
        return control("GET", "sqs/queues")[1]["queues"][0]["next_delayed_in"]

    assert 29 < next_in() <= 30
    status, after = control("POST", "clock/advance", {"seconds": 30})
    assert status == 200 and after["offset"] == 30 and after["now"] >= before["now"] + 30
    received = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=600)["Messages"]
    assert [m["Body"] for m in received] == ["in 30 s"]
    assert 29 < next_in() <= 30
    control("POST", "clock/advance", {"seconds": 30})
    later = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=3600)["Messages"]
    assert [m["Body"] for m in later] == ["in a minute"]
    assert next_in() is None
    # Visibility timeouts run on the same clock: the first message is back 600 s after its receive.
    control("POST", "clock/advance", {"seconds": 560})
    assert "Messages" not in sqs.receive_message(QueueUrl=queue)
    control("POST", "clock/advance", {"seconds": 10})
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=queue)["Messages"]] == ["in 30 s"]
    assert control("GET", "clock")[1]["offset"] == 630
    for bad in ({}, {"seconds": -1}, {"seconds": "60"}, {"seconds": True}):
        assert control("POST", "clock/advance", bad)[0] == 400


def test_timed_import_tasks_end_on_the_emulator_clock(fsx, control):
    file_system_id = create_file_system(fsx)["FileSystemId"]
    untimed = create_task(fsx, file_system_id)
    control("POST", f"fsx/tasks/{untimed['TaskId']}/finish", {"lifecycle": "SUCCEEDED"})
    assert control("POST", "fsx/task-duration", {"seconds": 3600}) == (200, {"seconds": 3600})
    task = create_task(fsx, file_system_id, Paths=["s3://retrain-data/raw/2025"])
    assert describe_task(fsx, task["TaskId"])["Lifecycle"] == "EXECUTING"
    control("POST", "clock/advance", {"seconds": 3599})
    assert describe_task(fsx, task["TaskId"])["Lifecycle"] == "EXECUTING"
    control("POST", "clock/advance", {"seconds": 1})
    # The task has ended whoever looks first: a new task may start at once.
    follow_up = create_task(fsx, file_system_id, Paths=["s3://retrain-data/raw/2026"])
    ended = describe_task(fsx, task["TaskId"])
    assert ended["Lifecycle"] == "SUCCEEDED"
    assert (ended["EndTime"] - ended["CreationTime"]).total_seconds() == pytest.approx(3600, abs=0.01)
    listed = {t["TaskId"]: t for t in control("GET", "fsx/tasks")[1]["tasks"]}
    assert listed[task["TaskId"]]["EndTime"] == pytest.approx(listed[task["TaskId"]]["CreationTime"] + 3600)
    # A duration turned off again leaves new tasks to the control API; tasks already timed keep theirs.
    assert control("POST", "fsx/task-duration", {"seconds": None}) == (200, {"seconds": None})
    control("POST", "clock/advance", {"seconds": 3600})
    assert control("GET", "fsx/tasks")[1]["tasks"][-1]["Lifecycle"] == "SUCCEEDED"
    last = create_task(fsx, file_system_id, Paths=["s3://retrain-data/raw/2027"])
    control("POST", "clock/advance", {"seconds": 900})
    assert describe_task(fsx, last["TaskId"])["Lifecycle"] == "EXECUTING"
    assert describe_task(fsx, follow_up["TaskId"])["Lifecycle"] == "SUCCEEDED"
    for bad in ({"seconds": -1}, {"seconds": "1h"}):
        assert control("POST", "fsx/task-duration", bad)[0] == 400


# --- Unpatched moto behaviour retrain relies on ---------------------------------


def test_s3_conditional_write_is_refused_when_the_key_exists(client):
    s3 = client("s3")
    s3.create_bucket(Bucket="retrain-markers")
    s3.put_object(Bucket="retrain-markers", Key="run/started", Body=b"1", IfNoneMatch="*")
    with pytest.raises(ClientError) as raised:
        s3.put_object(Bucket="retrain-markers", Key="run/started", Body=b"2", IfNoneMatch="*")
    assert (error_code(raised), raised.value.response["ResponseMetadata"]["HTTPStatusCode"]) == (
        "PreconditionFailed",
        412,
    )


def test_sqs_message_delay_is_honoured(client):
    sqs = client("sqs")
    queue = sqs.create_queue(QueueName="retrain-delayed")["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody="later", DelaySeconds=1)
    assert "Messages" not in sqs.receive_message(QueueUrl=queue)
    time.sleep(1.2)
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=queue)["Messages"]] == ["later"]


def test_sqs_redrives_to_the_dead_letter_queue(client):
    sqs = client("sqs")
    dead = sqs.create_queue(QueueName="retrain-dlq")["QueueUrl"]
    dead_arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dead_arn, "maxReceiveCount": "1"})
    queue = sqs.create_queue(QueueName="retrain-work", Attributes={"RedrivePolicy": redrive})["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody="poison")
    assert len(sqs.receive_message(QueueUrl=queue, VisibilityTimeout=0)["Messages"]) == 1
    assert "Messages" not in sqs.receive_message(QueueUrl=queue)
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=dead)["Messages"]] == ["poison"]


# --- SageMaker Model Registry ------------------------------------------------


def create_package(sagemaker, group: str, token: str, **extra) -> str:
    return sagemaker.create_model_package(
        ModelPackageGroupName=group,
        ClientToken=token,
        InferenceSpecification={
            "Containers": [{"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/xgb:1", "ModelDataUrl": "s3://m/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        **extra,
    )["ModelPackageArn"]


def test_model_packages_are_versioned_idempotent_per_client_token_and_listed_by_status(sagemaker):
    with pytest.raises(ClientError) as raised:
        sagemaker.describe_model_package_group(ModelPackageGroupName="churn")
    assert error_code(raised) == "ValidationException"
    sagemaker.create_model_package_group(ModelPackageGroupName="churn", Tags=[{"Key": "retrain:pipeline", "Value": "churn"}])
    first = create_package(sagemaker, "churn", "sweep-1", ModelApprovalStatus="Approved")
    again = create_package(sagemaker, "churn", "sweep-1", ModelApprovalStatus="Approved")
    second = create_package(
        sagemaker, "churn", "sweep-2", ModelApprovalStatus="PendingManualApproval", CustomerMetadataProperties={"sweep": "2"}
    )
    assert again == first and first.endswith("/churn/1") and second.endswith("/churn/2")
    listed = sagemaker.list_model_packages(ModelPackageGroupName="churn", SortBy="CreationTime", SortOrder="Descending")
    assert [p["ModelPackageArn"] for p in listed["ModelPackageSummaryList"]] == [second, first]
    approved = sagemaker.list_model_packages(ModelPackageGroupName="churn", ModelApprovalStatus="Approved")
    assert [p["ModelPackageArn"] for p in approved["ModelPackageSummaryList"]] == [first]
    sagemaker.update_model_package(ModelPackageArn=second, ModelApprovalStatus="Rejected", ApprovalDescription="not better")
    described = sagemaker.describe_model_package(ModelPackageName=second)
    assert described["ModelApprovalStatus"] == "Rejected"
    assert described["ApprovalDescription"] == "not better"
    # An update changes only what it names.
    assert described["CustomerMetadataProperties"] == {"sweep": "2"}
    sagemaker.update_model_package(ModelPackageArn=second, ModelApprovalStatus="Rejected")
    assert sagemaker.describe_model_package(ModelPackageName=second)["ApprovalDescription"] == "not better"
    with pytest.raises(ClientError) as raised:
        sagemaker.update_model_package(ModelPackageArn=second, ModelApprovalStatus="Maybe")
    assert error_code(raised) == "ValidationException"


def test_completed_jobs_report_model_artifacts_and_billable_time(sagemaker, control):
    sagemaker.create_training_job(**training_request("train-1"))
    control("POST", "sagemaker/jobs/train-1/complete", {"metrics": {"validation:auc": 0.9}})
    described = sagemaker.describe_training_job(TrainingJobName="train-1")
    assert described["ModelArtifacts"]["S3ModelArtifacts"].endswith("/train-1/output/model.tar.gz")
    assert described["BillableTimeInSeconds"] > 0


def test_a_completed_job_may_say_how_long_it_trained(sagemaker, control):
    sagemaker.create_training_job(**training_request("train-1"))
    status, _ = control("POST", "sagemaker/jobs/train-1/complete", {"metrics": {}, "billable_seconds": 3600})
    assert status == 200
    described = sagemaker.describe_training_job(TrainingJobName="train-1")
    assert described["BillableTimeInSeconds"] == 3600
    assert described["TrainingTimeInSeconds"] == 3600
    sagemaker.create_training_job(**training_request("train-2"))
    assert control("POST", "sagemaker/jobs/train-2/complete", {"billable_seconds": "1h"})[0] == 400
    assert control("POST", "sagemaker/jobs/train-2/complete", {"billable_seconds": 0})[0] == 400


def test_a_spot_job_is_billed_for_less_than_it_trained(sagemaker, control):
    sagemaker.create_training_job(**spot_request("spot-1", "ml.g5.xlarge", 1))
    status, event = control(
        "POST", "sagemaker/jobs/spot-1/complete", {"training_seconds": 3600, "billable_seconds": 1200}
    )
    assert status == 200
    assert (event["detail"]["TrainingTimeInSeconds"], event["detail"]["BillableTimeInSeconds"]) == (3600, 1200)
    described = sagemaker.describe_training_job(TrainingJobName="spot-1")
    assert (described["TrainingTimeInSeconds"], described["BillableTimeInSeconds"]) == (3600, 1200)
    assert described["EnableManagedSpotTraining"] is True
    # Without billable_seconds the whole training time is billed, as on demand.
    sagemaker.create_training_job(**training_request("od-1"))
    control("POST", "sagemaker/jobs/od-1/complete", {"training_seconds": 5400})
    described = sagemaker.describe_training_job(TrainingJobName="od-1")
    assert (described["TrainingTimeInSeconds"], described["BillableTimeInSeconds"]) == (5400, 5400)


@pytest.mark.parametrize(
    "payload, error",
    [
        ({"training_seconds": 0}, "training_seconds must be a whole number of seconds, at least 1"),
        ({"training_seconds": 60.5}, "training_seconds must be a whole number of seconds, at least 1"),
        ({"training_seconds": True}, "training_seconds must be a whole number of seconds, at least 1"),
        ({"training_seconds": "60"}, "training_seconds must be a whole number of seconds, at least 1"),
        ({"training_seconds": 600, "billable_seconds": 601}, "billable_seconds must not exceed training_seconds"),
    ],
)
def test_training_seconds_are_validated(sagemaker, control, payload, error):
    sagemaker.create_training_job(**spot_request("spot-1", "ml.g5.xlarge", 1))
    assert control("POST", "sagemaker/jobs/spot-1/complete", payload) == (400, {"error": error})
    assert sagemaker.describe_training_job(TrainingJobName="spot-1")["TrainingJobStatus"] == "InProgress"


# --------------------------------------------------- S3 -> EventBridge -> SQS

DATA_BUCKET = "example-training-data"
OBJECT_CREATED = {
    "source": ["aws.s3"],
    "detail-type": ["Object Created"],
    "detail": {"bucket": {"name": [DATA_BUCKET]}, "object": {"key": [{"prefix": "datasets/"}]}},
}


def eventbridge_route(client, *, policy: bool = True, source_arn: str | None = None, bus: str = "default"):
    """The upload route as template.yaml builds it: the bucket's EventBridge
    notifications on, a rule for Object Created on the bus, the queue as its
    target, and a queue policy that lets that rule (or `source_arn`) send."""
    s3, events, sqs = client("s3"), client("events"), client("sqs")
    s3.create_bucket(Bucket=DATA_BUCKET)
    s3.put_bucket_notification_configuration(
        Bucket=DATA_BUCKET, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    url = sqs.create_queue(QueueName="uploads")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    if bus != "default":
        events.create_event_bus(Name=bus)
    rule = events.put_rule(Name="uploads", EventBusName=bus, EventPattern=json.dumps(OBJECT_CREATED))["RuleArn"]
    events.put_targets(Rule="uploads", EventBusName=bus, Targets=[{"Id": "UploadQueue", "Arn": arn}])
    if policy:
        statement = {
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": source_arn or rule}},
        }
        sqs.set_queue_attributes(
            QueueUrl=url, Attributes={"Policy": json.dumps({"Version": "2012-10-17", "Statement": [statement]})}
        )
    return s3, sqs, url


def received(sqs, url: str) -> list[dict]:
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def test_s3_object_created_reaches_the_queue_in_the_documented_eventbridge_shape(client):
    s3, sqs, url = eventbridge_route(client)
    s3.put_object(Bucket=DATA_BUCKET, Key="datasets/churn/new batch/a+b=1.csv", Body=b"x")
    s3.put_object(Bucket=DATA_BUCKET, Key="elsewhere/skipped.csv", Body=b"x")
    (event,) = received(sqs, url)
    documented = json.loads((HERE.parents[1] / "events" / "eventbridge-s3-object-created.json").read_text())
    assert set(event) == set(documented)
    assert set(event["detail"]) == set(documented["detail"])
    assert set(event["detail"]["object"]) == set(documented["detail"]["object"]) - {"version-id"}
    assert (event["source"], event["detail-type"], event["account"]) == ("aws.s3", "Object Created", ACCOUNT)
    assert event["resources"] == [f"arn:aws:s3:::{DATA_BUCKET}"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["time"]), event["time"]
    # The key as written, not URL-encoded; the API behind the event as `reason`.
    assert event["detail"]["object"]["key"] == "datasets/churn/new batch/a+b=1.csv"
    assert event["detail"]["reason"] == "PutObject"
    assert event["detail"]["object"]["size"] == 1


def test_every_eventbridge_s3_event_has_its_own_id_and_a_growing_sequencer(client):
    s3, sqs, url = eventbridge_route(client)
    for _ in range(3):
        s3.put_object(Bucket=DATA_BUCKET, Key="datasets/churn/same.csv", Body=b"x")
    events = received(sqs, url)
    assert len(events) == 3
    assert len({e["id"] for e in events}) == 3
    sequencers = [int(e["detail"]["object"]["sequencer"], 16) for e in events]
    assert sorted(sequencers) == sorted(set(sequencers)) and len(set(sequencers)) == 3


def test_a_versioned_bucket_reports_the_version_id(client):
    s3, sqs, url = eventbridge_route(client)
    s3.put_bucket_versioning(Bucket=DATA_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    version = s3.put_object(Bucket=DATA_BUCKET, Key="datasets/v.csv", Body=b"x")["VersionId"]
    (event,) = received(sqs, url)
    assert event["detail"]["object"]["version-id"] == version


def test_s3_sends_to_eventbridge_only_when_the_bucket_configuration_is_on(client):
    s3, sqs, url = eventbridge_route(client)
    s3.put_bucket_notification_configuration(Bucket=DATA_BUCKET, NotificationConfiguration={})
    s3.put_object(Bucket=DATA_BUCKET, Key="datasets/off.csv", Body=b"x")
    assert received(sqs, url) == []


def test_s3_sends_only_to_the_default_bus(client):
    s3, sqs, url = eventbridge_route(client, bus="custom")
    s3.put_object(Bucket=DATA_BUCKET, Key="datasets/churn/a.csv", Body=b"x")
    assert received(sqs, url) == []


@pytest.mark.parametrize(
    "policy, source_arn",
    [(False, None), (True, "arn:aws:events:us-east-1:123456789012:rule/another-rule")],
    ids=["no queue policy", "policy for another rule"],
)
def test_eventbridge_delivers_to_a_queue_only_if_its_policy_allows_the_rule(client, policy, source_arn):
    s3, sqs, url = eventbridge_route(client, policy=policy, source_arn=source_arn)
    s3.put_object(Bucket=DATA_BUCKET, Key="datasets/churn/a.csv", Body=b"x")
    assert received(sqs, url) == []


# ------------------------------------------- EventBridge -> CloudWatch Logs


def test_a_rule_with_a_log_group_target_logs_each_event_it_matches(client):
    events, logs = client("events"), client("logs")
    events.create_event_bus(Name="retrain")
    logs.create_log_group(logGroupName="/aws/events/retrain")
    events.put_rule(Name="log", EventBusName="retrain", EventPattern=json.dumps({"source": ["retrain"]}))
    arn = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/events/retrain"
    events.put_targets(Rule="log", EventBusName="retrain", Targets=[{"Id": "log", "Arn": arn}])
    detail = {"pipeline": "churn", "sweep_id": "s1", "event_id": "e1"}
    events.put_events(
        Entries=[
            {"EventBusName": "retrain", "Source": "retrain", "DetailType": "SweepStarted", "Detail": json.dumps(detail)},
            {"EventBusName": "retrain", "Source": "other", "DetailType": "Ignored", "Detail": "{}"},
        ]
    )
    logged = logs.filter_log_events(logGroupName="/aws/events/retrain")["events"]
    assert len(logged) == 1, logged
    event = json.loads(logged[0]["message"])
    assert (event["source"], event["detail-type"], event["detail"]) == ("retrain", "SweepStarted", detail)
    assert event["time"].endswith("Z")
    assert isinstance(logged[0]["timestamp"], int), "a long, as the API reference types it"


# ------------------------------------------------------------- Service Quotas


def test_service_quotas_answers_the_training_quotas_that_create_training_job_enforces(client, control, sagemaker):
    quotas = client("service-quotas")
    control("POST", "sagemaker/quotas", {"ml.g5.xlarge": 0, "ml.g5.2xlarge": 4})
    listed = quotas.list_service_quotas(ServiceCode="sagemaker")["Quotas"]
    by_name = {q["QuotaName"]: q for q in listed}
    assert sorted(by_name) == ["ml.g5.2xlarge for training job usage", "ml.g5.xlarge for training job usage"]
    zero = by_name["ml.g5.xlarge for training job usage"]
    assert (zero["Value"], zero["ServiceCode"], zero["Adjustable"]) == (0.0, "sagemaker", True)
    assert zero["QuotaCode"].startswith("L-") and zero["QuotaArn"].endswith(f"sagemaker/{zero['QuotaCode']}")
    assert quotas.get_service_quota(ServiceCode="sagemaker", QuotaCode=zero["QuotaCode"])["Quota"] == zero
    # The quota it lists is the one CreateTrainingJob enforces.
    with pytest.raises(ClientError) as raised:
        sagemaker.create_training_job(**training_request("g5-0"))
    assert error_code(raised) == "ResourceLimitExceeded"
    assert "'ml.g5.xlarge for training job usage' is 0 Instances" in str(raised.value)
    with pytest.raises(ClientError) as raised:
        quotas.get_service_quota(ServiceCode="sagemaker", QuotaCode="L-00000000")
    assert error_code(raised) == "NoSuchResourceException"
    # Pages of MaxResults, joined by NextToken.
    first = quotas.list_service_quotas(ServiceCode="sagemaker", MaxResults=1)
    second = quotas.list_service_quotas(ServiceCode="sagemaker", MaxResults=1, NextToken=first["NextToken"])
    assert [q["QuotaName"] for q in first["Quotas"] + second["Quotas"]] == [q["QuotaName"] for q in listed]
    assert "NextToken" not in second


def test_service_quotas_answers_all_three_kinds_of_training_quota(client, control):
    quotas = client("service-quotas")
    control("POST", "sagemaker/quotas", {"ml.g5.xlarge": 4, G5_SPOT_QUOTA: 8, TOTAL_QUOTA: 20})
    listed = quotas.list_service_quotas(ServiceCode="sagemaker")["Quotas"]
    # By name, as before.
    assert [(q["QuotaName"], q["Value"]) for q in listed] == [
        (TOTAL_QUOTA, 20.0),
        (G5_SPOT_QUOTA, 8.0),
        (G5_QUOTA, 4.0),
    ]
    for quota in listed:
        assert set(quota) == {
            "ServiceCode",
            "ServiceName",
            "QuotaArn",
            "QuotaCode",
            "QuotaName",
            "Value",
            "Unit",
            "Adjustable",
            "GlobalQuota",
        }
        assert (quota["Unit"], quota["Adjustable"], quota["GlobalQuota"]) == ("None", True, False)
        assert re.fullmatch(r"L-[0-9A-F]{8}", quota["QuotaCode"])
        assert quota["QuotaArn"] == f"arn:aws:servicequotas:us-east-1:{ACCOUNT}:sagemaker/{quota['QuotaCode']}"
        assert quotas.get_service_quota(ServiceCode="sagemaker", QuotaCode=quota["QuotaCode"])["Quota"] == quota
    assert len({q["QuotaCode"] for q in listed}) == 3
    # A code stays with its quota's name, however the quota was set.
    control("POST", "sagemaker/quotas", {G5_QUOTA: 6})
    again = {q["QuotaName"]: q for q in quotas.list_service_quotas(ServiceCode="sagemaker")["Quotas"]}
    assert (again[G5_QUOTA]["QuotaCode"], again[G5_QUOTA]["Value"]) == (listed[2]["QuotaCode"], 6.0)


def denied_message(action: str) -> str:
    return (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/retrain-function-role/retrain-function is not authorized to "
        f"perform: servicequotas:{action} because no identity-based policy allows the servicequotas:{action} action"
    )


@pytest.mark.parametrize("service_code", ["sagemaker", "vpc"])
def test_armed_service_quotas_errors_answer_every_read(client, control, service_code):
    quotas = client("service-quotas")
    control("POST", "sagemaker/quotas", {"ml.g5.xlarge": 4})
    code = quotas.list_service_quotas(ServiceCode=service_code)["Quotas"][0]["QuotaCode"]
    calls = {
        "ListServiceQuotas": lambda: quotas.list_service_quotas(ServiceCode=service_code),
        "GetServiceQuota": lambda: quotas.get_service_quota(ServiceCode=service_code, QuotaCode=code),
    }
    messages = {
        "AccessDeniedException": denied_message,
        "TooManyRequestsException": lambda action: "Rate exceeded",
    }
    for error, message in messages.items():
        assert control("POST", "servicequotas/errors", {"error": error}) == (200, {"error": error})
        for action, call in calls.items():
            for _ in range(2):  # armed until cleared, not for one call
                with pytest.raises(ClientError) as raised:
                    call()
                assert raised.value.operation_name == action
                assert raised.value.response["Error"] == {"Code": error, "Message": message(action)}
                assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert control("POST", "servicequotas/errors", {"error": None}) == (200, {"error": None})
    assert quotas.get_service_quota(ServiceCode=service_code, QuotaCode=code)["Quota"]["QuotaCode"] == code


def test_service_quotas_errors_are_validated(client, control):
    allowed = "error must be one of AccessDeniedException, TooManyRequestsException or null"
    for bad in ({}, {"error": "ThrottlingException"}, {"error": 1}, {"code": "AccessDeniedException"}):
        assert control("POST", "servicequotas/errors", bad) == (400, {"error": allowed})
    assert client("service-quotas").list_service_quotas(ServiceCode="sagemaker")["Quotas"] == []


# ------------------------------------------------------ SageMaker training plans


def plan_body(name: str, **overrides) -> dict:
    return {"name": name, "status": "Active", "instance_type": "ml.p5.48xlarge", "instance_count": 2, **overrides}


def plan_arn(name: str, region: str = "us-east-1") -> str:
    return f"arn:aws:sagemaker:{region}:{ACCOUNT}:training-plan/{name}"


def plan_job(name: str, arn: str, count: int = 1, instance_type: str = "ml.p5.48xlarge") -> dict:
    request = quota_request(name, instance_type, count)
    request["ResourceConfig"]["TrainingPlanArn"] = arn
    return request


def iso(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_training_plan_is_described_as_the_api_does(sagemaker, control):
    status, answer = control(
        "POST", "sagemaker/training-plans", plan_body("p5-plan", duration_hours=50, status_message="Payment received")
    )
    assert status == 200
    plan = sagemaker.describe_training_plan(TrainingPlanName="p5-plan")
    del plan["ResponseMetadata"]
    start, end = plan["StartTime"], plan["EndTime"]
    assert end - start == datetime.timedelta(hours=50)
    assert abs(start.timestamp() - time.time()) < 5  # Active: it runs from now
    [summary] = plan["ReservedCapacitySummaries"]
    capacity_arn = summary["ReservedCapacityArn"]
    capacity = rf"arn:aws:sagemaker:us-east-1:{ACCOUNT}:reserved-capacity/p5-plan-[0-9a-f]{{12}}"
    assert re.fullmatch(capacity, capacity_arn)
    assert plan == {
        "TrainingPlanArn": plan_arn("p5-plan"),
        "TrainingPlanName": "p5-plan",
        "Status": "Active",
        "StatusMessage": "Payment received",
        "DurationHours": 50,
        "DurationMinutes": 0,
        "StartTime": start,
        "EndTime": end,
        "UpfrontFee": "0",
        "CurrencyCode": "USD",
        "TotalInstanceCount": 2,
        "AvailableInstanceCount": 2,
        "InUseInstanceCount": 0,
        "TargetResources": ["training-job"],
        "ReservedCapacitySummaries": [
            {
                "ReservedCapacityArn": capacity_arn,
                "ReservedCapacityType": "Instance",
                "InstanceType": "ml.p5.48xlarge",
                "TotalInstanceCount": 2,
                "Status": "Active",
                "AvailabilityZone": "us-east-1a",
                "DurationHours": 50,
                "DurationMinutes": 0,
                "StartTime": start,
                "EndTime": end,
            }
        ],
    }
    # The control API answers the same description, its times in ISO 8601.
    summary = {**summary, "StartTime": iso(start), "EndTime": iso(end)}
    assert answer == {**plan, "StartTime": iso(start), "EndTime": iso(end), "ReservedCapacitySummaries": [summary]}

    # A plan not started yet lies ahead; one that expired lies behind.
    control("POST", "sagemaker/training-plans", plan_body("later", status="Scheduled"))
    scheduled = sagemaker.describe_training_plan(TrainingPlanName="later")
    assert scheduled["StartTime"].timestamp() > time.time() + 3600 and "StatusMessage" not in scheduled
    control("POST", "sagemaker/training-plans", plan_body("done", status="Expired"))
    assert sagemaker.describe_training_plan(TrainingPlanName="done")["EndTime"].timestamp() <= time.time() + 1


def test_an_unknown_training_plan_is_resource_not_found(sagemaker, client, control):
    west_plan = plan_body("west-plan", region="us-west-2", availability_zone="us-west-2c")
    control("POST", "sagemaker/training-plans", west_plan)
    for name in ("missing", "west-plan"):  # west-plan lives in another region
        with pytest.raises(ClientError) as raised:
            sagemaker.describe_training_plan(TrainingPlanName=name)
        assert raised.value.response["Error"] == {
            "Code": "ResourceNotFound",
            "Message": f"Training plan {name} does not exist.",
        }
        assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    plan = client("sagemaker", region="us-west-2").describe_training_plan(TrainingPlanName="west-plan")
    assert plan["TrainingPlanArn"] == plan_arn("west-plan", "us-west-2")
    assert plan["ReservedCapacitySummaries"][0]["AvailabilityZone"] == "us-west-2c"


def test_a_training_plan_can_be_replaced(sagemaker, control):
    control("POST", "sagemaker/training-plans", plan_body("p5-plan"))
    replaced = plan_body("p5-plan", status="Expired", instance_count=4)
    status, answer = control("POST", "sagemaker/training-plans", replaced)
    assert (status, answer["Status"], answer["TotalInstanceCount"]) == (200, "Expired", 4)
    plan = sagemaker.describe_training_plan(TrainingPlanName="p5-plan")
    assert (plan["Status"], plan["TotalInstanceCount"]) == ("Expired", 4)
    assert plan["ReservedCapacitySummaries"][0]["Status"] == "Expired"


PLAN_NAME_RULE = "name must be 1-64 letters, digits and hyphens, starting and ending with a letter or digit"


@pytest.mark.parametrize(
    "overrides, error",
    [
        ({"name": "-plan"}, PLAN_NAME_RULE),
        ({"name": "a" * 65}, PLAN_NAME_RULE),
        ({"name": None}, PLAN_NAME_RULE),
        ({"status": "Running"}, "status must be one of Pending, Active, Scheduled, Expired, Failed"),
        ({"instance_count": 0}, "instance_count must be a whole number, at least 1"),
        ({"instance_count": "2"}, "instance_count must be a whole number, at least 1"),
        ({"duration_hours": 0}, "duration_hours must be a whole number from 1 to 87600"),
        ({"duration_hours": 87601}, "duration_hours must be a whole number from 1 to 87600"),
        ({"region": "mars-1"}, "region must be a region name such as us-east-1"),
        ({"availability_zone": "us-west-2a"}, "availability_zone must be a zone of us-east-1, such as us-east-1a"),
        ({"status_message": 5}, "status_message must be a string"),
        ({"instance_cnt": 2}, "unknown training plan fields: instance_cnt"),
    ],
)
def test_training_plans_are_validated(sagemaker, control, overrides, error):
    assert control("POST", "sagemaker/training-plans", {**plan_body("p5-plan"), **overrides}) == (400, {"error": error})
    with pytest.raises(ClientError) as raised:
        sagemaker.describe_training_plan(TrainingPlanName="p5-plan")
    assert error_code(raised) == "ResourceNotFound"  # nothing was set up


def test_training_plan_instance_types_and_targets_are_the_api_values(control):
    status, answer = control("POST", "sagemaker/training-plans", plan_body("p5-plan", instance_type="ml.g5.xlarge"))
    assert status == 400
    assert answer["error"].startswith("instance_type must be one of ml.p4d.24xlarge, ml.p5.48xlarge, ")
    targets = (
        "target_resources must be a non-empty list of distinct values of "
        "training-job, hyperpod-cluster, endpoint, studio-apps"
    )
    for bad in ([], ["notebook"], "training-job", ["training-job", "training-job"]):
        body = plan_body("p5-plan", target_resources=bad)
        assert control("POST", "sagemaker/training-plans", body) == (400, {"error": targets})
    body = plan_body("p5-plan", target_resources=["hyperpod-cluster", "training-job"])
    status, answer = control("POST", "sagemaker/training-plans", body)
    assert (status, answer["TargetResources"]) == (200, ["hyperpod-cluster", "training-job"])


def test_jobs_on_a_training_plan_use_its_instances(sagemaker, control):
    control("POST", "sagemaker/training-plans", plan_body("p5-plan", instance_count=3))
    arn = plan_arn("p5-plan")
    # Reserved capacity is no on-demand usage, and no capacity rule applies to it.
    control("POST", "sagemaker/quotas", {"ml.p5.48xlarge": 0})
    control("POST", "sagemaker/capacity", {"ml.p5.48xlarge": "any"})
    sagemaker.create_training_job(**plan_job("plan-1", arn, 2))
    described = sagemaker.describe_training_job(TrainingJobName="plan-1")
    assert described["TrainingJobStatus"] == "InProgress"
    assert described["ResourceConfig"] == plan_job("plan-1", arn, 2)["ResourceConfig"]
    plan = sagemaker.describe_training_plan(TrainingPlanName="p5-plan")
    assert (plan["InUseInstanceCount"], plan["AvailableInstanceCount"]) == (2, 1)

    refused = create_refused(sagemaker, plan_job("plan-2", arn, 2))
    assert refused.response["Error"] == {
        "Code": "ResourceLimitExceeded",
        "Message": f"Training plan {arn} has 1 of its 3 ml.p5.48xlarge instances available, "
        "fewer than the request delta of 2 Instances.",
    }
    assert refused.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    sagemaker.create_training_job(**plan_job("plan-2", arn, 1))
    plan = sagemaker.describe_training_plan(TrainingPlanName="p5-plan")
    assert (plan["InUseInstanceCount"], plan["AvailableInstanceCount"]) == (3, 0)
    # On-demand jobs of the type still meet its quota; ended plan jobs free the plan.
    refused = create_refused(sagemaker, quota_request("od-1", "ml.p5.48xlarge", 1))
    assert refused.response["Error"]["Message"] == limit_message("ml.p5.48xlarge for training job usage", 0, 0, 1)
    control("POST", "sagemaker/jobs/plan-1/complete", {})
    sagemaker.stop_training_job(TrainingJobName="plan-2")
    plan = sagemaker.describe_training_plan(TrainingPlanName="p5-plan")
    assert (plan["InUseInstanceCount"], plan["AvailableInstanceCount"]) == (0, 3)
    sagemaker.create_training_job(**plan_job("plan-3", arn, 3))
    _, listing = control("GET", "sagemaker/jobs")
    assert [(j["name"], j["status"]) for j in listing["jobs"]] == [
        ("plan-1", "Completed"),
        ("plan-2", "Stopped"),
        ("plan-3", "InProgress"),
    ]
    assert listing["create_calls"] == 5


def test_jobs_on_a_training_plan_count_against_the_total_instances_quota(sagemaker, control):
    control("POST", "sagemaker/training-plans", plan_body("p5-plan", instance_count=8))
    control("POST", "sagemaker/quotas", {TOTAL_QUOTA: 4})
    sagemaker.create_training_job(**quota_request("od-1", "ml.g5.xlarge", 2))
    refused = create_refused(sagemaker, plan_job("plan-1", plan_arn("p5-plan"), 3))
    assert refused.response["Error"]["Message"] == limit_message(TOTAL_QUOTA, 4, 2, 3)
    sagemaker.create_training_job(**plan_job("plan-1", plan_arn("p5-plan"), 2))
    assert sagemaker.describe_training_plan(TrainingPlanName="p5-plan")["InUseInstanceCount"] == 2


def test_a_scheduled_training_plan_takes_jobs(sagemaker, control):
    control("POST", "sagemaker/training-plans", plan_body("later", status="Scheduled"))
    sagemaker.create_training_job(**plan_job("plan-1", plan_arn("later"), 2))
    assert sagemaker.describe_training_plan(TrainingPlanName="later")["InUseInstanceCount"] == 2


@pytest.mark.parametrize("status", ["Pending", "Expired", "Failed"])
def test_a_training_plan_that_is_not_active_or_scheduled_takes_no_job(sagemaker, control, status):
    control("POST", "sagemaker/training-plans", plan_body("p5-plan", status=status))
    arn = plan_arn("p5-plan")
    refused = create_refused(sagemaker, plan_job("plan-1", arn))
    assert refused.response["Error"] == {
        "Code": "ValidationException",
        "Message": f"Training plan {arn} is {status}; a training job can use a plan that is Active or Scheduled.",
    }


def test_a_job_must_fit_its_training_plan(sagemaker, control):
    control("POST", "sagemaker/training-plans", plan_body("p5-plan"))
    control("POST", "sagemaker/training-plans", plan_body("hyperpod", target_resources=["hyperpod-cluster"]))
    control("POST", "sagemaker/training-plans", plan_body("west-plan", region="us-west-2"))
    missing, west = plan_arn("missing"), plan_arn("west-plan", "us-west-2")
    cases = [
        (plan_job("job-1", missing), f"Training plan {missing} does not exist in us-east-1."),
        (plan_job("job-1", west), f"Training plan {west} does not exist in us-east-1."),
        (
            plan_job("job-1", plan_arn("hyperpod")),
            f"Training plan {plan_arn('hyperpod')} does not target training jobs (TargetResources: hyperpod-cluster).",
        ),
        (
            plan_job("job-1", plan_arn("p5-plan"), instance_type="ml.p4d.24xlarge"),
            f"Training plan {plan_arn('p5-plan')} reserves ml.p5.48xlarge instances, not ml.p4d.24xlarge.",
        ),
    ]
    for request, message in cases:
        refused = create_refused(sagemaker, request)
        assert refused.response["Error"] == {"Code": "ValidationException", "Message": message}
        assert refused.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    _, listing = control("GET", "sagemaker/jobs")
    assert (listing["jobs"], listing["create_calls"]) == ([], 4)
