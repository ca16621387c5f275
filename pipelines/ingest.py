"""Ingest: Reddit dumps -> ``bronze/{submissions,comments,subreddits}`` + ``quarantine/records``.

Files are ingested in batches (one Spark job each). A batch commits its rows to each
table (`Lake.append_parts`), then appends one line to the journal. Parquet: the part
files are moved in under names prefixed with the batch id; Delta: one append
transaction per table, tagged with the batch id. A killed run leaves at most one
half-committed batch, which the journal does not know: the next run removes its rows
(Parquet: by file-name prefix; Delta: the rows of dump files no kept batch covers) and
redoes the batch. Files whose size/mtime changed, or that vanished, have their batch's
rows removed and redone. The tables' format is `lake.format`; tables held in the other
format are converted first.

Subreddit metadata files are ingested the same way, then ``bronze/subreddits`` keeps only
the newest version of each id (`pipelines.subreddit_meta`); a changed or vanished metadata
file has every metadata batch redone (the versions it superseded are gone).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from pyspark.sql import SparkSession

from pipelines.dumps import dump_kind
from pipelines.reddit_source import plan_partitions
from pipelines.subreddit_meta import TABLE as METADATA
from pipelines.subreddit_meta import keep_newest, kept_by_file, superseded
from storage.lake import Lake, data_files, fingerprint, swap_in

OUTPUTS = ("bronze/submissions", "bronze/comments", "quarantine/records")
#: Every table ingest writes: also the subreddit metadata (rows only where the dumps
#: include metadata files).
TABLES = (*OUTPUTS, METADATA)
JOURNAL = "ingest.journal.jsonl"
#: Bump when the bronze/quarantine content for the same input would change.
FORMAT_VERSION = 2  # 2: meta_* columns from Arctic Shift's _meta; parts written by tasks


@dataclass(frozen=True)
class IngestOptions:
    blocklist: frozenset[str] = frozenset()
    files_per_job: int = 4
    chunk_bytes: int = 16 << 20
    max_line_bytes: int = 64 << 20
    #: Parsing processes per task; 0 = the job's cores over its partitions (at most 8).
    workers_per_task: int = 0
    #: Compressed MB per task of a ``.zst_blocks`` file.
    split_mb: float = 256

    def content_hash(self) -> str:
        """What changes the tables' content (not speed knobs). The blocklist is not in it:
        a longer list purges the committed batches in place (`pipelines.deletion`), a
        shorter one re-ingests, so batches need not be redone for every new name."""
        payload = json.dumps({"v": FORMAT_VERSION})
        return hashlib.sha1(payload.encode()).hexdigest()[:16]


def _journal_path(lake: Lake) -> Path:
    return lake.manifests / JOURNAL


def read_journal(lake: Lake) -> list[dict]:
    """Committed batches, oldest first (a torn last line from a kill is ignored)."""
    path = _journal_path(lake)
    if not path.exists():
        return []
    batches = []
    for line in path.read_text().splitlines():
        try:
            batches.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return batches


def write_journal(lake: Lake, batches: list[dict]) -> None:
    """Replace the journal by `batches` (atomically)."""
    path = _journal_path(lake)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(b) + "\n" for b in batches))
    os.replace(tmp, path)


def _append_journal(lake: Lake, batch: dict) -> None:
    path = _journal_path(lake)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(batch) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _batch_of(path: Path) -> str:
    return path.name.split("-", 1)[0]


def _not_covered(keep: list[dict]) -> Callable[[pa.Table], pa.Array]:
    """Rows whose ``source_file`` no kept batch covers."""
    covered = pa.array(sorted({f for b in keep for f in b["files"]}), pa.string())
    return lambda t: pc.invert(pc.is_in(t["source_file"], value_set=covered))


def reconcile(lake: Lake, dumps: list[str], opts: IngestOptions) -> list[dict]:
    """Drop batches that are stale (changed/vanished input, other content config) and
    the rows of half-committed batches; returns the batches that stay valid. Each table
    is cleaned in the format it is held in: Parquet files whose batch id the journal
    does not know are deleted; from a Delta table, the rows of dump files that no kept
    batch covers."""
    content = opts.content_hash()
    current = {p: fingerprint([p]) for p in dumps}
    keep, drop = [], []
    for b in read_journal(lake):
        fresh = b.get("content") == content and all(
            current.get(f) == fp for f, fp in b["files"].items()
        )
        (keep if fresh else drop).append(b)
    if any(b.get("kind") == "subreddits" for b in drop):  # what it superseded is gone
        drop += [b for b in keep if b.get("kind") == "subreddits"]
        keep = [b for b in keep if b.get("kind") != "subreddits"]
    write_journal(lake, keep)  # also drops a torn last line left by a kill mid-append
    valid = {b["batch"] for b in keep}
    for name in TABLES:
        if lake.is_delta(name):
            lake.delete_where(name, _not_covered(keep), columns=["source_file"])
            continue
        for f in data_files(lake.path(name)):
            if _batch_of(f) not in valid:
                f.unlink()
    shutil.rmtree(lake.staging("ingest"), ignore_errors=True)
    return keep


def _to_lake_format(lake: Lake, keep: list[dict]) -> None:
    """Convert outputs held in the other format to `lake.format` (after `reconcile`).
    To Parquet, each kept batch's rows become files named after the batch, as if
    committed by it, so that a later `reconcile` keeps them."""
    for name in TABLES:
        if lake.stored_format(name) in (None, lake.format):
            continue
        if lake.format == "delta":
            lake.convert(name)
            continue
        data = lake.dataset(name)
        work = lake.staging("ingest", "convert")
        shutil.rmtree(work, ignore_errors=True)
        aside, parts = Lake(work / "table"), Lake(work / "parts")
        aside.ensure(name)
        for b in keep:
            rows = data.to_table(filter=ds.field("source_file").isin(sorted(b["files"])))
            if rows.num_rows:
                parts.write_table(name, rows)
                aside.append_parts(name, parts.path(name), b["batch"])
        swap_in(aside.path(name), lake.path(name))
        shutil.rmtree(work, ignore_errors=True)


def plan_batches(dumps: list[str], done: set[str], opts: IngestOptions) -> list[dict]:
    """Group files not yet ingested into batches of one kind, `files_per_job` each."""
    by_kind: dict[str, list[str]] = {}
    for p in dumps:
        if p not in done:
            by_kind.setdefault(dump_kind(p), []).append(p)
    batches = []
    for kind, files in sorted(by_kind.items()):
        for i in range(0, len(files), opts.files_per_job):
            group = files[i : i + opts.files_per_job]
            fps = {f: fingerprint([f]) for f in group}
            key = json.dumps([kind, opts.content_hash(), sorted(fps.items())])
            bid = "b" + hashlib.sha1(key.encode()).hexdigest()[:15]
            batches.append(
                {"batch": bid, "kind": kind, "files": fps, "content": opts.content_hash()}
            )
    return batches


def _workers(spark: SparkSession, partitions: int, opts: IngestOptions) -> int:
    if opts.workers_per_task:
        return opts.workers_per_task
    cores = spark.sparkContext.defaultParallelism
    return max(1, min(8, cores // max(1, partitions)))


def merge_ledgers(rows: list[dict]) -> list[dict]:
    """One ledger row per file from its partitions' rows (a split file has several)."""
    by_file: dict[str, dict] = {}
    for row in rows:
        seen = by_file.get(row["source_file"])
        if seen is None:
            by_file[row["source_file"]] = dict(row)
            continue
        for key, value in row.items():
            if key in ("source_file", "kind"):
                continue
            if key == "truncated":
                seen[key] = seen[key] or value
            elif key == "peak_rss_bytes":
                seen[key] = max(seen[key] or 0, value or 0)
            else:
                seen[key] += value
    return [by_file[f] for f in sorted(by_file)]


