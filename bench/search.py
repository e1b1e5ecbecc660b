"""Adaptive search against the anchor: `random`, `tpe` (the Rust core, through
its `suggest` example) and Optuna's TPESampler on the same objectives, seeds,
budgets and batches of `max_parallel` lanes. Reports the median and IQR of the
simple regret (best value found minus the known optimum).

Lanes: with k lanes, k points are asked before any of them is told, each
later one seeing the earlier ones as running (retrain's constant liar;
Optuna's `constant_liar=True`). A budget of 30 is read from the first 30
evaluations of the 60-evaluation run: neither sampler looks at the budget.
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
from pathlib import Path
from typing import Any, Callable

SEEDS = 20
BUDGETS = (30, 60)
LANES = (1, 4)

Point = dict[str, Any]


def branin(p: Point) -> float:
    x1, x2 = p["x1"], p["x2"]
    b, c, r, s, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 6.0, 10.0, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - r) ** 2 + s * (1 - t) * math.cos(x1) + s


HARTMANN_A = [
    [10, 3, 17, 3.5, 1.7, 8],
    [0.05, 10, 17, 0.1, 8, 14],
    [3, 3.5, 1.7, 10, 17, 8],
    [17, 8, 0.05, 10, 0.1, 14],
]
HARTMANN_P = [
    [0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886],
    [0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991],
    [0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650],
    [0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381],
]
HARTMANN_ALPHA = [1.0, 1.2, 3.0, 3.2]


def hartmann6(p: Point) -> float:
    x = [p[f"x{i}"] for i in range(1, 7)]
    return -sum(
        a * math.exp(-sum(HARTMANN_A[i][j] * (x[j] - HARTMANN_P[i][j]) ** 2 for j in range(6)))
        for i, a in enumerate(HARTMANN_ALPHA)
    )


# Each optimiser has its own best learning rate and a floor of its own.
OPTIMISERS = {"sgd": (-1.0, 0.5), "adam": (-3.0, 0.0), "rmsprop": (-2.5, 0.2), "adagrad": (-1.5, 0.8)}


def mixed(p: Point) -> float:
    target, floor = OPTIMISERS[p["optimizer"]]
    return (math.log10(p["lr"]) - target) ** 2 + 0.1 * (p["layers"] - 5) ** 2 + floor


FUNCTIONS: dict[str, tuple[Callable[[Point], float], dict[str, Any], float]] = {
    "branin": (
        branin,
        {"x1": {"type": "float", "low": -5.0, "high": 10.0}, "x2": {"type": "float", "low": 0.0, "high": 15.0}},
        0.397887,
    ),
    "hartmann6": (
        hartmann6,
        {f"x{i}": {"type": "float", "low": 0.0, "high": 1.0} for i in range(1, 7)},
        -3.32237,
    ),
    "categorical+log": (
        mixed,
        {
            "lr": {"type": "float", "low": 1e-5, "high": 1.0, "log": True},
            "layers": {"type": "int", "low": 1, "high": 8},
            "optimizer": {"type": "categorical", "choices": list(OPTIMISERS)},
        },
        0.0,
    ),
}


class Core:
    """The Rust sampler behind its line protocol."""

    def __init__(self, binary: Path) -> None:
        self.proc = subprocess.Popen([str(binary)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def ask(self, search: dict[str, Any], position: int, history: list[dict[str, Any]]) -> Point:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps({"search": search, "position": position, "history": history}) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=10)


def run_core(core: Core, strategy: str, fn: str, seed: int, lanes: int, budget: int) -> list[float]:
    f, space, _ = FUNCTIONS[fn]
    search = {"strategy": strategy, "space": space, "budget": budget, "seed": seed}
    history: list[dict[str, Any]] = []
    values: list[float] = []
    while len(values) < budget:
        batch = []
        for _ in range(min(lanes, budget - len(values))):
            point = core.ask(search, len(history), history)
            history.append({"point": point, "loss": None})
            batch.append(len(history) - 1)
        for i in batch:
            v = f(history[i]["point"])
            history[i]["loss"] = v
            values.append(v)
    return values


def run_optuna(fn: str, seed: int, lanes: int, budget: int) -> list[float]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    f, space, _ = FUNCTIONS[fn]
    dists: dict[str, Any] = {}
    for name, s in space.items():
        if s["type"] == "float":
            dists[name] = optuna.distributions.FloatDistribution(s["low"], s["high"], log=s.get("log", False))
        elif s["type"] == "int":
            dists[name] = optuna.distributions.IntDistribution(s["low"], s["high"], log=s.get("log", False))
        else:
            dists[name] = optuna.distributions.CategoricalDistribution(s["choices"])
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed, constant_liar=True))
    values: list[float] = []
    while len(values) < budget:
        trials = [study.ask(dists) for _ in range(min(lanes, budget - len(values)))]
        for t in trials:
            v = f(t.params)
            study.tell(t, v)
            values.append(v)
    return values


def summary(regrets: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(regrets, n=4, method="inclusive")
    return statistics.median(regrets), q[0], q[2]


def measure(binary: Path) -> dict[str, Any]:
    """Every (function, lanes, sampler): the regret at each budget over the seeds."""
    import optuna

    out: dict[str, Any] = {"optuna": optuna.__version__, "seeds": SEEDS, "rows": []}
    core = Core(binary)
    try:
        for fn, (_, _, optimum) in FUNCTIONS.items():
            for lanes in LANES:
                runs: dict[str, list[list[float]]] = {"random": [], "tpe": [], "optuna-tpe": []}
                for seed in range(SEEDS):
                    runs["random"].append(run_core(core, "random", fn, seed, lanes, max(BUDGETS)))
                    runs["tpe"].append(run_core(core, "tpe", fn, seed, lanes, max(BUDGETS)))
                    runs["optuna-tpe"].append(run_optuna(fn, seed, lanes, max(BUDGETS)))
                for sampler, values in runs.items():
                    for budget in BUDGETS:
                        regrets = [min(v[:budget]) - optimum for v in values]
                        med, q1, q3 = summary(regrets)
                        out["rows"].append(
                            {"function": fn, "lanes": lanes, "sampler": sampler, "budget": budget,
                             "median": med, "q1": q1, "q3": q3}
                        )
                print(f"  search: {fn}, {lanes} lane(s) done", flush=True)
    finally:
        core.close()
    return out


def table_lines(result: dict[str, Any]) -> list[str]:
    """A markdown table: one row per function, lanes and budget; a column per sampler."""
    rows = result["rows"]
    key = lambda r: (r["function"], r["lanes"], r["budget"])  # noqa: E731
    cells: dict[tuple, dict[str, dict[str, float]]] = {}
    for r in rows:
        cells.setdefault(key(r), {})[r["sampler"]] = r
    lines = [
        "| function | lanes | budget | random | tpe | Optuna TPESampler | tpe ≤ Optuna? |",
        "|---|---|---|---|---|---|---|",
    ]
    fmt = lambda c: f"{c['median']:.4g} ({c['q1']:.3g}–{c['q3']:.3g})"  # noqa: E731
    for k, by in cells.items():
        verdict = "yes" if by["tpe"]["median"] <= by["optuna-tpe"]["median"] else "no"
        lines.append(f"| {k[0]} | {k[1]} | {k[2]} | {fmt(by['random'])} | {fmt(by['tpe'])} | {fmt(by['optuna-tpe'])} | {verdict} |")
    return lines
