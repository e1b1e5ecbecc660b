#!/usr/bin/env python3
"""moto's server with retrain's extensions, on a loopback port.

    python3 tests/emulator/retrain_emulator.py --port 0 [--host 127.0.0.1] [--verbose]

Prints one line, `READY http://HOST:PORT`, once the port accepts connections,
then serves until SIGTERM or SIGINT and exits 0.
"""

import argparse
import ipaddress
import logging
import os
import signal
import sys
import threading

import moto_ext
from werkzeug.serving import make_server

STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def loopback_host(host: str) -> str:
    if host == "localhost" or ipaddress.ip_address(host).is_loopback:
        return host
    raise argparse.ArgumentTypeError(f"{host} is not a loopback address")


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", type=loopback_host, default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one")
    parser.add_argument("--verbose", action="store_true", help="log every request on stderr")
    return parser.parse_args(argv)


def url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    if not arguments.verbose:
        # A parent that never drains our stderr must not block the server.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    moto_ext.install()
    # Threads inherit the signal mask: blocking here means only sigwait below
    # sees SIGINT/SIGTERM, so shutdown happens on this thread, in order.
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    server = make_server(arguments.host, arguments.port, moto_ext.application(), threaded=True)
    # moto builds some URLs that point back at itself from MOTO_PORT.
    os.environ["MOTO_PORT"] = str(server.server_port)
    serving = threading.Thread(target=server.serve_forever, name="emulator", daemon=True)
    serving.start()
    print(f"READY {url(arguments.host, server.server_port)}", flush=True)
    # Anything printed later (moto prints some diagnostics) must not reach a
    # reader that only expects the READY line.
    sys.stdout = sys.stderr
    signal.sigwait(STOP_SIGNALS)
    server.shutdown()
    serving.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
