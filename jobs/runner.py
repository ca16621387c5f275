"""The stage runner: owns the stage contract (DESIGN.md), skips what is current, runs the
rest and writes a manifest per stage.

A stage is a declaration (`Stage`): its domain function, engine, inputs (lake tables,
raw sources such as ``input.dumps``, history tables, files by content), outputs, the
config sections or keys it reads, and a code version. The runner hands the function a
`StageIO` that enforces all of it, starts or joins the engine on first use (one place:
`engines.starter`), and records in ``_manifests/<stage>.json`` the fingerprints of every
declared input, the config view's hash, the code version and the outputs; a stage is
current when all of those still match.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import inspect
import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from contract.stage import Stage
from contract.stage_io import ConfigView, StageIO, TableAccess
from engines import starter
from engines.code import PACKAGES, project_root
from jobs.config import ZippConfig
from storage.lake import Lake, fingerprint

#: a registry entry naming code by string ("llm.openai_backend:OpenAIBackend")
_CODE_REF = re.compile(r"^([a-z_]+(?:\.[a-z_0-9]+)+):[A-Za-z_][A-Za-z_0-9]*$")


def _imported_names(tree: ast.AST) -> set[str]:
    """Module names a syntax tree imports (lazy imports included) or names by a registry
    string (``"module:attr"``)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Constant) and (m := _CODE_REF.match(str(node.value))):
            names.add(m.group(1))
    return names


def _module_files(names: set[str]) -> set[Path]:
    """The project's source files behind module names (others are ignored)."""
    root, out = project_root(), set()
    for name in names:
        if name.split(".", 1)[0] not in PACKAGES:
            continue
        base = root.joinpath(*name.split("."))
        out.update(c for c in (base.with_suffix(".py"), base / "__init__.py") if c.is_file())
    return out


@functools.cache
def _file_imports(path: Path) -> frozenset[Path]:
    return frozenset(_module_files(_imported_names(ast.parse(path.read_bytes()))))


def _code_files(run: Callable) -> tuple[Path, ...]:
    """The source files a stage function can run: its module, its own body's imports and
    its module's top-level ones, then everything those files import, transitively."""
    module = inspect.getmodule(run)
    tree = ast.parse(Path(inspect.getsourcefile(run)).read_bytes())
    top = ast.Module(body=[n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)])
    start = _module_files(_imported_names(ast.parse(inspect.getsource(run))))
    start |= _module_files(_imported_names(top))
    own = Path(inspect.getsourcefile(module)).resolve()  # hashed, its other imports not followed
    seen: set[Path] = {own}
    todo = sorted(start - {own})
    while todo:
        f = todo.pop()
        if f not in seen:
            seen.add(f)
            todo.extend(_file_imports(f) - seen)
    return tuple(sorted(seen))


def code_version(stage: Stage) -> str:
    """The declared version plus a hash of the source files the stage's function can run
    (`_code_files`: imports followed, lazy ones and registry strings included): editing
    any code a stage runs makes it stale, editing another stage's does not."""
    h = hashlib.sha1()
    root = project_root()
    for f in _code_files(stage.run):
        h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes())
    return f"{stage.version}:{h.hexdigest()[:12]}"


def config_hash(stage: Stage, config: ZippConfig) -> str:
    """Hash of the declared config sections and keys (nothing else the stage could read)."""
    data = {}
    for entry in stage.config:
        section, _, key = entry.partition(".")
        value = getattr(config, section)
        value = getattr(value, key) if key else value
        data[entry] = value.model_dump(mode="json") if hasattr(value, "model_dump") else value
    blob = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def file_path(config: ZippConfig, key: str) -> str | None:
    """The path a config key (``ingest.blocklist``) names, None when unset."""
    section, name = key.split(".", 1)
    return getattr(getattr(config, section), name)


def file_fingerprint(config: ZippConfig, key: str) -> str:
    """sha1 of a declared file's bytes, or of a declared folder's files (relative paths and
    bytes, in path order; "none" when unset): editing one in place shows."""
    path = file_path(config, key)
    if not path:
        return "none"
    p = Path(path)
    if p.is_dir():
        h = hashlib.sha1(b"dir\0")
        for f in sorted(x for x in p.rglob("*") if x.is_file()):
            rel = f.relative_to(p).as_posix().encode()
            h.update(rel + b"\0" + hashlib.sha1(f.read_bytes()).digest())
        return h.hexdigest()
    if not p.is_file():
        raise FileNotFoundError(f"{key}: file not found: {path}")
    return hashlib.sha1(p.read_bytes()).hexdigest()


def input_fingerprints(stage: Stage, config: ZippConfig, lake: Lake) -> dict[str, str]:
    """Every declared input's fingerprint: raw sources, lake tables, files by content."""
    out = {}
    for name in stage.inputs:
        if name == "input.dumps":
            from pipelines.dumps import find_dumps

            out[name] = fingerprint(find_dumps(config.input.dumps))
    for name in stage.reads:
        out[name] = lake.fingerprint(name)
    for key in stage.files:
        out[f"file:{key}"] = file_fingerprint(config, key)
    return out


def manifest_path(lake: Lake, stage: str) -> Path:
    return lake.manifests / f"{stage}.json"


def read_manifest(lake: Lake, stage: str) -> dict | None:
    path = manifest_path(lake, stage)
    return json.loads(path.read_text()) if path.exists() else None


