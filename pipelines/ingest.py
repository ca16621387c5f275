"""Ingest: Reddit dumps -> ``bronze/{submissions,comments}`` + ``quarantine/records``.

Files are ingested in batches (one Spark job each). A batch commits by moving its part
files into the tables under names prefixed with the batch id, then appending one line
to the journal. A killed run leaves at most one half-moved batch: its files carry an id
the journal does not know, so the next run deletes them and redoes the batch. Files
whose size/mtime changed, or that vanished, have their batch's rows removed and redone.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
from pyspark.sql import SparkSession

from pipelines.dumps import dump_kind
from schemas.lake import Lake, fingerprint
from schemas.reddit import INGEST_FILES

OUTPUTS = ("bronze/submissions", "bronze/comments", "quarantine/records")
JOURNAL = "ingest.journal.jsonl"
#: Bump when the bronze/quarantine content for the same input would change.
FORMAT_VERSION = 1


@dataclass(frozen=True)
class IngestOptions:
    blocklist: frozenset[str] = frozenset()
    files_per_job: int = 4
    chunk_bytes: int = 16 << 20
    max_line_bytes: int = 64 << 20

    def content_hash(self) -> str:
        """What changes the tables' content (not speed knobs)."""
        payload = json.dumps({"v": FORMAT_VERSION, "blocklist": sorted(self.blocklist)})
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


def _write_journal(lake: Lake, batches: list[dict]) -> None:
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


def _output_files(lake: Lake) -> list[Path]:
    return [p for name in OUTPUTS for p in lake.path(name).rglob("*.parquet")]


def _batch_of(path: Path) -> str:
    return path.name.split("-", 1)[0]


def reconcile(lake: Lake, dumps: list[str], opts: IngestOptions) -> list[dict]:
    """Drop batches that are stale (changed/vanished input, other content config) and
    files of half-committed batches; returns the batches that stay valid."""
    content = opts.content_hash()
    current = {p: fingerprint([p]) for p in dumps}
    keep, drop = [], []
    for b in read_journal(lake):
        fresh = b.get("content") == content and all(
            current.get(f) == fp for f, fp in b["files"].items()
        )
        (keep if fresh else drop).append(b)
    _write_journal(lake, keep)  # also drops a torn last line left by a kill mid-append
    valid = {b["batch"] for b in keep}
    for f in _output_files(lake):
        if _batch_of(f) not in valid:
            f.unlink()
    shutil.rmtree(lake.staging("ingest"), ignore_errors=True)
    return keep


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


def run_batch(spark: SparkSession, lake: Lake, batch: dict, opts: IngestOptions) -> list[dict]:
    """Ingest one batch with Spark and commit it; returns its per-file ledger rows."""
    staging = lake.staging("ingest", batch["batch"])
    shutil.rmtree(staging, ignore_errors=True)
    side = staging / "_side"
    kind = batch["kind"]
    df = (
        spark.read.format("reddit_dumps")
        .option("kind", kind)
        .option("paths", json.dumps(sorted(batch["files"])))
        .option("side_output", str(side))
        .option("blocklist", json.dumps(sorted(opts.blocklist)))
        .option("chunk_bytes", str(opts.chunk_bytes))
        .option("max_line_bytes", str(opts.max_line_bytes))
        .load()
    )
    df.write.mode("overwrite").partitionBy("month").parquet(str(staging / kind))
    ledger = pq.read_table(side / "files", schema=INGEST_FILES).to_pylist()
    missing = set(batch["files"]) - {r["source_file"] for r in ledger}
    if missing:
        raise RuntimeError(f"ingest: no ledger row for {sorted(missing)}; batch not committed")
    _move_parts(staging / kind, lake.path(f"bronze/{kind}"), batch["batch"])
    _move_parts(side / "quarantine", lake.path("quarantine/records"), batch["batch"])
    _append_journal(lake, {**batch, "ledger": ledger})
    shutil.rmtree(staging, ignore_errors=True)
    return ledger


def _move_parts(src: Path, dst: Path, batch_id: str) -> None:
    """Move Parquet parts under `src` into `dst` (keeping partition folders), renamed
    ``<batch>-<n>.parquet`` so names are deterministic and tell their batch."""
    dst.mkdir(parents=True, exist_ok=True)
    if not src.exists():
        return
    counters: dict[Path, int] = {}
    for part in sorted(src.rglob("*.parquet")):
        rel = part.parent.relative_to(src)
        if pq.ParquetFile(part).metadata.num_rows == 0:
            continue
        n = counters[rel] = counters.get(rel, -1) + 1
        target = dst / rel / f"{batch_id}-{n:05d}.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(part, target)


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
        for name in OUTPUTS:
            shutil.rmtree(lake.path(name), ignore_errors=True)
        _write_journal(lake, [])
    keep = reconcile(lake, dumps, opts)
    done = {f for b in keep for f in b["files"]}
    spark = None
    for batch in plan_batches(dumps, done, opts):
        spark = spark or spark_factory()
        ledger = run_batch(spark, lake, batch, opts)
        if on_batch:
            on_batch(batch, ledger)
    for name in OUTPUTS:
        lake.path(name).mkdir(parents=True, exist_ok=True)
    return [row for b in read_journal(lake) for row in b["ledger"]]
