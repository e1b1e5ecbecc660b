"""on-upload in Python 3 + boto3: the baseline the Rust function's cold start is compared with.

It makes the same AWS calls, in the same order, as the Rust handler on a new
batch: read the config at init; per batch, check the imported marker, write
the pending entry create-once (`IfNoneMatch='*'`), list and read the pending
set, `fsx.create_data_repository_task`, check the import record, arm the
watch timer on SQS, write the import record, and publish `DataImportStarted`
once (create-once marker + `events.put_events`).

Environment: the same `RETRAIN_*` variables as the Rust functions, and the
standard `AWS_ENDPOINT_URL` / `AWS_REGION`.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import time
import urllib.parse
from typing import Any

import boto3
import yaml
from botocore.config import Config
from botocore.exceptions import ClientError

# -- init: clients and config, once per cold start (as the AWS Python runtime runs module code) ----------

ARTIFACTS = os.environ["RETRAIN_ARTIFACTS_BUCKET"]
BUS = os.environ["RETRAIN_EVENT_BUS"]
WATCH_QUEUE = os.environ["RETRAIN_WATCH_QUEUE_URL"]
_session = boto3.session.Session()
s3 = _session.client("s3", config=Config(s3={"addressing_style": "path"}))
fsx = _session.client("fsx")
sqs = _session.client("sqs")
events = _session.client("events")


def _read_config(location: str) -> dict[str, Any]:
    if location.startswith("s3://"):
        bucket, _, key = location.removeprefix("s3://").partition("/")
        return yaml.safe_load(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    with open(location) as f:
        return yaml.safe_load(f)


CONFIG = _read_config(os.environ["RETRAIN_CONFIG"])
PIPELINES = CONFIG.get("pipelines") or []
MAX_TASK_PATHS = 100

# -- pure part ----------------------------------------------------------------------------------------


def digest(parts: list[str]) -> str:
    h = hashlib.sha256()
    for p in parts:
        b = p.encode()
        h.update(struct.pack(">Q", len(b)))
        h.update(b)
    return h.hexdigest()


def objects_of(event: dict[str, Any]) -> list[dict[str, Any]]:
    """S3 ObjectCreated records inside an SQS batch (or given directly), keys URL-decoded."""
    found = []
    for record in event.get("Records") or []:
        if record.get("eventSource") == "aws:sqs":
            try:
                found.extend(objects_of(json.loads(record.get("body") or "")))
            except ValueError:
                continue  # malformed body: the Rust handler fails it back; not exercised here
        elif record.get("eventSource") == "aws:s3" and str(record.get("eventName", "")).startswith("ObjectCreated:"):
            obj = record["s3"]["object"]
            found.append(
                {
                    "bucket": record["s3"]["bucket"]["name"],
                    "key": urllib.parse.unquote_plus(obj["key"]),
                    "version": obj.get("sequencer") or obj.get("eTag"),
                }
            )
    return found


def watches(pipeline: dict[str, Any], obj: dict[str, Any]) -> bool:
    t = pipeline["trigger"]
    return (
        t["bucket"] == obj["bucket"]
        and any(obj["key"].startswith(p) for p in t.get("prefixes") or [""])
        and (not t.get("suffix") or obj["key"].endswith(t["suffix"]))
        and not obj["key"].endswith("/")
    )


def pending_entries(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_fs: dict[str, tuple[set[str], dict[tuple[str, str, str], dict[str, Any]]]] = {}
    for obj in objects:
        for p in PIPELINES:
            if p["file_system"]["type"] == "fsx_lustre" and watches(p, obj):
                pipelines, objs = by_fs.setdefault(p["file_system"]["id"], (set(), {}))
                pipelines.add(p["name"])
                objs[(obj["bucket"], obj["key"], obj["version"] or "")] = obj
    entries = []
    for fs, (pipelines, objs) in sorted(by_fs.items()):
        ordered = [objs[k] for k in sorted(objs)]
        parts = [fs] + [f"{o['bucket']}/{o['key']}@{o['version'] or ''}" for o in ordered]
        entries.append({"id": digest(parts)[:32], "file_system_id": fs, "pipelines": sorted(pipelines), "objects": ordered})
    return entries


def collapse(uris: list[str], floors: list[str], limit: int = MAX_TASK_PATHS) -> list[str]:
    """At most `limit` S3 URIs covering every input, never above a data repository path."""

    def depth(u: str) -> int:
        key = u.removeprefix("s3://").partition("/")[2].rstrip("/")
        return key.count("/") + 1 if key else 0

    def parent(u: str) -> str:
        bucket, _, key = u.removeprefix("s3://").partition("/")
        key = key.rstrip("/")
        return f"s3://{bucket}/{key[: key.rfind('/') + 1]}" if "/" in key else f"s3://{bucket}/"

    kept = sorted(set(uris))
    while True:
        out: list[str] = []
        for u in kept:
            if not (out and out[-1].endswith("/") and u.startswith(out[-1])):
                out.append(u)
        if len(out) <= limit:
            return out
        deepest = max(depth(u) for u in out)
        raised = set()
        for u in out:
            up = parent(u) if depth(u) == deepest else u
            floor = max((f for f in floors if u.startswith(f)), key=len, default=None)
            raised.add(floor if floor and not up.startswith(floor) else up)
        if raised == set(out):
            return []
        kept = sorted(raised)


# -- the AWS calls -------------------------------------------------------------------------------------


def exists(key: str) -> bool:
    try:
        s3.get_object(Bucket=ARTIFACTS, Key=key)["Body"].read()
        return True
    except ClientError as e:
        if e.response["Error"]["Code"] in ("NoSuchKey", "404"):
            return False
        raise


def head(key: str) -> bool:
    try:
        s3.head_object(Bucket=ARTIFACTS, Key=key)
        return True
    except ClientError as e:
        if e.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
            return False
        raise


def put(key: str, value: Any) -> None:
    s3.put_object(Bucket=ARTIFACTS, Key=key, Body=json.dumps(value, indent=2).encode(), ContentType="application/json")


def put_once(key: str, value: Any) -> bool:
    try:
        s3.put_object(
            Bucket=ARTIFACTS, Key=key, Body=json.dumps(value, indent=2).encode(), ContentType="application/json", IfNoneMatch="*"
        )
        return True
    except ClientError as e:
        if e.response["ResponseMetadata"]["HTTPStatusCode"] in (409, 412):
            return False
        raise


def pending(fs: str) -> list[dict[str, Any]]:
    entries = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=ARTIFACTS, Prefix=f"pending/{fs}/"):
        for obj in page.get("Contents", []):
            entries.append(json.loads(s3.get_object(Bucket=ARTIFACTS, Key=obj["Key"])["Body"].read()))
    return entries


def start_covering_import(fs: str) -> str:
    entries = pending(fs)
    if not entries:
        return "nothing pending"
    settings = next((p.get("import") or {} for p in PIPELINES if p["file_system"]["id"] == fs), {})
    floors = sorted({p["file_system"]["data_repository_path"] for p in PIPELINES if p["file_system"]["id"] == fs and p["file_system"].get("data_repository_path")})
    ids = sorted({e["id"] for e in entries})
    paths = collapse([f"s3://{o['bucket']}/{o['key']}" for e in entries for o in e["objects"]], floors)
    token = "retrain-" + digest([fs, "1", *ids])[:40]
    try:
        task = fsx.create_data_repository_task(
            Type="IMPORT_METADATA_FROM_REPOSITORY",
            Paths=paths,
            FileSystemId=fs,
            Report={"Enabled": False},
            ClientRequestToken=token,
        )["DataRepositoryTask"]
    except ClientError as e:
        if e.response["Error"]["Code"] == "DataRepositoryTaskExecuting":
            return f"an import is running on {fs}: its watcher takes these uploads next"
        raise
    task_id = task["TaskId"]
    record_key = f"imports/{task_id}.json"
    if exists(record_key):
        return f"import {task_id} already running for these uploads"
    put_once(f"open/imports/{fs}/{task_id}", {"task_id": task_id})
    poll = int(settings.get("poll_interval_seconds", 30))
    watch = {"kind": "import-watch", "file_system_id": fs, "task_id": task_id, "polls": 0, "chain": int(time.time())}
    sqs.send_message(QueueUrl=WATCH_QUEUE, MessageBody=json.dumps(watch), DelaySeconds=min(poll, 900))
    put(f"imports/watching/{task_id}.json", {"polled_at": int(time.time())})
    pipelines = sorted({p for e in entries for p in e["pipelines"]})
    put_once(
        record_key,
        {
            "task_id": task_id,
            "file_system_id": fs,
            "entries": ids,
            "pipelines": pipelines,
            "attempt": 1,
            "paths": paths,
            "started_at": int(time.time()),
            "objects": sum(len(e["objects"]) for e in entries),
        },
    )
    detail = {
        "file_system_id": fs,
        "task_id": task_id,
        "pipelines": pipelines,
        "paths": paths,
        "objects": sum(len(e["objects"]) for e in entries),
        "attempt": 1,
    }
    marker = f"imports/{task_id}/published/DataImportStarted"
    if not head(marker):
        events.put_events(
            Entries=[{"Source": "retrain", "DetailType": "DataImportStarted", "EventBusName": BUS,
                      # The deterministic id subscribers deduplicate on, as the Rust handler sets it.
                      "Detail": json.dumps({**detail, "event_id": digest([f"imports/{task_id}", "DataImportStarted"])[:32]})}]
        )
        put_once(marker, detail)
    return f"import {task_id} on {fs} started"


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    done = []
    recorded = set()
    for entry in pending_entries(objects_of(event)):
        fs = entry["file_system_id"]
        if exists(f"imported/{fs}/{entry['id']}"):
            done.append(f"{len(entry['objects'])} upload(s) for {fs} were already imported")
            continue
        put_once(f"pending/{fs}/{entry['id']}.json", entry)
        recorded.add(fs)
        done.append(f"recorded {len(entry['objects'])} upload(s) for {fs}")
    for fs in sorted(recorded):
        done.append(start_covering_import(fs))
    return {"batchItemFailures": [], "done": done}
