"""The Spark and Ray Data stages' domain functions: ingest, graph, images, features.

Each takes the runner's `StageIO`, reads its declared inputs, calls the pure functions
of this package (which the tests call directly) and writes its declared outputs.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, time

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from schemas.stage_io import StageIO

GRAPH_TABLES = (
    "silver/users",
    "silver/subreddits",
    "silver/edges",
    "silver/snippets",
    "silver/user_images",
)


def ingest(io: StageIO) -> None:
    """Every dump under ``input.dumps`` not yet in bronze -> bronze + quarantine; first,
    records of newly blocklisted users are removed from what is already there."""
    from pipelines.deletion import prepare, purge_blocklisted
    from pipelines.dumps import find_dumps
    from pipelines.ingest import IngestOptions, read_journal
    from pipelines.ingest import ingest as run_ingest
    from pipelines.reddit_source import RedditDumpSource

    c = io.config.ingest
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
    """records in (non-blank lines) = bronze + quarantined + blocklisted."""
    return (
        row["lines"] - row["blank_lines"]
        == row["records"] + row["quarantined"] + row["blocklisted"]
    )


def print_ledger(console: Console, ledger: list[dict]) -> None:
    """Per-file counts: lines in = bronze + quarantine + blocklisted."""
    t = Table(title="ingest: per-file counts (records in = bronze + quarantined + blocklisted)")
    cols = ("file", "kind", "records in", "bronze", "quarantined", "blocklisted", "truncated")
    for col in (*cols, "balanced"):
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


def _epoch(day) -> int | None:
    return None if day is None else int(datetime.combine(day, time(), UTC).timestamp())


def graph(io: StageIO) -> None:
    """bronze -> silver users, subreddits, edges (with splits), snippets, user images."""
    from pipelines.graph_build import GraphOptions, build_graph

    g = io.config.graph
    opts = GraphOptions(
        bots=io.names("graph.bots"),
        min_user_interactions=g.min_user_interactions,
        min_subreddit_users=g.min_subreddit_users,
        start_utc=_epoch(g.start),
        end_utc=_epoch(g.end),
        val_fraction=g.val_fraction,
        test_fraction=g.test_fraction,
        inductive_fraction=g.inductive_fraction,
        snippets_per_edge=g.snippets_per_edge,
        seed=g.seed,
    )
    with io.console.status("graph: starting Spark"):
        spark = io.spark
    subs, comments = (io.read_spark(f"bronze/{k}") for k in ("submissions", "comments"))
    frames = build_graph(spark, subs, comments, opts)
    for name in GRAPH_TABLES:
        with io.console.status(f"graph: writing {name}"):
            io.write_spark(name, frames[name])
        io.console.print(f"  {name}: {io.lake.rows(name):,} rows")


def images(io: StageIO) -> None:
    """silver/user_images -> silver/image_embeddings (one row per image, ok or failed)."""
    from pipelines.image_embed import fetch_and_embed

    c = io.config.images
    table = io.read("silver/user_images")
    with io.console.status("images: starting Ray"):
        io.ray()
    fetch_kw = {"timeout": c.timeout_s, "max_bytes": c.max_mb << 20, "retries": c.retries}
    out = fetch_and_embed(
        table,
        tuple(c.allow_hosts),
        c.model,
        fetch_tasks=c.fetch_tasks,
        embed_actors=c.embed_actors,
        num_gpus=c.num_gpus,
        batch_size=c.batch_size,
        fetch_kw=fetch_kw,
    )
    if out.num_rows != table.num_rows:
        raise RuntimeError(f"images: {table.num_rows} in but {out.num_rows} out")
    io.write("silver/image_embeddings", out)
    status = Counter(out["status"].to_pylist())
    reasons = Counter(r.split(":", 1)[0] for r in out["reason"].to_pylist() if r)
    io.details.update(status=dict(status), failures=dict(reasons))
    io.console.print(
        f"  images: {status.get('ok', 0):,} ok, {status.get('failed', 0):,} failed"
        + (f" ({dict(reasons)})" if reasons else "")
    )


def features(io: StageIO) -> None:
    """silver/subreddits + history snippets of training edges and history image
    embeddings -> silver/node_features (subreddit text vectors, user visual profiles);
    held-out reference posts and held-out edges never count."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from pipelines.text_features import (
        default_text_model,
        subreddit_documents,
        text_features,
        visual_profiles,
    )

    c = io.config.features
    # a subreddit's text comes from its training edges only: held-out edges' and unseen
    # users' comments must not reach the encoder's inputs
    edges = io.history("silver/edges", ["user_id", "subreddit_id", "split"])
    train = edges.filter(pc.equal(edges["split"], "train")).select(["user_id", "subreddit_id"])
    snippets = io.history("silver/snippets").join(
        train, ["user_id", "subreddit_id"], join_type="left semi"
    )
    ids, docs, counts = subreddit_documents(
        io.read("silver/subreddits"), snippets, c.texts_per_subreddit
    )
    with io.console.status("features: starting Ray"):
        io.ray()
    text = text_features(
        ids,
        docs,
        counts,
        c.text_model or default_text_model(),
        actors=c.actors,
        num_gpus=c.num_gpus,
    )
    visual = visual_profiles(io.history("silver/image_embeddings"))
    io.write("silver/node_features", pa.concat_tables([text, visual]))
    io.console.print(
        f"  node features: {text.num_rows:,} subreddits (text), {visual.num_rows:,} users (visual)"
    )
