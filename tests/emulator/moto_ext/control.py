"""Control API for tests: plain JSON under /_retrain/, served next to the AWS APIs.

moto's DomainDispatcherApplication routes by the SigV4 scope, X-Amz-Target
or Host, treating only /moto-api/ specially; this wrapper takes /_retrain/
before it. No AWS API uses that prefix (S3 bucket names cannot start with
an underscore).
"""

import datetime
import json
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from moto.core.base_backend import BackendDict
from moto.core.exceptions import JsonRESTError, ServiceException
from moto.events.models import events_backends
from moto.fsx.models import fsx_backends
from moto.moto_api._internal.models import moto_api_backend
from moto.sagemaker.models import sagemaker_backends
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from . import events, fsx, s3, sagemaker, servicequotas, sqs
from .common import CLOCK, Conflict, NotFound, iso8601, reset_settings
from .fsx import CONTROL_LIFECYCLES
from .sagemaker import PHASES

PREFIX = "/_retrain/"
# moto's own reset; the settings of this API are cleared on it as well.
MOTO_RESET = "/moto-api/reset"

ROUTES = Map(
    [
        Rule("/_retrain/fsx/tasks", methods=["GET"], endpoint="list_tasks"),
        Rule("/_retrain/fsx/tasks/<task_id>/finish", methods=["POST"], endpoint="finish_task"),
        Rule("/_retrain/fsx/file-systems/<file_system_id>", methods=["POST"], endpoint="patch_file_system"),
        Rule("/_retrain/fsx/task-duration", methods=["POST"], endpoint="set_task_duration"),
        Rule("/_retrain/clock", methods=["GET"], endpoint="get_clock"),
        Rule("/_retrain/clock/advance", methods=["POST"], endpoint="advance_clock"),
        Rule("/_retrain/sagemaker/jobs", methods=["GET"], endpoint="list_jobs"),
        Rule("/_retrain/sagemaker/jobs/<name>/complete", methods=["POST"], endpoint="complete_job"),
        Rule("/_retrain/sagemaker/jobs/<name>/fail", methods=["POST"], endpoint="fail_job"),
        Rule("/_retrain/sagemaker/jobs/<name>/stop", methods=["POST"], endpoint="stop_job"),
        Rule("/_retrain/sagemaker/jobs/<name>/event", methods=["GET"], endpoint="job_event"),
        Rule("/_retrain/sagemaker/list-lag", methods=["POST"], endpoint="set_list_lag"),
        Rule("/_retrain/sagemaker/quotas", methods=["POST"], endpoint="set_quotas"),
        Rule("/_retrain/sagemaker/capacity", methods=["POST"], endpoint="set_capacity"),
        Rule("/_retrain/sagemaker/training-plans", methods=["POST"], endpoint="put_training_plan"),
        Rule("/_retrain/servicequotas/errors", methods=["POST"], endpoint="arm_service_quotas_error"),
        Rule("/_retrain/events", methods=["GET"], endpoint="list_events"),
        Rule("/_retrain/events/failures", methods=["POST"], endpoint="arm_event_failures"),
        Rule("/_retrain/s3/conflicts", methods=["POST"], endpoint="arm_s3_conflicts"),
        Rule("/_retrain/sqs/release-delayed", methods=["POST"], endpoint="release_delayed"),
        Rule("/_retrain/sqs/queues", methods=["GET"], endpoint="list_queues"),
        Rule("/_retrain/reset", methods=["POST"], endpoint="reset"),
    ]
)


class ControlError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def backends(backend_dict: BackendDict) -> Iterator[Any]:
    """Every account/region backend the requests have created so far."""
    return (backend for _, _, backend in backend_dict.iter_backends())


def find(backend_dict: BackendDict, contains: Callable[[Any], bool], what: str) -> Any:
    backend = next((b for b in backends(backend_dict) if contains(b)), None)
    if backend is None:
        raise ControlError(404, f"{what} does not exist")
    return backend


