"""A loopback HTTP proxy that answers a seeded share of AWS calls with faults.

Sits between the functions under test and the emulator. With probability
``--rate`` (fixed ``--seed``) a request is answered, before it reaches the
emulator, with one of: throttling (``ThrottlingException`` for JSON
protocols, ``SlowDown`` for S3), HTTP 500, HTTP 503, or a dropped
connection. Faults are injected before forwarding only, as a real throttle
or an unreachable endpoint would: the request has no effect upstream.

``GET /_proxy/stats`` answers the counts. Prints ``READY http://127.0.0.1:<port>``.
"""

import argparse
import http.client
import json
import random
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization", "proxy-authenticate"}
FAULTS = ("throttle", "500", "503", "drop")


class State:
    def __init__(self, seed: int, rate: float, target: str):
        self.rng = random.Random(seed)
        self.rate = rate
        self.target = urlparse(target)
        self.lock = threading.Lock()
        self.stats = {"forwarded": 0, **{f: 0 for f in FAULTS}}

    def pick(self) -> str | None:
        with self.lock:
            if self.rng.random() >= self.rate:
                self.stats["forwarded"] += 1
                return None
            fault = self.rng.choice(FAULTS)
            self.stats[fault] += 1
            return fault


def make_handler(state: State):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet: the test reads stats instead
            pass

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _send(self, status: int, headers: dict, body: bytes):
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _fault(self, fault: str):
            # JSON-protocol services name their operation in X-Amz-Target; S3's REST-XML does not.
            json_protocol = "X-Amz-Target" in self.headers or (self.headers.get("Content-Type") or "").startswith("application/x-amz-json")
            if fault == "drop":
                self.close_connection = True
                self.connection.close()
            elif fault == "throttle" and json_protocol:
                body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
                self._send(400, {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": "ThrottlingException"}, body)
            elif fault == "throttle":
                body = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
                self._send(503, {"Content-Type": "application/xml"}, body)
            else:
                body = json.dumps({"__type": "InternalFailure", "message": f"injected {fault}"}).encode()
                self._send(int(fault), {"Content-Type": "application/json"}, body)

        def _handle(self):
            body = self._body()
            if self.path == "/_proxy/stats":
                with state.lock:
                    self._send(200, {"Content-Type": "application/json"}, json.dumps(state.stats).encode())
                return
            fault = state.pick()
            if fault:
                self._fault(fault)
                return
            upstream = http.client.HTTPConnection(state.target.hostname, state.target.port, timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            upstream.request(self.command, self.path, body=body, headers=headers)
            response = upstream.getresponse()
            data = response.read()
            out = {k: v for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP and k.lower() != "content-length"}
            self._send(response.status, out, data)
            upstream.close()

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

    return Handler


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--target", required=True, help="the emulator's URL")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rate", type=float, default=0.2)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(State(args.seed, args.rate, args.target)))
    server.daemon_threads = True
    print(f"READY http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
