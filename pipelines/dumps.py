"""Reading Reddit dump files as chunks of NDJSON lines.

Three formats: the published monthly dumps (``RS_/RC_YYYY-MM.zst``: single- or
multi-frame zstd streams with a long window, ``--long=31``; downloads are often
truncated), plain NDJSON, and Arctic Shift's ``.zst_blocks`` (independent zstd blocks,
each ``uint32 row_count``, ``row_count`` x ``(uint32 offset, uint32 size)`` and the rows;
github.com/ArthurHeitmann/zst_blocks_format). `DumpReader` yields chunks of whole lines
with their line numbers, counts frames (blocks) and bytes, and records where a file ends
early or a block is corrupt instead of raising.

A ``.zst_blocks`` file has no lines; a row's ``source_line`` is its address,
``block * 10**6 + row + 1`` (0-based block index in the file and row in the block), so a
file split by blocks over many tasks numbers its rows without reading what precedes
them. `zst_blocks_row` reads a row back from that number.
"""

from __future__ import annotations

import glob
import os
import queue
import re
import struct
import threading
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import zstandard

DUMP_SUFFIXES = (".zst", ".zst_blocks", ".ndjson", ".jsonl", ".json")
_KIND_BY_PREFIX = {"RS": "submissions", "RC": "comments"}
_NAME = re.compile(r"^(?P<prefix>RS|RC)_(?P<month>\d{4}-\d{2})")
#: Compressed bytes read at a time (bigger reads make zstd's output buffer slower).
_READ_BYTES = 1 << 20
#: Rows per block a ``.zst_blocks`` source_line can address.
BLOCK_ROWS = 10**6
_U32 = struct.Struct("<I")
#: zstd window the published files need (``zstd --long=31``).
MAX_WINDOW = 1 << 31


_WORDS = (("submission", "submissions"), ("comment", "comments"))


def dump_kind(path: str) -> str:
    """``submissions``, ``comments`` or ``subreddits`` from a dump's file name
    (``RS_...`` / ``RC_...`` / Arctic Shift's ``subreddits_YYYY-MM.zst``).

    Other files are named after their kind too: a name containing ``submission`` or
    ``comment`` (e.g. ``my_comments.jsonl``), else ``subreddit`` (the Pushshift subreddit
    dump, e.g. ``subreddits.ndjson``).
    """
    name = os.path.basename(path)
    m = _NAME.match(name)
    if m:
        return _KIND_BY_PREFIX[m.group("prefix")]
    low = name.lower()
    found = [kind for word, kind in _WORDS if word in low]
    if len(found) == 1:
        return found[0]
    if not found and "subreddit" in low:  # but "subreddit_comments.jsonl" holds comments
        return "subreddits"
    raise ValueError(
        f"cannot tell whether {path!r} holds submissions or comments (or subreddit metadata): "
        "name it RS_YYYY-MM.zst / RC_YYYY-MM.zst / subreddits_YYYY-MM.zst, or put "
        "'submissions' / 'comments' / 'subreddits' in a plain NDJSON file's name"
    )


def find_dumps(spec: str) -> list[str]:
    """Dump files under a folder, or matching a glob, or the single file named; sorted."""
    if os.path.isdir(spec):
        paths = [
            os.path.join(root, f)
            for root, _, files in os.walk(spec)
            for f in files
            if f.endswith(DUMP_SUFFIXES)
        ]
    elif any(c in spec for c in "*?["):
        paths = [p for p in glob.glob(spec, recursive=True) if os.path.isfile(p)]
    elif os.path.isfile(spec):
        paths = [spec]
    else:
        raise FileNotFoundError(f"input.dumps: no dump folder, glob match or file at {spec!r}")
    return sorted(os.path.abspath(p) for p in paths)


@dataclass
class DumpStats:
    """What reading one file saw, filled in as the reader goes."""

    compressed_bytes: int = 0
    decompressed_bytes: int = 0
    frames: int = 0
    lines: int = 0
    truncated: bool = False
    truncation: str = ""
    oversize: list[tuple[int, bytes, int]] = field(default_factory=list)
    #: ``.zst_blocks`` blocks that could not be read: ``(source_line of the block, error)``.
    bad_blocks: list[tuple[int, str]] = field(default_factory=list)
    #: ``.zst_blocks``: the address (``block * 10**6``) of the block cut short.
    truncated_at: int | None = None