def body(request: Request) -> dict[str, Any]:
    if not request.get_data():
        return {}
    try:
        payload = json.loads(request.get_data())
    except ValueError as error:
        raise ControlError(400, f"body is not JSON: {error}") from error
    if not isinstance(payload, dict):
        raise ControlError(400, "body must be a JSON object")
    return payload


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_whole(value: Any, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def count_of(payload: dict[str, Any]) -> int:
    count = payload.get("count")
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise ControlError(400, "count must be a non-negative integer")
    return count


def optional_string(payload: dict[str, Any], key: str) -> str | None:
    value = payload.get(key)
    if value is not None and not isinstance(value, str):
        raise ControlError(400, f"{key} must be a string")
    return value


def fsx_for_task(task_id: str) -> Any:
    return find(fsx_backends, lambda b: task_id in b.tasks, f"task {task_id}")


def sagemaker_for_job(name: str) -> Any:
    return find(sagemaker_backends, lambda b: name in b.training_jobs, f"training job {name}")


def finish_task(request: Request, task_id: str) -> Any:
    payload = body(request)
    lifecycle = payload.get("lifecycle")
    if lifecycle not in CONTROL_LIFECYCLES:
        raise ControlError(400, f"lifecycle must be one of {', '.join(CONTROL_LIFECYCLES)}")
    counts = payload.get("status") or {}
    if not isinstance(counts, dict) or not all(isinstance(n, int) for n in counts.values()):
        raise ControlError(400, "status must map DataRepositoryTaskStatus counters to integers")
    task = fsx_for_task(task_id).end_task(task_id, lifecycle, payload.get("message"), counts)
    return task.to_dict()


def patch_file_system(request: Request, file_system_id: str) -> Any:
    backend = find(fsx_backends, lambda b: file_system_id in b.file_systems, f"file system {file_system_id}")
    file_system = backend.file_systems[file_system_id]
    file_system.overrides.update(body(request))
    return file_system.to_dict()


def set_task_duration(request: Request) -> Any:
    seconds = body(request).get("seconds")
    if seconds is not None and (not is_number(seconds) or seconds < 0):
        raise ControlError(400, "seconds must be a non-negative number or null")
    return {"seconds": fsx.set_task_duration(seconds)}


def clock_row() -> dict[str, float]:
    return {"now": CLOCK.now(), "offset": CLOCK.offset}


def get_clock(request: Request) -> Any:
    return clock_row()


def advance_clock(request: Request) -> Any:
    seconds = body(request).get("seconds")
    if not is_number(seconds) or seconds < 0:
        raise ControlError(400, "seconds must be a non-negative number")
    CLOCK.advance(seconds)
    for _, queue in sqs.queues():
        with queue._messages_lock:
            # Wakes receivers long-polling a queue whose delayed messages are now due.
            queue._messages_lock.notify_all()
    return clock_row()


def list_tasks(request: Request) -> Any:
    tasks, highest = [], {}
    for backend in backends(fsx_backends):
        backend.run_out_tasks()
        tasks.extend(backend.tasks.values())
        highest.update(backend.max_active)
    tasks.sort(key=lambda task: task.creation_time)
    return {"tasks": [task.to_dict() for task in tasks], "max_executing_per_file_system": highest}


def job_row(job: Any) -> dict[str, Any]:
    return {
        "name": job.training_job_name,
        "arn": job.arn,
        "status": job.training_job_status,
        "secondary_status": job.secondary_status,
        "tags": job.tag_map,
        "instance_type": job.instance_type,
        "instance_count": job.instance_count,
        "managed_spot": bool(job.request.get("EnableManagedSpotTraining")),
        "training_plan_arn": (job.request.get("ResourceConfig") or {}).get("TrainingPlanArn"),
        "creation_order": job.creation_order,
        "creation_time": job.creation_time.isoformat(),
        "failure_reason": job.failure_reason,
        "warm_pool_status": job.warm_pool,
        "final_metrics": {metric["MetricName"]: metric["Value"] for metric in job.final_metric_data_list},
        "hyperparameters": job.request.get("HyperParameters", {}),
    }


def list_jobs(request: Request) -> Any:
    jobs, by_sweep = [], {}
    totals = {"max_in_progress": 0, "create_calls": 0, "resource_in_use": 0}
    for backend in backends(sagemaker_backends):
        jobs.extend(backend.training_jobs.values())
        totals["max_in_progress"] = max(totals["max_in_progress"], backend.max_in_progress)
        totals["create_calls"] += backend.create_calls
        totals["resource_in_use"] += backend.resource_in_use
        by_sweep.update(backend.max_in_progress_by_sweep)
    jobs.sort(key=lambda job: (job.creation_time, job.creation_order))
    return {"jobs": [job_row(job) for job in jobs], **totals, "max_in_progress_by_tag": by_sweep}


def complete_job(request: Request, name: str) -> Any:
    payload = body(request)
    metrics = payload.get("metrics") or {}
    if not all(isinstance(value, (int, float)) for value in metrics.values()):
        raise ControlError(400, "metrics must map metric names to numbers")
    billable, training = payload.get("billable_seconds"), payload.get("training_seconds")
    for key, seconds in (("billable_seconds", billable), ("training_seconds", training)):
        if seconds is not None and not is_whole(seconds, 1):
            raise ControlError(400, f"{key} must be a whole number of seconds, at least 1")
    if billable is not None and training is not None and billable > training:
        # A job is billed for at most the time it trained.
        raise ControlError(400, "billable_seconds must not exceed training_seconds")
    job = sagemaker_for_job(name).complete_training_job(
        name, metrics, bool(payload.get("warm_pool_reused")), billable, training
    )
    return job.state_change_event()


def fail_job(request: Request, name: str) -> Any:
    payload = body(request)
    reason = payload.get("reason") or "AlgorithmError: the training job failed"
    if payload.get("phase") not in (None, *PHASES):
        raise ControlError(400, f"phase must be one of {', '.join(PHASES)}")
    job = sagemaker_for_job(name).fail_training_job(name, reason, payload.get("phase"))
    return job.state_change_event()


def stop_job(request: Request, name: str) -> Any:
    return sagemaker_for_job(name).stop_training_job(name).state_change_event()


def job_event(request: Request, name: str) -> Any:
    return sagemaker_for_job(name).get_training_job(name).state_change_event()


def set_list_lag(request: Request) -> Any:
    seconds = body(request).get("seconds")
    if not is_number(seconds) or seconds < 0:
        raise ControlError(400, "seconds must be a non-negative number")
    return {"seconds": sagemaker.set_list_lag(seconds)}


QUOTA_KEYS = (
    "an instance type (ml.m5.xlarge, for its on-demand quota), '<type> for training job usage', "
    f"'<type> for spot training job usage' or '{sagemaker.TOTAL_INSTANCES_QUOTA}'"
)


def set_quotas(request: Request) -> Any:
    changes: dict[str, int | None] = {}
    for key, quota in body(request).items():
        name = sagemaker.quota_name(key)
        if name is None:
            raise ControlError(400, f"unknown quota {key!r}: a key must be {QUOTA_KEYS}")
        if quota is not None and not is_whole(quota, 0):
            raise ControlError(400, f"the quota of {key} must be a non-negative integer or null")
        changes[name] = quota
    return {"quotas": sagemaker.set_quotas(changes)}


def set_capacity(request: Request) -> Any:
    changes = body(request)
    for instance_type, market in changes.items():
        if market is not None and market not in sagemaker.CAPACITY_MARKETS:
            raise ControlError(
                400, f"the market of {instance_type} must be one of {', '.join(sagemaker.CAPACITY_MARKETS)} or null"
            )
    return {"no_capacity": sagemaker.set_capacity(changes)}


PLAN_FIELDS = frozenset(
    {
        "name",
        "status",
        "status_message",
        "instance_type",
        "instance_count",
        "target_resources",
        "region",
        "availability_zone",
        "duration_hours",
    }
)
REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]")


