"""The README and docs/ checked against the code, so that they cannot drift.

- the README is a quick start: at most 250 lines, its first screen shows
  exactly the two commands (`make demo`, `make test`);

- the configuration reference documents every field of `retrain schema`, no
  field that is not in it, and each field's default;
- the full example is examples/pipelines.yaml, verbatim;
- every domain event of events/domain/schemas.json has a section that lists
  its detail fields, and `retrain schema --events` prints that file;
- every parameter of template.yaml is documented, with its default;
- the retry table, the environment variables and the metrics match the code;
- every offline `retrain` command in a code block runs with the exit code the
  docs state (0, or the `# exits N` comment), and output shown right after
  a single command is what the command prints;
- a code block with `aws` or `sam` commands against an AWS account is marked
  `<!-- not run: needs an AWS account -->`, and any other block whose
  commands no test runs says why with `<!-- not run: ... -->`;
- internal links point to existing headings and files.

Each fact lives in one document (the configuration reference in
docs/configuration.md, the events in docs/events.md, ...); the command and
link checks cover every document.

Run with `python3 -m pytest tests/docs -q` from the repository root. The
tests that run `retrain` need it built (`cargo build -p retrain-cli`, into
$CARGO_TARGET_DIR, by default ~/.cache/retrain/target); without it they skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS_DIR = ROOT / "docs"
CONFIGURATION = DOCS_DIR / "configuration.md"
EVENTS = DOCS_DIR / "events.md"
DEPLOYING = DOCS_DIR / "deploying.md"
HOW_IT_WORKS = DOCS_DIR / "how-it-works.md"
OPERATIONS = DOCS_DIR / "operations.md"
README_MAX_LINES = 250
# What a terminal shows before scrolling.
FIRST_SCREEN_LINES = 40
EXAMPLE = ROOT / "examples" / "pipelines.yaml"
EVENT_SCHEMAS = ROOT / "events" / "domain" / "schemas.json"
TEMPLATE = ROOT / "template.yaml"

ACCOUNT_MARKER = "<!-- not run: needs an AWS account -->"
NOT_RUN = re.compile(r"^<!-- not run: \S.* -->$")
SHELL_LANGS = {"sh", "bash", "shell", "console"}
# Commands that the CI runs itself (`.ci/run` calls `make test`; the demo's tests run `make demo`'s script).
CI_COMMANDS = {"make demo", "make test"}


# ------------------------------------------------------------- README model


@dataclass
class Block:
    lang: str
    lines: list[str]
    start: int  # line index of the opening fence
    end: int  # line index of the closing fence
    marker: str | None  # the `<!-- not run: ... -->` comment right before it

    @property
    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


@dataclass
class Section:
    level: int
    title: str
    start: int
    end: int
    rows: list[list[str]] = field(default_factory=list)


def documents() -> list[Path]:
    return [README, *sorted(DOCS_DIR.glob("*.md"))]


def doc_lines(doc: Path) -> list[str]:
    return doc.read_text(encoding="utf-8").splitlines()


def all_text() -> str:
    return "\n".join(d.read_text(encoding="utf-8") for d in documents())


def name(doc: Path) -> str:
    return str(doc.relative_to(ROOT))


def blocks(doc: Path) -> list[Block]:
    lines = doc_lines(doc)
    out: list[Block] = []
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)```(\S*)\s*$", lines[i])
        if not m:
            i += 1
            continue
        indent, lang = m.group(1), m.group(2)
        j = i + 1
        body: list[str] = []
        while j < len(lines) and lines[j].strip() != "```":
            body.append(lines[j][len(indent) :] if lines[j].startswith(indent) else lines[j].lstrip())
            j += 1
        k = i - 1
        while k >= 0 and not lines[k].strip():
            k -= 1
        previous = lines[k].strip() if k >= 0 else ""
        out.append(Block(lang, body, i, j, previous if NOT_RUN.match(previous) else None))
        i = j + 1
    return out


def outside_code(lines: list[str]) -> list[bool]:
    """For each line: whether it is prose (not inside a fenced block)."""
    prose, inside = [], False
    for line in lines:
        if re.match(r"^\s*```", line):
            prose.append(False)
            inside = not inside
        else:
            prose.append(not inside)
    return prose


def sections(doc: Path, level: int) -> list[Section]:
    lines = doc_lines(doc)
    prose = outside_code(lines)
    heads = [
        (i, len(m.group(1)), m.group(2).strip())
        for i, line in enumerate(lines)
        if prose[i] and (m := re.match(r"^(#{1,6}) (.+)$", line))
    ]
    out = []
    for n, (i, lvl, title) in enumerate(heads):
        if lvl != level:
            continue
        end = next((j for j, l2, _ in heads[n + 1 :] if l2 <= level), len(lines))
        s = Section(lvl, title, i, end)
        s.rows = [cells(lines[k]) for k in range(i, end) if prose[k] and lines[k].lstrip().startswith("|")]
        out.append(s)
    return out


def section(doc: Path, title: str, level: int = 1) -> Section:
    found = [s for s in sections(doc, level) if s.title == title]
    assert found, f"{name(doc)} has no {'#' * level} {title} section"
    return found[0]


def cells(row: str) -> list[str]:
    """A table row's cells; `|` inside backticks does not split."""
    out, cur, code = [], "", False
    for ch in row.strip().strip("|"):
        if ch == "`":
            code = not code
        if ch == "|" and not code:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    out.append(cur.strip())
    return out


