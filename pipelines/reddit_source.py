"""``reddit_dumps``: a Spark 4 Python data source over Reddit monthly dump files.

    spark.read.format("reddit_dumps").option("kind", "comments").load("dumps/RC_*.zst")

One partition per file, or per run of blocks of a ``.zst_blocks`` file (``split_mb``
compressed each); each yields Arrow record batches typed by `schemas.reddit`. Bad lines
and file-level problems do not fail the task: they become quarantine rows.

With the ``write_to`` option (what `zipp ingest` uses) each task writes its rows itself
as Parquet parts under that folder (`pipelines.dump_scan`: decompress on one thread,
parse and write in ``workers`` processes), and the DataFrame holds only what the tasks wrote:
one `WRITTEN` row per file (``table``, ``path``, ``rows``) and one ``ledger`` row per
partition. Without it, quarantine and ledger rows go to the ``side_output`` folder.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql.datasource import DataSource, DataSourceReader, InputPartition
from pyspark.sql.types import StructType

from pipelines.dump_scan import FileScan, attempt_stem, write_quarantine
from pipelines.dumps import BlockRange, dump_kind, find_dumps, is_zst_blocks, zst_blocks_ranges
from schemas.reddit import INGEST_FILES, KINDS, QUARANTINE_RECORDS
from schemas.spark import spark_schema

#: What a ``write_to`` read returns: the files written, and each partition's ledger.
WRITTEN = pa.schema(
    [
        pa.field("table", pa.string()),
        pa.field("path", pa.string()),
        pa.field("rows", pa.int64()),
        pa.field("ledger", pa.string()),
    ]
)


@dataclass
class DumpPartition(InputPartition):
    """One dump file, or a run of a ``.zst_blocks`` file's blocks."""

    index: int
    path: str
    span: BlockRange | None = None


class RedditDumpSource(DataSource):
    """Options: ``kind`` (submissions|comments|subreddits, required), ``side_output`` (folder),
    ``paths`` (JSON list; else the load path: folder, glob or file), ``blocklist``
    (JSON list of usernames dropped and counted), ``chunk_bytes``, ``max_line_bytes``,
    ``split_mb`` (compressed MB per partition of a ``.zst_blocks`` file), ``write_to``
    (folder: tasks write Parquet parts there and return `WRITTEN` rows), ``workers``
    (parsing processes per task with ``write_to``)."""

    @classmethod
    def name(cls) -> str:
        return "reddit_dumps"

    def schema(self) -> StructType:
        if self.options.get("write_to"):
            return spark_schema(WRITTEN)
        return spark_schema(KINDS[self._kind()])

    def _kind(self) -> str:
        kind = self.options.get("kind")
        if kind not in KINDS:
            raise ValueError(
                f"reddit_dumps: option kind must be one of {list(KINDS)}, got {kind!r}"
            )
        return kind

    def reader(self, schema: StructType) -> DataSourceReader:
        opts = self.options
        paths = json.loads(opts["paths"]) if "paths" in opts else find_dumps(opts["path"])
        kind = self._kind()
        wrong = [p for p in paths if dump_kind(p) != kind]
        if wrong:
            raise ValueError(f"reddit_dumps: {wrong[0]!r} does not hold {kind}")
        return RedditDumpReader(
            kind=kind,
            paths=paths,
            side_output=opts.get("side_output"),
            blocklist=frozenset(json.loads(opts.get("blocklist", "[]"))),
            chunk_bytes=int(opts.get("chunk_bytes", 16 << 20)),
            max_line_bytes=int(opts.get("max_line_bytes", 64 << 20)),
            split_bytes=int(float(opts.get("split_mb", 256)) * (1 << 20)),
            write_to=opts.get("write_to"),
            workers=int(opts.get("workers", 1)),
        )


def plan_partitions(paths: list[str], split_bytes: int) -> list[DumpPartition]:
    """One partition per file; a ``.zst_blocks`` file gets one per run of blocks."""
    parts: list[DumpPartition] = []
    for path in paths:
        spans = zst_blocks_ranges(path, split_bytes) if is_zst_blocks(path) else [None]
        parts += [DumpPartition(len(parts) + i, path, span) for i, span in enumerate(spans)]
    return parts


@dataclass
class RedditDumpReader(DataSourceReader):
    kind: str
    paths: list[str]
    side_output: str | None
    blocklist: frozenset[str]
    chunk_bytes: int
    max_line_bytes: int
    split_bytes: int = 256 << 20
    write_to: str | None = None
    workers: int = 1

    def partitions(self) -> list[DumpPartition]:
        return plan_partitions(self.paths, self.split_bytes)

    def _scan(self, part: DumpPartition) -> FileScan:
        return FileScan(
            part.path, self.kind, self.blocklist, self.chunk_bytes, self.max_line_bytes, part.span
        )

    def read(self, partition: DumpPartition) -> Iterator[pa.RecordBatch]:
        scan = self._scan(partition)
        if self.write_to:
            yield write_partition(scan, self.write_to, partition.index, self.workers)
            return
        yield from scan.batches()
        quarantine, ledger = scan.finish()
        if self.side_output:
            table = pa.Table.from_pylist(quarantine, QUARANTINE_RECORDS)
            _write_side(self.side_output, "quarantine", partition.index, table)
            ledger_table = pa.Table.from_pylist([ledger], INGEST_FILES)
            _write_side(self.side_output, "files", partition.index, ledger_table)


def write_partition(scan: FileScan, root: str, index: int, workers: int) -> pa.RecordBatch:
    """Scan one partition into Parquet parts under `root` (``<kind>/month=.../`` and
    ``quarantine/``); the `WRITTEN` rows that name them and the partition's ledger."""
    stem = attempt_stem(index)
    parts = scan.write(os.path.join(root, scan.kind), stem, workers)
    quarantine, ledger = scan.finish()
    rows = [{"table": scan.kind, "path": p, "rows": n, "ledger": None} for p, n in parts]
    q_path = write_quarantine(os.path.join(root, "quarantine"), stem, quarantine)
    if q_path:
        rows.append({"table": "quarantine", "path": q_path, "rows": len(quarantine)})
    rows.append({"table": "ledger", "path": None, "rows": 1, "ledger": json.dumps(ledger)})
    return pa.RecordBatch.from_pylist(rows, WRITTEN)


def _write_side(root: str, what: str, index: int, table: pa.Table) -> None:
    folder = os.path.join(root, what)
    os.makedirs(folder, exist_ok=True)
    final = os.path.join(folder, f"part-{index:05d}.parquet")
    tmp = final + ".tmp"
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, final)
