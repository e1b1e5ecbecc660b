"""SageMaker training jobs that behave like the real service's.

moto 5.2.1 replaces a job when its name is reused, reports every job as
Completed the moment it is created, adds MetricDefinitions of its own to
AlgorithmSpecification, drops request fields such as Environment, ignores
SortBy/SortOrder in ListTrainingJobs and has no StopTrainingJob. Here a job
keeps its request as sent and stays InProgress until StopTrainingJob or the
control API ends it.

The control API can also make the service stricter, as it is on AWS:
training quotas (ResourceLimitExceeded) and a ListTrainingJobs that lags
behind DescribeTrainingJob (the list is eventually consistent). It sets up
training plans too, which moto does not have: DescribeTrainingPlan answers
them and CreateTrainingJob holds a job that names one to its reserved
instances.

Model packages: moto creates a second package for a repeated ClientToken and
UpdateModelPackage clears CustomerMetadataProperties and ApprovalDescription
when the request leaves them out. Here a repeated ClientToken in a group
answers the package it created (the API's idempotency) and an update changes
only what it names, as on AWS.
"""

import copy
import datetime
import hashlib
import inspect
import re
import threading
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import botocore.session
import moto.sagemaker.urls
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.responses import ActionResult, EmptyResult
from moto.core.utils import camelcase_to_underscores
from moto.sagemaker.exceptions import (
    AWSValidationException,
    ResourceInUseException,
    ResourceNotFound,
    ValidationError,
)
from moto.sagemaker.models import FakeTrainingJob, SageMakerModelBackend, sagemaker_backends
from moto.sagemaker.responses import SageMakerResponse

from .common import AwsJsonError, NotFound, iso8601, on_reset, swap_backend_class, url_module, utc_now

_MODEL = botocore.session.get_session().get_service_model("sagemaker")
DESCRIBE_MEMBERS = frozenset(_MODEL.operation_model("DescribeTrainingJob").output_shape.members)
SUMMARY_MEMBERS = frozenset(_MODEL.shape_for("TrainingJobSummary").members)
# DescribeTrainingJob always reports these flags, false unless requested.
DEFAULT_FLAGS = ("EnableNetworkIsolation", "EnableInterContainerTrafficEncryption", "EnableManagedSpotTraining")
# Parameters of moto's FakeTrainingJob constructor that come from the request.
MOTO_JOB_PARAMETERS = frozenset(inspect.signature(FakeTrainingJob.__init__).parameters) - {
    "self",
    "account_id",
    "region_name",
}

SWEEP_TAG = "retrain:sweep"
STATE_CHANGE = "SageMaker Training Job State Change"
EVENT_ID_NAMESPACE = uuid.UUID("5f0c5a52-3b1e-4a51-9a43-6b1f0a0e7d21")
# Failures the service reports before any instance runs.
CAPACITY_FAILURES = ("CapacityError", "InsufficientCapacityError", "ResourceLimitExceeded")

# Secondary statuses a job passes through while InProgress, with the last
# StatusMessage the service shows for each.
PHASE_MESSAGES = {
    "Starting": "Preparing the instances for training",
    "Downloading": "Downloading input data",
    "Training": "Training image download completed. Training in progress.",
    "Uploading": "Uploading generated training model",
}
PHASES = list(PHASE_MESSAGES)
FINAL_MESSAGES = {
    "Completed": "Training job completed",
    "Failed": "Training job failed",
    "Stopped": "Training job stopped",
}
LIST_SORT_KEYS = {
    "Name": lambda job: job.training_job_name,
    "CreationTime": lambda job: (job.creation_time, job.creation_order),
    "Status": lambda job: job.training_job_status,
}
SORT_ORDERS = ("Ascending", "Descending")
# The job attributes a ListTrainingJobs summary shows that change over a job's life.
SUMMARY_STATE = ("training_job_status", "secondary_status", "last_modified_time", "training_end_time", "warm_pool")

# The names of the Service Quotas quotas that CreateTrainingJob is held to.
INSTANCE_TYPE = re.compile(r"ml\.[a-z0-9-]+\.[a-z0-9]+")
ON_DEMAND_QUOTA = re.compile(rf"{INSTANCE_TYPE.pattern} for training job usage")
SPOT_QUOTA = re.compile(rf"{INSTANCE_TYPE.pattern} for spot training job usage")
TOTAL_INSTANCES_QUOTA = "Number of instances across all training jobs"

