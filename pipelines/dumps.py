"""Reading Reddit dump files (``RS_/RC_YYYY-MM.zst`` or plain NDJSON) as chunks of lines.

The published dumps are single- or multi-frame zstd streams with a long window
(``--long=31``); downloads are often truncated. `DumpReader` yields chunks of whole lines
with their first line number, counts frames and bytes, and records where a file ends
early instead of raising.
"""

from __future__ import annotations

import glob
import os
import queue
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import zstandard

DUMP_SUFFIXES = (".zst", ".ndjson", ".jsonl", ".json")
_KIND_BY_PREFIX = {"RS": "submissions", "RC": "comments"}
_NAME = re.compile(r"^(?P<prefix>RS|RC)_(?P<month>\d{4}-\d{2})")
_READ_BYTES = 4 << 20
#: zstd window the published files need (``zstd --long=31``).
MAX_WINDOW = 1 << 31


def dump_kind(path: str) -> str:
    """``submissions`` or ``comments`` from a dump's file name (``RS_...`` / ``RC_...``).

    Plain NDJSON files are named after their kind too: a name containing
    ``submission`` or ``comment`` (e.g. ``my_comments.jsonl``).
    """
    name = os.path.basename(path)
    m = _NAME.match(name)
    if m:
        return _KIND_BY_PREFIX[m.group("prefix")]
    low = name.lower()
    found = [
        kind
        for word, kind in (("submission", "submissions"), ("comment", "comments"))
        if word in low
    ]
    if len(found) == 1:
        return found[0]
    raise ValueError(
        f"cannot tell whether {path!r} holds submissions or comments: name it RS_YYYY-MM.zst / "
        "RC_YYYY-MM.zst, or put 'submissions' / 'comments' in a plain NDJSON file's name"
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


def _prefetch(it: Iterator[bytes], depth: int = 4) -> Iterator[bytes]:
    """Run a block iterator in a thread (zstd releases the GIL) so parsing overlaps it."""
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


class DumpReader:
    """Iterates a dump file as ``(chunk, first_line)``: whole lines, 1-based numbering.

    Lines longer than ``max_line_bytes`` are not yielded; they are listed in
    ``stats.oversize`` as ``(line, first bytes, size)`` for the quarantine.
    """

    def __init__(self, path: str, chunk_bytes: int = 16 << 20, max_line_bytes: int = 64 << 20):
        self.path = path
        self.chunk_bytes = chunk_bytes
        self.max_line_bytes = max_line_bytes
        self.stats = DumpStats()

    def _blocks(self) -> Iterator[bytes]:
        if self.path.endswith(".zst"):
            return _prefetch(_zstd_blocks(self.path, self.stats))
        return _plain_blocks(self.path, self.stats)

    def _checked(self, chunk: bytes, first_line: int) -> Iterator[tuple[bytes, int]]:
        """Yield `chunk` minus any complete line over max_line_bytes (listed as oversize)."""
        if len(chunk) <= self.max_line_bytes:
            yield chunk, first_line
            return
        start = seg_start = 0
        line = seg_first = first_line
        while start < len(chunk):
            end = chunk.find(b"\n", start)
            end = len(chunk) if end < 0 else end
            if end - start > self.max_line_bytes:
                if seg_start < start:
                    yield chunk[seg_start:start], seg_first
                self.stats.oversize.append((line, chunk[start : start + 1024], end - start))
                seg_start, seg_first = end + 1, line + 1
            start, line = end + 1, line + 1
        if seg_start < len(chunk):
            yield chunk[seg_start:], seg_first

    def __iter__(self) -> Iterator[tuple[bytes, int]]:
        pending = bytearray()
        skipping = False  # inside an over-long line: discard up to its newline
        next_line = 1
        for block in self._blocks():
            if skipping:
                nl = block.find(b"\n")
                line, head, size = self.stats.oversize[-1]
                self.stats.oversize[-1] = (line, head, size + (len(block) if nl < 0 else nl))
                if nl < 0:
                    continue
                skipping = False
                next_line += 1
                block = block[nl + 1 :]
            pending += block
            last_nl = pending.rfind(b"\n")
            if len(pending) - last_nl - 1 > self.max_line_bytes:
                if last_nl >= 0:
                    chunk = bytes(pending[: last_nl + 1])
                    yield from self._checked(chunk, next_line)
                    next_line += chunk.count(b"\n")
                tail = pending[last_nl + 1 :]
                self.stats.oversize.append((next_line, bytes(tail[:1024]), len(tail)))
                pending.clear()
                skipping = True
            elif len(pending) >= self.chunk_bytes and last_nl >= 0:
                chunk = bytes(pending[: last_nl + 1])
                del pending[: last_nl + 1]
                yield from self._checked(chunk, next_line)
                next_line += chunk.count(b"\n")
        if skipping:
            next_line += 1
        if pending:
            yield from self._checked(bytes(pending), next_line)
            next_line += pending.count(b"\n") + (0 if pending.endswith(b"\n") else 1)
        self.stats.lines = next_line - 1
