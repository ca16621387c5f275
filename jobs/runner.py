"""The stage runner: skip what is current, run the rest, write a manifest per stage.

A stage declares its name, input and output tables, config section and engine. Its
manifest (``_manifests/<stage>.json``) records input fingerprints, the config section's
hash, output row counts and fingerprints, and timings; a stage whose manifest matches
the present inputs, config and outputs is skipped unless forced.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from rich.console import Console

from jobs.config import ZippConfig
from schemas.lake import Lake, fingerprint, table_fingerprint

Engine = Literal["spark", "ray", "local"]


@dataclass
class StageContext:
    """What a stage's run function gets."""

    config: ZippConfig
    lake: Lake
    console: Console
    force: bool = False
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Stage:
    """A step of the DAG. `inputs` are lake tables or ``input.<key>`` sources."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    section: str
    engine: Engine
    run: Callable[[StageContext], None]
    summary: str = ""


def input_fingerprint(name: str, config: ZippConfig, lake: Lake) -> str:
    """Fingerprint of one stage input: raw input files, a file named by a config key
    (``file:personas.overrides``) or a lake table."""
    if name == "input.dumps":
        from pipelines.dumps import find_dumps

        return fingerprint(find_dumps(config.input.dumps))
    if name.startswith("file:"):
        section, key = name[5:].split(".", 1)
        path = getattr(getattr(config, section), key)
        if not path:
            return "none"
        if not Path(path).is_file():
            raise FileNotFoundError(f"{name[5:]}: file not found: {path}")
        return hashlib.sha1(Path(path).read_bytes()).hexdigest()
    return table_fingerprint(lake.path(name))


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
    if m.get("config_hash") != config.section_hash(stage.section):
        return False, f"config section '{stage.section}' changed"
    for name in stage.inputs:
        try:
            fp = input_fingerprint(name, config, lake)
        except FileNotFoundError as e:
            return False, str(e)
        if m["inputs"].get(name) != fp:
            return False, f"input {name} changed"
    for name in stage.outputs:
        if m["outputs"].get(name, {}).get("fingerprint") != table_fingerprint(lake.path(name)):
            return False, f"output {name} changed or missing"
    return True, "current"


def run_stage(
    stage: Stage, config: ZippConfig, lake: Lake, console: Console, force: bool = False
) -> dict:
    """Run one stage unless current (or forced); returns its manifest."""
    current, why = is_current(stage, config, lake)
    if current and not force:
        console.print(f"[green]✓[/] {stage.name}: up to date, skipped")
        return read_manifest(lake, stage.name) or {}
    console.rule(f"[bold]{stage.name}[/] ({stage.engine}) — {why if not force else 'forced'}")
    inputs = {name: input_fingerprint(name, config, lake) for name in stage.inputs}
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    ctx = StageContext(config=config, lake=lake, console=console, force=force)
    stage.run(ctx)
    seconds = time.perf_counter() - t0
    manifest = {
        "stage": stage.name,
        "engine": stage.engine,
        "section": stage.section,
        "config_hash": config.section_hash(stage.section),
        "inputs": inputs,
        "outputs": {
            name: {"rows": lake.rows(name), "fingerprint": table_fingerprint(lake.path(name))}
            for name in stage.outputs
        },
        "started_at": started.isoformat(timespec="seconds"),
        "seconds": round(seconds, 3),
        "details": ctx.details,
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
    known = {s.name for s in stages}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown stage(s) {', '.join(unknown)}; stages: {', '.join(known)}")
    return [s for s in stages if not names or s.name in names]