# Training plans, with the values the API model allows.
TRAINING_PLAN_NAME = re.compile(_MODEL.shape_for("TrainingPlanName").metadata["pattern"])
TRAINING_PLAN_STATUSES = tuple(_MODEL.shape_for("TrainingPlanStatus").enum)
PLAN_INSTANCE_TYPES = tuple(_MODEL.shape_for("ReservedCapacityInstanceType").enum)
PLAN_TARGET_RESOURCES = tuple(_MODEL.shape_for("SageMakerResourceName").enum)
MAX_PLAN_HOURS = _MODEL.shape_for("TrainingPlanDurationHours").metadata["max"]
# The statuses in which a plan takes training jobs (a Scheduled plan queues them).
USABLE_PLAN_STATUSES = ("Active", "Scheduled")
# Plans not yet started begin this long after they are set up.
PLAN_LEAD_TIME = datetime.timedelta(days=1)


class ServiceSettings:
    """Settings of the control API. They hold for every account and region
    (a test cannot know which backend the code under test reaches first)."""

    def __init__(self) -> None:
        self.clear()
        on_reset(self.clear)

    def clear(self) -> None:
        # Quota name -> instances that the InProgress jobs it counts may use together.
        self.quotas: dict[str, int] = {}
        # (region, name) -> training plan.
        self.training_plans: dict[tuple[str, str], TrainingPlan] = {}
        # How far ListTrainingJobs lags behind the jobs' real state.
        self.list_lag = datetime.timedelta(0)
        # Instance type -> market ("on_demand", "spot" or "any") that has no capacity.
        self.no_capacity: dict[str, str] = {}


SETTINGS = ServiceSettings()


def on_demand_quota(instance_type: str) -> str:
    return f"{instance_type} for training job usage"


def spot_quota(instance_type: str) -> str:
    return f"{instance_type} for spot training job usage"


def quota_name(key: str) -> str | None:
    """The quota a control-API key names (None if it names none): a quota's
    full name, or a bare instance type for its on-demand quota (the API's
    first form, still used by tests)."""
    if INSTANCE_TYPE.fullmatch(key):
        return on_demand_quota(key)
    if ON_DEMAND_QUOTA.fullmatch(key) or SPOT_QUOTA.fullmatch(key) or key == TOTAL_INSTANCES_QUOTA:
        return key
    return None


def set_quotas(changes: dict[str, int | None]) -> dict[str, int]:
    """Sets (None: removes) quotas by full name; the quotas now in force."""
    for name, quota in changes.items():
        if quota is None:
            SETTINGS.quotas.pop(name, None)
        else:
            SETTINGS.quotas[name] = quota
    return dict(SETTINGS.quotas)


CAPACITY_MARKETS = ("on_demand", "spot", "any")
CAPACITY_ERROR = (
    "CapacityError: Unable to provision requested ML compute capacity. "
    "Please retry using a different ML instance type."
)


def set_capacity(changes: dict[str, str | None]) -> dict[str, str]:
    """Sets (None: removes) which market of an instance type has no capacity; the rules now in force."""
    for instance_type, market in changes.items():
        if market is None:
            SETTINGS.no_capacity.pop(instance_type, None)
        else:
            SETTINGS.no_capacity[instance_type] = market
    return dict(SETTINGS.no_capacity)


def set_list_lag(seconds: float) -> float:
    SETTINGS.list_lag = datetime.timedelta(seconds=seconds)
    return seconds


def resource_limit_exceeded(name: str, quota: int, in_use: int, delta: int) -> AwsJsonError:
    return AwsJsonError(
        "ResourceLimitExceeded",
        f"The account-level service limit '{name}' is {quota} Instances, "
        f"with current utilization of {in_use} Instances and a request delta of {delta} Instances. "
        "Please use AWS Service Quotas to request an increase for this quota.",
    )


class TrainingJobNotFound(ValidationError, NotFound):
    def __init__(self, arn: str):
        super().__init__(f"Could not find training job '{arn}'.")


def training_plan_arn(region: str, name: str) -> str:
    # Plans hold for every account (like the other settings), so their ARN
    # names moto's default one.
    return f"arn:aws:sagemaker:{region}:{DEFAULT_ACCOUNT_ID}:training-plan/{name}"


