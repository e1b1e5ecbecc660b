"""Items 7 and 8 of `make bench`: how late a sweep starts after its import ends,
and upload → training end to end.

The real on-upload, on-import and start-sweep binaries run against the
emulator; what AWS would do around them is played here, one step at a time:

- the upload queue's event source waits its batching window, then hands the
  burst to on-upload as one batch;
- the watch queue hands each timer to on-import when its `DelaySeconds` have
  passed. Nothing sleeps: when no timer is due, the emulator's clock
  (`/_retrain/clock/advance`) jumps to the next one, so the timers keep their
  order and spacing;
- FSx ends the import task `duration` seconds after its creation on that same
  clock (`/_retrain/fsx/task-duration`), so a 6-hour import takes seconds;
- `DataImportCompleted` on the bus goes to start-sweep, as the template's rule
  routes it.

Times in the emulator's clock are "virtual": the waits are jumped over, the
functions' own work is real time. A poll is one on-import invocation with its
`DescribeDataRepositoryTasks` (counted by bench/proxy.py).

    .venv/bin/python bench/lag.py --bin-dir $CARGO_TARGET_DIR/release   # items 7 and 8 alone
"""

from __future__ import annotations

import json
import re
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for path in (ROOT / "tests" / "demo", HERE):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from demo import ARTIFACTS_BUCKET, BUS, CONFIG_KEY, DATA_BUCKET, session  # noqa: E402
from router import ACCOUNT, REGION, SqsSource, Trouble, utc_now  # noqa: E402
from story import Narrator  # noqa: E402

HOUR = 3600
# Item 7: the task durations the issue asks for (1 minute, 1 hour, 6 hours).
DURATIONS = [60, HOUR, 6 * HOUR]
UPLOADS = 20  # objects per burst
# One tick: the work of the one poll that sees the end (on-import, then start-sweep's launch), at most this long.
TICK_S = 1.0


@dataclass(frozen=True)
class Profile:
    """The settings that set the latency from upload to training."""

    name: str
    batching_window: int  # template parameter UploadBatchingWindowSeconds
    poll_interval: int  # import.poll_interval_seconds
    max_poll_lag: int  # import.max_poll_lag_seconds

    @property
    def polls_per_hour(self) -> float:
        """Polls an hour of a running import, once the backoff has reached its cap."""
        return HOUR / self.max_poll_lag


# The template's and the config's defaults, and the "fast" profile of the README.
DEFAULT = Profile("default", batching_window=30, poll_interval=30, max_poll_lag=60)
FAST = Profile("fast", batching_window=5, poll_interval=5, max_poll_lag=10)
# Item 8: one emulated import of this length for both profiles.
E2E_IMPORT_SECONDS = 60


def import_settings(profile: Profile) -> str:
    # Waits are virtual but the functions' clock is real: no ImportStalled is due.
    return (
        f"import: {{ poll_interval_seconds: {profile.poll_interval}, max_poll_lag_seconds: {profile.max_poll_lag}, "
        f"max_wait_seconds: 86400, max_attempts: 2 }}"
    )


def with_profile(config: str, profile: Profile) -> str:
    """The bench world's configuration with the churn pipeline's import settings of `profile`."""
    changed, n = re.subn(r"import: \{[^}]*\}", import_settings(profile), config, count=1)
    if n != 1:
        raise LagFailed("the bench configuration has no import settings to change")
    return changed


class LagFailed(Exception):
    """The run could not measure (not a missed target)."""