def code_name(cell: str) -> str | None:
    m = re.fullmatch(r"`([^`]+)`", cell)
    return m.group(1) if m else None


def table_column(rows: list[list[str]], header: str) -> dict[str, str]:
    """First-column name → the cell under `header`, for every table in `rows` that has that header."""
    out: dict[str, str] = {}
    col = None
    separator = lambda row: set("".join(row)) <= set("-: ")  # noqa: E731
    for i, r in enumerate(rows):
        if i + 1 < len(rows) and separator(rows[i + 1]) and not separator(r):
            # A table's header row: a table without the column ends the one before.
            col = r.index(header) if header in r else None
            continue
        if col is None or separator(r):
            continue
        name = code_name(r[0])
        if name is not None and col < len(r):
            out[name] = r[col]
    return out


# ------------------------------------------------------------- the binary


def retrain_bin() -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR") or Path.home() / ".cache" / "retrain" / "target")
    return target / "debug" / "retrain"


@pytest.fixture(scope="module")
def retrain() -> Path:
    path = retrain_bin()
    if not path.is_file():
        pytest.skip(f"retrain is not built ({path} is missing): run `cargo build -p retrain-cli` first")
    return path


def offline_env(bindir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RETRAIN_"))}
    env.update(
        PATH=f"{bindir}{os.pathsep}{env.get('PATH', '')}",
        # Nothing shown as offline may reach AWS: any call would go to a closed local port.
        AWS_ENDPOINT_URL="http://127.0.0.1:9",
        AWS_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="offline",
        AWS_SECRET_ACCESS_KEY="offline",
        AWS_EC2_METADATA_DISABLED="true",
        RUST_BACKTRACE="0",
    )
    return env


def run_json(retrain: Path, *args: str) -> Any:
    done = subprocess.run([str(retrain), *args], capture_output=True, text=True, timeout=60, env=offline_env(retrain.parent))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


# ------------------------------------------------- configuration reference


def schema_fields(schema: dict) -> dict[str, tuple[dict, bool]]:
    """Every property path of the schema → (its schema, whether its parent requires it)."""
    defs = schema.get("$defs", {})
    out: dict[str, tuple[dict, bool]] = {}

    def resolve(node: dict) -> dict:
        seen = 0
        while "$ref" in node:
            name = node["$ref"].split("/")[-1]
            node = {**defs[name], **{k: v for k, v in node.items() if k != "$ref"}}
            seen += 1
            assert seen < 20, "a $ref loop"
        return node

    def walk(node: dict, prefix: str, depth: int) -> None:
        assert depth < 20, f"schema too deep at {prefix}"
        node = resolve(node)
        for alternative in node.get("anyOf", []) + node.get("oneOf", []) + node.get("allOf", []):
            walk(alternative, prefix, depth + 1)
        required = set(node.get("required", []))
        for name, sub in node.get("properties", {}).items():
            path = f"{prefix}.{name}" if prefix else name
            out[path] = (sub, name in required)
            walk(sub, path, depth + 1)
        items = node.get("items")
        if isinstance(items, dict):
            walk(items, f"{prefix}[]", depth + 1)

    walk(schema, "", 0)
    # The reference writes pipeline fields relative to one entry of `pipelines`.
    return {p.removeprefix("pipelines[]."): v for p, v in out.items()}


def rendered_default(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    if value == {}:
        return "{}"
    if value == []:
        return "[]"
    return None  # an object default (sweep, import): described in words


@pytest.fixture(scope="module")
def documented_fields() -> dict[str, str]:
    ref = section(CONFIGURATION, "Configuration reference")
    fields = table_column(ref.rows, "Default")
    assert fields, "the configuration reference has no field tables"
    return fields


def test_every_schema_field_is_documented_and_nothing_else(retrain: Path, documented_fields: dict[str, str]) -> None:
    in_schema = set(schema_fields(run_json(retrain, "schema")))
    missing = sorted(in_schema - set(documented_fields))
    extra = sorted(set(documented_fields) - in_schema)
    assert not missing, f"fields in `retrain schema` but not in docs/configuration.md: {missing}"
    assert not extra, f"fields in docs/configuration.md that `retrain schema` does not have: {extra}"


def test_documented_defaults_match_the_schema(retrain: Path, documented_fields: dict[str, str]) -> None:
    problems = []
    for path, (node, required) in schema_fields(run_json(retrain, "schema")).items():
        cell = documented_fields.get(path)
        if cell is None:
            continue  # reported by the test above
        if required:
            if cell != "required":
                problems.append(f"{path}: required in the schema, the docs say {cell!r}")
        elif "default" in node:
            shown = rendered_default(node["default"])
            if shown is None:
                if cell in ("required", "—"):
                    problems.append(f"{path}: has a default, the docs say {cell!r}")
            elif f"`{shown}`" not in cell:
                problems.append(f"{path}: default is `{shown}`, the docs say {cell!r}")
        elif cell != "—":
            problems.append(f"{path}: optional without a default (write —), the docs say {cell!r}")
    assert not problems, "\n".join(problems)


def test_the_full_example_is_examples_pipelines_yaml_verbatim() -> None:
    example = EXAMPLE.read_text(encoding="utf-8")
    yaml_blocks = [b for b in blocks(CONFIGURATION) if b.lang == "yaml"]
    assert any(b.text == example for b in yaml_blocks), (
        "no ```yaml block in docs/configuration.md equals examples/pipelines.yaml; copy the file into the Full example section"
    )
    ref = section(CONFIGURATION, "Configuration reference")
    assert any(ref.start < b.start < ref.end and b.text == example for b in yaml_blocks), (
        "the verbatim example belongs in the Configuration reference section"
    )


# ------------------------------------------------------------ domain events


def test_every_domain_event_has_a_section_listing_its_detail_fields() -> None:
    schemas = json.loads(EVENT_SCHEMAS.read_text(encoding="utf-8"))
    events = section(EVENTS, "Domain events")
    subsections = {s.title: s for s in sections(EVENTS, 2) if events.start < s.start < events.end}
    lines = doc_lines(EVENTS)
    problems = []
    for detail_type, schema in schemas.items():
        s = subsections.get(detail_type)
        if s is None:
            problems.append(f"no `## {detail_type}` section in docs/events.md")
            continue
        body = "\n".join(lines[s.start : s.end])
        example = f"events/domain/{detail_type}.json"
        if f"../{example}" not in body:
            problems.append(f"{detail_type}: the section does not point to {example}")
        if not (ROOT / example).is_file():
            problems.append(f"{detail_type}: {example} does not exist")
        listed = set(table_column(s.rows, "Meaning"))
        fields = set(schema.get("properties", {}))
        if listed != fields:
            problems.append(
                f"{detail_type}: docs/events.md lists {sorted(listed)}, the schema has {sorted(fields)} "
                f"(missing {sorted(fields - listed)}, extra {sorted(listed - fields)})"
            )
    stale = [t for t in subsections if re.fullmatch(r"[A-Z][a-z]+(?:[A-Z][a-z]+)+", t) and t not in schemas]
    if stale:
        problems.append(f"sections for events that schemas.json does not have: {stale}")
    assert not problems, "\n".join(problems)


def test_retrain_schema_events_prints_the_published_schemas(retrain: Path) -> None:
    assert run_json(retrain, "schema", "--events") == json.loads(EVENT_SCHEMAS.read_text(encoding="utf-8")), (
        "events/domain/schemas.json is stale: regenerate it with `retrain schema --events`"
    )


# ---------------------------------------------------------------- template


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation YAML: short-form intrinsics (!Ref, !Sub, ...) become plain values."""


def _any_tag(loader: yaml.SafeLoader, _suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)


_CfnLoader.add_multi_constructor("!", _any_tag)


def test_every_template_parameter_is_documented_with_its_default() -> None:
    params: dict[str, dict] = yaml.load(TEMPLATE.read_text(encoding="utf-8"), Loader=_CfnLoader)["Parameters"]
    documented = table_column(section(DEPLOYING, "Deploying").rows, "What it is")
    missing = sorted(set(params) - set(documented))
    extra = sorted(set(documented) - set(params))
    assert not missing, f"template.yaml parameters missing from the parameter table in docs/deploying.md: {missing}"
    assert not extra, f"docs/deploying.md documents parameters that template.yaml does not have: {extra}"
    table = _param_defaults()
    problems = []
    for name, spec in params.items():
        cell = table[name]
        if "Default" not in spec:
            if cell != "required":
                problems.append(f"{name}: no default in template.yaml, the docs say {cell!r}")
        else:
            shown = f"`{spec['Default']}`" if spec["Default"] != "" else '`""`'
            if cell != shown:
                problems.append(f"{name}: default is {shown}, the docs say {cell!r}")
    assert not problems, "\n".join(problems)


def _param_defaults() -> dict[str, str]:
    return table_column(section(DEPLOYING, "Deploying").rows, "Default")


# ------------------------------------------------------- facts from the code


def test_the_retry_table_is_the_one_in_failure_rs() -> None:
    source = (ROOT / "shared" / "core" / "src" / "failure.rs").read_text(encoding="utf-8")
    rules = re.findall(
        r'Rule \{\s*status: JobStatus::(\w+),\s*matcher: (\w+)\("([^"]+)"\),\s*class: (\w+),\s*why: "([^"]+)",\s*\}',
        source,
    )
    assert rules, "could not read RULES from failure.rs"
    rows = [r for r in section(HOW_IT_WORKS, "How it works").rows if len(r) >= 4]
    verbs = {"ReasonPrefix": "`FailureReason` starts with", "ReasonContains": "`FailureReason` contains", "Secondary": "`SecondaryStatus` is"}
    problems = []
    for status, matcher, text, klass, why in rules:
        wanted = [f"`{status}`", f"{verbs[matcher]} `{text}`", klass.lower(), why]
        if not any(r[0] == wanted[0] and r[1] == wanted[1] and r[2].startswith(wanted[2]) and r[3] == wanted[3] for r in rows):
            problems.append(f"no row | {' | '.join(wanted)} |")
    for fallback in re.findall(r'\(Permanent, "([^"]+)"\)', source):
        if not any(r[3] == fallback for r in rows):
            problems.append(f"the fallback {fallback!r} is not in the table")
    assert not problems, "\n".join(problems)


def test_every_environment_variable_is_documented() -> None:
    source = (ROOT / "shared" / "aws" / "src" / "settings.rs").read_text(encoding="utf-8")
    names = re.findall(r'pub const \w+_VAR: &str = "(\w+)";', source)
    assert len(names) >= 5, "could not read the variable names from settings.rs"
    text = all_text()
    missing = [n for n in names + ["AWS_ENDPOINT_URL", "AWS_REGION"] if f"`{n}`" not in text]
    assert not missing, f"environment variables not documented: {missing}"


def test_every_metric_and_dimension_is_documented() -> None:
    source = (ROOT / "shared" / "core" / "src" / "telemetry.rs").read_text(encoding="utf-8")
    namespace = re.search(r'pub const NAMESPACE: &str = "(\w+)";', source)
    assert namespace, "could not read NAMESPACE from telemetry.rs"
    source = source.split("#[cfg(test)]", 1)[0]
    metrics = set(re.findall(r'metric\("(\w+)"\)', source)) | set(re.findall(r'\{"Name": "(\w+)", "Unit"', source))
    # The domain events' counts, and the account-wide records' (name, value, unit).
    metrics |= set(re.findall(r'\("\w+", "(\w+)"\)', source))
    metrics |= set(re.findall(r'\("(\w+)", [^,()]+, "(?:Count|Seconds|None)"\)', source))
    dimensions = re.search(r'"Dimensions": \[\[([^\]]+)\]\]', source)
    assert metrics and dimensions, "could not read the metrics from telemetry.rs"
    metrics_section = section(OPERATIONS, "Metrics", 2)
    documented = set(table_column(metrics_section.rows, "Meaning"))
    assert documented == metrics, f"docs/operations.md metrics {sorted(documented)} != telemetry.rs {sorted(metrics)}"
    body = "\n".join(doc_lines(OPERATIONS)[metrics_section.start : metrics_section.end])
    for word in [namespace.group(1), *re.findall(r'"(\w+)"', dimensions.group(1))]:
        assert f"`{word}`" in body, f"`{word}` is not named in the Metrics section"


# ----------------------------------------------------------------- commands


def command_lines(block: Block) -> Iterator[str]:
    """The block's commands: comment-only lines dropped, `\\` continuations joined."""
    pending = ""
    for raw in block.lines:
        line = raw.rstrip()
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        yield (pending + line).strip()
        pending = ""
    if pending:
        yield pending.strip()


def runs_retrain(command: str) -> bool:
    return bool(re.match(r"^(retrain\s|[^#]*\|\s*retrain\s)", command))


def calls_aws_account(command: str) -> bool:
    """An `aws` or `sam` invocation that is not pointed at a local endpoint."""
    for m in re.finditer(r"(?:^|[\s;|&({]|\$\()(aws|sam)\s+(\S+)", command):
        if m.group(2).startswith("--endpoint-url"):
            continue
        return True
    return False


def expected_exit(command: str) -> int:
    m = re.search(r"#\s*exits\s+(\d+)", command)
    return int(m.group(1)) if m else 0


def shell_blocks() -> list[tuple[Path, Block]]:
    return [(d, b) for d in documents() for b in blocks(d) if b.lang in SHELL_LANGS]


def test_aws_and_sam_commands_are_marked_as_needing_an_account() -> None:
    problems = []
    for d, b in shell_blocks():
        for command in command_lines(b):
            if calls_aws_account(command) and b.marker != ACCOUNT_MARKER:
                problems.append(f"{name(d)} line {b.start + 1}: `{command[:60]}` needs {ACCOUNT_MARKER} before its block")
    assert not problems, "\n".join(problems)


def test_every_unmarked_command_is_run_by_a_test_or_by_ci() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    problems = []
    for d, b in shell_blocks():
        if b.marker:
            continue
        for command in command_lines(b):
            bare = command.split("#")[0].strip()
            if bare in CI_COMMANDS:
                target = bare.split()[1]
                if not re.search(rf"^{target}:", makefile, re.M):
                    problems.append(f"`{bare}`: the Makefile has no {target} target")
            elif not runs_retrain(command):
                problems.append(
                    f"{name(d)} line {b.start + 1}: `{command[:60]}` runs in no test; "
                    "mark its block with <!-- not run: <why> --> or move it"
                )
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the files the commands read, so that what they write lands outside the repository."""
    work = tmp_path_factory.mktemp("readme")
    for name in ("examples", "events", "docs"):
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, work / name)
    return work


def offline_commands() -> list[tuple[Block, str]]:
    return [(b, c) for _, b in shell_blocks() if not b.marker for c in command_lines(b) if runs_retrain(c)]


def test_the_readme_shows_offline_retrain_commands() -> None:
    shown = " ".join(c for _, c in offline_commands())
    for sub in ("retrain validate", "retrain schema", "retrain plan"):
        assert sub in shown, f"no runnable `{sub}` example in the README or docs/"


def run_offline(retrain: Path, workdir: Path, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        cwd=workdir,
        env=offline_env(retrain.parent),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("command", [c for _, c in offline_commands()])
def test_offline_retrain_command_runs_as_documented(retrain: Path, workdir: Path, command: str) -> None:
    done = run_offline(retrain, workdir, command)
    want = expected_exit(command)
    assert done.returncode == want, (
        f"`{command}` exited {done.returncode}, the docs say {want}\nstdout: {done.stdout[-2000:]}\nstderr: {done.stderr[-2000:]}"
    )


def shown_outputs() -> list[tuple[str, Block]]:
    """(command, the text block right after it) for blocks that hold a single offline command."""
    out = []
    pairs = [(b, nxt) for d in documents() for b, nxt in zip(blocks(d), blocks(d)[1:])]
    for b, nxt in pairs:
        if b.lang not in SHELL_LANGS or b.marker or nxt.lang != "text" or nxt.start - b.end > 2:
            continue
        commands = list(command_lines(b))
        if len(commands) == 1 and runs_retrain(commands[0]) and ">" not in commands[0].split("#")[0]:
            out.append((commands[0], nxt))
    return out


@pytest.mark.parametrize("command,shown", shown_outputs(), ids=[c for c, _ in shown_outputs()])
def test_shown_output_is_what_the_command_prints(retrain: Path, workdir: Path, command: str, shown: Block) -> None:
    done = run_offline(retrain, workdir, command)
    printed = [line.rstrip() for line in (done.stdout + done.stderr).splitlines()]
    at = 0
    for line in shown.lines:
        if "…" in line or not line.strip():
            continue  # an elision
        try:
            at = printed.index(line.rstrip(), at) + 1
        except ValueError:
            pytest.fail(f"`{command}` does not print (in this order) the documented line:\n{line}")


# -------------------------------------------------------------------- links


def slug(title: str) -> str:
    s = title.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def anchors(doc: Path) -> set[str]:
    lines = doc_lines(doc)
    prose = outside_code(lines)
    return {slug(m.group(1)) for i, line in enumerate(lines) if prose[i] and (m := re.match(r"^#{1,6} (.+)$", line))}


@pytest.mark.parametrize("doc", documents(), ids=name)
def test_internal_links_resolve(doc: Path) -> None:
    problems = []
    for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text(encoding="utf-8")):
        if target.startswith(("http://", "https://")):
            continue
        path, _, fragment = target.partition("#")
        linked = (doc.parent / path).resolve() if path else doc
        if not linked.exists():
            problems.append(f"link to a missing file: {target}")
        elif fragment and linked.suffix == ".md" and fragment not in anchors(linked):
            problems.append(f"no heading for link {target}")
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------- quick start


def test_the_readme_is_a_quick_start() -> None:
    lines = doc_lines(README)
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines; keep it under {README_MAX_LINES} and move reference material to docs/"
    )
    first = [b for b in blocks(README) if b.start < FIRST_SCREEN_LINES and b.lang in SHELL_LANGS]
    commands = [c.split("#")[0].strip() for b in first for c in command_lines(b)]
    assert commands == ["make demo", "make test"], (
        f"the README's first screen should show exactly `make demo` and `make test`, it shows {commands}"
    )


def test_every_document_is_linked_from_the_readme() -> None:
    text = README.read_text(encoding="utf-8")
    unlinked = [name(d) for d in documents()[1:] if f"]({name(d)}" not in text]
    assert not unlinked, f"docs not linked from README.md: {unlinked}"