@dataclass
class TrainingPlan:
    """A training plan as the control API set it up: one reservation of
    `instance_count` instances of `instance_type`."""

    region: str
    name: str
    status: str
    instance_type: str
    instance_count: int
    target_resources: list[str]
    availability_zone: str
    start_time: datetime.datetime
    end_time: datetime.datetime
    status_message: str | None = None

    @property
    def arn(self) -> str:
        return training_plan_arn(self.region, self.name)

    @property
    def reserved_capacity_arn(self) -> str:
        # Real ids are opaque; a stable one per plan will do.
        suffix = hashlib.sha256(self.arn.encode()).hexdigest()[:12]
        return f"arn:aws:sagemaker:{self.region}:{DEFAULT_ACCOUNT_ID}:reserved-capacity/{self.name}-{suffix}"

    def jobs(self) -> list["EmulatedTrainingJob"]:
        """The InProgress jobs that run on the plan's instances, in every
        account's backend of its region."""
        return [
            job
            for _, region, backend in sagemaker_backends.iter_backends()
            if region == self.region
            for job in list(backend.training_jobs.values())
            if job.in_progress and job.training_plan_arn == self.arn
        ]

    @property
    def in_use(self) -> int:
        return sum(job.instance_count for job in self.jobs())

    @property
    def available(self) -> int:
        return max(0, self.instance_count - self.in_use)

    @property
    def description(self) -> dict[str, Any]:
        """DescribeTrainingPlan output."""
        hours, minutes = divmod(round((self.end_time - self.start_time).total_seconds() / 60), 60)
        duration = {
            "DurationHours": hours,
            "DurationMinutes": minutes,
            "StartTime": self.start_time,
            "EndTime": self.end_time,
        }
        in_use = self.in_use
        described: dict[str, Any] = {
            "TrainingPlanArn": self.arn,
            "TrainingPlanName": self.name,
            "Status": self.status,
            **duration,
            "UpfrontFee": "0",
            "CurrencyCode": "USD",
            "TotalInstanceCount": self.instance_count,
            "AvailableInstanceCount": max(0, self.instance_count - in_use),
            "InUseInstanceCount": in_use,
            "TargetResources": list(self.target_resources),
            "ReservedCapacitySummaries": [
                {
                    "ReservedCapacityArn": self.reserved_capacity_arn,
                    "ReservedCapacityType": "Instance",
                    "InstanceType": self.instance_type,
                    "TotalInstanceCount": self.instance_count,
                    "Status": self.status,
                    "AvailabilityZone": self.availability_zone,
                    **duration,
                }
            ],
        }
        if self.status_message is not None:
            described["StatusMessage"] = self.status_message
        return described


def put_training_plan(
    region: str,
    name: str,
    status: str,
    instance_type: str,
    instance_count: int,
    target_resources: list[str],
    availability_zone: str,
    duration_hours: int,
    status_message: str | None,
) -> TrainingPlan:
    """Creates or replaces the plan `name` of `region`. An Active plan runs
    from now, an Expired one has just ended, the others start a day later."""
    # Plans start and end on whole seconds.
    now = utc_now().replace(microsecond=0)
    duration = datetime.timedelta(hours=duration_hours)
    start = {"Active": now, "Expired": now - duration}.get(status, now + PLAN_LEAD_TIME)
    plan = TrainingPlan(
        region,
        name,
        status,
        instance_type,
        instance_count,
        list(target_resources),
        availability_zone,
        start,
        start + duration,
        status_message,
    )
    SETTINGS.training_plans[(region, name)] = plan
    return plan


class TrainingPlanNotFound(ResourceNotFound):
    def __init__(self, name: str):
        super().__init__(f"Training plan {name} does not exist.")


def get_training_plan(region: str, name: str) -> TrainingPlan:
    plan = SETTINGS.training_plans.get((region, name))
    if plan is None:
        raise TrainingPlanNotFound(name)
    return plan


def training_plan_of(job: "EmulatedTrainingJob") -> TrainingPlan | None:
    """The plan the job names, if it can take the job (None for a job that
    names none); else ValidationException."""
    arn = job.training_plan_arn
    if arn is None:
        return None
    plan = next((p for p in SETTINGS.training_plans.values() if p.region == job.region_name and p.arn == arn), None)
    if plan is None:
        raise ValidationError(f"Training plan {arn} does not exist in {job.region_name}.")
    if plan.status not in USABLE_PLAN_STATUSES:
        raise ValidationError(
            f"Training plan {arn} is {plan.status}; a training job can use a plan that is Active or Scheduled."
        )
    if "training-job" not in plan.target_resources:
        raise ValidationError(
            f"Training plan {arn} does not target training jobs (TargetResources: {', '.join(plan.target_resources)})."
        )
    if job.instance_type != plan.instance_type:
        raise ValidationError(f"Training plan {arn} reserves {plan.instance_type} instances, not {job.instance_type}.")
    return plan


