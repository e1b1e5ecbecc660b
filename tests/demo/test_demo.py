"""`make demo` as a test: the real function binaries, the emulator, the whole story."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ("on-upload", "on-import", "start-sweep", "on-training", "reconcile")


def bin_dir() -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR") or Path.home() / ".cache/retrain/target")
    if not target.is_absolute():
        target = ROOT / target
    return target / "debug"


def test_demo_tells_the_whole_story(tmp_path: Path) -> None:
    binaries = bin_dir()
    missing = [name for name in FUNCTIONS if not (binaries / name).is_file()]
    if missing and os.environ.get("CI"):
        pytest.fail(f"function binaries not built in {binaries} ({', '.join(missing)} missing): make test builds them first")
    if missing:
        pytest.skip(
            f"function binaries not built in {binaries} ({', '.join(missing)} missing): "
            "run `cargo build -p on-upload -p on-import -p start-sweep -p on-training -p reconcile` first"
        )
    run = subprocess.run(
        [sys.executable, str(ROOT / "tests/demo/demo.py"), "--bin-dir", str(binaries), "--log-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    tail = "\n".join((run.stdout + run.stderr).splitlines()[-40:])
    assert run.returncode == 0, f"demo exited {run.returncode}:\n{tail}"
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert summary["import_tasks"] == 1, tail
    assert summary["training_jobs"] >= 3, tail
    assert summary["retries"] >= 1, tail
    assert summary["sweeps_completed"] == 3, tail
    best = summary["best"]
    assert best and best["pipeline"] == "churn" and best["metric"] == "validation:auc", tail
    assert best["training_job"].startswith("churn-") and isinstance(best["value"], float), tail
    # The first churn model is the group's first: Approved. The second sweep's is not better: Rejected.
    models = summary["models"]
    assert [m["status"] for m in models] == ["Approved", "Rejected"], tail
    first, second = models
    assert first["sweep_id"] != second["sweep_id"], tail
    assert first["model_package_arn"] != second["model_package_arn"], tail
    assert second["production_value"] == first["value"] and second["value"] <= first["value"], tail
    assert all(m["data_version"] and m["data_version"].startswith("dv-") for m in models), tail
    # The event log holds churn's story once per event: its import, two sweeps, two registrations.
    log = summary["event_log"]
    assert log[0] == "DataImportStarted", tail
    for detail_type, times in [("DataImportCompleted", 1), ("SweepStarted", 2), ("SweepCompleted", 2), ("ModelRegistered", 2)]:
        assert log.count(detail_type) == times, (detail_type, log)
    assert log.count("TrainingJobLaunched") == summary["training_jobs"] - 2, (log, "fraud-efs ran two jobs")
    # The reconciler's pass at the end finds nothing open (its OpenSweeps metric).
    assert summary["open_sweeps"] == 0, tail
    # The functions' logs hold neither the credentials nor the config's secrets.
    sys.path.insert(0, str(ROOT / "tests/demo"))
    from demo import CONFIG_SECRET, SECRET_ACCESS_KEY

    assert CONFIG_SECRET in (tmp_path / "pipelines.yaml").read_text(), "the config the functions read holds the secret"
    logs = [p for p in tmp_path.glob("*.log") if p.stem in FUNCTIONS]
    assert len(logs) == len(FUNCTIONS), [p.name for p in tmp_path.iterdir()]
    for log in logs:
        text = log.read_text(errors="replace")
        assert text.strip(), f"{log.name} is empty: the scan would prove nothing"
        for secret in (SECRET_ACCESS_KEY, CONFIG_SECRET):
            assert secret not in text, f"{secret} found in {log.name}"
