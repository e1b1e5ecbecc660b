"""Item 9 of `make bench`: AWS calls per on-training event, flat in sweep size.

For sweeps of 10, 100 and 1,000 variants, with max_parallel 5 and 50, the
release start-sweep and on-training binaries run a whole sweep against the
emulator: start-sweep launches the first lane jobs; then, round by round,
the emulator completes every running job and on-training gets each job's
"SageMaker Training Job State Change" event (the emulator's own, shaped as
DescribeTrainingJob, as SageMaker's are) and every message the tick queue
holds (the pages of the sweep's end). bench/proxy.py counts the AWS calls
of each invocation; handler time is its wall time less the emulator's.
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Any, Callable

from demo import ARTIFACTS_BUCKET, BUS, CONFIG_KEY, config_yaml
from events import sqs_record, start_sweep_request
from functions import TimedFunction, function_env
from proxy import busy_time

SIZES = [(10, 5), (100, 5), (1000, 5), (10, 50), (100, 50), (1000, 50)]
CALLS_PER_EVENT_TARGET = 8
FLATNESS_TARGET = 1.5
TOTAL_PER_VARIANT_TARGET = 10
HANDLER_TARGET_MS = 20.0
OBJECTIVE = "validation:auc"


def sweep_config(ids: dict[str, str], variants: int, max_parallel: int) -> str:
    """The demo's config, with churn's grid replaced by `variants` variants in `max_parallel` lanes."""
    text = config_yaml(ids)
    old = "      grid: { eta: [0.1, 0.3, 0.5], max_depth: [4, 6] }\n      max_parallel: 2\n"
    if old not in text:
        raise RuntimeError("the demo config's churn sweep changed: update bench/sweeps.py")
    listed = ", ".join(f"{{ seed: {i} }}" for i in range(variants))
    return text.replace(old, f"      variants: [{listed}]\n      max_parallel: {max_parallel}\n")


class SweepScale:
    """Runs one sweep per size and keeps every invocation's calls and time."""

    def __init__(self, bench: Any, note: Callable[[str], None]):
        self.bench = bench
        self.note = note

    def run(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for variants, max_parallel in SIZES:
            out[f"{variants}x{max_parallel}"] = self.sweep(variants, max_parallel)
        return out

    def function(self, name: str, config_key: str) -> TimedFunction:
        b = self.bench
        proxy = b.proxy(f"{name}-scale")
        env = function_env(proxy.url, b.world)
        env["RETRAIN_CONFIG"] = f"s3://{ARTIFACTS_BUCKET}/{config_key}"
        fn = TimedFunction(f"retrain-{name}", b.bin_dir / name, env, b.log_dir / f"{name}-scale.log")
        b.cleanup.append(fn.stop)
        fn.start()
        fn.wait_ready(30)
        return fn

    def invoke(self, fn: TimedFunction, proxy_name: str, payload: Any, kind: str, log: list[dict[str, Any]]) -> Any:
        proxy = self.bench.proxy(proxy_name)
        mark = proxy.mark()
        response = fn.invoke(payload)
        timing = fn.history[-1]
        calls = proxy.calls_after(mark)
        emulator = busy_time(calls, timing.handed_at, timing.answered_at)
        log.append(
            {
                "kind": kind,
                "calls": len(calls),
                "operations": [c.name for c in calls],
                "net_ms": (timing.wall - emulator) * 1000,
            }
        )
        if isinstance(response, dict) and response.get("batchItemFailures"):
            raise RuntimeError(f"{fn.name}: failed items {response['batchItemFailures'][:3]}")
        return response

    def sweep(self, variants: int, max_parallel: int) -> dict[str, Any]:
        b = self.bench
        b.settle()
        key = CONFIG_KEY.replace(".yaml", f"-scale-{variants}x{max_parallel}.yaml")
        b.s3.put_object(Bucket=ARTIFACTS_BUCKET, Key=key, Body=sweep_config(b.world, variants, max_parallel).encode())
        start = self.function("start-sweep", key)
        training = self.function("on-training", key)
        log: list[dict[str, Any]] = []
        began = time.monotonic()
        request_id = f"bench-{b.nonce}-{variants}x{max_parallel}"
        self.invoke(start, "start-sweep-scale", start_sweep_request("churn", request_id), "start", log)
        read = 0

        def published(detail_type: str) -> list[dict[str, Any]]:
            nonlocal read
            entries = b.control.events(BUS)
            fresh, read = entries[read:], len(entries)
            return [json.loads(e.get("Detail") or "{}") for e in fresh if e["DetailType"] == detail_type]

        sweep_id = next(d["sweep_id"] for d in reversed(published("SweepStarted")) if d["pipeline"] == "churn")
        prefix = f"churn-{sweep_id}-"
        done: set[str] = set()
        completed = False
        while not completed:
            running = [
                j["name"] for j in b.control.jobs()["jobs"] if j["name"].startswith(prefix) and j["status"] == "InProgress" and j["name"] not in done
            ]
            messages = b.sqs.receive_message(QueueUrl=b.world["ticks_url"], MaxNumberOfMessages=10).get("Messages", [])
            if not running and not messages:
                raise RuntimeError(f"sweep {sweep_id} ({variants} variants) stalled: no running job, no tick")
            for name in running:
                seed = int(name[len(prefix) :].split("-")[0].lstrip("v") or 0)
                event = b.control.post(f"sagemaker/jobs/{name}/complete", {"metrics": {OBJECTIVE: 0.5 + (seed % 97) / 200}, "warm_pool_reused": True})
                done.add(name)
                self.invoke(training, "on-training-scale", event, "event", log)
            for m in messages:
                record = sqs_record(m["Body"], "retrain-ticks")
                self.invoke(training, "on-training-scale", {"Records": [record]}, "page", log)
                b.sqs.delete_message(QueueUrl=b.world["ticks_url"], ReceiptHandle=m["ReceiptHandle"])
            completed = completed or any(d.get("sweep_id") == sweep_id for d in published("SweepCompleted"))
        for fn in (start, training):
            fn.stop()
        events = [x for x in log if x["kind"] == "event"]
        pages = [x for x in log if x["kind"] == "page"]
        calls = [x["calls"] for x in events]
        net = [x["net_ms"] for x in events]
        result = {
            "variants": variants,
            "max_parallel": max_parallel,
            "sweep_id": sweep_id,
            "events": len(events),
            "pages": len(pages) + 1,  # the first page runs in the event that completes the last lane
            "median_calls": statistics.median(calls),
            "max_calls": max(calls),
            "max_calls_last_event": events[-1]["calls"],
            "max_page_calls": max([x["calls"] for x in pages], default=0),
            "total_calls": sum(x["calls"] for x in log),
            "median_net_ms": statistics.median(net),
            "max_net_ms": max(net),
            "seconds": time.monotonic() - began,
            "typical_operations": events[len(events) // 2]["operations"],
            "by_step": by_step(events),
        }
        self.note(
            f"sweep of {variants} variants, max_parallel {max_parallel}: {len(events)} events, calls/event median "
            f"{result['median_calls']:.0f} max {result['max_calls']}, total {result['total_calls']}, handler median "
            f"{result['median_net_ms']:.1f} ms, {result['seconds']:.0f} s"
        )
        return result


def by_step(events: list[dict[str, Any]]) -> dict[str, float]:
    """Median calls of the events that launched the lane's next job, and of those that ended a lane."""
    kinds: dict[str, list[int]] = {}
    for e in events:
        ops = e["operations"]
        kind = "launch" if "sagemaker:CreateTrainingJob" in ops else "lane done" if "s3:ListObjectsV2" in ops else "other"
        kinds.setdefault(kind, []).append(e["calls"])
    return {k: statistics.median(v) for k, v in sorted(kinds.items())}


def rows(results: dict[str, Any], row: Callable[..., None]) -> None:
    """Item 9 of the table."""
    for max_parallel in sorted({r["max_parallel"] for r in results.values()}):
        runs = sorted((r for r in results.values() if r["max_parallel"] == max_parallel), key=lambda r: r["variants"])
        small, big = runs[0], runs[-1]
        for r in runs:
            n = f"{r['variants']:,}"
            row("9", f"sweep of {n} (max_parallel {max_parallel}): AWS calls per on-training event, median",
                f"{r['median_calls']:.0f}", f"max {r['max_calls']}, {r['events']:,} events", f"≤ {CALLS_PER_EVENT_TARGET}",
                r["median_calls"] <= CALLS_PER_EVENT_TARGET)  # fmt: skip
            steps = ", ".join(f"{k} {v:.0f}" for k, v in r["by_step"].items())
            row("9", "  median calls by step", steps, "")
            row("9", "  total AWS calls of the sweep (start-sweep + on-training)", f"{r['total_calls']:,}",
                f"{r['total_calls'] / r['variants']:.1f} per variant", f"≤ {TOTAL_PER_VARIANT_TARGET * r['variants']:,}",
                r["total_calls"] <= TOTAL_PER_VARIANT_TARGET * r["variants"])  # fmt: skip
            row("9", "  the end: pages of job records, most calls in one invocation", f"{r['pages']}",
                f"max {max(r['max_page_calls'], r['max_calls_last_event'])} calls")  # fmt: skip
            row("9", "  handler time less the emulator's, median per event", f"{r['median_net_ms']:.1f} ms", f"max {r['max_net_ms']:.1f}",
                f"≤ {HANDLER_TARGET_MS:.0f} ms" if r is big else "", r["median_net_ms"] <= HANDLER_TARGET_MS if r is big else None)  # fmt: skip
        ratio = big["median_calls"] / small["median_calls"]
        row("9", f"  median calls per event, {big['variants']:,} ÷ {small['variants']:,} variants (max_parallel {max_parallel})",
            f"{ratio:.2f}×", "", f"≤ {FLATNESS_TARGET}×", ratio <= FLATNESS_TARGET)  # fmt: skip