def plan_capacity_exceeded(plan: TrainingPlan, available: int, delta: int) -> AwsJsonError:
    return AwsJsonError(
        "ResourceLimitExceeded",
        f"Training plan {plan.arn} has {available} of its {plan.instance_count} {plan.instance_type} instances "
        f"available, fewer than the request delta of {delta} Instances.",
    )


def phase_transitions(
    phases: list[str], start: datetime.datetime, end: datetime.datetime, weights: dict[str, float]
) -> list[dict[str, Any]]:
    """Splits start..end between `phases` in proportion to their weights."""
    total = sum(weights[phase] for phase in phases)
    transitions, moment = [], start
    for phase in phases:
        finish = moment + (end - start) * (weights[phase] / total)
        transitions.append(
            {"Status": phase, "StartTime": moment, "EndTime": finish, "StatusMessage": PHASE_MESSAGES[phase]}
        )
        moment = finish
    transitions[-1]["EndTime"] = end
    return transitions


def epoch_millis_strings(value: Any) -> Any:
    """Timestamps as the documented state-change event shows them: strings of epoch milliseconds."""
    if isinstance(value, datetime.datetime):
        return str(int(value.timestamp() * 1000))
    if isinstance(value, dict):
        return {key: epoch_millis_strings(item) for key, item in value.items()}
    if isinstance(value, list):
        return [epoch_millis_strings(item) for item in value]
    return value


