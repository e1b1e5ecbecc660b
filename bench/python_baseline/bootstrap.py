#!/usr/bin/env python3
"""A minimal Lambda Runtime API client for the Python baseline, run as the
function's `bootstrap` the way a custom runtime is.

Like the AWS Python runtime: at init it imports the handler module (which
imports boto3, creates its clients and reads the config), then loops
`GET /invocation/next` → `handler(event, context)` → `POST /response`
(or `/error`). An exception at import posts `/init/error` and exits.
"""

from __future__ import annotations

import http.client
import importlib
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

API = "/2018-06-01/runtime"


class Context:
    """The parts of the Lambda context object a handler commonly reads."""

    def __init__(self, headers: http.client.HTTPMessage):
        self.aws_request_id = headers.get("Lambda-Runtime-Aws-Request-Id", "")
        self.invoked_function_arn = headers.get("Lambda-Runtime-Invoked-Function-Arn", "")
        self._deadline_ms = int(headers.get("Lambda-Runtime-Deadline-Ms") or 0)
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def error_body(error: BaseException) -> bytes:
    return json.dumps(
        {
            "errorMessage": str(error),
            "errorType": type(error).__name__,
            "stackTrace": traceback.format_exception(error)[-5:],
        }
    ).encode()


def main() -> int:
    host, _, port = os.environ["AWS_LAMBDA_RUNTIME_API"].partition(":")
    conn = http.client.HTTPConnection(host, int(port or 80))
    module_name, _, function_name = os.environ.get("_HANDLER", "on_upload.handler").rpartition(".")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
    except Exception as error:  # noqa: BLE001 - reported to the Runtime API, as AWS's runtime does
        conn.request("POST", f"{API}/init/error", body=error_body(error), headers={"Content-Type": "application/json"})
        conn.getresponse().read()
        return 1
    while True:
        conn.request("GET", f"{API}/invocation/next")
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            return 0  # the Runtime API is shutting down
        request_id = response.headers["Lambda-Runtime-Aws-Request-Id"]
        try:
            result = handler(json.loads(body), Context(response.headers))
            path, payload = f"{API}/invocation/{request_id}/response", json.dumps(result).encode()
        except Exception as error:  # noqa: BLE001 - the invocation's error, as AWS's runtime reports it
            path, payload = f"{API}/invocation/{request_id}/error", error_body(error)
        conn.request("POST", path, body=payload, headers={"Content-Type": "application/json"})
        conn.getresponse().read()


if __name__ == "__main__":
    sys.exit(main())
