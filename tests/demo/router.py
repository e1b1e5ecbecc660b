"""The router plays AWS around the functions: SQS event source mappings,
EventBridge rules, and the FSx and SageMaker services finishing their work.

Every part is a thread polling the emulator; whatever goes wrong is recorded
in `Trouble`, which the story checks while it waits.
"""

from __future__ import annotations

import datetime
import json
import queue
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import requests

from runtime_api import ACCOUNT, REGION, FunctionError, LambdaFunction
from story import Narrator, shorten, summarize

CAPACITY_ERROR = (
    "CapacityError: Unable to provision requested ML compute capacity. Please retry using a different ML instance type."
)


class Trouble:
    """Failures seen by any thread; the story stops at the first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.problems: list[str] = []

    def add(self, problem: str) -> None:
        with self._lock:
            self.problems.append(problem)

    def first(self) -> str | None:
        with self._lock:
            return self.problems[0] if self.problems else None


class Control:
    """The emulator's /_retrain/ control API."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint

    def get(self, path: str) -> Any:
        r = requests.get(f"{self.endpoint}/_retrain/{path}", timeout=10)
        r.raise_for_status()
        return r.json()

    def post(self, path: str, body: dict[str, Any]) -> Any:
        r = requests.post(f"{self.endpoint}/_retrain/{path}", json=body, timeout=10)
        if r.status_code >= 400:
            raise RuntimeError(f"POST /_retrain/{path}: {r.status_code} {r.text[:300]}")
        return r.json()

    def tasks(self) -> list[dict[str, Any]]:
        return self.get("fsx/tasks")["tasks"]

    def jobs(self) -> dict[str, Any]:
        return self.get("sagemaker/jobs")

    def events(self, bus: str) -> list[dict[str, Any]]:
        return self.get(f"events?bus={bus}")["entries"]


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Worker(threading.Thread):
    """A polling loop that stops on `stop` and reports its exceptions to Trouble."""

    def __init__(self, name: str, trouble: Trouble, stop: threading.Event, interval: float):
        super().__init__(name=name, daemon=True)
        self.trouble = trouble
        self.stop = stop
        self.interval = interval

    def tick(self) -> None:
        raise NotImplementedError

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.tick()
            except Exception as error:  # noqa: BLE001 - every failure ends the story, with its message
                if not self.stop.is_set():
                    self.trouble.add(f"{self.name}: {type(error).__name__}: {error}")
                return
            self.stop.wait(self.interval)


class AsyncInvoker(Worker):
    """Lambda's asynchronous invocation (EventBridge targets): a FIFO queue per function."""

    def __init__(self, function: LambdaFunction, narrator: Narrator, trouble: Trouble, stop: threading.Event):
        super().__init__(f"async-{function.name}", trouble, stop, 0)
        self.function = function
        self.narrator = narrator
        self._queue: queue.Queue[tuple[Any, str]] = queue.Queue()
        self.busy = 0
        self._lock = threading.Lock()

    def submit(self, payload: Any, what: str) -> None:
        with self._lock:
            self.busy += 1
        self._queue.put((payload, what))

    def tick(self) -> None:
        try:
            payload, what = self._queue.get(timeout=0.2)
        except queue.Empty:
            return
        try:
            response = self.function.invoke(payload)
            failures = response.get("batchItemFailures") if isinstance(response, dict) else None
            if failures:
                self.trouble.add(f"{self.function.name} failed {what}: {response}")
        except FunctionError as error:
            raise RuntimeError(f"{what}: {error}") from error
        finally:
            with self._lock:
                self.busy -= 1

    def idle(self) -> bool:
        with self._lock:
            return self.busy == 0