class EmulatedTrainingJob(FakeTrainingJob):
    def __init__(self, account_id: str, region_name: str, request: dict[str, Any], creation_order: int):
        # moto's constructor mutates AlgorithmSpecification, hence the copies.
        arguments = dict.fromkeys(MOTO_JOB_PARAMETERS)
        arguments.update(
            (camelcase_to_underscores(key), copy.deepcopy(value))
            for key, value in request.items()
            if camelcase_to_underscores(key) in MOTO_JOB_PARAMETERS
        )
        super().__init__(account_id=account_id, region_name=region_name, **arguments)
        self.account_id = account_id
        self.region_name = region_name
        self.request = copy.deepcopy(request)
        self.creation_order = creation_order
        self.creation_time = self.last_modified_time = utc_now()
        self.training_job_status = "InProgress"
        self.secondary_status = "Starting"
        self.secondary_status_transitions = [
            {"Status": "Starting", "StartTime": self.creation_time, "StatusMessage": "Launching requested ML instances"}
        ]
        self.training_start_time: datetime.datetime | None = None
        self.training_end_time: datetime.datetime | None = None
        self.final_metric_data_list: list[dict[str, Any]] = []
        self.failure_reason: str | None = None
        self.billable_seconds: int | None = None
        self.training_seconds: int | None = None
        self.warm_pool: dict[str, Any] | None = None
        # (moment, summary state) after every change, for the lagging ListTrainingJobs.
        self.history: list[tuple[datetime.datetime, dict[str, Any]]] = []
        self._remember(self.creation_time)

    def _remember(self, moment: datetime.datetime) -> None:
        state = {name: copy.deepcopy(getattr(self, name)) for name in SUMMARY_STATE}
        self.history.append((moment, state))

    def as_of(self, moment: datetime.datetime) -> "EmulatedTrainingJob | None":
        """The job as it was at `moment` (None if it did not exist yet), for
        the summary and filters of ListTrainingJobs only."""
        states = [state for changed, state in self.history if changed <= moment]
        if not states:
            return None
        past = copy.copy(self)
        for name, value in states[-1].items():
            setattr(past, name, value)
        return past

    @property
    def in_progress(self) -> bool:
        return self.training_job_status == "InProgress"

    @property
    def instance_type(self) -> str | None:
        return (self.request.get("ResourceConfig") or {}).get("InstanceType")

    @property
    def instance_count(self) -> int:
        return int((self.request.get("ResourceConfig") or {}).get("InstanceCount") or 0)

    @property
    def spot(self) -> bool:
        return bool(self.request.get("EnableManagedSpotTraining"))

    @property
    def training_plan_arn(self) -> str | None:
        return (self.request.get("ResourceConfig") or {}).get("TrainingPlanArn")

    @property
    def market_quota(self) -> str | None:
        """The per-instance-type quota of the job's market (None for a job
        without an InstanceType, e.g. one of InstanceGroups)."""
        if self.instance_type is None:
            return None
        return spot_quota(self.instance_type) if self.spot else on_demand_quota(self.instance_type)

    @property
    def tag_map(self) -> dict[str, str]:
        return {tag["Key"]: tag["Value"] for tag in self.tags}

    @property
    def cluster(self) -> tuple[Any, ...]:
        """What a warm pool must match to be reused by another job."""
        config = self.request.get("ResourceConfig") or {}
        return config.get("InstanceType"), config.get("InstanceCount"), config.get("VolumeSizeInGB")

    @property
    def keeps_warm_pool(self) -> bool:
        return bool((self.request.get("ResourceConfig") or {}).get("KeepAlivePeriodInSeconds"))

    def _phase_weights(self, reused_warm_pool: bool) -> dict[str, float]:
        channels = self.request.get("InputDataConfig") or []
        # A mounted file system needs no copy to the instances.
        mounted = bool(channels) and all("FileSystemDataSource" in c.get("DataSource", {}) for c in channels)
        return {
            "Starting": 0.02 if reused_warm_pool else 0.3,
            "Downloading": 0.02 if mounted else 0.15,
            "Training": 0.6,
            "Uploading": 0.05,
        }

    def end(
        self,
        status: str,
        last_phase: str,
        reason: str | None = None,
        metrics: dict[str, float] | None = None,
        billable_seconds: int | None = None,
        training_seconds: int | None = None,
        reused_warm_pool: bool = False,
    ) -> None:
        """Moves the job to a final status, with the history the service would show."""
        now = utc_now()
        phases = PHASES[: PHASES.index(last_phase) + 1]
        transitions = phase_transitions(phases, self.creation_time, now, self._phase_weights(reused_warm_pool))
        transitions.append(
            {"Status": status, "StartTime": now, "EndTime": now, "StatusMessage": FINAL_MESSAGES[status]}
        )
        self.secondary_status_transitions = transitions
        self.training_job_status = self.secondary_status = status
        self.failure_reason = reason
        self.training_end_time = self.last_modified_time = now
        self.final_metric_data_list = [
            {"MetricName": name, "Value": float(value), "Timestamp": now} for name, value in (metrics or {}).items()
        ]
        if len(phases) > 1:
            # Billing starts once the instances are up, i.e. after Starting.
            self.training_start_time = transitions[1]["StartTime"]
            ran = max(1, round((now - self.training_start_time).total_seconds()))
            # A test cannot wait an hour: it may say how long the job trained
            # and how much of that was billed (less for a spot job, whose
            # savings are 1 - billable/training); on-demand bills all of it.
            if training_seconds is None:
                training_seconds = ran if billable_seconds is None else billable_seconds
            self.training_seconds = training_seconds
            self.billable_seconds = training_seconds if billable_seconds is None else billable_seconds
        if self.keeps_warm_pool:
            retained = "Available" if status == "Completed" else "Terminated"
            self.warm_pool = {"Status": retained, "ResourceRetainedBillableTimeInSeconds": 0}
        self._remember(now)

    def lend_warm_pool_to(self, borrower: "EmulatedTrainingJob") -> None:
        # The pool was billed while it waited for the borrower.
        idle = (borrower.creation_time - self.training_end_time).total_seconds()
        self.warm_pool = {
            "Status": "Reused",
            "ResourceRetainedBillableTimeInSeconds": max(0, round(idle)),
            "ReusedByJob": borrower.training_job_name,
        }
        self._remember(utc_now())

    @property
    def response_object(self) -> dict[str, Any]:  # type: ignore[override]
        """DescribeTrainingJob output: the request as sent plus the job's state."""
        described = {key: copy.deepcopy(value) for key, value in self.request.items() if key in DESCRIBE_MEMBERS}
        for flag in DEFAULT_FLAGS:
            described.setdefault(flag, False)
        state = {
            "TrainingJobArn": self.arn,
            "TrainingJobStatus": self.training_job_status,
            "SecondaryStatus": self.secondary_status,
            "FailureReason": self.failure_reason,
            "CreationTime": self.creation_time,
            "LastModifiedTime": self.last_modified_time,
            "TrainingStartTime": self.training_start_time,
            "TrainingEndTime": self.training_end_time,
            "SecondaryStatusTransitions": copy.deepcopy(self.secondary_status_transitions),
            "FinalMetricDataList": copy.deepcopy(self.final_metric_data_list),
            "BillableTimeInSeconds": self.billable_seconds,
            "TrainingTimeInSeconds": self.training_seconds,
            "WarmPoolStatus": copy.deepcopy(self.warm_pool),
            # A required member of the output shape, so present in every status.
            "ModelArtifacts": self.model_artifacts,
        }
        described.update((key, value) for key, value in state.items() if value not in (None, []))
        return described

    @property
    def summary(self) -> dict[str, Any]:
        return {key: value for key, value in self.response_object.items() if key in SUMMARY_MEMBERS}

    def state_change_event(self) -> dict[str, Any]:
        """The EventBridge event SageMaker sends for the job's current status."""
        detail = self.response_object
        # The documented event shows these even when empty, Tags as a map.
        detail.setdefault("HyperParameters", {})
        detail.setdefault("VpcConfig", {})
        detail["Tags"] = self.tag_map
        event_key = f"{self.arn}|{self.training_job_status}|{self.last_modified_time.isoformat()}"
        return {
            "version": "0",
            # Stable per state, so re-reading the event yields the same id.
            "id": str(uuid.uuid5(EVENT_ID_NAMESPACE, event_key)),
            "detail-type": STATE_CHANGE,
            "source": "aws.sagemaker",
            "account": self.account_id,
            "time": iso8601(self.last_modified_time),
            "region": self.region_name,
            "resources": [self.arn],
            "detail": epoch_millis_strings(detail),
        }


