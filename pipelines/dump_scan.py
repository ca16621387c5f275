"""One dump file (or a run of its blocks) scanned into bronze rows, quarantine rows and
its ledger row: the work of one ingest task.

`FileScan.batches` yields the rows in file order (the data source's row path);
`FileScan.write` parses chunks on several threads while one thread decompresses, and
writes the rows itself as Parquet parts (one file per thread and month, row groups of
`ROW_GROUP_ROWS`), so that bytes go from zstd to Parquet without passing through
Spark's row-based writer. A task's files carry a per-attempt id: a failed attempt's
files are never listed in what the task returns, and the driver commits only listed ones.
"""

from __future__ import annotations

import os
import resource
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.dumps import BlockRange, Chunk, DumpReader
from pipelines.records import ChunkParser, ParsedChunk, quarantine_row
from schemas.reddit import KINDS, QUARANTINE_RECORDS

BATCH_ROWS = 65536
#: Rows buffered per thread and month before a row group is written.
ROW_GROUP_ROWS = 262_144
#: The compression of every bronze Parquet file (Spark stages use the same codec).
COMPRESSION = "snappy"


@dataclass
class _Counts:
    records: int = 0
    blank: int = 0
    blocked: int = 0
    repaired: int = 0
    quarantine: list[dict] = field(default_factory=list)

    def add(self, out: ParsedChunk) -> None:
        self.records += out.table.num_rows
        self.blank += out.blank_lines
        self.blocked += out.blocklisted
        self.repaired += out.utf8_repaired
        self.quarantine += out.quarantine


class _PartWriter:
    """Parquet parts of one thread: a file per month, rows buffered into big row groups."""

    def __init__(self, folder: str, stem: str, schema: pa.Schema):
        self.folder, self.stem = folder, stem
        self.schema = schema.remove(schema.get_field_index("month"))
        self.writers: dict[str, pq.ParquetWriter] = {}
        self.pending: dict[str, list[pa.Table]] = {}
        self.rows: dict[str, int] = {}
        self.buffered: dict[str, int] = {}

    def add(self, table: pa.Table) -> None:
        months = table["month"].unique().to_pylist() if table.num_rows else []
        for month in months:
            part = table if len(months) == 1 else table.filter(pc.equal(table["month"], month))
            part = part.drop_columns(["month"])
            self.pending.setdefault(month, []).append(part)
            self.buffered[month] = self.buffered.get(month, 0) + part.num_rows
            if self.buffered[month] >= ROW_GROUP_ROWS:
                self._flush(month)

    def _flush(self, month: str) -> None:
        tables = self.pending.pop(month, [])
        self.buffered.pop(month, None)
        if not tables:
            return
        if month not in self.writers:
            folder = os.path.join(self.folder, f"month={month}")
            os.makedirs(folder, exist_ok=True)
            path = os.path.join(folder, f"{self.stem}.parquet")
            self.writers[month] = pq.ParquetWriter(path, self.schema, compression=COMPRESSION)
        data = pa.concat_tables(tables)
        self.writers[month].write_table(data, row_group_size=data.num_rows)
        self.rows[month] = self.rows.get(month, 0) + data.num_rows

    def close(self) -> list[tuple[str, int]]:
        """Close every file; ``(path, rows)`` of each."""
        for month in list(self.pending):
            self._flush(month)
        out = []
        for month, writer in self.writers.items():
            out.append((writer.where, self.rows[month]))
            writer.close()
        return out


