"""A local Lambda Runtime API: runs one real function binary and invokes it.

Each function process gets its own server on 127.0.0.1 (port 0) speaking the
Runtime API that the `lambda_runtime` crate polls:

    GET  /2018-06-01/runtime/invocation/next            blocks until an invocation is queued
    POST /2018-06-01/runtime/invocation/<id>/response   the handler's result
    POST /2018-06-01/runtime/invocation/<id>/error      the handler's error
    POST /2018-06-01/runtime/init/error                 the cold start failed

Like a function with reserved concurrency 1, one invocation runs at a time;
others wait in the queue.
"""

from __future__ import annotations

import http.server
import json
import os
import queue
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

API = "/2018-06-01/runtime"
ACCOUNT = "123456789012"
REGION = "us-east-1"


class FunctionError(Exception):
    """The function answered an error, died, or never answered."""


class _Invocation:
    def __init__(self, payload: Any):
        self.request_id = str(uuid.uuid4())
        self.body = json.dumps(payload).encode()
        self.done = threading.Event()
        self.response: Any = None
        self.error: str | None = None

    def fail(self, message: str) -> None:
        if not self.done.is_set():
            self.error = message
            self.done.set()


class LambdaFunction:
    """One function binary under its own Runtime API server."""

    def __init__(self, name: str, binary: Path, env: dict[str, str], log_path: Path, timeout: float = 30.0):
        self.name = name
        self.binary = binary
        self.env = env
        self.log_path = log_path
        self.timeout = timeout
        self.arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
        self.invocations = 0
        self._queue: queue.Queue[_Invocation] = queue.Queue()
        self._in_flight: dict[str, _Invocation] = {}
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._dead: str | None = None
        self.init_error: str | None = None
        self._server: http.server.ThreadingHTTPServer | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log = None
        self.started_at = 0.0
        self.ready_after: float | None = None

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name=f"runtime-api-{self.name}", daemon=True).start()
        port = self._server.server_address[1]
        env = dict(self.env)
        env.update(
            AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{port}",
            AWS_LAMBDA_FUNCTION_NAME=self.name,
            AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256",
            AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
            AWS_LAMBDA_LOG_GROUP_NAME=f"/aws/lambda/{self.name}",
            AWS_LAMBDA_LOG_STREAM_NAME=time.strftime("%Y/%m/%d") + f"/[$LATEST]{uuid.uuid4().hex}",
        )
        self._log = open(self.log_path, "wb")
        self.started_at = time.monotonic()
        self._process = subprocess.Popen(
            [str(self.binary)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, killed as a whole
        )
        threading.Thread(target=self._watch_process, name=f"process-{self.name}", daemon=True).start()

    def wait_ready(self, timeout: float) -> float:
        """Waits for the first poll of /invocation/next (the cold start is done); returns seconds taken."""
        end = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if self._dead:
                raise FunctionError(self._dead)
            if time.monotonic() > end:
                raise FunctionError(f"{self.name}: no cold start within {timeout:.0f} s (see {self.log_path})")
        return self.ready_after or 0.0

    def stop(self) -> None:
        self._stopping.set()
        process = self._process
        if process is not None and process.poll() is None:
            _kill_group(process)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._log is not None:
            self._log.close()
        for inv in self._drain():
            inv.fail(f"{self.name} stopped")

    def _watch_process(self) -> None:
        assert self._process is not None
        code = self._process.wait()
        if self._stopping.is_set():
            return
        self._dead = f"{self.name} exited with code {code}{self._init_error_suffix()}; last log line: {self._last_log_line()}"
        for inv in self._drain():
            inv.fail(self._dead)

    def _init_error_suffix(self) -> str:
        return f" after init error: {self.init_error}" if self.init_error else ""

    def _drain(self) -> list[_Invocation]:
        with self._lock:
            pending = list(self._in_flight.values())
            self._in_flight.clear()
        while True:
            try:
                pending.append(self._queue.get_nowait())
            except queue.Empty:
                return pending

    def _last_log_line(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return lines[-1][:400] if lines else "(empty log)"

    @property
    def dead(self) -> str | None:
        return self._dead

    # -- invoking ----------------------------------------------------------

    def invoke(self, payload: Any) -> Any:
        """Runs one invocation and returns the handler's JSON result; raises FunctionError on an error."""
        if self._dead:
            raise FunctionError(self._dead)
        inv = _Invocation(payload)
        self._queue.put(inv)
        # Queue time counts too: a busy function delays the next invocation.
        if not inv.done.wait(self.timeout * 2):
            with self._lock:
                self._in_flight.pop(inv.request_id, None)
            raise FunctionError(f"{self.name}: invocation {inv.request_id} got no answer within {self.timeout * 2:.0f} s")
        if inv.error is not None:
            raise FunctionError(inv.error)
        self.invocations += 1
        return inv.response

    # -- the Runtime API side ----------------------------------------------

    def _next(self) -> _Invocation | None:
        if not self._ready.is_set():
            self.ready_after = time.monotonic() - self.started_at
            self._ready.set()
        while not self._stopping.is_set():
            try:
                inv = self._queue.get(timeout=0.25)
            except queue.Empty:
                continue
            with self._lock:
                self._in_flight[inv.request_id] = inv
            return inv
        return None

    def _finish(self, request_id: str, response: Any = None, error: str | None = None) -> bool:
        with self._lock:
            inv = self._in_flight.pop(request_id, None)
        if inv is None:
            return False
        if error is not None:
            inv.error = error
        else:
            inv.response = response
        inv.done.set()
        return True

    def _init_failed(self, message: str) -> None:
        self.init_error = message
        self._dead = f"{self.name}: init error: {message}"
        for inv in self._drain():
            inv.fail(self._dead)


def _kill_group(process: subprocess.Popen[Any], grace: float = 3.0) -> None:
    """SIGTERM to the child's process group, then SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, grace)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        try:
            process.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def kill_group(process: subprocess.Popen[Any], grace: float = 3.0) -> None:
    if process.poll() is None:
        _kill_group(process, grace)


def read_body(request: http.server.BaseHTTPRequestHandler) -> bytes:
    """The request body, sent with Content-Length or chunked (as hyper may send it)."""
    if "chunked" in (request.headers.get("Transfer-Encoding") or "").lower():
        chunks = []
        while True:
            size = int(request.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                # Trailers, up to the empty line.
                while request.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(request.rfile.read(size))
            request.rfile.readline()
    length = int(request.headers.get("Content-Length") or 0)
    return request.rfile.read(length) if length else b""


def _handler_for(fn: LambdaFunction) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "retrain-demo-runtime-api"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
            pass

        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
            except OSError:
                pass  # the function process went away

        def _json(self, status: int, value: Any) -> None:
            self._send(status, json.dumps(value).encode())

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path != f"{API}/invocation/next":
                self._json(404, {"errorMessage": f"no route {self.path}", "errorType": "NotFound"})
                return
            inv = fn._next()
            if inv is None:
                self._json(410, {"errorMessage": "runtime is shutting down", "errorType": "Gone"})
                return
            deadline_ms = int((time.time() + fn.timeout) * 1000)
            trace = f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=0"
            self._send(
                200,
                inv.body,
                {
                    "Lambda-Runtime-Aws-Request-Id": inv.request_id,
                    "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                    "Lambda-Runtime-Invoked-Function-Arn": fn.arn,
                    "Lambda-Runtime-Trace-Id": trace,
                },
            )

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = read_body(self)
            parts = self.path.split("/")
            # ['', '2018-06-01', 'runtime', 'invocation', '<id>', 'response'|'error'] or [..., 'init', 'error']
            if self.path == f"{API}/init/error":
                fn._init_failed(_error_text(body))
                self._json(202, {"status": "OK"})
                return
            if len(parts) == 6 and self.path.startswith(f"{API}/invocation/") and parts[5] in ("response", "error"):
                request_id = parts[4]
                if parts[5] == "response":
                    try:
                        response = json.loads(body) if body else None
                    except ValueError:
                        ok = fn._finish(request_id, error=f"{fn.name}: response is not JSON: {body[:200]!r}")
                    else:
                        ok = fn._finish(request_id, response=response)
                else:
                    ok = fn._finish(request_id, error=f"{fn.name}: {_error_text(body)}")
                if ok:
                    self._json(202, {"status": "OK"})
                else:
                    self._json(400, {"errorMessage": f"unknown request id {request_id}", "errorType": "InvalidRequestID"})
                return
            self._json(404, {"errorMessage": f"no route {self.path}", "errorType": "NotFound"})

    return Handler


def _error_text(body: bytes) -> str:
    try:
        diagnostic = json.loads(body)
    except ValueError:
        return body.decode(errors="replace")[:500]
    if isinstance(diagnostic, dict):
        return f"{diagnostic.get('errorType', 'Error')}: {diagnostic.get('errorMessage', '')}"
    return str(diagnostic)[:500]
