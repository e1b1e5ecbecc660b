"""The demo's local Runtime API (tests/demo/runtime_api.py), with timestamps.

`TimedFunction` is the demo's `LambdaFunction` plus, for every invocation,
when the Runtime API handed it out (`GET /next` answered) and when the
response was posted; and the process's peak RSS (`VmHWM`).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import runtime_api
from demo import ARTIFACTS_BUCKET, BUS, CONFIG_KEY
from proxy import NoDelayServer, quiet_resets
from runtime_api import REGION, LambdaFunction


@dataclass
class Timing:
    handed_at: float
    answered_at: float

    @property
    def wall(self) -> float:
        return self.answered_at - self.handed_at


class TimedFunction(LambdaFunction):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.history: list[Timing] = []
        self._handed: dict[str, float] = {}
        self._history_lock = threading.Lock()

    def _next(self):  # type: ignore[no-untyped-def]
        inv = super()._next()
        if inv is not None:
            with self._history_lock:
                self._handed[inv.request_id] = time.monotonic()
        return inv

    def _finish(self, request_id: str, response: Any = None, error: str | None = None) -> bool:
        now = time.monotonic()
        with self._history_lock:
            handed = self._handed.pop(request_id, None)
            if handed is not None:
                self.history.append(Timing(handed, now))
        return super()._finish(request_id, response, error)

    def start(self) -> None:
        # The demo's Runtime API server, made to send at once (see NoDelayServer).
        plain = runtime_api.http.server.ThreadingHTTPServer
        runtime_api.http.server.ThreadingHTTPServer = NoDelayServer  # type: ignore[misc]
        try:
            super().start()
        finally:
            runtime_api.http.server.ThreadingHTTPServer = plain  # type: ignore[misc]
        quiet_resets(self._server)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def peak_rss_bytes(self) -> int | None:
        """`VmHWM` of the live process, from /proc."""
        if self.pid is None:
            return None
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            return None
        return None


def function_env(endpoint: str, world: dict[str, Any]) -> dict[str, str]:
    """What the template gives every function, pointed at `endpoint` (as the demo does)."""
    # Lambda sets no SSL_CERT_* either: with them the functions read the host's CA store (see tls_roots.py).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RETRAIN_", "RUST_", "SSL_CERT_"))}
    env.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_REGION=REGION,
        AWS_DEFAULT_REGION=REGION,  # Lambda sets both; boto3 reads this one
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_EC2_METADATA_DISABLED="true",
        RETRAIN_CONFIG=f"s3://{ARTIFACTS_BUCKET}/{CONFIG_KEY}",
        RETRAIN_ARTIFACTS_BUCKET=ARTIFACTS_BUCKET,
        RETRAIN_EVENT_BUS=BUS,
        RETRAIN_WATCH_QUEUE_URL=world["watch_url"],
        RETRAIN_TICK_QUEUE_URL=world["ticks_url"],
        RUST_LOG="info",  # the template's default LogLevel
    )
    return env


def python_env(endpoint: str, world: dict[str, Any]) -> dict[str, str]:
    """The baseline's environment: `bootstrap.py` runs on this interpreter (it has boto3)."""
    env = function_env(endpoint, world)
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        _HANDLER="on_upload.handler",
        # Deployed code carries no bytecode cache; don't leave one in the tree either.
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONUNBUFFERED="1",
    )
    return env
