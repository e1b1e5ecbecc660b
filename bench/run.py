#!/usr/bin/env python3
"""`make bench`: retrain's performance figures, measured in one run, printed as one table.

    .venv/bin/python bench/run.py --bin-dir $CARGO_TARGET_DIR/release [--reps 5] [--log-dir DIR] [--no-criterion]

1. Cold start of the five release binaries under a local Lambda Runtime API
   (tests/demo/runtime_api.py) against the emulator: spawn → first response
   posted, and peak RSS; beside it a Python 3 + boto3 on-upload
   (bench/python_baseline/) measured the same way.
2. The largest SQS batch (6 MB of S3 notifications) → exactly one import
   task, as many AWS calls as a 10-record batch, handler time net of the
   emulator's own time (counted by bench/proxy.py).
3. Decode + plan throughput (criterion, shared/core/benches/plan.rs).
4. Stripped binary sizes.
5. Import finished → first training job: on-import ticks in between, in a
   demo-like run (tests/demo/router.py playing SQS, EventBridge and FSx).
6. A burst of 100,000 uploads (1,000 SQS batches) while imports end at
   random points: import tasks, AWS calls per batch, coverage, the longest
   on-import invocation (bench/bursts.py).
7. Import end → first training job, and the polls, for imports of 1 min,
   1 h and 6 h on the emulator's clock (bench/lag.py).
8. Upload → training end to end, default and "fast" profiles (bench/lag.py).
9. AWS calls per on-training event for sweeps of 10, 100 and 1,000
   variants, total calls per sweep, handler time (bench/sweeps.py).

A benchmark, not a test: it exits non-zero only when it cannot measure;
missed targets are reported in the table. BENCHMARKS.md explains the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import struct
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for path in (ROOT / "tests" / "demo", HERE):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import boto3  # noqa: E402
import botocore  # noqa: E402
import lag  # noqa: E402

from demo import ALL_FUNCTIONS, ARTIFACTS_BUCKET, BUS, CONFIG_KEY, DATA_BUCKET, build_world, session, start_emulator  # noqa: E402
from events import import_watch_batch, largest_upload_batch, reconcile_schedule, start_sweep_request, upload_batch  # noqa: E402
import bursts  # noqa: E402
from functions import TimedFunction, function_env, python_env  # noqa: E402
from proxy import Call, CountingProxy, busy_time  # noqa: E402
from router import AsyncInvoker, BusRouter, Control, FsxService, SqsSource, Trouble  # noqa: E402
from runtime_api import FunctionError  # noqa: E402
from story import Narrator, table  # noqa: E402
from sweeps import SweepScale  # noqa: E402
from sweeps import rows as sweep_rows  # noqa: E402

import tls_roots  # noqa: E402

MB = 1024 * 1024
# Cold start: the function's own time, spawn → first response less the emulator's.
COLD_START_TARGET_MS = 15.0
RSS_TARGET_MB = 16.0
# Python ÷ Rust, both less the emulator's time.
SPEEDUP_TARGET = 20.0
HANDLER_TARGET_MS = 50.0
SIZE_TARGET_MB = 12.0
ARM_TARGET = "aarch64-unknown-linux-gnu"
CRITERION_ARGS = ["--warm-up-time", "1", "--measurement-time", "3"]
# (group, function, label): the criterion benches of shared/core/benches/plan.rs.
CRITERION_BENCHES = [
    ("upload_batch_1000", "decode", "decode an SQS batch of 1,000 S3 notifications"),
    ("upload_batch_1000", "decode_and_plan", "decode + plan the import (1,000 records)"),
    ("sweep_1000", "expand", "expand a 10×10×10 grid (1,000 variants)"),
    ("sweep_1000", "expand_and_decide_half_done", "expand + lanes::decide, 500 of 1,000 done"),
    ("sweep_1000", "decide_all_done", "lanes::decide + rank, 1,000 of 1,000 done"),
]


class BenchFailed(Exception):
    pass


# -- small helpers --------------------------------------------------------------


def ms(seconds: float) -> float:
    return seconds * 1000.0


def spread(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def fmt(value: float, unit: str, digits: int = 1) -> str:
    return f"{value:,.{digits}f} {unit}"


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def run_text(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine() -> dict[str, str]:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
        platform.processor() or "?",
    )
    mem_kb = next(
        (int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal:")), 0
    )
    os_name = platform.platform()
    release = Path("/etc/os-release")
    if release.exists():
        fields = dict(line.split("=", 1) for line in release.read_text().splitlines() if "=" in line)
        os_name = f"{fields.get('PRETTY_NAME', '').strip(chr(34))}, Linux {platform.release()}"
    return {
        "nproc": run_text(["nproc"]) or str(os.cpu_count()),
        "cpu": cpu,
        "memory": f"{mem_kb / MB:.1f} GiB",
        "os": os_name,
        "rustc": run_text(["rustc", "--version"]),
        "python": platform.python_version(),
        "boto3": f"{boto3.__version__} (botocore {botocore.__version__})",
        "load": "load average " + " ".join(Path("/proc/loadavg").read_text().split()[:3]),
    }


def elf_stripped(path: Path) -> bool | None:
    """True when the ELF file has no .symtab and no .debug_* sections."""
    try:
        data = path.read_bytes()
        if data[:4] != b"\x7fELF" or data[4] != 2:
            return None
        shoff = struct.unpack_from("<Q", data, 0x28)[0]
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
        strtab_off = struct.unpack_from("<Q", data, shoff + shstrndx * shentsize + 0x18)[0]
        names = []
        for i in range(shnum):
            name_off = struct.unpack_from("<I", data, shoff + i * shentsize)[0]
            end = data.index(b"\0", strtab_off + name_off)
            names.append(data[strtab_off + name_off : end].decode(errors="replace"))
        return not any(n == ".symtab" or n.startswith(".debug") for n in names)
    except (OSError, ValueError, struct.error, IndexError):
        return None


# -- the bench ------------------------------------------------------------------


class Bench:
    def __init__(self, bin_dir: Path, log_dir: Path, reps: int):
        self.bin_dir = bin_dir
        self.log_dir = log_dir
        self.reps = reps
        self.cleanup: list[Callable[[], None]] = []
        self.nonce = uuid.uuid4().hex[:6]
        self.results: dict[str, Any] = {}
        self.proxies: dict[str, CountingProxy] = {}

    def note(self, text: str) -> None:
        print(f"{time.strftime('%H:%M:%S')}  {text}", flush=True)

    # the world ------------------------------------------------------------------

    def setup(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for old in self.log_dir.glob("*.log"):
            old.unlink()
        self.endpoint = start_emulator(self.log_dir / "emulator.log", self.cleanup)
        self.world = build_world(self.endpoint, lambda *_: None)
        self.control = Control(self.endpoint)
        s = session()
        self.s3 = s.client("s3", endpoint_url=self.endpoint)
        self.sqs = s.client("sqs", endpoint_url=self.endpoint)
        # moto loads a service's backend on its first request: not the functions' time.
        s.client("sagemaker", endpoint_url=self.endpoint).list_training_jobs()
        s.client("fsx", endpoint_url=self.endpoint).describe_data_repository_tasks()
        s.client("events", endpoint_url=self.endpoint).list_event_buses()
        s.client("efs", endpoint_url=self.endpoint).describe_file_systems()
        self.note(f"emulator {self.endpoint}; FSx {self.world['lustre']}, EFS {self.world['efs']}")

    def proxy(self, name: str) -> CountingProxy:
        if name not in self.proxies:
            p = CountingProxy(self.endpoint, name).start()
            self.proxies[name] = p
            self.cleanup.append(p.stop)
        return self.proxies[name]

    def settle(self) -> None:
        """Back to a quiet pipeline: no running import, an empty artifacts bucket (but the config), empty timers."""
        for task in self.control.tasks():
            if task["Lifecycle"] in ("PENDING", "EXECUTING"):
                self.control.post(f"fsx/tasks/{task['TaskId']}/finish", {"lifecycle": "SUCCEEDED"})
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=ARTIFACTS_BUCKET):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", []) if o["Key"] != CONFIG_KEY]
            if keys:
                self.s3.delete_objects(Bucket=ARTIFACTS_BUCKET, Delete={"Objects": keys, "Quiet": True})
        for queue in ("watch_url", "ticks_url"):
            self.sqs.purge_queue(QueueUrl=self.world[queue])

    def function(self, name: str, python: bool = False) -> TimedFunction:
        proxy = self.proxy(name)
        env = python_env(proxy.url, self.world) if python else function_env(proxy.url, self.world)
        binary = HERE / "python_baseline" / "bootstrap.py" if python else self.bin_dir / name
        label = "python-on-upload" if python else name
        return TimedFunction(f"retrain-{label}", binary, env, self.log_dir / f"{label}.log")

    # 1. cold starts -----------------------------------------------------------------

    def cold(self, name: str, payload: Any, python: bool = False) -> tuple[dict[str, Any], Any]:
        fn = self.function(name, python)
        proxy = self.proxy(name)
        try:
            fn.start()
            response = fn.invoke(payload)
            rss = fn.peak_rss_bytes()
        finally:
            fn.stop()
        if isinstance(response, dict) and response.get("batchItemFailures"):
            raise BenchFailed(f"{name}: {response}")
        first = fn.history[0]
        calls = proxy.calls(fn.started_at, first.answered_at)
        sample = {
            "cold_ms": ms(first.answered_at - fn.started_at),
            "ready_ms": ms(fn.ready_after or 0.0),
            "emulator_ms": ms(busy_time(calls, fn.started_at, first.answered_at)),
            "calls": len(calls),
            "operations": [c.name for c in calls],
            "rss_mb": (rss or 0) / MB,
        }
        sample["net_ms"] = sample["cold_ms"] - sample["emulator_ms"]
        return sample, response

    def new_task(self, before: int) -> dict[str, Any]:
        tasks = self.control.tasks()
        if len(tasks) != before + 1:
            raise BenchFailed(f"expected one new import task, found {len(tasks) - before}")
        return tasks[-1]

    def cold_starts(self) -> None:
        for name in ALL_FUNCTIONS:
            if not (self.bin_dir / name).is_file():
                raise BenchFailed(
                    f"{self.bin_dir / name} is missing: cargo build --release -p on-upload -p on-import -p start-sweep -p on-training -p reconcile"
                )
        samples: dict[str, list[dict[str, Any]]] = {n: [] for n in [*ALL_FUNCTIONS, "python-on-upload"]}
        # Round 0 warms the emulator's code paths and the page cache; it is not recorded.
        for rep in range(self.reps + 1):
            got: dict[str, dict[str, Any]] = {}
            run = f"bench-{self.nonce}-r{rep}"
            self.settle()
            before = len(self.control.tasks())
            s, _ = self.cold("on-upload", upload_batch(DATA_BUCKET, run, 10))
            task = self.new_task(before)
            got["on-upload"] = s
            s, _ = self.cold("on-import", import_watch_batch(self.world["lustre"], task["TaskId"]))
            got["on-import"] = s
            known = {j["name"] for j in self.control.jobs()["jobs"]}
            s, _ = self.cold("start-sweep", start_sweep_request("churn", run))
            got["start-sweep"] = s
            launched = [j for j in self.control.jobs()["jobs"] if j["name"] not in known]
            first = next((j for j in launched if j["tags"].get("retrain:variant") == "v0"), None)
            if first is None:
                raise BenchFailed(f"start-sweep launched no v0 job (launched: {[j['name'] for j in launched]})")
            event = self.control.post(
                f"sagemaker/jobs/{first['name']}/complete", {"metrics": {"validation:auc": 0.9, "train:auc": 0.99}}
            )
            known = {j["name"] for j in self.control.jobs()["jobs"]}
            s, _ = self.cold("on-training", event)
            if not [j for j in self.control.jobs()["jobs"] if j["name"] not in known]:
                raise BenchFailed("on-training launched no next job in the lane")
            got["on-training"] = s
            s, _ = self.cold("reconcile", reconcile_schedule())
            got["reconcile"] = s
            self.settle()
            before = len(self.control.tasks())
            s, _ = self.cold("python-on-upload", upload_batch(DATA_BUCKET, run + "-py", 10), python=True)
            self.new_task(before)
            got["python-on-upload"] = s
            if rep == 0:
                continue
            for name, sample in got.items():
                samples[name].append(sample)
            self.note(f"cold starts, round {rep}/{self.reps}: " + ", ".join(f"{n} {v['cold_ms']:.1f} ms" for n, v in got.items()))
        self.results["cold"] = samples

    # 2. the largest batch ------------------------------------------------------------

    def large_batch(self, rounds: int = 3) -> None:
        fn = self.function("on-upload")
        proxy = self.proxy("on-upload")
        self.cleanup.append(fn.stop)
        fn.start()
        fn.wait_ready(30)
        self.settle()
        fn.invoke(upload_batch(DATA_BUCKET, f"bench-{self.nonce}-warm", 10))  # connections up, code paged in

        def measured(payload: Any) -> dict[str, Any]:
            self.settle()
            before = len(self.control.tasks())
            mark = proxy.mark()
            response = fn.invoke(payload)
            if response.get("batchItemFailures"):
                raise BenchFailed(f"on-upload failed items: {response['batchItemFailures'][:3]}")
            timing = fn.history[-1]
            calls: list[Call] = proxy.calls_after(mark)
            tasks = self.control.tasks()
            new = tasks[before:]
            # Where the handler's own time went: before each call, and after the last one.
            steps, prev = [], timing.handed_at
            for c in sorted(calls, key=lambda c: c.began):
                steps.append({"call": c.name, "before_ms": ms(c.began - prev), "waited_ms": ms(c.waited), "body_ms": ms(c.receiving)})
                prev = max(prev, c.ended)
            steps.append({"call": "(response posted)", "before_ms": ms(timing.answered_at - prev)})
            return {
                "steps": steps,
                "wall_ms": ms(timing.wall),
                "emulator_ms": ms(busy_time(calls, timing.handed_at, timing.answered_at)),
                "emulator_upstream_ms": ms(sum(c.upstream for c in calls)),
                "proxy_overhead_ms": ms(sum(c.waited - c.upstream for c in calls)),
                "net_ms": ms(timing.wall - busy_time(calls, timing.handed_at, timing.answered_at)),
                "calls": len(calls),
                "operations": [c.name for c in calls],
                "tasks": len(new),
                "paths": len(new[0]["Paths"]) if new else 0,
            }

        small, large = [], []
        records = size = 0
        for r in range(rounds):
            small.append(measured(upload_batch(DATA_BUCKET, f"bench-{self.nonce}-s{r}", 10)))
            payload, size = largest_upload_batch(DATA_BUCKET, f"bench-{self.nonce}-l{r}")
            records = len(payload["Records"])
            large.append(measured(payload))
            self.note(
                f"large batch, round {r + 1}/{rounds}: {records} records ({size / MB:.2f} MiB) → {large[-1]['tasks']} task, "
                f"{large[-1]['calls']} calls (10 records: {small[-1]['calls']}), wall {large[-1]['wall_ms']:.1f} ms, "
                f"emulator {large[-1]['emulator_ms']:.1f} ms"
            )
        self.results["large"] = {"records": records, "bytes": size, "small": small, "large": large, "rss_mb": (fn.peak_rss_bytes() or 0) / MB}
        self.upload_fn = fn

    # 5. import finished → first training job ------------------------------------------

    def import_to_training(self, timeout: float = 90.0) -> None:
        self.settle()
        fns = {"on-upload": self.upload_fn}
        for name in ("on-import", "start-sweep"):
            fn = self.function(name)
            self.cleanup.append(fn.stop)
            fn.start()
            fns[name] = fn
        for fn in fns.values():
            fn.wait_ready(30)
        finished: list[float] = []

        class Finishing(Control):
            def post(self, path: str, body: dict[str, Any]) -> Any:
                answer = super().post(path, body)
                if path.endswith("/finish"):
                    finished.append(time.monotonic())
                return answer

        story = open(self.log_dir / "import-to-training.log", "w")  # noqa: SIM115 - closed at cleanup
        self.cleanup.append(story.close)
        narrator, trouble, stop = Narrator(out=story), Trouble(), threading.Event()
        self.cleanup.append(stop.set)
        s = session()
        control = Finishing(self.endpoint)
        # The template's shape: uploads batched (a short window here), the watch queue one by one,
        # DataImportCompleted → start-sweep, FSx ending the task 2 s after it started executing.
        start_sweep = AsyncInvoker(fns["start-sweep"], narrator, trouble, stop)
        workers = [
            start_sweep,
            SqsSource(s.client("sqs", endpoint_url=self.endpoint), "retrain-uploads", self.world["uploads_url"],
                      fns["on-upload"], narrator, trouble, stop, window=1.0, batch_size=1000),
            SqsSource(s.client("sqs", endpoint_url=self.endpoint), "retrain-watch", self.world["watch_url"],
                      fns["on-import"], narrator, trouble, stop),
            BusRouter(control, BUS, start_sweep, narrator, trouble, stop),
            FsxService(control, s.client("s3", endpoint_url=self.endpoint), narrator, trouble, stop, after=2.0),
        ]  # fmt: skip
        sweep_proxy = self.proxy("start-sweep")
        mark = sweep_proxy.mark()
        tasks_before = len(self.control.tasks())
        for w in workers:
            w.start()
        s3 = s.client("s3", endpoint_url=self.endpoint)
        run = f"bench-{self.nonce}-e2e"
        for n in range(20):
            s3.put_object(Bucket=DATA_BUCKET, Key=f"datasets/churn/{run}/part-{n:05d}.csv", Body=b"churned,tenure\n0,12\n")
        uploaded = time.monotonic()
        end = uploaded + timeout
        created: Call | None = None
        while created is None:
            if trouble.first():
                raise BenchFailed(f"import → training: {trouble.first()}")
            if time.monotonic() > end:
                raise BenchFailed(f"import → training: no CreateTrainingJob within {timeout:.0f} s of the uploads")
            created = next((c for c in sweep_proxy.calls_after(mark) if c.operation == "CreateTrainingJob"), None)
            time.sleep(0.05)
        stop.set()
        if not finished:
            raise BenchFailed("import → training: a training job was launched before FSx finished the import")
        done_at = finished[0]
        ticks = [t for t in fns["on-import"].history if done_at < t.handed_at < created.began]
        tasks = self.control.tasks()[tasks_before:]
        self.results["e2e"] = {
            "tasks": len(tasks),
            "ticks_between": len(ticks),
            "ticks_total": len(fns["on-import"].history),
            "import_end_to_job_s": created.began - done_at,
            "upload_to_job_s": created.began - uploaded,
        }
        self.note(
            f"import → training: {len(ticks)} on-import tick(s) between the task's end and the first CreateTrainingJob, "
            f"{created.began - done_at:.1f} s"
        )

    # 9. calls per on-training event, by sweep size ------------------------------------

    def sweep_scale(self) -> None:
        self.results["scale"] = SweepScale(self, self.note).run()

    # 4. sizes --------------------------------------------------------------------------

    def sizes(self) -> None:
        installed = run_text(["rustup", "target", "list", "--installed"]).split()
        arm_dir = self.bin_dir.parent / ARM_TARGET / "release"
        self.results["sizes"] = {
            "host": platform.machine(),
            "arm_installed": ARM_TARGET in installed,
            "binaries": {
                n: {"bytes": (self.bin_dir / n).stat().st_size, "stripped": elf_stripped(self.bin_dir / n)} for n in ALL_FUNCTIONS
            },
            "arm": {n: (arm_dir / n).stat().st_size for n in ALL_FUNCTIONS if (arm_dir / n).is_file()},
        }

    # 3. criterion ------------------------------------------------------------------------

    def criterion(self, target_dir: Path) -> None:
        log = self.log_dir / "criterion.log"
        cmd = ["cargo", "bench", "-p", "retrain-core", "--bench", "plan", "--", *CRITERION_ARGS]
        self.note(f"{' '.join(cmd)} (output in {log.name})")
        with open(log, "wb") as out:
            code = subprocess.run(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT).returncode
        if code != 0:
            raise BenchFailed(f"cargo bench failed with code {code}; see {log}")
        found = {}
        for group, function, label in CRITERION_BENCHES:
            path = target_dir / "criterion" / group / function / "new" / "estimates.json"
            try:
                est = json.loads(path.read_text())
            except (OSError, ValueError) as e:
                raise BenchFailed(f"no criterion estimate at {path}: {e}") from e
            found[f"{group}/{function}"] = {
                "label": label,
                "mean_ns": est["mean"]["point_estimate"],
                "median_ns": est["median"]["point_estimate"],
                "low_ns": est["mean"]["confidence_interval"]["lower_bound"],
                "high_ns": est["mean"]["confidence_interval"]["upper_bound"],
            }
        self.results["criterion"] = found

    # the table --------------------------------------------------------------------------------

    def rows(self) -> list[list[str]]:
        rows: list[list[str]] = []
        r = self.results

        def row(item: str, measure: str, value: str, detail: str = "", target: str = "", ok: bool | None = None) -> None:
            rows.append([item, measure, value, detail, target, "" if ok is None else verdict(ok)])

        cold = r.get("cold")
        if cold:
            for name in [*ALL_FUNCTIONS, "python-on-upload"]:
                samples = cold[name]
                rust = name != "python-on-upload"
                med, lo, hi = spread([s["cold_ms"] for s in samples])
                net, nlo, nhi = spread([s["net_ms"] for s in samples])
                ready, elo, ehi = spread([s["ready_ms"] for s in samples])
                rss, rlo, rhi = spread([s["rss_mb"] for s in samples])
                calls = statistics.median([s["calls"] for s in samples])
                cold_target = f"≤ {COLD_START_TARGET_MS:.0f} ms" if rust else ""
                row("1", f"{name}: spawn → 1st response ({calls:.0f} AWS calls)", fmt(med, "ms"), f"{lo:.1f}–{hi:.1f}")
                row("1", "  same, less the emulator's time", fmt(net, "ms"), f"{nlo:.1f}–{nhi:.1f}",
                    cold_target, net <= COLD_START_TARGET_MS if rust else None)  # fmt: skip
                row("1", "  init: spawn → polling /next (config read)", fmt(ready, "ms"), f"{elo:.1f}–{ehi:.1f}")
                row("1", f"{name}: peak RSS (VmHWM)", fmt(rss, "MiB"), f"{rlo:.1f}–{rhi:.1f}",
                    f"≤ {RSS_TARGET_MB:.0f} MiB" if rust else "", rss <= RSS_TARGET_MB if rust else None)  # fmt: skip
            py = statistics.median([s["cold_ms"] for s in cold["python-on-upload"]])
            rs = statistics.median([s["cold_ms"] for s in cold["on-upload"]])
            py_net = statistics.median([s["net_ms"] for s in cold["python-on-upload"]])
            rs_net = statistics.median([s["net_ms"] for s in cold["on-upload"]])
            same = all(p["operations"] == q["operations"] for p, q in zip(cold["python-on-upload"], cold["on-upload"]))
            row("1", "Python baseline makes the Rust on-upload's AWS calls, in order", "yes" if same else "no", "", "same", same)
            row("1", "on-upload cold start, Python ÷ Rust (medians)", f"{py / rs:.1f}×")
            row("1", "  same, less the emulator's time", f"{py_net / rs_net:.1f}×", "", f"≥ {SPEEDUP_TARGET:.0f}×", py_net / rs_net >= SPEEDUP_TARGET)
            rows.extend(tls_roots.rows(r))
        large = r.get("large")
        if large:
            small_calls = {s["calls"] for s in large["small"]}
            large_calls = {s["calls"] for s in large["large"]}
            tasks = {s["tasks"] for s in large["large"]}
            paths = {s["paths"] for s in large["large"]}
            wall, wlo, whi = spread([s["wall_ms"] for s in large["large"]])
            emu = statistics.median([s["emulator_ms"] for s in large["large"]])
            net, nlo, nhi = spread([s["net_ms"] for s in large["large"]])
            small_net, slo, shi = spread([s["net_ms"] for s in large["small"]])
            n = f"{large['records']:,}"
            row("2", f"largest SQS batch ({n} records, {large['bytes'] / MB:.2f} MiB): import tasks", "/".join(map(str, sorted(tasks))),
                f"{'/'.join(map(str, sorted(paths)))} path(s)", "= 1", tasks == {1})  # fmt: skip
            row("2", f"AWS calls: {n}-record batch vs 10-record batch", f"{'/'.join(map(str, sorted(large_calls)))} vs {'/'.join(map(str, sorted(small_calls)))}",
                "", "equal", large_calls == small_calls)  # fmt: skip
            row("2", f"on-upload wall time, {n} records (warm)", fmt(wall, "ms"), f"{wlo:.1f}–{whi:.1f}")
            row("2", "  of which in AWS calls (emulator)", fmt(emu, "ms"))
            row("2", f"  handler time, less the emulator's ({n} records)", fmt(net, "ms"), f"{nlo:.1f}–{nhi:.1f}",
                f"≤ {HANDLER_TARGET_MS:.0f} ms", net <= HANDLER_TARGET_MS)  # fmt: skip
            row("2", "  same for a 10-record batch", fmt(small_net, "ms"), f"{slo:.1f}–{shi:.1f}")
            row("2", "on-upload peak RSS after the largest batches", fmt(large["rss_mb"], "MiB"), "MemorySize 256 MB")
        crit = r.get("criterion")
        if crit:
            for c in crit.values():
                rate = 1000 / (c["mean_ns"] / 1e9)  # every bench handles 1,000 records or variants
                shown = f"{rate / 1e6:.2f} M/s" if rate >= 1e6 else f"{rate / 1e3:,.0f} k/s"
                row("3", c["label"], fmt(c["mean_ns"] / 1e6, "ms", 3), f"{c['low_ns'] / 1e6:.3f}–{c['high_ns'] / 1e6:.3f}, {shown}")
        sizes = r.get("sizes")
        if sizes:
            for name, b in sizes["binaries"].items():
                stripped = {True: "stripped", False: "NOT stripped", None: "?"}[b["stripped"]]
                row("4", f"{name} release binary, {sizes['host']} ({stripped})", fmt(b["bytes"] / MB, "MiB", 2),
                    f"{b['bytes']:,} bytes", f"≤ {SIZE_TARGET_MB:.0f} MiB", b["bytes"] / MB <= SIZE_TARGET_MB)  # fmt: skip
            for name, size in sizes["arm"].items():
                row("4", f"{name} release binary, aarch64", fmt(size / MB, "MiB", 2), f"{size:,} bytes",
                    f"≤ {SIZE_TARGET_MB:.0f} MiB", size / MB <= SIZE_TARGET_MB)  # fmt: skip
            if not sizes["arm"]:
                why = "target not installed here" if not sizes["arm_installed"] else "not built"
                rows.append(["4", f"aarch64 binaries (what AWS runs): {why}", "-", "", f"≤ {SIZE_TARGET_MB:.0f} MiB", "not measured"])
        e2e = r.get("e2e")
        if e2e:
            row("5", "on-import ticks between import end and 1st CreateTrainingJob", str(e2e["ticks_between"]), "", "≤ 1", e2e["ticks_between"] <= 1)
            row("5", "  import end → 1st CreateTrainingJob (poll interval 1 s)", fmt(e2e["import_end_to_job_s"], "s", 2),
                f"upload → job {e2e['upload_to_job_s']:.1f} s")  # fmt: skip
        rows.extend(bursts.rows(r.get("bursts")))
        if r.get("scale"):
            sweep_rows(r["scale"], row)
        lag.rows(r, row)
        return rows

    def print_table(self) -> None:
        print()
        for line in table(["#", "measure", "value", "min–max / detail", "target", "result"], self.rows()):
            print(line)
        print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin-dir", type=Path, required=True, help="where cargo put the release binaries")
    parser.add_argument("--reps", type=int, default=5, help="cold starts per function (default 5)")
    parser.add_argument("--log-dir", type=Path, help="logs and results.json (default $CARGO_TARGET_DIR/bench-logs)")
    parser.add_argument("--no-criterion", action="store_true", help="skip cargo bench (item 3)")
    parser.add_argument("--only", choices=["bursts", "scale", "lag", "search"], help="run only this section (and no criterion)")
    parser.add_argument("--suggest-bin", type=Path, help="the core's `suggest` example (the search item)")
    args = parser.parse_args(argv)
    if args.only == "search":
        return run_search(args)
    bin_dir = args.bin_dir.resolve()
    target_dir = Path(os.environ.get("CARGO_TARGET_DIR") or bin_dir.parent).resolve()
    log_dir = (args.log_dir or target_dir / "bench-logs").resolve()
    bench = Bench(bin_dir, log_dir, max(1, args.reps))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    bench.results["machine"] = machine()
    for k, v in bench.results["machine"].items():
        print(f"{k:>8}: {v}")
    code = 0
    try:
        bench.setup()
        if args.only is None:
            bench.sizes()
            bench.cold_starts()
            tls_roots.measure(bench)
            bench.large_batch()
            bench.import_to_training()
        if args.only in (None, "lag"):
            lag.measure(bench)
        if args.only in (None, "bursts"):
            bursts.run_bursts(bench)
        if args.only in (None, "scale"):
            bench.sweep_scale()
    except (BenchFailed, FunctionError, RuntimeError, lag.LagFailed) as e:
        print(f"bench failed: {e} (logs in {log_dir})", file=sys.stderr)
        code = 1
    finally:
        for step in reversed(bench.cleanup):
            try:
                step()
            except Exception as e:  # noqa: BLE001 - keep stopping the rest
                print(f"cleanup: {e}", file=sys.stderr)
    if code == 0 and not args.no_criterion and args.only is None:
        try:
            bench.criterion(target_dir)
        except BenchFailed as e:
            print(f"bench failed: {e}", file=sys.stderr)
            code = 1
    (log_dir / "results.json").write_text(json.dumps(bench.results, indent=2))
    bench.print_table()
    print(f"logs and results.json in {log_dir}")
    return code


def run_search(args: argparse.Namespace) -> int:
    """The adaptive-search item: no emulator, only the samplers and the objectives."""
    import search

    binary = (args.suggest_bin or args.bin_dir / "examples" / "suggest").resolve()
    if not binary.exists():
        print(f"bench failed: {binary} is missing: cargo build --release -p retrain-core --example suggest", file=sys.stderr)
        return 1
    result = search.measure(binary)
    print()
    print(f"simple regret, median (IQR) over {result['seeds']} seeds; Optuna {result['optuna']}")
    for line in search.table_lines(result):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