class LagRun:
    """One burst of uploads, driven until its first CreateTrainingJob."""

    def __init__(self, bench: Any, profile: Profile, duration: float, fns: dict[str, Any], narrator: Narrator):
        self.bench = bench
        self.profile = profile
        self.duration = duration
        self.fns = fns
        self.narrator = narrator
        self.control = bench.control
        s = session()
        self.s3 = s.client("s3", endpoint_url=bench.endpoint)
        sqs = s.client("sqs", endpoint_url=bench.endpoint)
        self.trouble = Trouble()
        never = _Never()
        world = bench.world
        self.uploads = SqsSource(sqs, "retrain-uploads", world["uploads_url"], fns["on-upload"], narrator, self.trouble, never,
                                 batch_size=1000)  # fmt: skip
        self.watch = SqsSource(sqs, "retrain-watch", world["watch_url"], fns["on-import"], narrator, self.trouble, never)
        self.bus_read = len(self.control.events(BUS))

    def clock(self) -> float:
        return float(self.control.get("clock")["now"])

    def advance(self, seconds: float) -> None:
        if seconds > 0:
            self.control.post("clock/advance", {"seconds": seconds})

    def next_timer(self) -> float | None:
        queues = {q["name"]: q for q in self.control.get("sqs/queues")["queues"]}
        return queues["retrain-watch"]["next_delayed_in"]

    def receive_all(self, source: SqsSource) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while more := source._receive(10):
            messages.extend(more)
        return messages

    def launch_sweeps(self, task_id: str) -> None:
        """The rule on `DataImportCompleted` → start-sweep, for this run's task."""
        entries = self.control.events(BUS)
        fresh, self.bus_read = entries[self.bus_read :], len(entries)
        for entry in fresh:
            detail = json.loads(entry.get("Detail") or "{}")
            if entry["DetailType"] in ("ImportStalled", "SweepBlocked", "DataImportFailed"):
                raise LagFailed(f"{entry['DetailType']}: {detail}")
            if entry["DetailType"] != "DataImportCompleted" or detail.get("task_id") != task_id:
                continue
            envelope = {
                "version": "0", "id": str(uuid.uuid4()), "detail-type": entry["DetailType"], "source": entry["Source"],
                "account": ACCOUNT, "time": utc_now(), "region": REGION, "resources": [], "detail": detail,
            }  # fmt: skip
            self.fns["start-sweep"].invoke(envelope)

    def run(self, timeout: float = 600.0) -> dict[str, Any]:
        bench, fns = self.bench, self.fns
        bench.settle()
        # The bucket's s3:TestEvent, and whatever an earlier item left.
        self.uploads.sqs.purge_queue(QueueUrl=bench.world["uploads_url"])
        self.control.post("fsx/task-duration", {"seconds": self.duration})
        import_proxy, sweep_proxy = bench.proxy("on-import"), bench.proxy("start-sweep")
        import_mark, sweep_mark = import_proxy.mark(), sweep_proxy.mark()
        tasks_before = len(self.control.tasks())
        run = f"lag-{bench.nonce}-{self.profile.name}-{int(self.duration)}-{uuid.uuid4().hex[:4]}"
        for n in range(UPLOADS):
            self.s3.put_object(Bucket=DATA_BUCKET, Key=f"datasets/churn/{run}/part-{n:05d}.csv", Body=b"churned,tenure\n0,12\n")
        uploaded = self.clock()
        # A burst smaller than the batch size waits for the whole window.
        self.advance(self.profile.batching_window)
        batch = self.receive_all(self.uploads)
        if len(batch) != UPLOADS:
            raise LagFailed(f"{len(batch)} of {UPLOADS} upload notifications in the batch")
        self.uploads.deliver(batch)
        tasks = self.control.tasks()[tasks_before:]
        if len(tasks) != 1:
            raise LagFailed(f"the burst started {len(tasks)} import tasks, not one")
        task_id = tasks[0]["TaskId"]
        self.control.post("fsx/task-duration", {"seconds": None})
        polls: list[dict[str, float]] = []  # virtual time, and the invocation's wall time
        created = None
        started = time.monotonic()
        while created is None:
            if time.monotonic() - started > timeout:
                raise LagFailed(f"no CreateTrainingJob within {timeout:.0f} s of wall time ({len(polls)} polls)")
            if problem := self.trouble.first():
                raise LagFailed(problem)
            messages = self.receive_all(self.watch)
            if not messages:
                due = self.next_timer()
                if due is None:
                    raise LagFailed(f"the watch of {task_id} stopped after {len(polls)} polls")
                self.advance(due)
                continue
            at, mono = self.clock(), time.monotonic()
            self.watch.deliver(messages)
            poll = {"virtual": at, "wall": fns["on-import"].history[-1].wall}
            polls.append(poll)
            self.launch_sweeps(task_id)
            created = next(
                (c for c in sweep_proxy.calls_after(sweep_mark) if c.operation == "CreateTrainingJob" and c.status == 200), None
            )
            if created is not None:
                # The start-sweep invocation that made the call; no wait was jumped over since `at`.
                launch = next(t for t in fns["start-sweep"].history if t.handed_at <= created.began <= t.answered_at)
                created_at = at + (created.began - mono)
                handed_at = at + (launch.handed_at - mono)
        task = next(t for t in self.control.tasks() if t["TaskId"] == task_id)
        if task["Lifecycle"] != "SUCCEEDED":
            raise LagFailed(f"a job was launched while the import was {task['Lifecycle']}")
        ended = float(task["EndTime"])
        after_end = [p for p in polls if p["virtual"] >= ended]
        gaps = [b["virtual"] - a["virtual"] for a, b in zip(polls, polls[1:])]
        describes = [c for c in import_proxy.calls_after(import_mark) if c.operation == "DescribeDataRepositoryTasks"]
        calls = len(import_proxy.calls_after(import_mark))
        return {
            "profile": self.profile.name,
            "duration_s": self.duration,
            "polls": len(polls),
            "describes": len(describes),
            "calls_per_poll": calls / len(polls),
            "polls_after_end": len(after_end),
            "longest_gap_s": max(gaps, default=0.0),
            "upload_to_import_s": float(task["CreationTime"]) - uploaded,
            "import_s": ended - float(task["CreationTime"]),
            "poll_lag_s": after_end[0]["virtual"] - ended if after_end else float("nan"),
            "tick_s": after_end[0]["wall"] if after_end else float("nan"),
            "launch_s": created_at - handed_at,
            "end_to_job_s": created_at - ended,
            "upload_to_job_s": created_at - uploaded,
            "poll_wall_ms": statistics.median(p["wall"] for p in polls) * 1000,
        }