def one_of(payload: dict[str, Any], key: str, allowed: tuple[str, ...]) -> str:
    value = payload.get(key)
    if value not in allowed:
        raise ControlError(400, f"{key} must be one of {', '.join(allowed)}")
    return str(value)


def plan_target_resources(payload: dict[str, Any]) -> list[str]:
    targets = payload.get("target_resources", ["training-job"])
    allowed = sagemaker.PLAN_TARGET_RESOURCES
    if (
        not isinstance(targets, list)
        or not targets
        or not all(target in allowed for target in targets)
        or len(set(targets)) < len(targets)
    ):
        raise ControlError(400, f"target_resources must be a non-empty list of distinct values of {', '.join(allowed)}")
    return targets


def plan_location(payload: dict[str, Any]) -> tuple[str, str]:
    region = payload.get("region", "us-east-1")
    if not isinstance(region, str) or not REGION.fullmatch(region):
        raise ControlError(400, "region must be a region name such as us-east-1")
    zone = payload.get("availability_zone", f"{region}a")
    if not isinstance(zone, str) or not re.fullmatch(rf"{re.escape(region)}[a-z]", zone):
        raise ControlError(400, f"availability_zone must be a zone of {region}, such as {region}a")
    return region, zone


def iso_times(value: Any) -> Any:
    """A description with its timestamps as ISO 8601 strings, for JSON."""
    if isinstance(value, datetime.datetime):
        return iso8601(value)
    if isinstance(value, dict):
        return {key: iso_times(item) for key, item in value.items()}
    if isinstance(value, list):
        return [iso_times(item) for item in value]
    return value


