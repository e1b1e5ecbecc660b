#!/usr/bin/env python3
"""`make demo`: the whole product, locally, against the emulator.

    .venv/bin/python tests/demo/demo.py --bin-dir $CARGO_TARGET_DIR/debug [--log-dir DIR]

Starts the emulator, creates the world a deployment lives in (buckets, bus,
queues, VPC, FSx for Lustre, EFS, role, a config in S3), runs the five real
function binaries under local Lambda Runtime APIs, and plays AWS around them
(router.py) while the story unfolds: a burst of uploads becomes one import,
the import starts a sweep that runs its variants in lanes and retries a
capacity failure, and its best model is registered and Approved (the group's
first); then a scheduled sweep of the EFS pipeline runs, and a requested
second churn sweep trains a model that is not better: the gate Rejects it.
Last, one pass of the reconciler (as its schedule would run it) finds
nothing left open.

Prints one line per step; the last line of stdout is a JSON summary counted
from the emulator's own records. Exits non-zero if a step fails or the story
does not finish within 90 s.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import boto3  # noqa: E402

from router import (  # noqa: E402
    CAPACITY_ERROR,
    AsyncInvoker,
    BusRouter,
    Control,
    FsxService,
    SageMakerService,
    SqsSource,
    Trouble,
    utc_now,
)
from runtime_api import ACCOUNT, REGION, FunctionError, LambdaFunction, kill_group  # noqa: E402

# Credentials and a config secret the functions must never log (tests/demo/test_demo.py scans the logs).
SECRET_ACCESS_KEY = "demo-secret-access-key-never-logged"
CONFIG_SECRET = "demo-config-secret-never-logged"
from story import Narrator, table  # noqa: E402

# The event-driven functions (bench/run.py measures these), then the scheduled reconciler.
FUNCTIONS = ["on-upload", "on-import", "start-sweep", "on-training"]
RECONCILE = "reconcile"
ALL_FUNCTIONS = [*FUNCTIONS, RECONCILE]
STORY_SECONDS = 90.0
DATA_BUCKET = "example-training-data"
ARTIFACTS_BUCKET = "retrain-artifacts"
BUS = "retrain"
# The stack's EventLogGroup, which its EventLogRule fills with every domain event.
EVENT_LOG_GROUP = "/aws/events/retrain"
CONFIG_KEY = "config/pipelines.yaml"
UPLOADS = 40
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"


class DemoFailed(Exception):
    pass


class Interrupted(BaseException):
    pass


def on_signal(signum: int, _frame: Any) -> None:
    raise Interrupted(signal.Signals(signum).name)


# -- the emulator -------------------------------------------------------------


def start_emulator(log_path: Path, cleanup: list[Callable[[], None]]) -> str:
    log = open(log_path, "wb")
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "tests/emulator/retrain_emulator.py"), "--port", "0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=log,
        start_new_session=True,
    )
    cleanup.append(lambda: (kill_group(process, grace=5.0), log.close()))
    assert process.stdout is not None
    end = time.monotonic() + 60
    while time.monotonic() < end:
        ready, _, _ = select.select([process.stdout], [], [], 0.2)
        if ready:
            line = process.stdout.readline().decode().strip()
            if line.startswith("READY "):
                return line.removeprefix("READY ")
            raise DemoFailed(f"emulator said {line!r} instead of READY <url> (see {log_path})")
        if process.poll() is not None:
            raise DemoFailed(f"emulator exited with code {process.returncode} (see {log_path})")
    raise DemoFailed(f"emulator not READY within 60 s (see {log_path})")


# -- the world a deployment lives in ----------------------------------------


def session() -> boto3.session.Session:
    return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)


def create_queue(sqs: Any, name: str, attributes: dict[str, str] | None = None) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name, Attributes=attributes or {})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def function_environment(endpoint: str, world: dict[str, Any], secret_access_key: str = "testing") -> dict[str, str]:
    """What template.yaml sets for each function in AWS, pointed at the emulator."""
    return {
        "RETRAIN_CONFIG": f"s3://{ARTIFACTS_BUCKET}/{CONFIG_KEY}",
        "RETRAIN_ARTIFACTS_BUCKET": ARTIFACTS_BUCKET,
        "RETRAIN_EVENT_BUS": BUS,
        "RETRAIN_WATCH_QUEUE_URL": world["watch_url"],
        "RETRAIN_TICK_QUEUE_URL": world["ticks_url"],
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": secret_access_key,
        "AWS_EC2_METADATA_DISABLED": "true",
        "RUST_LOG": "info",
    }


def clean_environment() -> dict[str, str]:
    """This process's environment without any AWS or retrain setting of the shell's."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RETRAIN_"))}