class _Never:
    """A stop flag that is never set: the sources here are driven by hand, not as threads."""

    def is_set(self) -> bool:
        return False


def start_functions(bench: Any, profile: Profile) -> dict[str, Any]:
    """Writes the profile's configuration, then cold-starts the functions that read it."""
    bench.s3.put_object(Bucket=ARTIFACTS_BUCKET, Key=CONFIG_KEY, Body=with_profile(bench.world["config"], profile).encode())
    fns = {}
    for name in ("on-upload", "on-import", "start-sweep"):
        fn = bench.function(name)
        fn.log_path = bench.log_dir / f"lag-{profile.name}-{name}.log"
        fn.start()
        fns[name] = fn
    for fn in fns.values():
        fn.wait_ready(30)
    return fns


def measure(bench: Any) -> None:
    """Items 7 and 8: fills bench.results["lag"]."""
    story = open(bench.log_dir / "lag.log", "w")  # noqa: SIM115 - closed below
    narrator = Narrator(out=story)
    results: dict[str, Any] = {
        "profiles": {p.name: {**p.__dict__, "polls_per_hour": p.polls_per_hour} for p in (DEFAULT, FAST)},
        "durations": [],
        "e2e": [],
    }
    try:
        for profile, durations in ((DEFAULT, DURATIONS), (FAST, [E2E_IMPORT_SECONDS])):
            fns = start_functions(bench, profile)
            try:
                for duration in durations:
                    got = LagRun(bench, profile, duration, fns, narrator).run()
                    if profile is DEFAULT:
                        results["durations"].append(got)
                    # The default profile's 1-minute import is also item 8's default row.
                    if duration == E2E_IMPORT_SECONDS:
                        results["e2e"].append(got)
                    bench.note(
                        f"lag, {profile.name} profile, import of {duration / 60:g} min: {got['polls']} polls, import end → "
                        f"1st CreateTrainingJob {got['end_to_job_s']:.1f} s (poll lag {got['poll_lag_s']:.1f} s), "
                        f"upload → job {got['upload_to_job_s']:.1f} s"
                    )
            finally:
                for fn in fns.values():
                    fn.stop()
    finally:
        bench.control.post("fsx/task-duration", {"seconds": None})
        bench.s3.put_object(Bucket=ARTIFACTS_BUCKET, Key=CONFIG_KEY, Body=bench.world["config"].encode())
        story.close()
    bench.results["lag"] = results