def _zstd_blocks(path: str, stats: DumpStats) -> Iterator[bytes]:
    """Decompressed bytes of every frame of a .zst file; notes a file that ends early."""
    dctx = zstandard.ZstdDecompressor(max_window_size=MAX_WINDOW)
    dobj = dctx.decompressobj()
    in_frame = False
    with open(path, "rb") as f:
        while True:
            data = f.read(_READ_BYTES)
            if not data:
                break
            stats.compressed_bytes += len(data)
            while data:
                try:
                    out = dobj.decompress(data)
                except zstandard.ZstdError as e:
                    stats.truncated = True
                    stats.truncation = (
                        f"corrupt zstd data after {stats.decompressed_bytes} bytes: {e}"
                    )
                    return
                in_frame = True
                if out:
                    stats.decompressed_bytes += len(out)
                    yield out
                if dobj.eof:
                    stats.frames += 1
                    in_frame = False
                    data = dobj.unused_data
                    dobj = dctx.decompressobj()
                else:
                    data = b""
    if in_frame:
        stats.truncated = True
        stats.truncation = (
            f"file ended early (truncated download?): frame {stats.frames + 1} incomplete after "
            f"{stats.decompressed_bytes} decompressed bytes"
        )


def _plain_blocks(path: str, stats: DumpStats) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while data := f.read(_READ_BYTES):
            stats.compressed_bytes += len(data)
            stats.decompressed_bytes += len(data)
            yield data
    stats.frames = 1


