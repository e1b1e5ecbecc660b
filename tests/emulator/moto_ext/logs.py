"""CloudWatch Logs: a log event's timestamp is a whole number of
milliseconds, as the API reference types it (long). moto stores what it is
given, and its EventBridge -> log group delivery gives a float, which the
AWS SDKs reject as an invalid number."""

from typing import Any

from moto.logs.models import LogStream

_put_log_events = LogStream.put_log_events


def _whole_milliseconds(self: LogStream, log_events: list[dict[str, Any]]) -> str:
    for event in log_events:
        event["timestamp"] = int(event["timestamp"])
    return _put_log_events(self, log_events)


def install() -> None:
    LogStream.put_log_events = _whole_milliseconds  # type: ignore[method-assign]
