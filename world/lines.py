"""Vectorised dump lines: JSON objects assembled from constant fragments and Arrow columns.

A record layout is a list of `(key, value)` pairs. A value is either a JSON literal that
every row shares (a `str`, e.g. `"null"` or `'"text"'`) or an Arrow string array holding
each row's JSON text. Adjacent constants merge into one fragment, so a chunk of lines is a
single element-wise concatenation over a few dozen columns, done in C++ by Arrow. Nothing
is escaped: every string the sample world writes is plain ASCII without quotes,
backslashes or control characters (see `check_json_safe`).

`DumpWriter` streams chunks of lines into one zstd frame, inserting the planned corrupt
lines on the way.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import zstandard

Value = str | pa.Array
_BOOLS = pa.array(["false", "true"])
_UNSAFE = re.compile(r'["\\\x00-\x1f\x7f]')
B36_DIGITS = np.frombuffer(b"0123456789abcdefghijklmnopqrstuvwxyz", dtype=np.uint8)


def check_json_safe(text: str) -> str:
    """`text`, if it can go into a JSON string without escaping; ValueError otherwise."""
    if _UNSAFE.search(text) or not text.isascii():
        raise ValueError(f"{text!r} would need JSON escaping")
    return text


def lit(value: object) -> str:
    """A constant as a compact JSON literal."""
    return json.dumps(value, separators=(",", ":"))


def concat(*parts: Value) -> pa.Array:
    """Element-wise concatenation of string arrays and constant strings."""
    return pc.binary_join_element_wise(*parts, "")


def jstr(values: pa.Array) -> pa.Array:
    """JSON strings of safe strings."""
    return concat('"', values, '"')


def jnum(values: np.ndarray) -> pa.Array:
    """JSON numbers of an integer array."""
    return pc.cast(pa.array(values), pa.string())


def jbool(mask: np.ndarray) -> pa.Array:
    """JSON booleans of a boolean array."""
    return _BOOLS.take(pa.array(mask.astype(np.int8)))


def jnullable(values: pa.Array, null: np.ndarray) -> pa.Array:
    """JSON strings of `values`, `null` where `null` is set."""
    return pc.if_else(pa.array(null), "null", jstr(values))


def b36(values: np.ndarray) -> pa.Array:
    """Reddit's base-36 ids of non-negative integers, without leading zeros."""
    values = np.asarray(values, dtype=np.int64)
    width = 1
    while values.size and 36**width <= values.max():
        width += 1
    digits = np.empty((len(values), width), dtype=np.uint8)
    rest = values.copy()
    for col in range(width - 1, -1, -1):
        rest, digit = np.divmod(rest, 36)
        digits[:, col] = B36_DIGITS[digit]
    lengths = np.ones(len(values), dtype=np.int32)
    for w in range(1, width):
        lengths += values >= 36**w
    keep = np.arange(width)[None, :] >= (width - lengths)[:, None]
    offsets = np.zeros(len(values) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    data = pa.py_buffer(digits[keep].tobytes())
    return pa.StringArray.from_buffers(len(values), pa.py_buffer(offsets.tobytes()), data)


def scatter(mask: np.ndarray, values: pa.Array, default: str = "") -> pa.Array:
    """A string array with `values` (in order) where `mask` is set and `default` elsewhere."""
    pool = pa.concat_arrays([values.cast(pa.string()), pa.array([default])])
    index = np.where(mask, np.cumsum(mask) - 1, len(values))
    return pool.take(pa.array(index))


def joined(tokens: np.ndarray, lengths: np.ndarray, table: pa.Array, sep: str) -> pa.Array:
    """Per row, `lengths[i]` consecutive entries of `tokens` looked up in `table`, joined."""
    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    words = table.take(pa.array(tokens))
    return pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), words), sep)


