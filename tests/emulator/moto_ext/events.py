"""EventBridge: keeps every accepted PutEvents entry, whatever the bus,
holds PutEvents to the service's size limit, and fails entries on demand.

moto only forwards entries to the targets of matching rules, so a test could
not otherwise see what the code under test published. moto accepts calls of
any size, and its entries only fail for missing or malformed fields, so the
retry path of a publisher (FailedEntryCount > 0) would go untested.
"""

import datetime
import itertools
from typing import Any

import moto.events.urls
from moto.events.exceptions import ValidationException
from moto.events.models import EventsBackend, events_backends

from .common import ArmedFailures, iso8601, swap_backend_class, url_module, utc_now

# Orders entries recorded by different account/region backends.
_sequence = itertools.count()
# moto rejects longer calls as a whole, before looking at any entry.
MAX_ENTRIES = 10
# PutEvents: "the total entry size must be less than 256KB"; the user guide's
# "Calculating PutEvents event entry size" gives the size of one entry.
MAX_TOTAL_ENTRY_SIZE = 256 * 1024
TIME_SIZE = 14
OVERSIZED_MESSAGE = "Total size of the entries in the request is over the limit."
# Armed by the control API: the next entries fail with this ErrorCode.
FAILURES = ArmedFailures()
DEFAULT_FAILURE_CODE = "InternalFailure"
DEFAULT_FAILURE_MESSAGES = {
    "InternalFailure": "The request processing has failed because of an unknown error, exception or failure.",
    "ThrottlingException": "The request was denied due to request throttling.",
}


def arm_failures(count: int, code: str | None, message: str | None) -> int:
    code = code or DEFAULT_FAILURE_CODE
    message = message or DEFAULT_FAILURE_MESSAGES.get(code, f"The entry failed with {code}.")
    return FAILURES.arm(count, code=code, message=message)


def utf8_size(value: Any) -> int:
    return len(value.encode("utf-8")) if isinstance(value, str) else 0


def entry_size(entry: dict[str, Any]) -> int:
    """The size of a PutEventsRequestEntry as EventBridge documents computing it:
    14 bytes for Time if given, plus the UTF-8 bytes of Source, DetailType,
    Detail and each of Resources."""
    size = TIME_SIZE if entry.get("Time") is not None else 0
    size += sum(utf8_size(entry.get(key)) for key in ("Source", "DetailType", "Detail"))
    return size + sum(utf8_size(resource) for resource in entry.get("Resources") or [])


def reject_oversized(entries: list[dict[str, Any]]) -> None:
    """The whole call fails (no entry is put) once the entries together reach 256 KB."""
    if sum(entry_size(entry) for entry in entries) >= MAX_TOTAL_ENTRY_SIZE:
        raise ValidationException(OVERSIZED_MESSAGE)


def entry_time(value: Any) -> str:
    """The entry's Time (epoch seconds on the wire) or, like AWS, the time of the call."""
    if isinstance(value, (int, float)):
        return iso8601(datetime.datetime.fromtimestamp(value, datetime.UTC))
    return iso8601(utc_now())


class RecordingEventsBackend(EventsBackend):
    def __init__(self, region_name: str, account_id: str):
        super().__init__(region_name, account_id)
        self.recorded: list[dict[str, Any]] = []

    @property
    def _url_module(self) -> Any:
        return url_module(moto.events.urls)

    def put_events(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if len(events) > MAX_ENTRIES:
            return super().put_events(events)  # moto's ValidationException for the whole call
        reject_oversized(events)
        failures = [FAILURES.take() for _ in events]
        # moto answers one result per entry, in order; rejected ones carry an ErrorCode.
        accepted = iter(super().put_events([e for e, failure in zip(events, failures) if failure is None]))
        results = []
        for event, failure in zip(events, failures):
            if failure:
                results.append({"ErrorCode": failure["code"], "ErrorMessage": failure["message"]})
                continue
            result = next(accepted)
            if "EventId" in result:
                self.recorded.append(self._record(event, result["EventId"]))
            results.append(result)
        return results

    def _record(self, event: dict[str, Any], event_id: str) -> dict[str, Any]:
        return {
            "sequence": next(_sequence),
            "EventId": event_id,
            "EventBusName": self._normalize_event_bus_arn(event.get("EventBusName")),
            "Source": event.get("Source"),
            "DetailType": event.get("DetailType"),
            "Detail": event.get("Detail"),
            "Resources": event.get("Resources") or [],
            "Time": entry_time(event.get("Time")),
            "Account": self.account_id,
            "Region": self.region_name,
        }


def install() -> None:
    swap_backend_class(events_backends, RecordingEventsBackend)