def rows(results: dict[str, Any], row: Callable[..., None]) -> None:
    """Items 7 and 8 of the table, through run.py's `row(item, measure, value, detail, target, ok)`."""
    lag = results.get("lag")
    if not lag:
        return
    default = lag["profiles"]["default"]
    cap = default["max_poll_lag"]
    for r in lag["durations"]:
        length = f"{r['duration_s'] / HOUR:g} h" if r["duration_s"] >= HOUR else f"{r['duration_s'] / 60:g} min"
        # The end is seen by the first poll after it, and no later than the cap (plus the poll's own work).
        ok = r["end_to_job_s"] <= cap + TICK_S and r["polls_after_end"] == 1
        row("7", f"import of {length}: import end → 1st CreateTrainingJob", f"{r['end_to_job_s']:,.1f} s",
            f"poll lag {r['poll_lag_s']:.1f} s + 1 tick {r['tick_s'] * 1000:.0f} ms + launch {r['launch_s'] * 1000:.0f} ms",
            f"≤ {cap} s + 1 tick", ok)  # fmt: skip
        row("7", f"  polls (on-import DescribeDataRepositoryTasks), {length}", f"{r['describes']:,}",
            f"{r['polls']:,} watch timers, {r['calls_per_poll']:.1f} AWS calls/poll, median {r['poll_wall_ms']:.1f} ms")  # fmt: skip
        row("7", f"  longest gap between two polls, {length}", f"{r['longest_gap_s']:,.1f} s", "timer delay + one poll's work",
            f"≤ {cap} s + 1 tick", r["longest_gap_s"] <= cap + TICK_S)  # fmt: skip
    row("7", f"polls per hour of a running import (3600 / max_poll_lag_seconds {cap})", f"{default['polls_per_hour']:g}",
        f"fast profile ({lag['profiles']['fast']['max_poll_lag']} s): {lag['profiles']['fast']['polls_per_hour']:g}")  # fmt: skip
    for r in lag["e2e"]:
        p = lag["profiles"][r["profile"]]
        budget = p["batching_window"] + E2E_IMPORT_SECONDS + p["max_poll_lag"]
        parts = (
            f"window {p['batching_window']} s → import {r['import_s']:.0f} s → poll lag {r['poll_lag_s']:.1f} s → "
            f"launch {r['launch_s'] * 1000:.0f} ms"
        )
        row("8", f"{r['profile']} profile: upload → 1st CreateTrainingJob", f"{r['upload_to_job_s']:,.1f} s", parts,
            f"≤ {budget} s + 1 tick", r["upload_to_job_s"] <= budget + TICK_S and r["polls_after_end"] == 1)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Items 7 and 8 alone, in a world of their own."""
    import argparse
    import signal

    import run

    parser = argparse.ArgumentParser(description="retrain bench items 7 and 8: poll lag, upload → training")
    parser.add_argument("--bin-dir", type=Path, required=True)
    parser.add_argument("--log-dir", type=Path)
    args = parser.parse_args(argv)
    bin_dir = args.bin_dir.resolve()
    log_dir = (args.log_dir or bin_dir.parent / "bench-logs").resolve()
    bench = run.Bench(bin_dir, log_dir, 1)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    code = 0
    try:
        bench.setup()
        measure(bench)
    except (LagFailed, run.BenchFailed, run.FunctionError) as e:
        print(f"bench failed: {e} (logs in {log_dir})", file=sys.stderr)
        code = 1
    finally:
        for step in reversed(bench.cleanup):
            step()
    (log_dir / "lag-results.json").write_text(json.dumps(bench.results, indent=2))
    bench.print_table()
    return code


if __name__ == "__main__":
    sys.exit(main())