def put_training_plan(request: Request) -> Any:
    payload = body(request)
    unknown = sorted(set(payload) - PLAN_FIELDS)
    if unknown:
        raise ControlError(400, f"unknown training plan fields: {', '.join(unknown)}")
    name = payload.get("name")
    if not isinstance(name, str) or not sagemaker.TRAINING_PLAN_NAME.fullmatch(name):
        raise ControlError(
            400, "name must be 1-64 letters, digits and hyphens, starting and ending with a letter or digit"
        )
    status = one_of(payload, "status", sagemaker.TRAINING_PLAN_STATUSES)
    instance_type = one_of(payload, "instance_type", sagemaker.PLAN_INSTANCE_TYPES)
    count = payload.get("instance_count")
    if not is_whole(count, 1):
        raise ControlError(400, "instance_count must be a whole number, at least 1")
    hours = payload.get("duration_hours", 24)
    if not is_whole(hours, 1) or hours > sagemaker.MAX_PLAN_HOURS:
        raise ControlError(400, f"duration_hours must be a whole number from 1 to {sagemaker.MAX_PLAN_HOURS}")
    region, zone = plan_location(payload)
    plan = sagemaker.put_training_plan(
        region,
        name,
        status,
        instance_type,
        count,
        plan_target_resources(payload),
        zone,
        hours,
        optional_string(payload, "status_message"),
    )
    return iso_times(plan.description)


def arm_service_quotas_error(request: Request) -> Any:
    payload = body(request)
    # `error` must be there: an empty body clearing what was armed would hide a typo.
    if "error" not in payload or payload["error"] not in (None, *servicequotas.ARMABLE_ERRORS):
        raise ControlError(400, f"error must be one of {', '.join(servicequotas.ARMABLE_ERRORS)} or null")
    return {"error": servicequotas.arm_error(payload["error"])}


def arm_event_failures(request: Request) -> Any:
    payload = body(request)
    count = count_of(payload)
    code, message = optional_string(payload, "code"), optional_string(payload, "message")
    return {"armed": events.arm_failures(count, code, message)}


def arm_s3_conflicts(request: Request) -> Any:
    payload = body(request)
    count = count_of(payload)
    return {"armed": s3.arm_conflicts(count, optional_string(payload, "key_prefix") or "")}


def release_delayed(request: Request) -> Any:
    return {"released": sqs.release_delayed()}


def list_queues(request: Request) -> Any:
    return {"queues": sqs.queue_rows(request.host_url)}


def list_events(request: Request) -> Any:
    bus = request.args.get("bus")
    entries = [entry for backend in backends(events_backends) for entry in backend.recorded]
    entries.sort(key=lambda entry: entry["sequence"])
    return {
        "entries": [
            {key: value for key, value in entry.items() if key != "sequence"}
            for entry in entries
            if bus in (None, entry["EventBusName"])
        ]
    }


def reset(request: Request) -> Any:
    # The extensions keep their state on moto's backends, so moto's own reset
    # (also reachable as POST /moto-api/reset) clears it; the settings of
    # this API (quotas, lags, armed failures) are cleared next to it.
    moto_api_backend.reset()
    reset_settings()
    return {"reset": True}


HANDLERS: dict[str, Callable[..., Any]] = {
    "list_tasks": list_tasks,
    "finish_task": finish_task,
    "patch_file_system": patch_file_system,
    "set_task_duration": set_task_duration,
    "get_clock": get_clock,
    "advance_clock": advance_clock,
    "list_jobs": list_jobs,
    "complete_job": complete_job,
    "fail_job": fail_job,
    "stop_job": stop_job,
    "job_event": job_event,
    "set_list_lag": set_list_lag,
    "set_quotas": set_quotas,
    "set_capacity": set_capacity,
    "put_training_plan": put_training_plan,
    "arm_service_quotas_error": arm_service_quotas_error,
    "list_events": list_events,
    "arm_event_failures": arm_event_failures,
    "arm_s3_conflicts": arm_s3_conflicts,
    "release_delayed": release_delayed,
    "list_queues": list_queues,
    "reset": reset,
}


def handle(request: Request) -> tuple[int, Any]:
    try:
        endpoint, arguments = ROUTES.bind_to_environ(request.environ).match()
        return 200, HANDLERS[endpoint](request, **arguments)
    except ControlError as error:
        return error.status, {"error": str(error)}
    except NotFound as error:
        return 404, {"error": error.message}  # type: ignore[attr-defined]
    except Conflict as error:
        return 409, {"error": error.message}
    except (ServiceException, JsonRESTError) as error:
        # The AWS errors left mean a state the request cannot apply to,
        # e.g. ending a job that has ended.
        return 409, {"error": error.message}
    except HTTPException as error:
        # Routing: unknown path or method.
        return error.code or 400, {"error": error.description}


class ControlApp:
    """WSGI app: the control API under /_retrain/, everything else to moto."""

    def __init__(self, aws_app: Callable[..., Iterable[bytes]]):
        self.aws_app = aws_app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == MOTO_RESET and environ.get("REQUEST_METHOD") == "POST":
            reset_settings()
        if not path.startswith(PREFIX):
            return self.aws_app(environ, start_response)
        status, payload = handle(Request(environ))
        response = Response(json.dumps(payload), status=status, content_type="application/json")
        return response(environ, start_response)
