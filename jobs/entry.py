"""`python -m jobs.<stage>`: one entry point per scheduled job (spark-submit, Ray Jobs, cron)."""

from __future__ import annotations

from typing import Annotated

import typer

from jobs.runner import Stage

ENGINE_NOTE = {
    "spark": "Needs Spark: runs under spark-submit or starts a local[*] session (Java 17+).",
    "ray": "Needs Ray: joins ray.address or starts a local Ray.",
    "local": "Runs in-process; no cluster engine needed.",
}


def stage_main(stage: Stage) -> None:
    """Run one stage as a standalone job with the same config and runner as `zipp run`."""
    app = typer.Typer(add_completion=False)

    @app.command(help=f"{stage.summary}\n\nEngine: {stage.engine}. {ENGINE_NOTE[stage.engine]}")
    def main(
        overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides")] = None,
        config: Annotated[str | None, typer.Option("-c", "--config", help="YAML profile")] = None,
        force: Annotated[bool, typer.Option("--force", help="rerun even if current")] = False,
    ) -> None:
        from jobs.cli import run_stages

        run_stages([stage.name], config, overrides or [], force)

    app()


def stages_main(module: str, *stages: Stage) -> None:
    """`python -m <module> <stage> ...` for a module that defines several stages."""
    import sys

    by_name = {s.name: s for s in stages}
    if len(sys.argv) < 2 or sys.argv[1] not in by_name:
        names = "|".join(by_name)
        sys.exit(f"usage: python -m {module} {names} [-c PROFILE] [--force] [key=value ...]")
    stage_main(by_name[sys.argv.pop(1)])
