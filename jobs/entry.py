"""Running stages: `zipp run` and `python -m jobs.<stage>` (spark-submit, Ray Jobs, cron)
both come here. Imports no stage module, so declarations can import it."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console

from contract.errors import ContractError
from jobs.config import ConfigError, load_config
from jobs.runner import Stage, removed_summary, run_stage
from storage.lake import Lake

ENGINE_NOTE = {
    "spark": "Needs Spark: runs under spark-submit or starts a local[*] session (Java 17+).",
    "ray": "Needs Ray: joins ray.address or starts a local Ray.",
    "local": "Runs in-process; no cluster engine needed.",
}
console = Console(width=None if sys.stdout.isatty() else 160)


def fail(msg: str) -> None:
    """Print a one-line error and exit 2 (input or config problems, not bugs)."""
    console.print(f"[red]{msg}[/]", soft_wrap=True)
    raise typer.Exit(2)


def run_stages(
    stages: list[Stage], config: str | None, overrides: list[str], force: bool
) -> list[dict]:
    """Load config, then run `stages` in order; prints what deletion requests removed."""
    try:
        cfg = load_config(config, overrides)
    except ConfigError as e:
        fail(str(e))
    lake = Lake(cfg.lake.root, cfg.lake.format)
    if leftovers := lake.clean_leftovers():
        console.print(f"removed {leftovers} folder(s) a killed write left behind")
    manifests = []
    for stage in stages:
        try:
            manifests.append(run_stage(stage, cfg, lake, console, force=force))
        except (ConfigError, ContractError, FileNotFoundError, ValueError) as e:
            fail(f"{stage.name}: {e}")
    removed = removed_summary(manifests)
    if removed:
        what = ", ".join(f"{n:,} {k}" for k, n in sorted(removed.items()))
        console.print(f"[bold]deletion requests:[/] removed {what}")
    console.print(f"lake: {lake.root}")
    return manifests


def stage_main(*stages: Stage) -> None:
    """`python -m jobs.<stage>`: one stage as a standalone job (several stages in one
    module: the first argument names the stage), same config and runner as `zipp run`."""
    by_name = {s.name: s for s in stages}
    if len(stages) > 1:
        if len(sys.argv) < 2 or sys.argv[1] not in by_name:
            sys.exit(f"usage: python -m ... {'|'.join(by_name)} [-c PROFILE] [--force] [k=v ...]")
        stage = by_name[sys.argv.pop(1)]
    else:
        stage = stages[0]
    app = typer.Typer(add_completion=False)

    @app.command(help=f"{stage.summary}\n\nEngine: {stage.engine}. {ENGINE_NOTE[stage.engine]}")
    def main(
        overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides")] = None,
        config: Annotated[str | None, typer.Option("-c", "--config", help="YAML profile")] = None,
        force: Annotated[bool, typer.Option("--force", help="rerun even if current")] = False,
    ) -> None:
        run_stages([stage], config, overrides or [], force)

    app()