class FileScan:
    """Scan of one dump file, or of the blocks `span` of a ``.zst_blocks`` file."""

    def __init__(
        self,
        path: str,
        kind: str,
        blocklist: frozenset[str] = frozenset(),
        chunk_bytes: int = 16 << 20,
        max_line_bytes: int = 64 << 20,
        span: BlockRange | None = None,
    ):
        self.path, self.kind = path, kind
        self.parser = ChunkParser(kind, path, blocklist)
        self.reader = DumpReader(path, chunk_bytes, max_line_bytes, span)
        self.counts = _Counts()
        self.started = time.perf_counter()

    def _parse(self, chunk: Chunk) -> ParsedChunk:
        return self.parser.parse(chunk.data, chunk.first_line, chunk.lines, chunk.line_numbers)

    def batches(self) -> Iterator[pa.RecordBatch]:
        """The rows as record batches, in file order, on the calling thread."""
        for chunk in self.reader.chunks():
            out = self._parse(chunk)
            self.counts.add(out)
            yield from out.table.to_batches(max_chunksize=BATCH_ROWS)

    def write(self, folder: str, stem: str, threads: int = 1) -> list[tuple[str, int]]:
        """Parse on `threads` threads and write the rows as Parquet parts under
        ``folder/month=YYYY-MM/``; returns ``(path, rows)`` of each part written."""
        local = threading.local()
        writers: list[_PartWriter] = []
        lock = threading.Lock()
        schema = KINDS[self.kind]

        def work(chunk: Chunk) -> ParsedChunk:
            writer = getattr(local, "writer", None)
            if writer is None:
                with lock:
                    writer = _PartWriter(folder, f"{stem}-t{len(writers)}", schema)
                    writers.append(writer)
                local.writer = writer
            out = self._parse(chunk)
            writer.add(out.table)
            return out

        with ThreadPoolExecutor(max(1, threads), thread_name_prefix="zipp-parse") as pool:
            running: set[Future] = set()
            for chunk in self.reader.chunks():
                running.add(pool.submit(work, chunk))
                if len(running) > threads:  # bound the chunks held in memory
                    finished, running = wait(running, return_when=FIRST_COMPLETED)
                    for f in finished:
                        self.counts.add(f.result())
            for f in running:
                self.counts.add(f.result())
        return [part for w in writers for part in w.close()]

    def finish(self) -> tuple[list[dict], dict]:
        """(quarantine rows, ledger row) once every chunk has been read."""
        stats, c = self.reader.stats, self.counts
        quarantine = list(c.quarantine)
        for line, head, size in stats.oversize:
            quarantine.append(
                quarantine_row(
                    self.path,
                    line,
                    self.kind,
                    "line_too_long",
                    f"line of {size} bytes exceeds max_line_bytes",
                    head,
                    size,
                )
            )
        for line, error in stats.bad_blocks:
            quarantine.append(
                quarantine_row(self.path, line, self.kind, "corrupt_block", error, b"", 0)
            )
        quarantined_lines = len(quarantine)
        if stats.truncated:
            at = stats.lines + 1 if stats.truncated_at is None else stats.truncated_at
            quarantine.append(
                quarantine_row(
                    self.path,
                    at,
                    self.kind,
                    "truncated_file",
                    f"{stats.truncation}; {stats.lines} lines read",
                    b"",
                    0,
                )
            )
        ledger = {
            "source_file": self.path,
            "kind": self.kind,
            "compressed_bytes": stats.compressed_bytes,
            "decompressed_bytes": stats.decompressed_bytes,
            "frames": stats.frames,
            "lines": stats.lines + len(stats.bad_blocks),
            "blank_lines": c.blank,
            "records": c.records,
            "quarantined": quarantined_lines,
            "blocklisted": c.blocked,
            "utf8_repaired": c.repaired,
            "truncated": stats.truncated,
            "seconds": time.perf_counter() - self.started,
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        }
        return quarantine, ledger


def write_quarantine(folder: str, stem: str, rows: list[dict]) -> str | None:
    """The quarantine rows as one Parquet file (none when there are no rows)."""
    if not rows:
        return None
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{stem}.parquet")
    pq.write_table(pa.Table.from_pylist(rows, QUARANTINE_RECORDS), path, compression="zstd")
    return path


def attempt_stem(index: int) -> str:
    """File stem of one task attempt's parts: the partition and a fresh attempt id."""
    return f"p{index:05d}-{uuid.uuid4().hex[:8]}"
