"""Stage `ingest` (Spark): Reddit dumps -> bronze/{submissions,comments} + quarantine/records.

python -m jobs.ingest -c conf/cluster.yaml [key=value ...]
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from jobs.runner import Stage, StageContext
from pipelines.dumps import find_dumps
from pipelines.ingest import OUTPUTS, IngestOptions, ingest


def options(ctx: StageContext) -> IngestOptions:
    c = ctx.config.ingest
    return IngestOptions(
        blocklist=c.usernames(),
        files_per_job=c.files_per_job,
        chunk_bytes=c.chunk_mb << 20,
        max_line_bytes=c.max_line_mb << 20,
    )


def run(ctx: StageContext) -> None:
    """Ingest every dump under ``input.dumps`` that is not yet in bronze."""
    from pipelines.spark import spark_session

    cfg = ctx.config
    dumps = find_dumps(cfg.input.dumps)
    if not dumps:
        raise FileNotFoundError(f"input.dumps: no dump files under {cfg.input.dumps!r}")
    ctx.console.print(f"{len(dumps)} dump files under {cfg.input.dumps}")
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} files"),
        TextColumn("{task.fields[rows]:,} records"),
        TimeElapsedColumn(),
        console=ctx.console,
    )
    with progress:
        task = progress.add_task("ingest", total=len(dumps), rows=0)

        def on_batch(batch: dict, ledger: list[dict]) -> None:
            rows = progress.tasks[0].fields["rows"] + sum(r["records"] for r in ledger)
            progress.update(task, advance=len(ledger), rows=rows)

        def spark():
            progress.update(task, description="ingest (starting Spark)")
            s = spark_session(cfg.spark.master, cfg.spark.app_name, cfg.spark.conf)
            progress.update(task, description="ingest")
            return s

        ledger = ingest(spark, ctx.lake, dumps, options(ctx), force=ctx.force, on_batch=on_batch)
        progress.update(task, completed=len(dumps), rows=sum(r["records"] for r in ledger))
    ctx.details["files"] = ledger
    print_ledger(ctx.console, ledger)


def balanced(row: dict) -> bool:
    """records in (non-blank lines) = bronze + quarantined + blocklisted."""
    return (
        row["lines"] - row["blank_lines"]
        == row["records"] + row["quarantined"] + row["blocklisted"]
    )


def print_ledger(console: Console, ledger: list[dict]) -> None:
    """Per-file counts: lines in = bronze + quarantine + blocklisted."""
    t = Table(title="ingest: per-file counts (records in = bronze + quarantined + blocklisted)")
    for col in (
        "file",
        "kind",
        "records in",
        "bronze",
        "quarantined",
        "blocklisted",
        "truncated",
        "balanced",
    ):
        t.add_column(col, justify="left" if col in ("file", "kind") else "right")
    for r in sorted(ledger, key=lambda r: r["source_file"]):
        t.add_row(
            r["source_file"].rsplit("/", 1)[-1],
            r["kind"],
            f"{r['lines'] - r['blank_lines']:,}",
            f"{r['records']:,}",
            f"{r['quarantined']:,}",
            f"{r['blocklisted']:,}",
            "yes" if r["truncated"] else "",
            "✓" if balanced(r) else "✗",
        )
    console.print(t)


STAGE = Stage(
    name="ingest",
    inputs=("input.dumps",),
    outputs=OUTPUTS,
    section="ingest",
    engine="spark",
    run=run,
    summary="Reddit dumps (.zst/.ndjson) -> bronze/{submissions,comments}, quarantine/records",
)

if __name__ == "__main__":
    from jobs.entry import stage_main

    stage_main(STAGE)
