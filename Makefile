# retrain — `make test` runs everything; `make demo` plays the pipeline locally.
SHELL := /bin/bash
# A target dir outside the clone keeps the AWS SDK build between clones.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/retrain/target
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python

.PHONY: test fmt-check clippy cfn-lint checkov python-tests rust-tests venv demo bench bench-search local sam-check

## The whole test suite: formatting, lints, template lint, Rust tests, then the
## emulator's, the template's and the demo's tests (the demo runs the function
## binaries that the Rust tests built).
test: fmt-check clippy cfn-lint checkov rust-tests python-tests

venv: $(VENV)/.installed

$(VENV)/.installed: tests/emulator/requirements.txt tests/requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --disable-pip-version-check -r tests/emulator/requirements.txt -r tests/requirements-dev.txt
	touch $@

fmt-check:
	cargo fmt --all -- --check

clippy:
	cargo clippy --workspace --all-targets -- -D warnings

cfn-lint: venv
	$(VENV)/bin/cfn-lint template.yaml

CHECKOV_VENV := .venv-checkov
$(CHECKOV_VENV)/.installed: tests/requirements-security.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/requirements-security.txt
	touch $@

## Security scan of the template; every skipped check is justified in template.yaml.
checkov: $(CHECKOV_VENV)/.installed
	$(CHECKOV_VENV)/bin/checkov -f template.yaml --framework cloudformation --compact --quiet --skip-download

python-tests: venv
	$(VPY) -m pytest -q -p no:cacheprovider tests/emulator tests/template tests/demo tests/docs

## `cargo test` builds no function binary (those crates have no integration
## tests), and the demo test needs them: build every target first. It resolves
## features as `cargo test --workspace` does, so it reuses the same build.
rust-tests: venv
	cargo build --workspace --all-targets
	RETRAIN_EMULATOR_PYTHON=$(abspath $(VPY)) cargo test --workspace

## The deployment path, as `sam build` and `cargo lambda` run it (.ci/run runs
## it after `make test`): the SAM CLI and cargo-lambda in a venv of their own,
## `sam validate --lint`, `sam build` for x86_64 (this host has no aarch64 Rust
## target), then tests/deploy checks every function's `bootstrap` (an x86-64
## ELF that answers a Runtime API invocation against the emulator) and serves
## docs/local.md's loop with `cargo lambda watch` + `cargo lambda invoke`.
## SAM_BUILD_MODE=debug builds the dev profile: the release profile's fat LTO
## would take most of CI's time on a small machine (BENCHMARKS.md).
## The venv lives at one path for every checkout: cargo-lambda's zig linker
## wrapper is named after the zig it runs, and a different linker recompiles
## every crate, so a venv per checkout would rebuild the SDK on each fresh clone.
SAM_VENV ?= $(HOME)/.cache/retrain/venv-sam
$(SAM_VENV)/.installed: tests/requirements-sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/requirements-sam.txt
	touch $@

sam-check: venv $(SAM_VENV)/.installed
	PATH=$(abspath $(SAM_VENV))/bin:$$PATH SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam validate --lint --region us-east-1
	PATH=$(abspath $(SAM_VENV))/bin:$$PATH SAM_CLI_TELEMETRY=0 SAM_BUILD_MODE=debug \
		$(SAM_VENV)/bin/sam build --no-cached --parameter-overrides Architecture=x86_64
	PATH=$(abspath $(SAM_VENV))/bin:$$PATH $(VPY) -m pytest -q -p no:cacheprovider tests/deploy

## The whole pipeline locally: the real function binaries against the emulator (tests/demo/).
demo: venv
	cargo build -p on-upload -p on-import -p start-sweep -p on-training -p reconcile
	$(VPY) tests/demo/demo.py --bin-dir $(CARGO_TARGET_DIR)/debug

## The local loop of docs/local.md: the emulator and the demo's world, with the
## functions' environment in retrain.local.env for `cargo lambda watch --env-file`.
local: venv
	$(VPY) tests/local/world.py --env-file retrain.local.env

## Performance figures, not tests (BENCHMARKS.md): cold starts and RSS of the
## release binaries against the emulator, a Python baseline, the largest SQS
## batch, import → training latency, binary sizes, and criterion's decode +
## plan throughput (bench/run.py runs `cargo bench` so one table holds all).
bench: venv bench-search
	cargo build --release -p on-upload -p on-import -p start-sweep -p on-training -p reconcile
	$(VPY) bench/run.py --bin-dir $(CARGO_TARGET_DIR)/release

## Adaptive search (random, tpe, Optuna's TPESampler) on standard test functions.
bench-search: venv
	$(VPY) -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	cargo build --release -p retrain-core --example suggest
	$(VPY) bench/run.py --bin-dir $(CARGO_TARGET_DIR)/release --only search
