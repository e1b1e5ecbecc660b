"""Helpers shared by the moto extensions."""

import datetime
import json
import secrets
from types import SimpleNamespace
from typing import Any

from moto.core.base_backend import BackendDict
from moto.core.exceptions import JsonRESTError


class NotFound(Exception):
    """Marks errors about a resource that does not exist (the control API answers 404)."""


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
    """The URL table of moto module `urls`, with `replaced.dispatch` handlers
    switched to `response.dispatch`.

    moto finds a backend's URL table by rewriting the backend class's module
    name (`moto.x.models` -> `moto.x.urls`), which fails for subclasses
    defined outside moto, so they hand it over explicitly.
    """
    paths = {
        path: response.dispatch if replaced and handler == replaced.dispatch else handler
        for path, handler in urls.url_paths.items()
    }
    return SimpleNamespace(url_bases=urls.url_bases, url_paths=paths)


def random_hex(length: int) -> str:
    return secrets.token_hex((length + 1) // 2)[:length]


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def iso8601(moment: datetime.datetime) -> str:
    """EventBridge's `time` format: second precision, `Z` suffix."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
