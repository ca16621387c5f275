"""`zipp`: the command line."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from jobs.config import ConfigError, load_config
from jobs.runner import is_current, read_manifest, run_stage, select
from jobs.stages import STAGES
from schemas.lake import Lake

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="ZIPP: Reddit personas for a frozen text-to-image model (ZIPBench).",
)
console = Console(width=None if sys.stdout.isatty() else 160)

ConfigOpt = Annotated[str | None, typer.Option("-c", "--config", help="YAML profile (conf/*.yaml)")]
ForceOpt = Annotated[bool, typer.Option("--force", help="rerun stages even if current")]


def _fail(msg: str) -> None:
    console.print(f"[red]{msg}[/]")
    raise typer.Exit(2)


def run_stages(names: list[str], config: str | None, overrides: list[str], force: bool) -> None:
    """Load config, then run the named stages (all when empty) in DAG order."""
    try:
        cfg = load_config(config, overrides)
        stages = select(STAGES, names)
    except (ConfigError, ValueError) as e:
        _fail(str(e))
    lake = Lake(cfg.lake.root)
    for stage in stages:
        try:
            run_stage(stage, cfg, lake, console, force=force)
        except (ConfigError, FileNotFoundError) as e:
            _fail(f"{stage.name}: {e}")
    console.print(f"lake: {lake.root}")


@app.command()
def sample(
    out: Annotated[str, typer.Option("--out", help="folder for dumps, images, ground truth")],
    users: Annotated[int, typer.Option(help="number of users")] = 400,
    seed: Annotated[int, typer.Option(help="random seed (output is deterministic by seed)")] = 7,
    communities: Annotated[int, typer.Option(help="number of planted communities")] = 8,
    months: Annotated[str, typer.Option(help="comma-separated YYYY-MM months")] = "2021-05,2021-06",
    image_base_url: Annotated[
        str, typer.Option(help="base URL the images are served from")
    ] = "http://127.0.0.1:8765",
    image_size: Annotated[int, typer.Option(help="side of the rendered PNGs in pixels")] = 64,
    corrupt_lines: Annotated[int, typer.Option(help="corrupt lines per dump file")] = 2,
    images: Annotated[
        bool, typer.Option("--images/--no-images", help="render the PNGs (off: URLs only)")
    ] = True,
) -> None:
    """Write a small Reddit world as monthly RS_/RC_ .zst dumps with planted structure."""
    from pipelines.sample.world import SampleSpec, write_sample

    spec = SampleSpec(
        users=users,
        seed=seed,
        communities=communities,
        months=tuple(m.strip() for m in months.split(",") if m.strip()),
        image_base_url=image_base_url.rstrip("/"),
        image_size=image_size,
        corrupt_lines=corrupt_lines,
        images=images,
    )
    summary = write_sample(out, spec, console=console)
    t = Table(title=f"sample world -> {out}")
    t.add_column("file")
    t.add_column("lines", justify="right")
    for name, n in summary.items():
        t.add_row(name, f"{n:,}")
    console.print(t)


@app.command()
def ingest(
    dumps: Annotated[str, typer.Option("--dumps", help="folder, glob or file of dumps")],
    lake: Annotated[str, typer.Option("--lake", help="lake root")],
    config: ConfigOpt = None,
    force: ForceOpt = False,
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides")] = None,
) -> None:
    """Ingest Reddit dumps into bronze tables and the quarantine (Spark)."""
    run_stages(
        ["ingest"], config, [f"input.dumps={dumps}", f"lake.root={lake}", *(overrides or [])], force
    )


@app.command()
def run(
    args: Annotated[
        list[str] | None,
        typer.Argument(help="stage names (none: every stage) and key=value overrides"),
    ] = None,
    config: ConfigOpt = None,
    force: ForceOpt = False,
) -> None:
    """Run the DAG, or the named stages, skipping stages whose outputs are current."""
    args = args or []
    names = [a for a in args if "=" not in a]
    overrides = [a for a in args if "=" in a]
    run_stages(names, config, overrides, force)


@app.command()
def status(
    config: ConfigOpt = None,
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides")] = None,
) -> None:
    """Stages: current or not, last run, time taken, output row counts."""
    try:
        cfg = load_config(config, overrides or [])
    except ConfigError as e:
        _fail(str(e))
    lake = Lake(cfg.lake.root)
    t = Table(title=f"zipp status — lake {lake.root}")
    for col in ("stage", "engine", "state", "last run", "seconds", "outputs (rows)"):
        t.add_column(col)
    for stage in STAGES:
        m = read_manifest(lake, stage.name)
        current, why = is_current(stage, cfg, lake)
        state = "[green]current[/]" if current else f"[yellow]{why}[/]"
        outputs = "\n".join(f"{n}: {lake.rows(n):,}" for n in stage.outputs)
        started = m and datetime.fromisoformat(m["started_at"]).strftime("%Y-%m-%d %H:%M")
        t.add_row(
            stage.name,
            stage.engine,
            state,
            started or "-",
            f"{m['seconds']:.1f}" if m else "-",
            outputs,
        )
    console.print(t)


def main() -> None:  # pragma: no cover - console script shim
    app(prog_name="zipp")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
