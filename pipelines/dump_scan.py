"""One dump file (or a run of its blocks) scanned into bronze rows, quarantine rows and
its ledger row: the work of one ingest task.

`FileScan.batches` yields the rows in file order (the data source's row path).
`FileScan.write` decompresses in this process and parses chunks in `workers` worker
processes (chunk files in /dev/shm that polars maps; no GIL between them), each writing
the rows itself as Parquet parts (one file per worker and month, row groups of
`ROW_GROUP_ROWS`), so that bytes go from zstd to Parquet without passing through Spark's
row-based writer. A task's files carry a per-attempt id: a failed attempt's files are
never listed in what the task returns, and the driver commits only listed ones.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import resource
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.dumps import BlockRange, Chunk, DumpReader
from pipelines.records import ChunkParser, ParsedChunk, quarantine_row
from schemas.reddit import QUARANTINE_RECORDS

BATCH_ROWS = 65536
#: Rows buffered per worker and month before a row group is written.
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
        self.add_counts(*_counts_of(out))

    def add_counts(
        self, records: int, blank: int, blocked: int, repaired: int, quarantine: list[dict]
    ) -> None:
        self.records += records
        self.blank += blank
        self.blocked += blocked
        self.repaired += repaired
        self.quarantine += quarantine


def _counts_of(out: ParsedChunk) -> tuple:
    """What a parsed chunk adds to its file's counts (a worker returns just this)."""
    return out.table.num_rows, out.blank_lines, out.blocklisted, out.utf8_repaired, out.quarantine


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
        month_col = table["month"].cast(pa.string())
        months = month_col.unique().to_pylist() if table.num_rows else []
        for month in months:
            part = table if len(months) == 1 else table.filter(pc.equal(month_col, month))
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
            # no Arrow schema in the file: readers see plain strings for the
            # dictionary-encoded lineage, as they do in Spark's files
            self.writers[month] = pq.ParquetWriter(
                path, self.schema, compression=COMPRESSION, store_schema=False
            )
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
        self.blocklist = blocklist
        self.parser = ChunkParser(kind, path, blocklist)
        self.reader = DumpReader(path, chunk_bytes, max_line_bytes, span)
        self.counts = _Counts()
        self.worker_rss = 0
        self.started = time.perf_counter()

    def _parse(self, chunk: Chunk) -> ParsedChunk:
        return self.parser.parse(chunk.data, chunk.first_line, chunk.lines, chunk.line_numbers)

    def batches(self) -> Iterator[pa.RecordBatch]:
        """The rows as record batches, in file order, on the calling thread."""
        for chunk in self.reader.chunks():
            out = self._parse(chunk)
            self.counts.add(out)
            yield from out.table.to_batches(max_chunksize=BATCH_ROWS)

    def write(self, folder: str, stem: str, workers: int = 1) -> list[tuple[str, int]]:
        """Parse and write the rows as Parquet parts under ``folder/month=YYYY-MM/``;
        returns ``(path, rows)`` of each part written. With `workers` > 1, chunks go
        through shared memory to that many worker processes (no GIL between them), each
        writing its own parts, while this process decompresses."""
        if workers > 1:
            return self._write_parallel(folder, stem, workers)
        self.parser = ChunkParser(self.kind, self.path, self.blocklist, dictionary_lineage=True)
        writer = _PartWriter(folder, f"{stem}-w0", self.parser.out_schema)
        for chunk in self.reader.chunks():
            out = self._parse(chunk)
            writer.add(out.table)
            self.counts.add(out)
        return writer.close()

    def _write_parallel(self, folder: str, stem: str, workers: int) -> list[tuple[str, int]]:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload([__name__])
        barrier = ctx.Barrier(workers)
        spec = (self.kind, self.path, self.blocklist, folder, stem, barrier)
        os.environ["POLARS_MAX_THREADS"] = "1"  # each worker parses on one core
        running: dict[Future, str] = {}
        with tempfile.TemporaryDirectory(prefix="zipp-chunks-", dir=scratch_dir()) as scratch:
            # chunk files reused one after another: workers map them, nothing is copied
            free = [os.path.join(scratch, f"chunk-{i}") for i in range(workers + 1)]
            with ProcessPoolExecutor(workers, ctx, _init_worker, spec) as pool:
                for chunk in self.reader.chunks(pieces=True):
                    if not free:  # bound the chunks held in memory
                        done, _ = wait(running, return_when=FIRST_COMPLETED)
                        free += self._collect(done, running)
                    path = free.pop()
                    with open(path, "wb") as f:
                        f.writelines(chunk.data if isinstance(chunk.data, list) else [chunk.data])
                    running[pool.submit(_parse_job, path, *chunk[1:])] = path
                self._collect(list(running), running)
                closing = [pool.submit(_close_job) for _ in range(workers)]
                closed = [f.result() for f in closing]
        self.worker_rss = sum(rss for _, rss in closed)
        return [part for parts, _ in closed for part in parts]

    def _collect(self, done, running: dict) -> list[str]:
        """Count finished chunks; returns their files for reuse."""
        freed = []
        for f in done:
            self.counts.add_counts(*f.result())
            freed.append(running.pop(f))
        return freed

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
            # this process plus its parsing workers (each at its own peak: an upper bound)
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            + self.worker_rss,
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


# ---------------------------------------------------------------- worker processes
_STATE: dict = {}


def _init_worker(kind, path, blocklist, folder, stem, barrier) -> None:
    parser = ChunkParser(kind, path, blocklist, dictionary_lineage=True)
    _STATE.update(
        parser=parser,
        writer=_PartWriter(folder, f"{stem}-w{os.getpid()}", parser.out_schema),
        barrier=barrier,
    )


def _parse_job(path: str, first_line: int, lines: int, line_numbers) -> tuple:
    out = _STATE["parser"].parse(path, first_line, lines, line_numbers)
    _STATE["writer"].add(out.table)
    return _counts_of(out)


def _close_job() -> tuple[list[tuple[str, int]], int]:
    """Close this worker's parts (their paths and rows, and the worker's peak RSS);
    waits for every worker, so that each runs it exactly once."""
    parts = _STATE["writer"].close()
    _STATE["barrier"].wait()
    return parts, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def scratch_dir() -> str:
    """Where chunks go to the workers: /dev/shm (memory) when it has room, else the
    temporary folder (a container's /dev/shm is often 64 MB)."""
    try:
        st = os.statvfs("/dev/shm")
        if os.access("/dev/shm", os.W_OK) and st.f_bavail * st.f_frsize >= 1 << 30:
            return "/dev/shm"
    except OSError:
        pass
    return tempfile.gettempdir()
