"""The emulator and the demo's world, shared by the deployment checks."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests/demo"))

from demo import build_world, function_environment, start_emulator  # noqa: E402


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The emulator's endpoint, the world's ids and the functions' environment."""
    logs = tmp_path_factory.mktemp("emulator")
    cleanup: list[Callable[[], None]] = []
    try:
        endpoint = start_emulator(logs / "emulator.log", cleanup)
        ids = build_world(endpoint, lambda *_: None)
        yield {"endpoint": endpoint, "ids": ids, "env": function_environment(endpoint, ids)}
    finally:
        for step in reversed(cleanup):
            step()
