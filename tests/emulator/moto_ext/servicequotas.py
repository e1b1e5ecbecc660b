"""Service Quotas for SageMaker: the training quotas that CreateTrainingJob
enforces here (set through the control API) are the account's applied
quotas, answered by ListServiceQuotas and GetServiceQuota in the API's own
shapes. moto knows only vpc's default quotas and has no ListServiceQuotas.

The control API can also make both calls fail as they do for a role that may
not read quotas or a caller over the rate limit."""

import hashlib
import json
from typing import Any

import moto.servicequotas.urls
from moto.core.exceptions import JsonRESTError
from moto.servicequotas.models import ServiceQuotasBackend, servicequotas_backends
from moto.servicequotas.responses import ServiceQuotasResponse

from .common import AwsJsonError, on_reset, swap_backend_class, url_module
from .sagemaker import SETTINGS

SERVICE_CODE = "sagemaker"
SERVICE_NAME = "Amazon SageMaker"
# ListServiceQuotas: "MaxResults ... Valid Range: Minimum value of 1. Maximum value of 100."
MAX_RESULTS = 100
# The principal an armed AccessDeniedException names: a function's role, as
# the code under test runs.
DENIED_ROLE = "retrain-function-role"
DENIED_ROLE_SESSION = "retrain-function"
ARMABLE_ERRORS = ("AccessDeniedException", "TooManyRequestsException")


class ArmedError:
    """The error every ListServiceQuotas/GetServiceQuota answers while armed
    (None: none). Like the other settings it holds for every account and region."""

    def __init__(self) -> None:
        self.clear()
        on_reset(self.clear)

    def clear(self) -> None:
        self.code: str | None = None


ARMED = ArmedError()


def arm_error(code: str | None) -> str | None:
    ARMED.code = code
    return code


def armed_error(account_id: str, action: str) -> AwsJsonError | None:
    """The armed error as the service answers it for `action`."""
    if ARMED.code == "AccessDeniedException":
        principal = f"arn:aws:sts::{account_id}:assumed-role/{DENIED_ROLE}/{DENIED_ROLE_SESSION}"
        return AwsJsonError(
            ARMED.code,
            f"User: {principal} is not authorized to perform: servicequotas:{action} "
            f"because no identity-based policy allows the servicequotas:{action} action",
        )
    if ARMED.code == "TooManyRequestsException":
        return AwsJsonError(ARMED.code, "Rate exceeded")
    return None


def quota_code(name: str) -> str:
    # Real codes are opaque (L- and 8 hex digits); a stable one per name will do.
    return "L-" + hashlib.sha256(name.encode()).hexdigest()[:8].upper()


class NoSuchQuota(JsonRESTError):
    def __init__(self) -> None:
        super().__init__("NoSuchResourceException", "The request failed because the specified quota doesn't exist.")


class InvalidMaxResults(JsonRESTError):
    def __init__(self, value: Any) -> None:
        super().__init__(
            "ValidationException",
            f"1 validation error detected: Value '{value}' at 'maxResults' failed to satisfy constraint: "
            f"Member must have value less than or equal to {MAX_RESULTS}",
        )


class SageMakerQuotasBackend(ServiceQuotasBackend):
    @property
    def _url_module(self) -> Any:
        return url_module(moto.servicequotas.urls)

    def _raise_armed(self, action: str) -> None:
        error = armed_error(self.account_id, action)
        if error is not None:
            raise error

    def sagemaker_quotas(self) -> list[dict[str, Any]]:
        quotas = []
        for name, value in sorted(SETTINGS.quotas.items()):
            code = quota_code(name)
            quotas.append(
                {
                    "ServiceCode": SERVICE_CODE,
                    "ServiceName": SERVICE_NAME,
                    "QuotaArn": f"arn:aws:servicequotas:{self.region_name}:{self.account_id}:{SERVICE_CODE}/{code}",
                    "QuotaCode": code,
                    "QuotaName": name,
                    "Value": float(value),
                    "Unit": "None",
                    "Adjustable": True,
                    "GlobalQuota": False,
                }
            )
        return quotas

    def list_service_quotas(self, service_code: str, max_results: int, next_token: str | None) -> dict[str, Any]:
        self._raise_armed("ListServiceQuotas")
        if service_code != SERVICE_CODE:
            return {"Quotas": self.list_aws_default_service_quotas(service_code)}
        if not 1 <= max_results <= MAX_RESULTS:
            raise InvalidMaxResults(max_results)
        quotas = self.sagemaker_quotas()
        start = int(next_token or 0)
        page = {"Quotas": quotas[start : start + max_results]}
        if start + max_results < len(quotas):
            page["NextToken"] = str(start + max_results)
        return page

    def get_service_quota(self, service_code: str, quota_code: str) -> dict[str, Any]:
        self._raise_armed("GetServiceQuota")
        if service_code != SERVICE_CODE:
            return super().get_service_quota(service_code, quota_code)
        for quota in self.sagemaker_quotas():
            if quota["QuotaCode"] == quota_code:
                return quota
        raise NoSuchQuota()


def _list_service_quotas(self: ServiceQuotasResponse) -> str:
    params = json.loads(self.body)
    page = self.backend.list_service_quotas(
        str(params.get("ServiceCode")), int(params.get("MaxResults", MAX_RESULTS)), params.get("NextToken")
    )
    return json.dumps(page)


def install() -> None:
    swap_backend_class(servicequotas_backends, SageMakerQuotasBackend)
    ServiceQuotasResponse.list_service_quotas = _list_service_quotas  # type: ignore[attr-defined]
