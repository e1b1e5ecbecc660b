"""EventBridge: keeps every accepted PutEvents entry, whatever the bus.

moto only forwards entries to the targets of matching rules, so a test could
not otherwise see what the code under test published.
"""

import datetime
import itertools
from typing import Any

import moto.events.urls
from moto.events.models import EventsBackend, events_backends

from .common import iso8601, swap_backend_class, url_module, utc_now

# Orders entries recorded by different account/region backends.
_sequence = itertools.count()


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
        results = super().put_events(events)
        # moto answers one result per entry, in order; rejected ones carry an ErrorCode.
        for event, result in zip(events, results, strict=True):
            if "EventId" in result:
                self.recorded.append(self._record(event, result["EventId"]))
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