def build_world(endpoint: str, say: Callable[[str, str, str], None]) -> dict[str, Any]:
    s = session()
    client = lambda name: s.client(name, endpoint_url=endpoint)  # noqa: E731
    s3, sqs, events, ec2, fsx, efs, iam = (client(n) for n in ("s3", "sqs", "events", "ec2", "fsx", "efs", "iam"))
    for bucket in (DATA_BUCKET, ARTIFACTS_BUCKET):
        s3.create_bucket(Bucket=bucket)
    events.create_event_bus(Name=BUS)
    client("logs").create_log_group(logGroupName=EVENT_LOG_GROUP)
    events.put_rule(Name="retrain-event-log", EventBusName=BUS, EventPattern=json.dumps({"source": ["retrain"]}))
    events.put_targets(
        Rule="retrain-event-log",
        EventBusName=BUS,
        Targets=[{"Id": "event-log", "Arn": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{EVENT_LOG_GROUP}"}],
    )
    dlq_url, dlq_arn = create_queue(sqs, "retrain-uploads-dlq")
    uploads_url, uploads_arn = create_queue(
        sqs,
        "retrain-uploads",
        {"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}), "VisibilityTimeout": "30"},
    )
    watch_url, _ = create_queue(sqs, "retrain-watch")
    ticks_url, _ = create_queue(sqs, "retrain-ticks")
    s3.put_bucket_notification_configuration(
        Bucket=DATA_BUCKET,
        NotificationConfiguration={"QueueConfigurations": [{"QueueArn": uploads_arn, "Events": ["s3:ObjectCreated:*"]}]},
    )
    say("setup", f"s3://{DATA_BUCKET}", "ObjectCreated:* → SQS retrain-uploads (DLQ after 5 receives)")
    say("setup", f"bus {BUS}", "queues retrain-watch, retrain-ticks; artifacts in s3://" + ARTIFACTS_BUCKET)

    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone=f"{REGION}a")["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(GroupName="retrain-training", Description="retrain training jobs", VpcId=vpc)["GroupId"]
    # Lustre (988, 1018-1023) and NFS (2049) between the jobs and the file systems.
    ec2.authorize_security_group_ingress(
        GroupId=sg,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": lo, "ToPort": hi, "UserIdGroupPairs": [{"GroupId": sg}]}
            for lo, hi in ((988, 988), (1018, 1023), (2049, 2049))
        ],
    )
    say("setup", vpc, f"subnet {subnet} ({REGION}a), security group {sg}")
    lustre = fsx.create_file_system(
        FileSystemType="LUSTRE",
        StorageCapacity=1200,
        SubnetIds=[subnet],
        SecurityGroupIds=[sg],
        LustreConfiguration={"ImportPath": f"s3://{DATA_BUCKET}/", "DeploymentType": "SCRATCH_2"},
    )["FileSystem"]
    mount = lustre.get("LustreConfiguration", {}).get("MountName")
    say("setup", lustre["FileSystemId"], f"FSx for Lustre SCRATCH_2, mount name {mount}, linked to s3://{DATA_BUCKET}/")
    efs_id = efs.create_file_system(CreationToken=f"retrain-demo-{uuid.uuid4().hex[:8]}")["FileSystemId"]
    efs.create_mount_target(FileSystemId=efs_id, SubnetId=subnet, SecurityGroups=[sg])
    say("setup", efs_id, f"EFS with a mount target in {subnet}")
    role = iam.create_role(
        RoleName="RetrainSageMakerTraining",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
    )["Role"]["Arn"]
    ids = {"lustre": lustre["FileSystemId"], "efs": efs_id, "subnet": subnet, "sg": sg, "role": role, "mount": mount}
    config = config_yaml(ids)
    s3.put_object(Bucket=ARTIFACTS_BUCKET, Key=CONFIG_KEY, Body=config.encode())
    say("setup", f"s3://{ARTIFACTS_BUCKET}/{CONFIG_KEY}", "RETRAIN_CONFIG: churn (fsx_lustre, 3×2 grid), fraud-efs (efs, scheduled)")
    return {
        **ids,
        "config": config,
        "uploads_url": uploads_url,
        "dlq_url": dlq_url,
        "watch_url": watch_url,
        "ticks_url": ticks_url,
    }


def config_yaml(ids: dict[str, str]) -> str:
    """The pipelines, with the world's real ids; no mount_name: the functions look it up."""
    return f"""\
pipelines:
  - name: churn
    trigger: {{ bucket: {DATA_BUCKET}, prefixes: ["datasets/churn/"], suffix: ".csv" }}
    file_system:
      type: fsx_lustre
      id: {ids['lustre']}
      data_repository_path: s3://{DATA_BUCKET}/
    vpc: {{ subnets: [{ids['subnet']}], security_groups: [{ids['sg']}] }}
    training:
      role_arn: {ids['role']}
      image: {IMAGE}
      instance_type: ml.m5.xlarge
      output_path: s3://{ARTIFACTS_BUCKET}/models/churn/
      channels:
        - {{ name: train, directory: /datasets/churn/train, content_type: text/csv }}
        - {{ name: validation, directory: /datasets/churn/validation, content_type: text/csv }}
      hyperparameters: {{ objective: "binary:logistic", num_round: 50, eval_metric: auc }}
      objective: {{ metric: "validation:auc", direction: maximize }}
      keep_alive_seconds: 600
      max_runtime_seconds: 3600
      # A secret the training container needs: it must never reach the logs.
      environment: {{ WANDB_API_KEY: {CONFIG_SECRET} }}
    sweep:
      grid: {{ eta: [0.1, 0.3, 0.5], max_depth: [4, 6] }}
      max_parallel: 2
      max_retries: 1
      # Two lanes of one-hour jobs: the cap leaves room for the whole grid and its retry.
      max_instance_hours: 12
    import: {{ poll_interval_seconds: 1, max_wait_seconds: 600, max_attempts: 2 }}
    promotion: {{ model_package_group: churn, min_improvement: 0.005, approval: auto }}
  - name: fraud-efs
    trigger: {{ bucket: {DATA_BUCKET}, prefixes: ["home/alice/fraud/"] }}
    file_system: {{ type: efs, id: {ids['efs']} }}
    vpc: {{ subnets: [{ids['subnet']}], security_groups: [{ids['sg']}] }}
    training:
      role_arn: {ids['role']}
      image: {IMAGE}
      instance_type: ml.m5.large
      output_path: s3://{ARTIFACTS_BUCKET}/models/fraud/
      channels:
        - {{ name: train, directory: /home/alice/fraud/train }}
        - {{ name: validation, directory: /home/alice/fraud/validation }}
      hyperparameters: {{ objective: "binary:logistic", num_round: 100 }}
      objective: {{ metric: "validation:logloss", direction: minimize }}
    sweep:
      variants: [{{ max_depth: 3 }}, {{ max_depth: 5 }}]
      max_parallel: 1
    schedule: rate(1 day)
"""


# -- SageMaker's verdicts -----------------------------------------------------


def job_outcome(job: dict[str, Any]) -> tuple[str, Any]:
    """The first attempt of churn's v2 gets no capacity; every other job reports a deterministic metric."""
    tags = job.get("tags") or {}
    pipeline, variant, attempt = tags.get("retrain:pipeline"), tags.get("retrain:variant", "v0"), tags.get("retrain:attempt")
    index = int(variant.lstrip("v") or 0)
    if pipeline == "churn":
        if variant == "v2" and attempt == "1":
            return "fail", CAPACITY_ERROR
        return "complete", {"validation:auc": round(0.80 + 0.02 * index, 4), "train:auc": 0.99}
    return "complete", {"validation:logloss": round(0.5 - 0.1 * index, 4), "train:logloss": 0.1}


# -- the story ----------------------------------------------------------------


class Demo:
    def __init__(self, bin_dir: Path, log_dir: Path):
        self.bin_dir = bin_dir
        self.log_dir = log_dir
        self.narrator = Narrator()
        self.say = self.narrator.say
        self.trouble = Trouble()
        self.stop = threading.Event()
        self.cleanup: list[Callable[[], None]] = []
        self.deadline = time.monotonic() + STORY_SECONDS
        self.functions: dict[str, LambdaFunction] = {}
        self.keys: list[str] = []
        self.open_work: dict[str, Any] | None = None  # the reconciler's metrics, once it ran

    # waiting ------------------------------------------------------------------

    def check(self) -> None:
        problem = self.trouble.first()
        if problem:
            raise DemoFailed(problem)
        for fn in self.functions.values():
            if fn.dead:
                raise DemoFailed(fn.dead)

    def wait_for(self, done: Callable[[], Any], status: Callable[[], str]) -> Any:
        while True:
            self.check()
            value = done()
            if value:
                return value
            if time.monotonic() > self.deadline:
                raise DemoFailed(f"the story did not finish within {STORY_SECONDS:.0f} s: {status()}")
            self.narrator.progress(status())
            time.sleep(0.1)

    # the parts ----------------------------------------------------------------

    def start_functions(self, endpoint: str, world: dict[str, Any]) -> None:
        missing = [f for f in ALL_FUNCTIONS if not (self.bin_dir / f).is_file()]
        if missing:
            raise DemoFailed(
                f"function binaries missing in {self.bin_dir}: {', '.join(missing)} "
                "(cargo build -p on-upload -p on-import -p start-sweep -p on-training -p reconcile)"
            )
        env = clean_environment()
        env.update(function_environment(endpoint, world, SECRET_ACCESS_KEY), RUST_BACKTRACE="1")
        for name in ALL_FUNCTIONS:
            fn = LambdaFunction(f"retrain-{name}", self.bin_dir / name, env, self.log_dir / f"{name}.log")
            self.functions[name] = fn
            self.cleanup.append(fn.stop)
            fn.start()
        for name, fn in self.functions.items():
            took = fn.wait_ready(max(1.0, min(30.0, self.deadline - time.monotonic())))
            self.say("cold start", fn.name, f"ready in {took:.1f} s, polling its Runtime API")

    def start_router(self, endpoint: str, world: dict[str, Any]) -> None:
        s = session()
        control = Control(endpoint)
        self.control = control
        fn = self.functions
        threads_stop = self.stop
        self.cleanup.append(threads_stop.set)
        self.start_sweep = AsyncInvoker(fn["start-sweep"], self.narrator, self.trouble, threads_stop)
        self.on_training = AsyncInvoker(fn["on-training"], self.narrator, self.trouble, threads_stop)
        self.uploads = SqsSource(
            s.client("sqs", endpoint_url=endpoint), "retrain-uploads", world["uploads_url"], fn["on-upload"],
            self.narrator, self.trouble, threads_stop, window=1.5, batch_size=1000,
        )  # fmt: skip
        watch = SqsSource(
            s.client("sqs", endpoint_url=endpoint), "retrain-watch", world["watch_url"], fn["on-import"],
            self.narrator, self.trouble, threads_stop,
        )  # fmt: skip
        ticks = SqsSource(
            s.client("sqs", endpoint_url=endpoint), "retrain-ticks", world["ticks_url"], fn["on-training"],
            self.narrator, self.trouble, threads_stop,
        )  # fmt: skip
        self.bus = BusRouter(control, BUS, self.start_sweep, self.narrator, self.trouble, threads_stop)
        self.fsx = FsxService(control, s.client("s3", endpoint_url=endpoint), self.narrator, self.trouble, threads_stop)
        self.sagemaker = SageMakerService(control, self.on_training, job_outcome, self.narrator, self.trouble, threads_stop)
        for worker in (self.start_sweep, self.on_training, self.uploads, watch, ticks, self.bus, self.fsx, self.sagemaker):
            worker.start()

    def upload_burst(self, endpoint: str) -> None:
        s3 = session().client("s3", endpoint_url=endpoint)
        # Partitioned data sets have spaces and `=` in their keys.
        self.keys = [
            f"datasets/churn/{'train' if i < 30 else 'validation'}/2026-11-25/new batch/part={i:02d}.csv"
            for i in range(UPLOADS)
        ]
        body = b"churned,tenure,monthly_charges\n0,12,70.35\n1,2,99.65\n"
        began = time.monotonic()
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda key: s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=body), self.keys))
        self.say(
            "upload",
            f"s3://{DATA_BUCKET}/datasets/churn/",
            f"{UPLOADS} objects in {time.monotonic() - began:.1f} s (e.g. …/new batch/part=00.csv)",
        )

    def sweep_of(self, pipeline: str, event: str) -> dict[str, Any] | None:
        found = [d for d in self.bus.seen(event) if d.get("pipeline") == pipeline]
        return found[-1] if found else None

    def sweep_status(self, pipeline: str) -> str:
        started = self.sweep_of(pipeline, "SweepStarted")
        if not started:
            return f"waiting for the {pipeline} sweep to start"
        sid = started["sweep_id"]
        jobs = [j for j in self.sagemaker.jobs if (j.get("tags") or {}).get("retrain:sweep") == sid]
        running = sum(1 for j in jobs if j["status"] == "InProgress")
        return f"waiting for {pipeline}/{sid}: {running} job(s) running, {len(jobs) - running} ended, {started['variants']} variants"

    def import_status(self) -> str:
        started = self.bus.seen("DataImportStarted")
        if not started:
            return "waiting for S3 notifications → retrain-uploads → on-upload (1.5 s batching window)"
        task_id = started[-1]["task_id"]
        task = self.fsx.tasks.get(task_id, {})
        since = self._since.setdefault(task_id, time.monotonic())
        return f"waiting for import {task_id} ({task.get('Lifecycle', 'PENDING')}, {time.monotonic() - since:.0f} s)"

    def run(self) -> int:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for old in self.log_dir.glob("*.log"):
            old.unlink()
        self._since: dict[str, float] = {}
        endpoint = start_emulator(self.log_dir / "emulator.log", self.cleanup)
        self.endpoint = endpoint
        self.say("emulator", endpoint, "moto server + retrain extensions (FSx tasks, SageMaker jobs, events)")
        world = build_world(endpoint, self.say)
        self.world = world
        (self.log_dir / "pipelines.yaml").write_text(world["config"])
        self.start_functions(endpoint, world)
        self.start_router(endpoint, world)
        # S3 announced the notification with an s3:TestEvent: let on-upload see it before the burst.
        self.wait_for(lambda: self.uploads.idle_polls >= 2, lambda: "waiting for retrain-uploads to drain")

        # (a) + (b): a burst of uploads → one import → one sweep.
        self.upload_burst(endpoint)
        self.wait_for(lambda: self.bus.seen("DataImportCompleted"), self.import_status)
        churn = self.wait_for(lambda: self.sweep_of("churn", "SweepCompleted"), lambda: self.sweep_status("churn"))

        # (c): the daily schedule of the EFS pipeline.
        scheduled = {
            "version": "0",
            "account": ACCOUNT,
            "region": REGION,
            "detail": {},
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "time": utc_now(),
            "id": str(uuid.uuid4()),
            "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/retrain-fraud-efs-schedule"],
        }
        self.say("schedule", "rule/retrain-fraud-efs-schedule", f"rate(1 day) fired at {scheduled['time']} → start-sweep")
        self.start_sweep.submit(scheduled, "Scheduled Event")
        self.wait_for(lambda: self.sweep_of("fraud-efs", "SweepCompleted"), lambda: self.sweep_status("fraud-efs"))
        first = self.wait_for(lambda: self.registered(churn["sweep_id"]), lambda: "waiting for churn's model to be registered")
        self.say_registered(first)

        # (c'): churn trained again on the same data: its best is no better than production, so the gate rejects it.
        again = {"kind": "start-sweep", "pipeline": "churn", "variants": ["v4", "v5"], "reason": "retrain on demand", "request_id": "demo-again"}
        self.say("request", "start-sweep", "churn again, variants v4 and v5 (no new data)")
        self.start_sweep.submit(again, "start-sweep request")
        second = self.wait_for(
            lambda: next((r for r in self.bus.seen("ModelRegistered") if r["sweep_id"] != churn["sweep_id"]), None),
            lambda: self.sweep_status("churn"),
        )
        self.say_registered(second)
        # Let the last deliveries finish before counting.
        self.wait_for(
            lambda: self.start_sweep.idle() and self.on_training.idle(), lambda: "waiting for the last deliveries"
        )
        self.checks()
        self.report(churn)
        # (d): the reconciler's scheduled pass: with every event delivered, nothing is left open.
        self.reconcile()
        self.check()
        # (e): what an operator reads afterwards: churn's events, from the event log.
        self.event_timeline("churn")
        return 0

    def event_timeline(self, pipeline: str) -> None:
        cli = self.bin_dir / "retrain"
        if not cli.is_file():
            raise DemoFailed(f"the retrain command is missing in {self.bin_dir} (cargo build -p retrain-cli)")
        self.say("logs", f"log-group{EVENT_LOG_GROUP}", f"retrain events --pipeline {pipeline} --since 1h")
        env = clean_environment()
        env.update(function_environment(self.endpoint, self.world))
        args = [str(cli), "events", "--log-group", EVENT_LOG_GROUP, "--pipeline", pipeline, "--since", "1h"]
        run = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
        if run.returncode != 0:
            raise DemoFailed(f"retrain events exited {run.returncode}: {run.stderr.strip()}")
        print(run.stdout.rstrip(), flush=True)
        timeline = subprocess.run([*args, "--json"], env=env, capture_output=True, text=True, timeout=60)
        self.timeline = [json.loads(line) for line in timeline.stdout.splitlines() if line.strip()]

    def registered(self, sweep_id: str) -> dict[str, Any] | None:
        return next((r for r in self.bus.seen("ModelRegistered") if r["sweep_id"] == sweep_id), None)

    def say_registered(self, r: dict[str, Any]) -> None:
        data = r.get("data_version") or {}
        self.say(
            "registry",
            r["model_package_arn"].rpartition(":")[2],
            f"{r['status']}: {r['reason']} (data {data.get('version')} as of {data.get('data_as_of')})",
        )

    def reconcile(self) -> None:
        s3 = session().client("s3", endpoint_url=self.endpoint)
        published = len(self.control.events(BUS))
        scheduled = {
            "version": "0",
            "account": ACCOUNT,
            "region": REGION,
            "detail": {},
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "time": utc_now(),
            "id": str(uuid.uuid4()),
            "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/retrain-reconcile-schedule"],
        }
        self.say("schedule", "rule/retrain-reconcile-schedule", f"rate(5 minutes) fired at {scheduled['time']} → reconcile")
        fn = self.functions[RECONCILE]
        response = fn.invoke(scheduled)
        # Its metrics: one embedded metric format record on stdout (namespace Retrain, no dimensions).
        records = [
            record
            for line in fn.log_path.read_text(errors="replace").splitlines()
            if line.startswith("{") and '"OpenSweeps"' in line
            for record in [json.loads(line)]
            if "_aws" in record
        ]
        if not records:
            raise DemoFailed(f"reconcile wrote no OpenSweeps metric record (see {fn.log_path}); it answered {response}")
        work = {k: records[-1].get(k) for k in ("OpenSweeps", "ImportsStalled", "SweepsStalled", "OldestPendingUploadAgeSeconds")}
        self.open_work = work
        still_open = [
            o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=ARTIFACTS_BUCKET, Prefix="open/")
            for o in page.get("Contents", [])
        ]  # fmt: skip
        republished = len(self.control.events(BUS)) - published
        self.say("reconcile", "EMF namespace Retrain", ", ".join(f"{k} {v}" for k, v in work.items()))
        self.say(
            "check",
            f"s3://{ARTIFACTS_BUCKET}/open/",
            "nothing left open, no event published again"
            if not (any(work.values()) or still_open or republished)
            else f"{len(still_open)} open key(s), {republished} event(s) published  ✗",
        )
        if any(work.values()) or still_open or republished:
            self.trouble.add(f"the reconciler found work left open: {work}, open/ keys {still_open[:3]}, {republished} event(s) published")

    # the end ------------------------------------------------------------------

    def checks(self) -> None:
        stats = self.control.jobs()
        by_sweep = stats.get("max_in_progress_by_tag") or {}
        for started in self.bus.seen("SweepStarted"):
            sid, limit = started["sweep_id"], started["max_parallel"]
            seen = by_sweep.get(sid, 0)
            ok = seen <= limit
            self.say("check", f"{started['pipeline']}/{sid}", f"at most {seen} job(s) in progress at once (max_parallel {limit})" + ("" if ok else "  ✗"))
            if not ok:
                self.trouble.add(f"sweep {sid} ran {seen} jobs at once, max_parallel is {limit}")
        tasks = self.control.tasks()
        succeeded = [t for t in tasks if t["Lifecycle"] == "SUCCEEDED"]
        uncovered = [
            k for k in self.keys if not any(f"s3://{DATA_BUCKET}/{k}".startswith(p) for t in succeeded for p in t["Paths"])
        ]
        self.say(
            "check",
            f"{len(self.keys)} uploads",
            f"every one covered by a SUCCEEDED import ({', '.join(t['TaskId'] for t in succeeded)})"
            if not uncovered
            else f"{len(uncovered)} not covered by a SUCCEEDED import  ✗",
        )
        if uncovered:
            self.trouble.add(f"uploads not imported: {uncovered[:3]}")
        sqs = session().client("sqs", endpoint_url=self.endpoint)
        dead = int(
            sqs.get_queue_attributes(QueueUrl=self.world["dlq_url"], AttributeNames=["ApproximateNumberOfMessages"])[
                "Attributes"
            ]["ApproximateNumberOfMessages"]
        )
        self.say("check", "retrain-uploads-dlq", "empty" if dead == 0 else f"{dead} message(s)  ✗")
        if dead:
            self.trouble.add(f"{dead} upload notification(s) in the DLQ")
        churn_jobs = [j for j in stats["jobs"] if j["tags"].get("retrain:pipeline") == "churn"]
        if churn_jobs:
            sm = session().client("sagemaker", endpoint_url=self.endpoint)
            job = sm.describe_training_job(TrainingJobName=churn_jobs[0]["name"])
            source = job["InputDataConfig"][0]["DataSource"].get("FileSystemDataSource", {})
            self.say(
                "check",
                churn_jobs[0]["name"],
                f"reads {source.get('FileSystemType')} {source.get('FileSystemId')}:{source.get('DirectoryPath')}"
                f" ({source.get('FileSystemAccessMode')}) in {','.join(job.get('VpcConfig', {}).get('Subnets', []))}",
            )
            if not str(source.get("DirectoryPath", "")).startswith(f"/{self.world['mount']}/"):
                self.trouble.add(f"{churn_jobs[0]['name']} does not read under the mount name /{self.world['mount']}/")

    def results(self, sweep_completed: dict[str, Any]) -> dict[str, Any]:
        """The full ranking that SweepCompleted points at (`results`, an s3:// URI in the artifacts bucket)."""
        bucket, _, key = sweep_completed["results"].removeprefix("s3://").partition("/")
        s3 = session().client("s3", endpoint_url=self.endpoint)
        return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())

    def report(self, churn: dict[str, Any]) -> None:
        jobs = self.control.jobs()["jobs"]
        sid = churn["sweep_id"]
        best = churn.get("best") or {}
        metric = churn.get("metric", "validation:auc")
        results = self.results(churn)
        ranked = [r["training_job_name"] for r in results["ranked"]]
        agrees = (
            len(results["ranked"]) == churn["ranked"]
            and len(results["unranked"]) == churn["unranked"]
            and ranked[:1] == [best.get("training_job_name")]
        )
        self.say(
            "check",
            churn["results"].removeprefix(f"s3://{ARTIFACTS_BUCKET}/"),
            f"{len(results['ranked'])} ranked, {len(results['unranked'])} unranked, best first"
            + (", as SweepCompleted says" if agrees else f"  ✗ (SweepCompleted: {churn['ranked']} ranked, {churn['unranked']} unranked)"),
        )
        if not agrees:
            self.trouble.add(f"results.json of {sid} does not match SweepCompleted: {results}")
        rows = []
        for j in sorted((j for j in jobs if j["tags"].get("retrain:sweep") == sid), key=lambda j: j["creation_order"]):
            tags = j["tags"]
            status = j["status"] + (f" ({j['failure_reason'].split(':')[0]})" if j.get("failure_reason") else "")
            value = j["final_metrics"].get(metric)
            rank = ranked.index(j["name"]) + 1 if j["name"] in ranked else "-"
            rows.append(
                [
                    rank,
                    tags.get("retrain:variant"),
                    tags.get("retrain:lane"),
                    tags.get("retrain:attempt"),
                    status,
                    f"{value:.2f}" if value is not None else "-",
                    j["name"] + ("  ← best" if j["name"] == best.get("training_job_name") else ""),
                ]
            )
        self.narrator.line()
        self.narrator.line(f"churn sweep {sid} (SweepCompleted: best {best.get('variant_id')} {best.get('training_job_name')})")
        for line in table(["rank", "variant", "lane", "attempt", "status", metric, "training job"], rows):
            self.narrator.line("  " + line)
        self.narrator.line()

    def summary(self, error: str | None) -> dict[str, Any] | None:
        try:
            tasks = self.control.tasks()
            jobs = self.control.jobs()["jobs"]
            events = self.control.events(BUS)
        except Exception:  # noqa: BLE001 - the emulator may be the thing that failed
            return None
        # At-least-once: count each event_id once, as a subscriber would.
        completed = list(
            {d.get("event_id"): d for d in (json.loads(e["Detail"]) for e in events if e["DetailType"] == "SweepCompleted")}.values()
        )
        churn = next((d for d in completed if d.get("pipeline") == "churn"), None)
        best = None
        if churn and churn.get("best"):
            best = {
                "pipeline": "churn",
                "training_job": churn["best"]["training_job_name"],
                "metric": churn.get("metric"),
                "value": churn["best"].get("metric"),
            }
        # The packages, in the order they were registered (one per sweep: deduplicated on event_id).
        registered = list(
            {d.get("event_id"): d for d in (json.loads(e["Detail"]) for e in events if e["DetailType"] == "ModelRegistered")}.values()
        )
        models = [
            {
                "sweep_id": r["sweep_id"],
                "model_package_arn": r["model_package_arn"],
                "status": r["status"],
                "value": r["value"],
                "production_value": r.get("production_value"),
                "data_version": (r.get("data_version") or {}).get("version"),
            }
            for r in registered
        ]
        out: dict[str, Any] = {
            "import_tasks": len(tasks),
            "training_jobs": len(jobs),
            "retries": sum(1 for j in jobs if int((j.get("tags") or {}).get("retrain:attempt", "1")) > 1),
            "sweeps_completed": len(completed),
            "best": best,
            "models": models,
            "event_log": [e["detail_type"] for e in getattr(self, "timeline", [])],
            "open_sweeps": (self.open_work or {}).get("OpenSweeps"),
        }
        if error:
            out["error"] = error
        return out

    def scan_logs(self) -> None:
        lines = errors = warnings = 0
        shown = []
        for name in ALL_FUNCTIONS:
            path = self.log_dir / f"{name}.log"
            if not path.exists():
                continue
            for line in path.read_text(errors="replace").splitlines():
                lines += 1
                if '"level":"ERROR"' in line or "panicked" in line:
                    errors += 1
                    if len(shown) < 5:
                        shown.append(f"{name}: {line[:300]}")
                elif '"level":"WARN"' in line:
                    warnings += 1
        invocations = sum(fn.invocations for fn in self.functions.values())
        self.say("logs", str(self.log_dir), f"{invocations} invocations, {lines} log lines, {errors} errors, {warnings} warnings")
        for line in shown:
            self.narrator.line(f"          {line}")