def _keep_only(folder: Path, listed: set[str]) -> None:
    """Delete Parquet parts under `folder` that no successful task attempt listed."""
    for f in data_files(folder):
        if str(f) not in listed:
            f.unlink()


def run_batch(spark: SparkSession, lake: Lake, batch: dict, opts: IngestOptions) -> list[dict]:
    """Ingest one batch with Spark and commit it; returns its per-file ledger rows.

    Spark plans the partitions (files, runs of blocks), runs and retries the tasks; each
    task writes its own Parquet parts and returns their names with its ledger; only the
    parts named by the attempts Spark kept are committed."""
    staging = lake.staging("ingest", batch["batch"])
    shutil.rmtree(staging, ignore_errors=True)
    kind = batch["kind"]
    paths = sorted(batch["files"])
    workers = _workers(spark, len(plan_partitions(paths, int(opts.split_mb * (1 << 20)))), opts)
    written = (
        spark.read.format("reddit_dumps")
        .option("kind", kind)
        .option("paths", json.dumps(paths))
        .option("write_to", str(staging))
        .option("workers", str(workers))
        .option("split_mb", str(opts.split_mb))
        .option("blocklist", json.dumps(sorted(opts.blocklist)))
        .option("chunk_bytes", str(opts.chunk_bytes))
        .option("max_line_bytes", str(opts.max_line_bytes))
        .load()
        .collect()
    )
    ledger = merge_ledgers([json.loads(r["ledger"]) for r in written if r["table"] == "ledger"])
    missing = set(batch["files"]) - {r["source_file"] for r in ledger}
    if missing:
        raise RuntimeError(f"ingest: no ledger row for {sorted(missing)}; batch not committed")
    listed = {r["path"] for r in written if r["path"]}
    for folder in (staging / kind, staging / "quarantine"):
        _keep_only(folder, listed)
    lake.append_parts(f"bronze/{kind}", staging / kind, batch["batch"])
    lake.append_parts("quarantine/records", staging / "quarantine", batch["batch"])
    _append_journal(lake, {**batch, "ledger": ledger})
    shutil.rmtree(staging, ignore_errors=True)
    return ledger