def is_current(stage: Stage, config: ZippConfig, lake: Lake) -> tuple[bool, str]:
    """(current?, why not) for a stage against its manifest."""
    m = read_manifest(lake, stage.name)
    if m is None:
        return False, "never run"
    if failed := m.get("details", {}).get("failed"):
        return False, f"{failed:,} row(s) failed last run; a rerun retries them"
    if m.get("code") != code_version(stage):
        return False, "code changed"
    if m.get("config_hash") != config_hash(stage, config):
        return False, f"config {', '.join(stage.config)} changed"
    try:
        now = input_fingerprints(stage, config, lake)
    except FileNotFoundError as e:
        return False, str(e)
    for name, fp in now.items():
        if m["inputs"].get(name) != fp:
            kind = "file" if name.startswith("file:") else "input"
            return False, f"{kind} {name.removeprefix('file:')} changed"
    for name in stage.outputs:
        if m["outputs"].get(name, {}).get("fingerprint") != lake.fingerprint(name):
            return False, f"output {name} changed or missing"
    return True, "current"


def producers(stages: list[Stage]) -> dict[str, str]:
    """Which stage writes each table."""
    return {out: s.name for s in stages for out in s.outputs}


def dag_states(stages: list[Stage], config: ZippConfig, lake: Lake) -> list[dict]:
    """Each stage in order: engine, the producer of each table it reads, and whether it is
    current and why not; a stage downstream of one that is not current is not current."""
    made_by = producers(stages)
    stale: set[str] = set()
    rows = []
    for s in stages:
        current, why = is_current(s, config, lake)
        ups = {t: made_by.get(t) for t in s.reads}
        behind = sorted({p for p in ups.values() if p in stale})
        if current and behind:
            current, why = False, f"upstream {', '.join(behind)} not current"
        if not current:
            stale.add(s.name)
        rows.append({"stage": s, "current": current, "why": why, "inputs": ups})
    return rows


def stage_io(
    stage: Stage, config: ZippConfig, lake: Lake, console: Console, force: bool = False
) -> StageIO:
    """The `StageIO` the runner hands a stage (also for tests that call a domain
    function directly)."""
    access = TableAccess(
        stage=stage.name,
        root=str(lake.root),
        format=lake.format,
        inputs=frozenset(t for t in stage.reads if t not in stage.history),
        history_inputs=frozenset(stage.history),
        outputs=frozenset(stage.outputs),
        folders=frozenset(stage.folders),
    )
    return StageIO(
        stage=stage.name,
        lake=lake,
        access=access,
        config=ConfigView(config, stage.config, stage.name),
        console=console,
        force=force,
        files={key: file_path(config, key) for key in stage.files},
        engine=starter(stage.engine, config),
    )


def run_stage(
    stage: Stage, config: ZippConfig, lake: Lake, console: Console, force: bool = False
) -> dict:
    """Run one stage unless current (or forced); returns its manifest."""
    current, why = is_current(stage, config, lake)
    if current and not force:
        console.print(f"[green]✓[/] {stage.name}: up to date, skipped")
        return read_manifest(lake, stage.name) or {}
    console.rule(f"[bold]{stage.name}[/] ({stage.engine}) — {why if not force else 'forced'}")
    inputs = input_fingerprints(stage, config, lake)
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    io = stage_io(stage, config, lake, console, force)
    stage.run(io)
    seconds = time.perf_counter() - t0
    manifest = {
        "stage": stage.name,
        "engine": stage.engine,
        "config": list(stage.config),
        "config_hash": config_hash(stage, config),
        "code": code_version(stage),
        "inputs": inputs,
        "outputs": {
            name: {"rows": lake.rows(name), "fingerprint": lake.fingerprint(name)}
            for name in stage.outputs
        },
        "started_at": started.isoformat(timespec="seconds"),
        "seconds": round(seconds, 3),
        "details": io.details,
    }
    path = manifest_path(lake, stage.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, default=str))
    tmp.replace(path)
    rows = ", ".join(f"{n}={o['rows']:,}" for n, o in manifest["outputs"].items())
    console.print(f"[green]✓[/] {stage.name} done in {seconds:.1f}s: {rows}")
    return manifest


def select(stages: list[Stage], names: list[str]) -> list[Stage]:
    """Stages to run in DAG order: all when `names` is empty."""
    known = [s.name for s in stages]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown stage(s) {', '.join(unknown)}; stages: {', '.join(known)}")
    return [s for s in stages if not names or s.name in names]


def removed_summary(manifests: list[dict]) -> dict[str, int]:
    """What the stages of a run deleted for deletion requests (records, files)."""
    total: dict[str, int] = {}
    for m in manifests:
        for what, n in (m.get("details", {}).get("removed") or {}).items():
            total[what] = total.get(what, 0) + n
    return total


def stage_summary(stage: Stage) -> dict[str, Any]:
    """A stage's declaration as plain data (for `zipp dag --json` and schedulers)."""
    return {
        "stage": stage.name,
        "engine": stage.engine,
        "inputs": list(stage.inputs),
        "history": list(stage.history),
        "files": list(stage.files),
        "outputs": list(stage.outputs),
        "config": list(stage.config),
        "folders": list(stage.folders),
        "version": stage.version,
    }
