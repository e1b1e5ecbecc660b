"""SageMaker training jobs that behave like the real service's.

moto 5.2.1 replaces a job when its name is reused, reports every job as
Completed the moment it is created, adds MetricDefinitions of its own to
AlgorithmSpecification, drops request fields such as Environment, ignores
SortBy/SortOrder in ListTrainingJobs and has no StopTrainingJob. Here a job
keeps its request as sent and stays InProgress until StopTrainingJob or the
control API ends it.

The control API can also make the service stricter, as it is on AWS:
per-instance-type quotas (ResourceLimitExceeded) and a ListTrainingJobs that
lags behind DescribeTrainingJob (the list is eventually consistent).

Model packages: moto creates a second package for a repeated ClientToken and
UpdateModelPackage clears CustomerMetadataProperties and ApprovalDescription
when the request leaves them out. Here a repeated ClientToken in a group
answers the package it created (the API's idempotency) and an update changes
only what it names, as on AWS.
"""

import copy
import datetime
import inspect
import threading
import uuid
from collections import Counter
from collections.abc import Iterable
from typing import Any

import botocore.session
import moto.sagemaker.urls
from moto.core.responses import ActionResult, EmptyResult
from moto.core.utils import camelcase_to_underscores
from moto.sagemaker.exceptions import AWSValidationException, ResourceInUseException, ValidationError
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


class ServiceSettings:
    """Settings of the control API. They hold for every account and region
    (a test cannot know which backend the code under test reaches first)."""

    def __init__(self) -> None:
        self.clear()
        on_reset(self.clear)

    def clear(self) -> None:
        # Instances per instance type that InProgress jobs may use together.
        self.quotas: dict[str, int] = {}
        # How far ListTrainingJobs lags behind the jobs' real state.
        self.list_lag = datetime.timedelta(0)
        # Instance type -> market ("on_demand", "spot" or "any") that has no capacity.
        self.no_capacity: dict[str, str] = {}


SETTINGS = ServiceSettings()


def set_quotas(changes: dict[str, int | None]) -> dict[str, int]:
    """Sets (None: removes) per-instance-type quotas; the quotas now in force."""
    for instance_type, quota in changes.items():
        if quota is None:
            SETTINGS.quotas.pop(instance_type, None)
        else:
            SETTINGS.quotas[instance_type] = quota
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


def resource_limit_exceeded(instance_type: str, quota: int, in_use: int, delta: int) -> AwsJsonError:
    return AwsJsonError(
        "ResourceLimitExceeded",
        f"The account-level service limit '{instance_type} for training job usage' is {quota} Instances, "
        f"with current utilization of {in_use} Instances and a request delta of {delta} Instances. "
        "Please use AWS Service Quotas to request an increase for this quota.",
    )


class TrainingJobNotFound(ValidationError, NotFound):
    def __init__(self, arn: str):
        super().__init__(f"Could not find training job '{arn}'.")


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
            ran = round((now - self.training_start_time).total_seconds())
            # A test cannot wait an hour: it may say how long the job trained.
            self.billable_seconds = max(1, ran if billable_seconds is None else billable_seconds)
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
            "TrainingTimeInSeconds": self.billable_seconds,
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
            self._check_quota(job)
            self.training_jobs[job.training_job_name] = job
            self._observe_concurrency()
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

    def _check_quota(self, job: EmulatedTrainingJob) -> None:
        """ResourceLimitExceeded when the InProgress jobs of the job's instance
        type and the job itself would use more instances than the quota."""
        quota = SETTINGS.quotas.get(job.instance_type or "")
        if quota is None:
            return
        running = (other for other in self.training_jobs.values() if other.in_progress)
        in_use = sum(other.instance_count for other in running if other.instance_type == job.instance_type)
        if in_use + job.instance_count > quota:
            raise resource_limit_exceeded(job.instance_type or "", quota, in_use, job.instance_count)

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
        self, name: str, metrics: dict[str, float], reused_warm_pool: bool, billable_seconds: int | None = None
    ) -> EmulatedTrainingJob:
        return self.end_training_job(
            name,
            "Completed",
            last_phase="Uploading",
            metrics=metrics,
            reused_warm_pool=reused_warm_pool,
            billable_seconds=billable_seconds,
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


def install() -> None:
    swap_backend_class(sagemaker_backends, EmulatedSageMakerBackend)