def _keep_newest_subreddits(lake: Lake) -> None:
    """Drop older subreddit versions; note in each metadata file's ledger how many of its
    records a newer version superseded. Only where a metadata batch has no such note yet
    (committed by this run, or by one killed before it got here)."""
    batches = read_journal(lake)
    if all("superseded" in r for b in batches if b["kind"] == "subreddits" for r in b["ledger"]):
        return
    keep_newest(lake)
    kept = kept_by_file(lake)
    for b in batches:
        if b["kind"] == "subreddits":
            b["ledger"] = superseded(b["ledger"], kept)
    write_journal(lake, batches)


def ingest(
    spark_factory: Callable[[], SparkSession],
    lake: Lake,
    dumps: list[str],
    opts: IngestOptions,
    force: bool = False,
    on_batch: Callable[[dict, list[dict]], None] | None = None,
) -> list[dict]:
    """Bring bronze and quarantine up to date with `dumps`; returns every file's ledger row.

    `spark_factory` is only called when there is work to do.
    """
    if force:
        for name in TABLES:
            shutil.rmtree(lake.path(name), ignore_errors=True)
        write_journal(lake, [])
    keep = reconcile(lake, dumps, opts)
    _to_lake_format(lake, keep)
    done = {f for b in keep for f in b["files"]}
    spark = None
    for batch in plan_batches(dumps, done, opts):
        spark = spark or spark_factory()
        ledger = run_batch(spark, lake, batch, opts)
        if on_batch:
            on_batch(batch, ledger)
    for name in TABLES:
        lake.ensure(name)  # an empty table of its schema where no batch had rows
    _keep_newest_subreddits(lake)
    return [row for b in read_journal(lake) for row in b["ledger"]]
