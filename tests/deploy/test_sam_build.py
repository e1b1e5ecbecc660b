"""What `sam build` made (`make sam-check` runs it first): one `bootstrap`
per function of template.yaml, an x86-64 Linux executable (the check builds
with `Architecture=x86_64`), that starts under the Lambda Runtime API and
answers an invocation with a sample event, against the emulator."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode

from samples import INVOCATIONS, ROOT, sample

sys.path.insert(0, str(ROOT / "tests/demo"))
from runtime_api import LambdaFunction  # noqa: E402

BUILD_DIR = Path(os.environ.get("RETRAIN_SAM_BUILD_DIR", ROOT / ".aws-sam/build"))
ELF_MACHINE_X86_64 = 0x3E


def rust_functions() -> dict[str, str]:
    """Binary name → logical id, for every function built with cargo-lambda."""
    template, errors = decode(str(ROOT / "template.yaml"))
    assert not errors, errors
    found = {}
    for logical_id, resource in template["Resources"].items():
        metadata = resource.get("Metadata", {})
        if resource["Type"] == "AWS::Serverless::Function" and metadata.get("BuildMethod") == "rust-cargolambda":
            found[metadata["BuildProperties"]["Binary"]] = logical_id
    return found


FUNCTIONS = rust_functions()


def test_every_function_of_the_template_has_a_sample_invocation():
    assert sorted(FUNCTIONS) == sorted(INVOCATIONS)


@pytest.mark.parametrize("binary", sorted(FUNCTIONS))
def test_the_artifact_is_an_x86_64_linux_executable(binary: str):
    bootstrap = BUILD_DIR / FUNCTIONS[binary] / "bootstrap"
    assert bootstrap.is_file(), f"{bootstrap} missing: run `make sam-check`"
    assert os.access(bootstrap, os.X_OK)
    header = bootstrap.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", "not an ELF file"
    assert header[4] == 2, "not 64-bit"
    assert int.from_bytes(header[18:20], "little") == ELF_MACHINE_X86_64


@pytest.mark.parametrize("binary", sorted(FUNCTIONS))
def test_the_artifact_answers_an_invocation(binary: str, world: dict[str, Any], tmp_path: Path):
    event, expected_key = INVOCATIONS[binary]
    fn = LambdaFunction(binary, BUILD_DIR / FUNCTIONS[binary] / "bootstrap", world["env"], tmp_path / f"{binary}.log", timeout=60)
    fn.start()
    try:
        fn.wait_ready(timeout=30)
        answer = fn.invoke(sample(event))
    finally:
        fn.stop()
    assert isinstance(answer, dict) and expected_key in answer, answer