class SqsSource(Worker):
    """An SQS event source mapping: Lambda SQS batches, ReportBatchItemFailures."""

    def __init__(
        self,
        sqs: Any,
        queue_name: str,
        queue_url: str,
        function: LambdaFunction,
        narrator: Narrator,
        trouble: Trouble,
        stop: threading.Event,
        window: float = 0.0,
        batch_size: int = 10,
        quiet: bool = False,
    ):
        super().__init__(f"sqs-{queue_name}", trouble, stop, 0.2)
        self.sqs = sqs
        self.queue_name = queue_name
        self.queue_url = queue_url
        self.arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.function = function
        self.narrator = narrator
        self.window = window
        self.batch_size = batch_size
        self.quiet = quiet
        self.batches = 0
        self.idle_polls = 0  # consecutive empty receives

    def _receive(self, want: int) -> list[dict[str, Any]]:
        out = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=max(1, min(10, want)),
            WaitTimeSeconds=0,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return out.get("Messages", [])

    def tick(self) -> None:
        messages = self._receive(self.batch_size)
        if not messages:
            self.idle_polls += 1
            return
        self.idle_polls = 0
        # The batching window: keep gathering until it closes or the batch is full.
        closes = time.monotonic() + self.window
        while len(messages) < self.batch_size and time.monotonic() < closes and not self.stop.is_set():
            more = self._receive(self.batch_size - len(messages))
            messages.extend(more)
            if not more:
                time.sleep(0.1)
        self.deliver(messages)

    def record(self, m: dict[str, Any]) -> dict[str, Any]:
        attributes = m.get("Attributes", {})
        return {
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": {
                k: attributes[k]
                for k in ("ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp")
                if k in attributes
            },
            "messageAttributes": {
                name: {
                    "stringValue": a.get("StringValue"),
                    "binaryValue": a.get("BinaryValue"),
                    "stringListValues": a.get("StringListValues", []),
                    "binaryListValues": a.get("BinaryListValues", []),
                    "dataType": a.get("DataType"),
                }
                for name, a in m.get("MessageAttributes", {}).items()
            },
            "md5OfBody": m["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": self.arn,
            "awsRegion": REGION,
        }

    def deliver(self, messages: list[dict[str, Any]]) -> None:
        self.batches += 1
        payload = {"Records": [self.record(m) for m in messages]}
        try:
            response = self.function.invoke(payload)
        except FunctionError as error:
            # Lambda leaves the whole batch to reappear; the demo stops.
            raise RuntimeError(f"{len(messages)} message(s) from {self.queue_name}: {error}") from error
        failed = {f.get("itemIdentifier") for f in (response or {}).get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        for i in range(0, len(done), 10):
            chunk = done[i : i + 10]
            result = self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(chunk)],
            )
            if result.get("Failed"):
                raise RuntimeError(f"DeleteMessageBatch on {self.queue_name}: {result['Failed']}")
        if not self.quiet or failed:
            self.narrator.say(self.function.name.removeprefix("retrain-"), f"{self.queue_name} ×{len(messages)}", summarize(response))


class BusRouter(Worker):
    """The retrain bus: tells each domain event once (a subscriber deduplicates on `event_id`), routes DataImportCompleted to start-sweep."""

    def __init__(
        self,
        control: Control,
        bus: str,
        start_sweep: AsyncInvoker,
        narrator: Narrator,
        trouble: Trouble,
        stop: threading.Event,
    ):
        super().__init__("eventbridge", trouble, stop, 0.2)
        self.control = control
        self.bus = bus
        self.start_sweep = start_sweep
        self.narrator = narrator
        self._lock = threading.Lock()
        self.read = 0  # bus entries looked at so far
        self.events: list[tuple[str, dict[str, Any]]] = []  # the first publication of each event_id
        self.event_ids: set[str] = set()

    def seen(self, detail_type: str) -> list[dict[str, Any]]:
        with self._lock:
            return [d for t, d in self.events if t == detail_type]

    def tick(self) -> None:
        entries = self.control.events(self.bus)
        with self._lock:
            fresh = entries[self.read :]
            self.read = len(entries)
        for entry in fresh:
            detail_type = entry["DetailType"]
            detail = json.loads(entry.get("Detail") or "{}")
            # Publishing is at-least-once: a subscriber keeps the first event of each event_id.
            event_id = detail.get("event_id")
            if not event_id:
                self.trouble.add(f"{detail_type} without an event_id: {detail}")
            with self._lock:
                duplicate = event_id in self.event_ids
                if not duplicate:
                    self.event_ids.add(event_id)
                    self.events.append((detail_type, detail))
            if duplicate:
                self.narrator.say("duplicate", f"{detail_type} {event_id}", "published again with the same event_id: dropped")
            else:
                self.tell(detail_type, detail)
            if detail_type == "DataImportCompleted":
                # EventBridge delivers every entry, duplicates too: start-sweep is idempotent.
                # The template's rule: source retrain, detail-type DataImportCompleted → start-sweep.
                envelope = {
                    "version": "0",
                    "id": entry.get("EventId") or str(uuid.uuid4()),
                    "detail-type": detail_type,
                    "source": entry["Source"],
                    "account": ACCOUNT,
                    "time": utc_now(),
                    "region": REGION,
                    "resources": entry.get("Resources") or [],
                    "detail": detail,
                }
                self.start_sweep.submit(envelope, f"DataImportCompleted {detail.get('task_id')}")

    def tell(self, kind: str, d: dict[str, Any]) -> None:
        say = self.narrator.say
        if kind == "DataImportStarted":
            again = f", attempt {d['attempt']}" if d.get("attempt", 1) > 1 else ""
            say(
                "import started",
                d["task_id"],
                f"{d['file_system_id']} covering {d['objects']} objects in {len(d['paths'])} path(s){again}",
            )
        elif kind == "DataImportCompleted":
            settled = ", ".join(d.get("settled") or []) or "none (uploads still pending)"
            say("import completed", d["task_id"], f"settled: {settled} → start-sweep")
        elif kind == "DataImportFailed":
            say("import failed", d["task_id"], f"{d['failure']}" + (" → retry" if d.get("will_retry") else ""))
            if not d.get("will_retry"):
                self.trouble.add(f"DataImportFailed: {d}")
        elif kind == "SweepStarted":
            trigger = d.get("trigger") or {}
            say(
                "sweep started",
                f"{d['pipeline']}/{d['sweep_id']}",
                f"{d['variants']} variants in {d['max_parallel']} lane(s) on {d['file_system_type']} {d['file_system_id']}"
                f" (trigger: {trigger.get('kind')} {shorten(str(trigger.get('id')), 24)})",
            )
        elif kind == "TrainingJobLaunched":
            again = f", attempt {d['attempt']}" if d.get("attempt", 1) > 1 else ""
            say("job launched", d["training_job_name"], f"{d['variant_id']} in lane {d['lane']}{again}")
        elif kind == "VariantRetried":
            cause = d.get("failure_reason", "").split(":")[0]
            say(
                "variant retried",
                d["previous_training_job_name"],
                f"{cause} → retry as attempt {d['attempt']} in lane {d['lane']}",
            )
        elif kind == "SweepCompleted":
            # The event carries the best variant and the counts; the full ranking is in `results` (S3).
            best = d.get("best")
            metric = d.get("metric")
            told = f"best {best['variant_id']} {metric}={best.get('metric'):.2f}" if best else "no variant reported the metric"
            say("sweep completed", f"{d['pipeline']}/{d['sweep_id']}", f"{told} ({d['ranked']} ranked, {d['unranked']} unranked)")
        elif kind == "SweepBlocked":
            say("sweep blocked", f"{d['pipeline']}/{d.get('sweep_id', '-')}", "; ".join(d.get("problems") or []))
            self.trouble.add(f"SweepBlocked: {d}")
        elif kind == "LaunchDeferred":
            say("launch deferred", d["training_job_name"], f"{d['code']}: retried with backoff until {d['gives_up_at']}")
        elif kind in ("ImportStalled", "SweepStalled"):
            where = d.get("file_system_id") if kind == "ImportStalled" else f"{d['pipeline']}/{d['sweep_id']}"
            say("import stalled" if kind == "ImportStalled" else "sweep stalled", str(where), d.get("problem", ""))
            self.trouble.add(f"{kind}: {d}")
        else:
            say(kind, "retrain bus", json.dumps(d)[:100])