# Held while a job is checked against a plan and added (see launch_training_job).
PLAN_ADMISSION = threading.Lock()


def quotas_of(
    job: EmulatedTrainingJob, running: list[EmulatedTrainingJob]
) -> list[tuple[str, list[EmulatedTrainingJob]]]:
    """The quotas the job counts against, each with the running jobs that
    count against it too. A job on a training plan runs on reserved
    instances, which are no on-demand or spot usage of its type."""
    quotas = [(TOTAL_INSTANCES_QUOTA, running)]
    if job.training_plan_arn is None and job.market_quota is not None:
        same_market = [
            other for other in running if other.training_plan_arn is None and other.market_quota == job.market_quota
        ]
        quotas.insert(0, (job.market_quota, same_market))
    return quotas


def check_plan_capacity(plan: TrainingPlan, job: EmulatedTrainingJob) -> None:
    available = plan.available
    if job.instance_count > available:
        raise plan_capacity_exceeded(plan, available, job.instance_count)


class EmulatedSageMakerBackend(SageMakerModelBackend):
    def __init__(self, region_name: str, account_id: str):
        super().__init__(region_name, account_id)
        self.create_calls = 0
        self.resource_in_use = 0
        # Highest number of InProgress jobs seen at once, overall and per sweep tag value.
        self.max_in_progress = 0
        self.max_in_progress_by_sweep: dict[str, int] = {}
        # Requests run on concurrent server threads; name checks and the
        # concurrency counters need atomic updates.
        self.lock = threading.RLock()

    @property
    def _url_module(self) -> Any:
        return url_module(moto.sagemaker.urls, SageMakerResponse, RetrainSageMakerResponse)

    def launch_training_job(self, request: dict[str, Any]) -> EmulatedTrainingJob:
        with self.lock:
            self.create_calls += 1
            existing = self.training_jobs.get(request["TrainingJobName"])
            if existing:
                self.resource_in_use += 1
                raise ResourceInUseException(
                    "Training job names must be unique within an AWS account and region, "
                    f"and a training job with this name already exists ({existing.arn})"
                )
            job = EmulatedTrainingJob(self.account_id, self.region_name, request, len(self.training_jobs) + 1)
            # A plan's instances are shared by every backend of its region,
            # so taking them must be atomic across backends too.
            with PLAN_ADMISSION:
                plan = training_plan_of(job)
                self._check_quotas(job)
                if plan is not None:
                    check_plan_capacity(plan, job)
                self.training_jobs[job.training_job_name] = job
            self._observe_concurrency()
            if plan is None:
                self._apply_capacity(job)
            return job

    def create_model_package(self, **request: Any) -> str:  # type: ignore[override]
        with self.lock:
            token, group = request.get("client_token"), request.get("model_package_group_name")
            if token:
                for package in self.model_packages.values():
                    if package.client_token == token and package.model_package_group_name == group:
                        return package.arn
            return super().create_model_package(**request)

    def update_model_package(  # type: ignore[override]
        self,
        model_package_arn: str,
        model_approval_status: str | None,
        approval_description: str | None,
        customer_metadata_properties: dict[str, str] | None,
        customer_metadata_properties_to_remove: list[str],
        additional_inference_specifications_to_add: list[Any] | None,
    ) -> str:
        with self.lock:
            package = self.describe_model_package(model_package_arn)
            kept_description = package.approval_description
            kept_metadata = dict(package.customer_metadata_properties or {})
            arn = super().update_model_package(
                model_package_arn,
                model_approval_status,
                approval_description,
                {**kept_metadata, **(customer_metadata_properties or {})},
                customer_metadata_properties_to_remove,
                additional_inference_specifications_to_add,
            )
            if approval_description is None:
                package.approval_description = kept_description
            return arn

    def _check_quotas(self, job: EmulatedTrainingJob) -> None:
        """ResourceLimitExceeded when the job and the InProgress jobs counted
        against one of its quotas would use more instances than it allows."""
        running = [other for other in self.training_jobs.values() if other.in_progress]
        for name, counted in quotas_of(job, running):
            quota = SETTINGS.quotas.get(name)
            if quota is None:
                continue
            in_use = sum(other.instance_count for other in counted)
            if in_use + job.instance_count > quota:
                raise resource_limit_exceeded(name, quota, in_use, job.instance_count)

    def _apply_capacity(self, job: EmulatedTrainingJob) -> None:
        """A job whose type has no capacity in its market ends while Starting,
        as on AWS: on-demand jobs fail with CapacityError, spot jobs stop after
        waiting (MaxWaitTimeExceeded)."""
        market = SETTINGS.no_capacity.get(job.instance_type or "")
        spot = bool(job.request.get("EnableManagedSpotTraining"))
        if market not in ("any", "spot" if spot else "on_demand"):
            return
        if spot:
            job.end("Stopped", last_phase="Starting")
            job.secondary_status = "MaxWaitTimeExceeded"
            job.history[-1][1]["secondary_status"] = "MaxWaitTimeExceeded"
        else:
            job.end("Failed", last_phase="Starting", reason=CAPACITY_ERROR)

    def _observe_concurrency(self) -> None:
        running = [job for job in self.training_jobs.values() if job.in_progress]
        self.max_in_progress = max(self.max_in_progress, len(running))
        sweeps = Counter(job.tag_map[SWEEP_TAG] for job in running if SWEEP_TAG in job.tag_map)
        for sweep, count in sweeps.items():
            self.max_in_progress_by_sweep[sweep] = max(self.max_in_progress_by_sweep.get(sweep, 0), count)

    def get_training_job(self, name: str) -> EmulatedTrainingJob:
        job = self.training_jobs.get(name)
        if job is None:
            raise TrainingJobNotFound(FakeTrainingJob.arn_formatter(name, self.account_id, self.region_name))
        return job  # type: ignore[return-value]

    def end_training_job(self, name: str, status: str, **details: Any) -> EmulatedTrainingJob:
        with self.lock:
            job = self.get_training_job(name)
            if not job.in_progress:
                raise ValidationError(
                    f"The request was rejected because the training job is in status {job.training_job_status}."
                )
            job.end(status, **details)
            if details.get("reused_warm_pool"):
                self._hand_over_warm_pool(job)
            return job

    def stop_training_job(self, name: str) -> EmulatedTrainingJob:
        return self.end_training_job(name, "Stopped", last_phase="Training")

    def complete_training_job(
        self,
        name: str,
        metrics: dict[str, float],
        reused_warm_pool: bool,
        billable_seconds: int | None = None,
        training_seconds: int | None = None,
    ) -> EmulatedTrainingJob:
        return self.end_training_job(
            name,
            "Completed",
            last_phase="Uploading",
            metrics=metrics,
            reused_warm_pool=reused_warm_pool,
            billable_seconds=billable_seconds,
            training_seconds=training_seconds,
        )

    def fail_training_job(self, name: str, reason: str, phase: str | None = None) -> EmulatedTrainingJob:
        phase = phase or ("Starting" if reason.startswith(CAPACITY_FAILURES) else "Training")
        return self.end_training_job(name, "Failed", last_phase=phase, reason=reason)

    def _hand_over_warm_pool(self, borrower: EmulatedTrainingJob) -> None:
        """Marks the newest matching warm pool that was Available when
        `borrower` was created as reused by it."""
        for job in reversed(list(self.training_jobs.values())):
            available = (job.warm_pool or {}).get("Status") == "Available"
            idle_before = job.training_end_time is not None and job.training_end_time <= borrower.creation_time
            if job is not borrower and available and idle_before and job.cluster == borrower.cluster:
                job.lend_warm_pool_to(borrower)
                return

    def listed_jobs(self) -> list[EmulatedTrainingJob]:
        """The jobs as ListTrainingJobs sees them: with a list lag, as they
        were that long ago, without the jobs created since."""
        if not SETTINGS.list_lag:
            return list(self.training_jobs.values())
        moment = utc_now() - SETTINGS.list_lag
        return [past for job in self.training_jobs.values() if (past := job.as_of(moment)) is not None]

    def query_training_jobs(self, query: dict[str, Any]) -> dict[str, Any]:
        """ListTrainingJobs. As documented, StatusEquals filters each page
        after MaxResults jobs were picked, so a page may come back short."""
        jobs = [job for job in self.listed_jobs() if matches_query(job, query)]
        jobs.sort(key=LIST_SORT_KEYS[query["SortBy"]], reverse=query["SortOrder"] == "Descending")
        start = int(query["NextToken"] or 0)
        end = start + query["MaxResults"]
        status = query.get("StatusEquals")
        summaries = [job.summary for job in jobs[start:end] if status in (None, job.training_job_status)]
        response: dict[str, Any] = {"TrainingJobSummaries": summaries}
        if end < len(jobs):
            response["NextToken"] = str(end)
        return response