def json_lines(fields: Sequence[tuple[str, Value]], tail: pa.Array | None = None) -> pa.Array:
    """One compact JSON object per row, each ending in a newline.

    `tail` holds extra `,"key":value` text per row (empty for none), put before the `}`.
    """
    parts: list[Value] = []
    const = "{"
    for i, (key, value) in enumerate(fields):
        const += ("," if i else "") + f'"{key}":'
        if isinstance(value, str):
            const += value
        else:
            parts += [const, value]
            const = ""
    if tail is not None:
        parts += [const, tail]
        const = ""
    parts.append(const + "}\n")
    return concat(*parts)


def line_bytes(lines: pa.Array) -> memoryview:
    """The text of a string array's rows back to back, without copying."""
    if lines.null_count:
        raise ValueError("a dump line is null")
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[lines.offset :]
    start, end = int(offsets[0]), int(offsets[len(lines)])
    return memoryview(lines.buffers()[2])[start:end]


CORRUPTIONS = (
    lambda line: line[: len(line) // 2],  # cut mid-record
    lambda line: b"\x00\x1f garbage \xff\xfe not json",  # binary junk
    lambda line: line.replace(b'"id":', b'"id"', 1),  # broken syntax
)


#: Levels from which long-distance matching is on. Below, it would cost more time than
#: the level itself for a few percent of size on these lines (measured: level 3 runs at
#: 132 MB/s without it, 60 MB/s with it, for a 10.7 vs 9.9 ratio).
LDM_LEVEL = 10


#: Input per zstd worker job. The default for a 128 MiB window is 512 MiB, which made a
#: writer hold 1.6 GB; 32 MiB jobs hold ~0.2 GB for a 0.6% larger file.
JOB_BYTES = 1 << 25


def zstd_params(level: int) -> zstandard.ZstdCompressionParameters:
    """The published dumps' shape: one frame, a 128 MiB window, long-distance matching
    from `LDM_LEVEL` on; compressed by worker threads while the next chunk is rendered."""
    return zstandard.ZstdCompressionParameters.from_level(
        level,
        window_log=27,
        enable_ldm=level >= LDM_LEVEL,
        write_content_size=False,
        threads=-1,
        job_size=JOB_BYTES,
    )


class DumpWriter:
    """Writes one dump file: chunks of lines into one zstd frame, plus corrupt lines.

    `records` lines will come; before each of `corrupt` randomly chosen ones a corrupted
    copy of it is inserted (the three kinds of `CORRUPTIONS` in turn), so the file holds
    `records + min(corrupt, records)` lines. Written aside and renamed when closed.
    """

    def __init__(
        self, path: Path, records: int, corrupt: int, rng: np.random.Generator, level: int
    ):
        self.path = path
        self.tmp = path.with_suffix(".zst.tmp")
        self.at = np.sort(rng.integers(0, max(records, 1), min(corrupt, records)))
        self.lines = 0  # lines written
        self.records = 0  # records written
        self._file = open(self.tmp, "wb")  # noqa: SIM115 - closed in close()
        cctx = zstandard.ZstdCompressor(compression_params=zstd_params(level))
        self._zst = cctx.stream_writer(self._file, closefd=False)

    def write(self, lines: pa.Array) -> None:
        """Write a chunk of newline-terminated lines (the next records of the file)."""
        first, last = self.records, self.records + len(lines)
        due = [(j, int(i)) for j, i in enumerate(self.at) if first <= i < last]
        done = 0
        for j, i in due:
            cut = i - first
            if cut > done:
                self._zst.write(line_bytes(lines.slice(done, cut - done)))
            line = lines[cut].as_py().encode().rstrip(b"\n")
            self._zst.write(CORRUPTIONS[j % len(CORRUPTIONS)](line) + b"\n")
            done = cut
        if len(lines) > done:
            self._zst.write(line_bytes(lines.slice(done)))
        self.records = last
        self.lines += len(lines) + len(due)

    def close(self) -> int:
        """Finish the frame, move the file into place; returns the lines written."""
        self._zst.close()
        self._file.close()
        os.replace(self.tmp, self.path)
        return self.lines