def _prefetch(it: Iterator, depth: int = 4) -> Iterator:
    """Run an iterator in a thread (zstd releases the GIL) so parsing overlaps it."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    errors: list[BaseException] = []

    def pump() -> None:
        try:
            for item in it:
                q.put(item)
        except BaseException as e:  # re-raised in the consumer
            errors.append(e)
        finally:
            q.put(done)

    threading.Thread(target=pump, daemon=True, name="zipp-dump-reader").start()
    while (item := q.get()) is not done:
        yield item
    if errors:
        raise errors[0]


# ---------------------------------------------------------------- .zst_blocks
@dataclass(frozen=True)
class BlockRange:
    """Blocks ``first_block ..`` of a ``.zst_blocks`` file, from byte `start` to `end`."""

    first_block: int
    start: int
    end: int


def is_zst_blocks(path: str) -> bool:
    return path.endswith(".zst_blocks")


def zst_blocks_ranges(path: str, target_bytes: int = 256 << 20) -> list[BlockRange]:
    """Split a ``.zst_blocks`` file into runs of whole blocks of about `target_bytes`
    compressed, from the blocks' size headers alone (nothing is decompressed). A last
    block cut short stays in the last run, where the reader reports the truncation."""
    size = os.path.getsize(path)
    ranges: list[BlockRange] = []
    first = block = pos = start = 0
    with open(path, "rb") as f:
        while pos < size:
            f.seek(pos)
            head = f.read(4)
            if len(head) < 4:
                break
            pos = min(size, pos + 4 + _U32.unpack(head)[0])
            block += 1
            if pos - start >= target_bytes:
                ranges.append(BlockRange(first, start, pos))
                first, start = block, pos
    if pos > start or not ranges:
        ranges.append(BlockRange(first, start, size))
    return ranges


def _block_rows(data: bytes) -> tuple[np.ndarray, int]:
    """(row table as an (n, 2) array of offset/size, where the rows start) of one
    decompressed block; ValueError when the table does not fit the block."""
    if len(data) < 4:
        raise ValueError(f"block of {len(data)} bytes has no row count")
    (count,) = _U32.unpack_from(data)
    start = 4 + 8 * count
    if count >= BLOCK_ROWS or start > len(data):
        raise ValueError(f"row count {count} does not fit a block of {len(data)} bytes")
    table = np.frombuffer(data, "<u4", count * 2, 4).reshape(count, 2).astype(np.int64)
    if count and int((table[:, 0] + table[:, 1]).max()) > len(data) - start:
        raise ValueError("a row's offset and size run past the end of the block")
    return table, start


def block_ndjson(data: bytes) -> tuple[bytes, int]:
    """One decompressed block as NDJSON lines and its row count (a raw newline inside
    a row reads as whitespace, so one row stays one line)."""
    table, start = _block_rows(data)
    count = len(table)
    offsets, sizes = table[:, 0], table[:, 1]
    total = int(sizes.sum())
    body = data[start:]
    back_to_back = count == 0 or (
        offsets[0] == 0 and np.array_equal(offsets[1:], np.cumsum(sizes)[:-1])
    )
    if back_to_back and body.count(b"\n", 0, total) == 0:
        rows = np.frombuffer(body, np.uint8, count=total)
        return np.insert(rows, np.cumsum(sizes), 10).tobytes(), count
    rows = (body[o : o + n].replace(b"\n", b" ") for o, n in table.tolist())
    return b"".join(r + b"\n" for r in rows), count


def _zst_blocks_file(path: str, span: BlockRange | None, stats: DumpStats) -> Iterator:
    """``(ndjson, block index, rows)`` of each readable block in `span` (default: all)."""
    dctx = zstandard.ZstdDecompressor()
    end = os.path.getsize(path) if span is None else span.end
    block = 0 if span is None else span.first_block
    with open(path, "rb") as f:
        f.seek(0 if span is None else span.start)
        pos = f.tell()
        while pos < end:
            head = f.read(4)
            size = _U32.unpack(head)[0] if len(head) == 4 else None
            blob = f.read(size) if size is not None else b""
            if size is None or len(blob) < size:
                stats.truncated = True
                stats.truncated_at = block * BLOCK_ROWS
                stats.truncation = (
                    f"file ended early (truncated download?): block {block} incomplete, "
                    f"{len(blob)} of {size if size is not None else '?'} bytes"
                )
                stats.compressed_bytes += len(head) + len(blob)
                return
            pos += 4 + size
            stats.compressed_bytes += 4 + size
            try:
                raw = dctx.decompress(blob)
                text, rows = block_ndjson(raw)
            except (zstandard.ZstdError, ValueError) as e:
                stats.bad_blocks.append((block * BLOCK_ROWS, f"corrupt block {block}: {e}"))
            else:
                stats.decompressed_bytes += len(raw)
                yield text, block, rows
            stats.frames += 1
            block += 1


def zst_blocks_row(path: str, source_line: int) -> bytes:
    """The raw row of a ``.zst_blocks`` file that `source_line` addresses."""
    block, row = divmod(source_line - 1, BLOCK_ROWS)
    with open(path, "rb") as f:
        for _ in range(block):
            f.seek(_U32.unpack(f.read(4))[0], os.SEEK_CUR)
        data = zstandard.ZstdDecompressor().decompress(f.read(_U32.unpack(f.read(4))[0]))
    table, start = _block_rows(data)
    offset, size = table[row].tolist()
    return data[start + offset : start + offset + size]


# ---------------------------------------------------------------- chunks of lines
class Chunk(NamedTuple):
    """Whole NDJSON lines: `lines` of them (the last may lack its newline), numbered
    `first_line`.. in order, or by `line_numbers` where numbers are not consecutive."""

    data: bytes
    first_line: int
    lines: int
    line_numbers: np.ndarray | None = None


def _newlines(data: bytes) -> int:
    """Newlines in `data`, counted by numpy (which lets other threads run meanwhile)."""
    return int(np.count_nonzero(np.frombuffer(data, np.uint8) == 10))


def _line_count(data: bytes) -> int:
    return _newlines(data) + (0 if not data or data.endswith(b"\n") else 1)


class DumpReader:
    """Iterates a dump file as chunks of whole lines, 1-based numbering.

    Lines longer than ``max_line_bytes`` are not yielded; they are listed in
    ``stats.oversize`` as ``(line, first bytes, size)`` for the quarantine. `span`
    limits a ``.zst_blocks`` file to a run of its blocks (`zst_blocks_ranges`).
    """

    def __init__(
        self,
        path: str,
        chunk_bytes: int = 16 << 20,
        max_line_bytes: int = 64 << 20,
        span: BlockRange | None = None,
    ):
        self.path = path
        self.chunk_bytes = chunk_bytes
        self.max_line_bytes = max_line_bytes
        self.span = span
        self.stats = DumpStats()

    def __iter__(self) -> Iterator[tuple[bytes, int]]:
        """``(chunk, first_line)`` of a line-numbered file (not ``.zst_blocks``)."""
        for chunk in self.chunks():
            yield chunk.data, chunk.first_line

    def chunks(self, pieces: bool = False) -> Iterator[Chunk]:
        """Every chunk, in file order. `pieces`: a chunk's data may be a list of buffers
        (decompressed blocks, the last cut at a newline) for a caller that copies them
        somewhere anyway, saving the copy that joins them."""
        if is_zst_blocks(self.path):
            return _prefetch(self._block_chunks())
        if self.path.endswith(".zst"):
            return self._line_chunks(_prefetch(_zstd_blocks(self.path, self.stats)), pieces)
        return self._line_chunks(_plain_blocks(self.path, self.stats), pieces)

    def _block_chunks(self) -> Iterator[Chunk]:
        """Blocks gathered into chunks of about chunk_bytes, rows numbered by address.
        Rows over max_line_bytes cannot be held back (a block holds them whole); the
        parser quarantines what it cannot read."""
        parts: list[bytes] = []
        numbers: list[np.ndarray] = []
        size = lines = 0
        for text, block, rows in _zst_blocks_file(self.path, self.span, self.stats):
            parts.append(text)
            numbers.append(np.arange(1, rows + 1, dtype=np.int64) + block * BLOCK_ROWS)
            size += len(text)
            lines += rows
            self.stats.lines += rows
            if size >= self.chunk_bytes:
                yield Chunk(b"".join(parts), 0, lines, np.concatenate(numbers))
                parts, numbers, size, lines = [], [], 0, 0
        if lines:
            yield Chunk(b"".join(parts), 0, lines, np.concatenate(numbers))

    def _checked(self, chunk: bytes, first_line: int) -> Iterator[Chunk]:
        """`chunk` minus any complete line over max_line_bytes (listed as oversize)."""
        if len(chunk) <= self.max_line_bytes:
            yield Chunk(chunk, first_line, _line_count(chunk))
            return
        start = seg_start = 0
        line = seg_first = first_line
        while start < len(chunk):
            end = chunk.find(b"\n", start)
            end = len(chunk) if end < 0 else end
            if end - start > self.max_line_bytes:
                if seg_start < start:
                    part = chunk[seg_start:start]
                    yield Chunk(part, seg_first, _line_count(part))
                self.stats.oversize.append((line, chunk[start : start + 1024], end - start))
                seg_start, seg_first = end + 1, line + 1
            start, line = end + 1, line + 1
        if seg_start < len(chunk):
            part = chunk[seg_start:]
            yield Chunk(part, seg_first, _line_count(part))

    def _whole_lines(self, chunk: bytes, first_line: int) -> Generator[Chunk, None, int]:
        """Yield `chunk` (whole lines, ending with a newline) as it is, or without its
        lines over max_line_bytes; returns how many lines it held."""
        if len(chunk) <= self.max_line_bytes:
            lines = _newlines(chunk)
            yield Chunk(chunk, first_line, lines)
            return lines
        yield from self._checked(chunk, first_line)
        return _newlines(chunk)

    def _line_chunks(self, blocks: Iterator[bytes], pieces: bool = False) -> Iterator[Chunk]:
        parts: list[bytes] = []
        size = 0
        skipping = False  # inside an over-long line: discard up to its newline
        next_line = 1
        for block in blocks:
            if skipping:
                nl = block.find(b"\n")
                line, head, over = self.stats.oversize[-1]
                self.stats.oversize[-1] = (line, head, over + (len(block) if nl < 0 else nl))
                if nl < 0:
                    continue
                skipping = False
                next_line += 1
                block = block[nl + 1 :]
            parts.append(block)
            size += len(block)
            if size < self.chunk_bytes and size <= self.max_line_bytes:
                continue
            cut = block.rfind(b"\n")
            if (
                cut >= 0
                and size >= self.chunk_bytes
                and len(block) - cut - 1 <= self.max_line_bytes
            ):
                # the usual case: the pieces up to the last newline
                head = [*parts[:-1], memoryview(block)[: cut + 1]]
                rest = block[cut + 1 :]
                parts, size = [rest], len(rest)
                total = sum(len(p) for p in head)
                if pieces and total <= self.max_line_bytes:
                    lines = sum(_newlines(p) for p in head)
                    yield Chunk(head, next_line, lines)
                    next_line += lines
                    continue
                next_line += yield from self._whole_lines(b"".join(head), next_line)
                continue
            pending = b"".join(parts) if len(parts) > 1 else parts[0]
            last_nl = pending.rfind(b"\n")
            if len(pending) - last_nl - 1 > self.max_line_bytes:
                if last_nl >= 0:
                    next_line += yield from self._whole_lines(pending[: last_nl + 1], next_line)
                tail = pending[last_nl + 1 :]
                self.stats.oversize.append((next_line, tail[:1024], len(tail)))
                parts, size, skipping = [], 0, True
            elif size >= self.chunk_bytes and last_nl >= 0:
                chunk, rest = pending[: last_nl + 1], pending[last_nl + 1 :]
                parts, size = [rest], len(rest)
                next_line += yield from self._whole_lines(chunk, next_line)
            else:
                parts = [pending]
        if skipping:
            next_line += 1
        pending = b"".join(parts)
        if pending:
            yield from self._checked(pending, next_line)
            next_line += _line_count(pending)
        self.stats.lines = next_line - 1
