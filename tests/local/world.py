#!/usr/bin/env python3
"""`make local`: the emulator and the demo's world, for `cargo lambda watch`.

    .venv/bin/python tests/local/world.py [--env-file retrain.local.env]

Starts the emulator, creates what a deployment has (buckets, bus, queues, VPC,
FSx for Lustre, EFS, role, the configuration in S3, as the demo does), and
writes the functions' environment to the env file. Then it prints the commands
to serve and invoke the functions, and serves until interrupted. Its first
line of stdout is `READY <env file>`, for scripts.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests/demo"))

from demo import build_world, function_environment, start_emulator  # noqa: E402
from runtime_api import REGION  # noqa: E402


def next_steps(env_file: Path, endpoint: str, world: dict[str, Any]) -> str:
    return f"""
emulator: {endpoint}   FSx for Lustre: {world['lustre']}   EFS: {world['efs']}
environment: {env_file}

In a second shell, serve the functions (the Lambda Runtime API on port 9000):
  cargo lambda watch --env-file {env_file}
In a third shell, invoke them with the sample events:
  cargo lambda invoke on-upload --data-file events/sqs-s3-put.json
  cargo lambda invoke reconcile --data-ascii '{{}}'
  curl -s {endpoint}/_retrain/events
docs/local.md walks through the whole loop. Ctrl-C stops the emulator.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-file", type=Path, default=ROOT / "retrain.local.env")
    parser.add_argument("--log-file", type=Path, default=ROOT / "retrain.local.emulator.log")
    args = parser.parse_args(argv)
    cleanup: list[Callable[[], None]] = []
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        endpoint = start_emulator(args.log_file.resolve(), cleanup)
        world = build_world(endpoint, lambda step, resource, outcome: print(f"{step:<8} {resource}: {outcome}", file=sys.stderr))
        env_file = args.env_file.resolve()
        env_file.write_text("".join(f"{k}={v}\n" for k, v in function_environment(endpoint, world).items()))
        print(f"READY {env_file}", flush=True)
        print(next_steps(env_file, endpoint, world), file=sys.stderr, flush=True)
        stop.wait()
    finally:
        for step in reversed(cleanup):
            step()
    return 0


if __name__ == "__main__":
    sys.exit(main())
