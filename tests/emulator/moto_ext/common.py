"""Helpers shared by the moto extensions."""

import datetime
import json
import secrets
import threading
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from moto.core.base_backend import BackendDict
from moto.core.exceptions import JsonRESTError


class NotFound(Exception):
    """Marks errors about a resource that does not exist (the control API answers 404)."""


class Conflict(Exception):
    """A control-API request that does not fit the resource's state (answered 409)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class AwsJsonError(JsonRESTError):
    """An error shaped like a real AWS JSON 1.1 error.

    The SDKs read the code from the `X-Amzn-ErrorType` header (set by the base
    class) or from `__type`; AWS itself writes the text as `Message`, while
    moto's JsonRESTError writes `message`. Extra members of the error shape
    (e.g. `Parameter` of IncompatibleParameterError) go next to them.
    """

    def __init__(self, code: str, message: str, status: int = 400, **members: Any):
        super().__init__(code, message)
        self.code = status
        self.description = json.dumps({"__type": code, "Message": message, **members})
        self.content_type = "application/x-amz-json-1.1"


def swap_backend_class(backend_dict: BackendDict, backend_class: type) -> None:
    """Makes `backend_dict` build `backend_class` instead of moto's class.

    BackendDict creates its per-account/region backends lazily from its
    `backend` attribute, and moto's reset rebuilds them from it too, so the
    swap must happen before the first request creates a backend.
    """
    if len(backend_dict):
        raise RuntimeError(f"{backend_dict.service_name}: backends exist already")
    backend_dict.backend = backend_class


def url_module(urls: Any, replaced: type | None = None, response: type | None = None) -> SimpleNamespace:
    """The URL table of moto module `urls`, with the handlers bound to
    `replaced` (its `dispatch`, or S3's `key_dispatch` and the like) switched
    to the same-named handlers of `response`.

    moto finds a backend's URL table by rewriting the backend class's module
    name (`moto.x.models` -> `moto.x.urls`), which fails for subclasses
    defined outside moto, so they hand it over explicitly.
    """
    paths = {path: swapped_handler(handler, replaced, response) for path, handler in urls.url_paths.items()}
    return SimpleNamespace(url_bases=urls.url_bases, url_paths=paths)


def swapped_handler(handler: Any, replaced: type | None, response: type | None) -> Any:
    if replaced is None or response is None or getattr(handler, "__self__", None) is not replaced:
        return handler
    return getattr(response, handler.__name__)


# Callbacks that clear emulator-wide settings of the control API (see on_reset).
_resets: list[Callable[[], None]] = []


def on_reset(clear: Callable[[], None]) -> Callable[[], None]:
    """Registers `clear` to run on every reset.

    Settings such as quotas or armed failures hold for every account and
    region (a test cannot know which backend the code under test reaches
    first), so they live next to moto's backends rather than on them, and
    moto's reset does not see them.
    """
    _resets.append(clear)
    return clear


def reset_settings() -> None:
    for clear in _resets:
        clear()


class ArmedFailures:
    """The next `count` requests that match get a scripted failure.

    Shared by concurrent server threads, so arming and taking are atomic.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0
        self.details: dict[str, Any] = {}
        on_reset(self.clear)

    def arm(self, count: int, **details: Any) -> int:
        with self._lock:
            self.count, self.details = count, details
            return count

    def take(self, matches: Callable[[dict[str, Any]], bool] = lambda details: True) -> dict[str, Any] | None:
        """The failure's details if one is armed and `matches` them (using it up), else None."""
        with self._lock:
            if self.count <= 0 or not matches(self.details):
                return None
            self.count -= 1
            return dict(self.details)

    def clear(self) -> None:
        self.arm(0)


class Clock:
    """The emulator's clock: the wall clock plus an offset that the control API
    moves forward.

    A test of a six-hour import cannot wait six hours. SQS delays and
    visibility timeouts and the timed FSx tasks read this clock, so moving it
    forward is time passing for all of them at once, in the order their
    deadlines fall. It never moves back (but on reset).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.offset = 0.0
        on_reset(self.clear)

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> float:
        """Moves the clock `seconds` forward; the new time."""
        with self._lock:
            self.offset += seconds
            return time.time() + self.offset

    def clear(self) -> None:
        with self._lock:
            self.offset = 0.0


CLOCK = Clock()


def random_hex(length: int) -> str:
    return secrets.token_hex((length + 1) // 2)[:length]


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def iso8601(moment: datetime.datetime) -> str:
    """EventBridge's `time` format: second precision, `Z` suffix."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
