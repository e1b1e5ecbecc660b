"""docs/local.md's loop with cargo-lambda: `cargo lambda watch` serves the
functions (compiled from this checkout) with the environment `make local`
writes, and `cargo lambda invoke` hands them the sample events. The upload
becomes an FSx import task in the emulator; the import's end becomes
`DataImportCompleted` on the bus, which (routed as the stack's rule routes it)
starts the churn sweep's training jobs."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import boto3
import pytest

from samples import ROOT

REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def watch(world: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    assert shutil.which("cargo-lambda"), "cargo-lambda is not on PATH: run `make sam-check`"
    here = tmp_path_factory.mktemp("watch")
    env_file = here / "retrain.local.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in world["env"].items()))
    port = free_port()
    log = open(here / "watch.log", "wb")
    process = subprocess.Popen(
        ["cargo", "lambda", "watch", "--env-file", str(env_file), "--invoke-port", str(port), "--ignore-changes", "--quiet", "--timeout", "900"],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        end = time.monotonic() + 60
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            assert process.poll() is None, (here / "watch.log").read_text()
            assert time.monotonic() < end, "cargo lambda watch did not listen within 60 s"
            time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def invoke(port: int, function: str, *data: str) -> Any:
    # The first invocation of a function compiles it (a warm cache makes that seconds).
    out = subprocess.run(
        ["cargo", "lambda", "invoke", function, "--invoke-port", str(port), "--output-format", "json", *data],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def client(world: dict[str, Any], service: str) -> Any:
    return boto3.client(service, endpoint_url=world["endpoint"], region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")


def test_an_upload_served_by_cargo_lambda_starts_an_import_and_its_end_launches_training(world: dict[str, Any], watch: int):
    answer = invoke(watch, "on-upload", "--data-file", "events/sqs-s3-put.json")
    # The sample batch's third record is malformed on purpose: reported, not lost.
    assert [f["itemIdentifier"] for f in answer["batchItemFailures"]] == ["8b6a1f0e-3c2d-4e5f-9a7b-1c2d3e4f5a6b"]
    tasks = client(world, "fsx").describe_data_repository_tasks()["DataRepositoryTasks"]
    assert [t["Type"] for t in tasks] == ["IMPORT_METADATA_FROM_REPOSITORY"]
    task, fs = tasks[0]["TaskId"], tasks[0]["FileSystemId"]

    finish = urllib.request.Request(f"{world['endpoint']}/_retrain/fsx/tasks/{task}/finish", data=b'{"lifecycle": "SUCCEEDED"}', method="POST")
    urllib.request.urlopen(finish).read()
    watch_timer = json.dumps({"kind": "import-watch", "file_system_id": fs, "task_id": task})
    invoke(watch, "on-import", "--data-ascii", watch_timer)

    with urllib.request.urlopen(f"{world['endpoint']}/_retrain/events?bus={world['env']['RETRAIN_EVENT_BUS']}") as r:
        entries = json.loads(r.read())["entries"]
    completed = [e for e in entries if e["DetailType"] == "DataImportCompleted"]
    assert len(completed) == 1, [e["DetailType"] for e in entries]
    envelope = {
        "version": "0", "id": "2b8e1c4d-6f0a-4e5b-9c7d-3a1f0e2d4c6b", "detail-type": "DataImportCompleted", "source": "retrain",
        "account": "123456789012", "time": "2026-11-25T12:00:00Z", "region": REGION, "resources": [],
        "detail": json.loads(completed[0]["Detail"]),
    }
    invoke(watch, "start-sweep", "--data-ascii", json.dumps(envelope))

    jobs = client(world, "sagemaker").list_training_jobs()["TrainingJobSummaries"]
    # churn runs two lanes: its first two variants.
    assert sorted(j["TrainingJobName"].split("-")[-2] for j in jobs) == ["v0", "v1"], jobs
