"""Stage `ingest` (Spark): every Reddit dump under ``input.dumps`` not yet in bronze ->
bronze/{submissions,comments,subreddits} + quarantine/records, after removing the records of newly
blocklisted users from what is already there."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from contract.stage import Stage
from contract.stage_io import StageIO
from pipelines.config import IngestConfig


def ingest(io: StageIO) -> None:
    """Every dump under ``input.dumps`` not yet in bronze -> bronze + quarantine; first,
    records of newly blocklisted users are removed from what is already there."""
    from pipelines.deletion import prepare, purge_blocklisted
    from pipelines.dumps import find_dumps
    from pipelines.ingest import IngestOptions, read_journal
    from pipelines.ingest import ingest as run_ingest
    from pipelines.reddit_source import RedditDumpSource

    c: IngestConfig = io.config.ingest
    dumps = find_dumps(io.config.input.dumps)
    if not dumps:
        raise FileNotFoundError(f"input.dumps: no dump files under {io.config.input.dumps!r}")
    blocklist = io.names("ingest.blocklist")
    grew = prepare(io.lake, blocklist, force=io.force)
    opts = IngestOptions(
        blocklist=blocklist,
        files_per_job=c.files_per_job,
        chunk_bytes=c.chunk_mb << 20,
        max_line_bytes=c.max_line_mb << 20,
        workers_per_task=c.workers_per_task,
        split_mb=c.split_mb,
    )
    io.console.print(f"{len(dumps)} dump files under {io.config.input.dumps}")
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} files"),
        TextColumn("{task.fields[rows]:,} records"),
        TimeElapsedColumn(),
        console=io.console,
    )
    with progress:
        task = progress.add_task("ingest", total=len(dumps), rows=0)

        def on_batch(batch: dict, ledger: list[dict]) -> None:
            rows = progress.tasks[0].fields["rows"] + sum(r["records"] for r in ledger)
            progress.update(task, advance=len(ledger), rows=rows)

        def spark():
            progress.update(task, description="ingest (starting Spark)")
            s = io.spark
            s.dataSource.register(RedditDumpSource)
            progress.update(task, description="ingest")
            return s

        run_ingest(spark, io.lake, dumps, opts, force=io.force, on_batch=on_batch)
    removed = purge_blocklisted(io.lake, blocklist, grew)
    io.removed("records", removed)
    if removed:
        io.console.print(f"  ingest: removed {removed:,} record(s) of blocklisted users")
    ledger = [row for b in read_journal(io.lake) for row in b["ledger"]]
    io.details["files"] = ledger
    print_ledger(io.console, ledger)


def balanced(row: dict) -> bool:
    """records in (non-blank lines) = bronze + superseded + quarantined + blocklisted
    (``records`` counts the typed rows, superseded versions of a subreddit included)."""
    return (
        row["lines"] - row["blank_lines"]
        == row["records"] + row["quarantined"] + row["blocklisted"]
    )


def print_ledger(console: Console, ledger: list[dict]) -> None:
    """Per-file counts: lines in = bronze + superseded + quarantine + blocklisted."""
    t = Table(
        title="ingest: per-file counts "
        "(records in = bronze + superseded + quarantined + blocklisted)"
    )
    cols = (
        "file",
        "kind",
        "records in",
        "bronze",
        "superseded",
        "quarantined",
        "blocklisted",
        "truncated",
    )
    for col in (*cols, "balanced"):
        t.add_column(col, justify="left" if col in ("file", "kind") else "right")
    for r in sorted(ledger, key=lambda r: r["source_file"]):
        t.add_row(
            r["source_file"].rsplit("/", 1)[-1],
            r["kind"],
            f"{r['lines'] - r['blank_lines']:,}",
            f"{r['records'] - r.get('superseded', 0):,}",
            f"{r.get('superseded', 0):,}",
            f"{r['quarantined']:,}",
            f"{r['blocklisted']:,}",
            "yes" if r["truncated"] else "",
            "✓" if balanced(r) else "✗",
        )
    console.print(t)


STAGE = Stage(
    name="ingest",
    run=ingest,
    engine="spark",
    inputs=("input.dumps",),
    files=("ingest.blocklist",),
    outputs=("bronze/submissions", "bronze/comments", "bronze/subreddits", "quarantine/records"),
    config=("input", "ingest"),
    summary="Reddit dumps (.zst/.ndjson) -> bronze/{submissions,comments,subreddits}, "
    "quarantine/records",
)