def as_utc(moment: datetime.datetime) -> datetime.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def matches_query(job: EmulatedTrainingJob, query: dict[str, Any]) -> bool:
    after = {"CreationTimeAfter": job.creation_time, "LastModifiedTimeAfter": job.last_modified_time}
    before = {"CreationTimeBefore": job.creation_time, "LastModifiedTimeBefore": job.last_modified_time}
    return (
        query.get("NameContains", "") in job.training_job_name
        and all(moment > as_utc(query[key]) for key, moment in after.items() if query.get(key))
        and all(moment < as_utc(query[key]) for key, moment in before.items() if query.get(key))
        and query.get("WarmPoolStatusEquals") in (None, (job.warm_pool or {}).get("Status"))
    )


def enum_error(value: Any, member: str, allowed: Iterable[str]) -> str:
    return (
        f"Value '{value}' at '{member}' failed to satisfy constraint: "
        f"Member must satisfy enum value set: [{', '.join(allowed)}]"
    )


def list_query(params: dict[str, Any]) -> dict[str, Any]:
    """ListTrainingJobs parameters with the service's defaults, validated."""
    query = {"MaxResults": 10, "SortBy": "CreationTime", "SortOrder": "Ascending", "NextToken": None, **params}
    errors = []
    if not 1 <= query["MaxResults"] <= 100:
        errors.append(
            f"Value '{query['MaxResults']}' at 'maxResults' failed to satisfy constraint: "
            "Member must have value between 1 and 100"
        )
    if query["SortBy"] not in LIST_SORT_KEYS:
        errors.append(enum_error(query["SortBy"], "sortBy", LIST_SORT_KEYS))
    if query["SortOrder"] not in SORT_ORDERS:
        errors.append(enum_error(query["SortOrder"], "sortOrder", SORT_ORDERS))
    if errors:
        raise AWSValidationException(f"{len(errors)} validation errors detected: {'; '.join(errors)}")
    if query["NextToken"] is not None and not str(query["NextToken"]).isdigit():
        raise AWSValidationException("Invalid pagination token.")
    return query


class RetrainSageMakerResponse(SageMakerResponse):
    def create_training_job(self) -> ActionResult:
        job = self.sagemaker_backend.launch_training_job(self.params)
        return ActionResult({"TrainingJobArn": job.arn})

    def stop_training_job(self) -> EmptyResult:
        self.sagemaker_backend.stop_training_job(self._get_param("TrainingJobName"))
        return EmptyResult()

    def list_training_jobs(self) -> ActionResult:
        return ActionResult(self.sagemaker_backend.query_training_jobs(list_query(self.params)))

    def describe_training_plan(self) -> ActionResult:
        plan = get_training_plan(self.sagemaker_backend.region_name, self._get_param("TrainingPlanName"))
        return ActionResult(plan.description)


def install() -> None:
    swap_backend_class(sagemaker_backends, EmulatedSageMakerBackend)