class FsxService(Worker):
    """FSx: an import task seen EXECUTING for `after` seconds ends SUCCEEDED."""

    def __init__(self, control: Control, s3: Any, narrator: Narrator, trouble: Trouble, stop: threading.Event, after: float = 2.0):
        super().__init__("fsx", trouble, stop, 0.2)
        self.control = control
        self.s3 = s3
        self.narrator = narrator
        self.after = after
        self.executing_since: dict[str, float] = {}
        self.tasks: dict[str, dict[str, Any]] = {}

    def tick(self) -> None:
        now = time.monotonic()
        for task in self.control.tasks():
            self.tasks[task["TaskId"]] = task
            if task["Lifecycle"] != "EXECUTING":
                continue
            since = self.executing_since.setdefault(task["TaskId"], now)
            if now - since >= self.after:
                files = self.count_files(task["Paths"])
                ended = self.control.post(
                    f"fsx/tasks/{task['TaskId']}/finish",
                    {"lifecycle": "SUCCEEDED", "status": {"TotalCount": files, "SucceededCount": files, "FailedCount": 0}},
                )
                self.tasks[task["TaskId"]] = ended
                self.narrator.say("FSx", task["TaskId"], f"import SUCCEEDED after {now - since:.0f} s: {files} files' metadata loaded")

    def count_files(self, paths: list[str]) -> int:
        keys: set[str] = set()
        for path in paths:
            bucket, _, prefix = path.removeprefix("s3://").partition("/")
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                keys.update(o["Key"] for o in page.get("Contents", []))
        return len(keys)


class SageMakerService(Worker):
    """SageMaker: a job InProgress for `after` seconds ends; its state-change event goes to on-training."""

    def __init__(
        self,
        control: Control,
        on_training: AsyncInvoker,
        outcome: Callable[[dict[str, Any]], tuple[str, Any]],
        narrator: Narrator,
        trouble: Trouble,
        stop: threading.Event,
        after: float = 1.0,
    ):
        super().__init__("sagemaker", trouble, stop, 0.2)
        self.control = control
        self.on_training = on_training
        self.outcome = outcome
        self.narrator = narrator
        self.after = after
        self.first_seen: dict[str, float] = {}
        self.jobs: list[dict[str, Any]] = []

    def tick(self) -> None:
        now = time.monotonic()
        self.jobs = self.control.jobs()["jobs"]
        for job in self.jobs:
            if job["status"] != "InProgress":
                continue
            since = self.first_seen.setdefault(job["name"], now)
            if now - since < self.after:
                continue
            verdict, value = self.outcome(job)
            if verdict == "fail":
                event = self.control.post(f"sagemaker/jobs/{job['name']}/fail", {"reason": value})
                self.narrator.say("job failed", job["name"], shorten(value, 70))
            else:
                event = self.control.post(f"sagemaker/jobs/{job['name']}/complete", {"metrics": value})
                shown = ", ".join(f"{k}={v:.2f}" for k, v in value.items() if k.startswith("validation:"))
                self.narrator.say("job completed", job["name"], shown)
            # The EventBridge rule on aws.sagemaker / SageMaker Training Job State Change.
            self.on_training.submit(event, f"state change of {job['name']}")
