"""``reddit_dumps``: a Spark 4 Python data source over Reddit monthly dump files.

    spark.read.format("reddit_dumps").option("kind", "comments").load("dumps/RC_*.zst")

One partition per file; each yields Arrow record batches typed by `schemas.reddit`.
Bad lines and file-level problems do not fail the task: they are written, with one
ledger row per file, as Parquet side outputs under the ``side_output`` option's folder
(file names fixed per partition, so a retried task overwrites its own output).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql.datasource import DataSource, DataSourceReader, InputPartition
from pyspark.sql.types import StructType

from pipelines.dumps import DumpReader, dump_kind, find_dumps
from pipelines.records import ChunkParser, quarantine_row
from schemas.reddit import INGEST_FILES, KINDS, QUARANTINE_RECORDS
from schemas.spark import spark_schema

BATCH_ROWS = 65536


@dataclass
class DumpPartition(InputPartition):
    """One dump file."""

    index: int
    path: str


class RedditDumpSource(DataSource):
    """Options: ``kind`` (submissions|comments, required), ``side_output`` (folder),
    ``paths`` (JSON list; else the load path: folder, glob or file), ``blocklist``
    (JSON list of usernames dropped and counted), ``chunk_bytes``, ``max_line_bytes``."""

    @classmethod
    def name(cls) -> str:
        return "reddit_dumps"

    def schema(self) -> StructType:
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
        )


class RedditDumpReader(DataSourceReader):
    def __init__(
        self,
        kind: str,
        paths: list[str],
        side_output: str | None,
        blocklist: frozenset[str],
        chunk_bytes: int,
        max_line_bytes: int,
    ):
        self.kind = kind
        self.paths = paths
        self.side_output = side_output
        self.blocklist = blocklist
        self.chunk_bytes = chunk_bytes
        self.max_line_bytes = max_line_bytes

    def partitions(self) -> list[DumpPartition]:
        return [DumpPartition(i, p) for i, p in enumerate(self.paths)]

    def read(self, partition: DumpPartition) -> Iterator[pa.RecordBatch]:
        yield from read_dump_file(
            partition.path,
            self.kind,
            self.blocklist,
            self.side_output,
            partition.index,
            self.chunk_bytes,
            self.max_line_bytes,
        )


def read_dump_file(
    path: str,
    kind: str,
    blocklist: frozenset[str],
    side_output: str | None,
    index: int = 0,
    chunk_bytes: int = 16 << 20,
    max_line_bytes: int = 64 << 20,
) -> Iterator[pa.RecordBatch]:
    """Yield a dump file's bronze rows as record batches; write its quarantine and ledger."""
    started = time.perf_counter()
    parser = ChunkParser(kind, path, blocklist)
    reader = DumpReader(path, chunk_bytes=chunk_bytes, max_line_bytes=max_line_bytes)
    quarantine: list[dict] = []
    records = blank = blocked = repaired = 0
    for chunk, first_line in reader:
        out = parser.parse(chunk, first_line)
        quarantine += out.quarantine
        records += out.table.num_rows
        blank += out.blank_lines
        blocked += out.blocklisted
        repaired += out.utf8_repaired
        yield from out.table.to_batches(max_chunksize=BATCH_ROWS)
    stats = reader.stats
    for line, head, size in stats.oversize:
        quarantine.append(
            quarantine_row(
                path,
                line,
                kind,
                "line_too_long",
                f"line of {size} bytes exceeds max_line_bytes",
                head,
                size,
            )
        )
    quarantined_lines = len(quarantine)
    if stats.truncated:
        quarantine.append(
            quarantine_row(
                path,
                stats.lines + 1,
                kind,
                "truncated_file",
                f"{stats.truncation}; {stats.lines} lines read",
                b"",
                0,
            )
        )
    ledger = {
        "source_file": path,
        "kind": kind,
        "compressed_bytes": stats.compressed_bytes,
        "decompressed_bytes": stats.decompressed_bytes,
        "frames": stats.frames,
        "lines": stats.lines,
        "blank_lines": blank,
        "records": records,
        "quarantined": quarantined_lines,
        "blocklisted": blocked,
        "utf8_repaired": repaired,
        "truncated": stats.truncated,
        "seconds": time.perf_counter() - started,
    }
    if side_output:
        _write_side(
            side_output, "quarantine", index, pa.Table.from_pylist(quarantine, QUARANTINE_RECORDS)
        )
        _write_side(side_output, "files", index, pa.Table.from_pylist([ledger], INGEST_FILES))


def _write_side(root: str, what: str, index: int, table: pa.Table) -> None:
    folder = os.path.join(root, what)
    os.makedirs(folder, exist_ok=True)
    final = os.path.join(folder, f"part-{index:05d}.parquet")
    tmp = final + ".tmp"
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, final)
