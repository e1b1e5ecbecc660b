"""A counting HTTP proxy between one function process and the emulator.

The function's `AWS_ENDPOINT_URL` points here; every request is forwarded
unchanged (Host header included, so SigV4 signatures still match) over a
persistent connection to the emulator, and recorded:

    Call(service, operation, status, began, ended, upstream)

`began`/`ended` are `time.monotonic()` when the request line had been read
and when the response had been written back: the function was waiting on "AWS"
for `ended - began`. `upstream` is the part of it spent on the emulator's
socket (request sent → response read). Summed over an invocation, it is the
emulator's own time, which the benchmark subtracts from wall time.
"""

from __future__ import annotations

import http.client
import http.server
import re
import socket
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass

from runtime_api import read_body  # tests/demo, on the path as for the rest of bench/
from typing import Any

# Hop-by-hop headers are the proxy's own business, not forwarded.
HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}
SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")


class NoDelayServer(http.server.ThreadingHTTPServer):
    """A threading HTTP server whose connections send at once (TCP_NODELAY).

    Python's http.server writes a response's headers and body in two
    writes; with Nagle's algorithm on, the body then waits for the client's
    delayed ACK of the headers, about 40 ms on Linux. The AWS endpoints and
    Lambda's Runtime API do not do that to a function, so neither may the
    benchmark's stand-ins.
    """

    daemon_threads = True

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, address = super().get_request()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, address


def quiet_resets(server: Any) -> None:
    """A killed function resets its kept-alive connections: not worth a traceback on stderr."""
    loud = server.handle_error

    def handle_error(request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            loud(request, client_address)

    server.handle_error = handle_error


@dataclass(frozen=True)
class Call:
    service: str
    operation: str
    status: int
    began: float
    ended: float
    upstream: float
    # Headers parsed → body read: how long the function took to send its body.
    receiving: float = 0.0

    @property
    def name(self) -> str:
        return f"{self.service}:{self.operation}"

    @property
    def waited(self) -> float:
        return self.ended - self.began


def busy_time(calls: list[Call], since: float = float("-inf"), until: float = float("inf")) -> float:
    """Seconds within [since, until] during which at least one call was waiting at the proxy.

    The union of the calls' intervals, not their sum: the SDK keeps a pool of
    connections, so a call can begin a moment before the previous one's
    response has finished being written.
    """
    total, reach = 0.0, since
    for c in sorted(calls, key=lambda c: c.began):
        start, end = max(c.began, reach), min(c.ended, until)
        if end > start:
            total += end - start
        reach = max(reach, c.ended)
    return total


class CountingProxy:
    """One proxy on 127.0.0.1:<free port>; `url` is what the function's AWS_ENDPOINT_URL gets."""

    def __init__(self, upstream: str, name: str = "proxy"):
        parsed = urllib.parse.urlsplit(upstream)
        self.upstream_host = parsed.hostname or "127.0.0.1"
        self.upstream_port = parsed.port or 80
        self.name = name
        self._lock = threading.Lock()
        self._calls: list[Call] = []
        self._in_flight = 0
        self._idle = threading.Condition(self._lock)
        self._server = NoDelayServer(("127.0.0.1", 0), _handler_for(self))
        quiet_resets(self._server)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"proxy-{name}", daemon=True)

    def start(self) -> "CountingProxy":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def entered(self) -> None:
        with self._lock:
            self._in_flight += 1

    def record(self, call: Call | None) -> None:
        with self._lock:
            if call is not None:
                self._calls.append(call)
            self._in_flight -= 1
            self._idle.notify_all()

    def _quiet(self, timeout: float = 2.0) -> None:
        # A function may post its result before this thread has recorded the
        # call it just answered: wait for the calls in flight (lock held).
        self._idle.wait_for(lambda: self._in_flight == 0, timeout)

    def calls(self, since: float = float("-inf"), until: float = float("inf")) -> list[Call]:
        """Calls that began within [since, until]."""
        with self._lock:
            self._quiet()
            return [c for c in self._calls if since <= c.began <= until]

    def mark(self) -> int:
        with self._lock:
            self._quiet()
            return len(self._calls)

    def calls_after(self, mark: int) -> list[Call]:
        with self._lock:
            self._quiet()
            return list(self._calls[mark:])


def operation_of(method: str, path: str, headers: Any, body: bytes) -> tuple[str, str]:
    """(service, operation) from the SigV4 scope and the protocol's own marker."""
    found = SCOPE.search(headers.get("Authorization") or "")
    service = found.group(1) if found else "?"
    target = headers.get("X-Amz-Target")
    if target:  # JSON protocols: FSx, SageMaker, EventBridge, SQS
        return service, target.rsplit(".", 1)[-1]
    if body[:7] == b"Action=":  # query protocols: EC2, IAM
        return service, urllib.parse.parse_qs(body.decode(errors="replace")).get("Action", ["?"])[0]
    url = urllib.parse.urlsplit(path)
    if service == "s3":
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        if query.get("x-id"):  # the Rust SDK names the operation itself
            return service, query["x-id"][0]
        has_key = url.path.strip("/").count("/") >= 1
        if method == "GET":
            if has_key:
                return service, "GetObject"
            return service, "ListObjectsV2" if query.get("list-type") == ["2"] else "ListObjects"
        return service, {"PUT": "PutObject", "DELETE": "DeleteObject", "HEAD": "HeadObject", "POST": "PostObject"}.get(
            method, method
        ) if has_key else f"{method} bucket"
    # REST-JSON (EFS): the method and the resource.
    return service, f"{method} {url.path}"


def _handler_for(proxy: CountingProxy) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
            pass

        def parse_request(self) -> bool:
            # The request line is in: from here on the function waits on "AWS".
            self.request_line_read = time.monotonic()
            return super().parse_request()

        def setup(self) -> None:
            super().setup()
            self.upstream: http.client.HTTPConnection | None = None

        def finish(self) -> None:
            if self.upstream is not None:
                self.upstream.close()
            super().finish()

        def _forward(self) -> None:
            proxy.entered()
            call = None
            try:
                call = self._relay()
            finally:
                proxy.record(call)

        def _relay(self) -> Call:
            began = self.request_line_read
            headers_read = time.monotonic()
            body = read_body(self)
            body_read = time.monotonic()
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP and k.lower() != "content-length"}
            if body or self.command in ("PUT", "POST"):
                headers["Content-Length"] = str(len(body))
            for attempt in (1, 2):
                if self.upstream is None:
                    self.upstream = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=60)
                    self.upstream.connect()
                    self.upstream.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                try:
                    sent = time.monotonic()
                    self.upstream.request(self.command, self.path, body=body, headers=headers)
                    response = self.upstream.getresponse()
                    payload = response.read()
                    upstream = time.monotonic() - sent
                    break
                except (http.client.HTTPException, OSError):
                    # The emulator closed a kept-alive connection: one fresh try.
                    self.upstream.close()
                    self.upstream = None
                    if attempt == 2:
                        raise
            self.send_response_only(response.status, response.reason)
            for k, v in response.getheaders():
                if k.lower() not in HOP and k.lower() != "content-length":
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
            self.wfile.flush()
            ended = time.monotonic()
            service, operation = operation_of(self.command, self.path, self.headers, body)
            return Call(service, operation, response.status, began, ended, upstream, body_read - headers_read)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward  # noqa: N815 - http.server's names

    return Handler
