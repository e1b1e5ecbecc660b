"""The events the benchmark invokes the functions with, shaped like the AWS ones
(same fields as the fixtures in events/, which follow the AWS documentation)."""

from __future__ import annotations

import hashlib
import json
import urllib.parse
import uuid
from datetime import datetime, timezone
from typing import Any

from runtime_api import ACCOUNT, REGION

# SQS → Lambda cuts a batch at 6 MB of payload.
SQS_BATCH_LIMIT = 6 * 1024 * 1024


def s3_record(bucket: str, key: str, sequencer: str, size: int = 2_048_576) -> dict[str, Any]:
    """One `ObjectCreated:Put` record; S3 URL-encodes the key (space as `+`)."""
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventTime": "2026-11-25T14:03:26.018Z",
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:AIDAINPONIXQXHT3IKHL2"},
        "requestParameters": {"sourceIPAddress": "205.255.255.255"},
        "responseElements": {
            "x-amz-request-id": "C3D13FE58DE4C810",
            "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD",
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "828aa6fc-f7b5-4305-8584-487c791949c1",
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": "A3I5XTEXAMAI3E"},
                "arn": f"arn:aws:s3:::{bucket}",
            },
            "object": {
                "key": urllib.parse.quote_plus(key, safe="/-_.~"),
                "size": size,
                "eTag": hashlib.md5(key.encode()).hexdigest(),  # noqa: S324 - an ETag, not security
                "sequencer": sequencer,
            },
        },
    }


def sqs_record(body: Any, queue: str = "retrain-uploads") -> dict[str, Any]:
    text = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a" + uuid.uuid4().hex,
        "body": text,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1795615407612",
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": "1795615407640",
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(text.encode()).hexdigest(),  # noqa: S324 - SQS's own checksum
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}",
        "awsRegion": REGION,
    }


def upload_key(run: str, n: int) -> str:
    """`datasets/churn/day-N/part-NNNNN.csv`, 100 parts a day; `run` keeps batches apart."""
    return f"datasets/churn/{run}/day-{n // 100}/part-{n:05d}.csv"


def upload_batch(bucket: str, run: str, count: int) -> dict[str, Any]:
    """An SQS batch of `count` S3 notifications, one object each (S3 sends one record per message)."""
    return {
        "Records": [
            sqs_record({"Records": [s3_record(bucket, upload_key(run, n), f"0C0F6F405D6E{n:06X}")]}) for n in range(count)
        ]
    }


def largest_upload_batch(bucket: str, run: str, limit: int = SQS_BATCH_LIMIT) -> tuple[dict[str, Any], int]:
    """As many notifications as fit in one SQS → Lambda batch; returns (payload, its size in bytes)."""
    records: list[dict[str, Any]] = []
    size = len(b'{"Records": []}')
    n = 0
    while True:
        record = sqs_record({"Records": [s3_record(bucket, upload_key(run, n), f"0C0F6F405D6E{n:06X}")]})
        grown = size + len(json.dumps(record)) + (2 if records else 0)
        if grown > limit:
            break
        records.append(record)
        size = grown
        n += 1
    payload = {"Records": records}
    return payload, len(json.dumps(payload).encode())


def import_watch_batch(file_system_id: str, task_id: str) -> dict[str, Any]:
    """The watch timer as on-import receives it: one SQS message."""
    body = {"kind": "import-watch", "file_system_id": file_system_id, "task_id": task_id, "polls": 0}
    return {"Records": [sqs_record(body, "retrain-watch")]}


def reconcile_schedule() -> dict[str, Any]:
    """The reconciler's schedule firing (EventBridge "Scheduled Event")."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/retrain-reconcile-schedule"],
        "detail": {},
    }


def start_sweep_request(pipeline: str, request_id: str) -> dict[str, Any]:
    return {"kind": "start-sweep", "pipeline": pipeline, "reason": "benchmark", "request_id": request_id}
