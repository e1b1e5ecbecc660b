"""One sample event per function (from events/, in the AWS documentation's
shapes) and what each must answer, as the deployed function would get it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def sample(name: str) -> Any:
    return json.loads((ROOT / "events" / name).read_text())


# function → (event file, a key its answer must hold)
INVOCATIONS: dict[str, tuple[str, str]] = {
    "on-upload": ("sqs-s3-put.json", "done"),
    "on-import": ("sqs-import-watch.json", "batchItemFailures"),
    "start-sweep": ("start-sweep-request.json", "done"),
    "on-training": ("sagemaker-training-job-state-change-completed.json", "skipped"),
    "reconcile": ("scheduled-event.json", "done"),
}