def default_log_dir(bin_dir: Path) -> Path:
    target = os.environ.get("CARGO_TARGET_DIR")
    return (Path(target) if target else bin_dir.parent) / "demo-logs"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin-dir", type=Path, required=True, help="where cargo put on-upload, on-import, start-sweep, on-training, reconcile")
    parser.add_argument("--log-dir", type=Path, help="function and emulator logs (default $CARGO_TARGET_DIR/demo-logs)")
    args = parser.parse_args(argv)
    bin_dir = args.bin_dir.resolve()
    demo = Demo(bin_dir, (args.log_dir or default_log_dir(bin_dir)).resolve())
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    began = time.monotonic()
    error: str | None = None
    code = 1
    try:
        code = demo.run()
    except Interrupted as why:
        error = f"interrupted by {why}"
        code = 130
    except (DemoFailed, FunctionError) as failure:
        error = str(failure)
    except Exception as failure:  # noqa: BLE001 - report, clean up, exit non-zero
        error = f"{type(failure).__name__}: {failure}"
    finally:
        # Nothing interrupts the cleanup.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        demo.narrator.clear()
        summary = demo.summary(error) if hasattr(demo, "control") else None
        for step in reversed(demo.cleanup):
            try:
                step()
            except Exception as failure:  # noqa: BLE001 - keep stopping the rest
                print(f"cleanup: {failure}", file=sys.stderr)
        if demo.functions:
            demo.scan_logs()
    if error:
        print(f"demo failed after {time.monotonic() - began:.1f} s: {error}", file=sys.stderr)
        print(f"logs: {demo.log_dir}", file=sys.stderr)
    else:
        demo.narrator.line(f"done in {time.monotonic() - began:.1f} s; logs in {demo.log_dir}")
    if summary is not None:
        print(json.dumps(summary), flush=True)
    return code if error else 0


if __name__ == "__main__":
    sys.exit(main())
