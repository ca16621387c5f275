"""DumpReader, dump_kind and find_dumps on real zstd and plain NDJSON files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import zstandard

from pipelines.dumps import DumpReader, dump_kind, find_dumps
from tests.conftest import jl, zst


def numbered(reader: DumpReader) -> dict[int, bytes]:
    """Every yielded line by its line number (line terminators stripped)."""
    out: dict[int, bytes] = {}
    for chunk, first in reader:
        lines = chunk.split(b"\n")
        if chunk.endswith(b"\n"):
            lines.pop()
        for i, line in enumerate(lines):
            assert first + i not in out, f"line {first + i} yielded twice"
            out[first + i] = line
    return out


def frames_of(path: Path, parts: list[bytes]) -> Path:
    """A .zst file with one frame per part, split exactly where the caller says."""
    cctx = zstandard.ZstdCompressor()
    path.write_bytes(b"".join(cctx.compress(p) for p in parts))
    return path


def records(n: int, pad: int = 0) -> list[bytes]:
    return [b'{"id":"r%d","body":"%s"}' % (i, b"p" * pad) for i in range(1, n + 1)]


# ---------------------------------------------------------------- whole files
def test_multi_frame_zst_read_fully(tmp_path: Path) -> None:
    lines = records(300)
    data = b"\n".join(lines) + b"\n"
    path = zst(tmp_path / "RC_2021-06.zst", data, frames=4)
    reader = DumpReader(str(path))
    got = numbered(reader)
    assert got == {i + 1: line for i, line in enumerate(lines)}
    assert reader.stats.frames == 4
    assert reader.stats.lines == 300
    assert reader.stats.decompressed_bytes == len(data)
    assert reader.stats.compressed_bytes == path.stat().st_size
    assert not reader.stats.truncated and reader.stats.truncation == ""
    assert reader.stats.oversize == []


def test_truncated_zst_keeps_lines_before_the_cut(tmp_path: Path) -> None:
    # Two complete frames, then a third frame cut short (a truncated download).
    lines = [
        b'{"id":"r%d","body":"%s"}' % (i, os.urandom(24).hex().encode()) for i in range(1, 6001)
    ]
    parts = [b"\n".join(lines[a:b]) + b"\n" for a, b in ((0, 1000), (1000, 2000), (2000, 6000))]
    cctx = zstandard.ZstdCompressor()
    blobs = [cctx.compress(p) for p in parts]
    path = tmp_path / "RS_2021-06.zst"
    path.write_bytes(blobs[0] + blobs[1] + blobs[2][: len(blobs[2]) // 2])

    reader = DumpReader(str(path))
    chunks = list(reader)
    stats = reader.stats
    assert stats.truncated
    assert "ended early" in stats.truncation and "frame 3" in stats.truncation
    assert stats.frames == 2
    text = b"".join(c for c, _ in chunks)
    full = b"".join(parts)
    assert full.startswith(text)
    got = numbered(DumpReader(str(path)))
    # Every line of the two complete frames, with its own number.
    for n in range(1, 2001):
        assert got[n] == lines[n - 1]
    # Whatever else came out is a prefix of the true line at that number.
    assert max(got) > 2000  # part of the third frame was recoverable
    for n, line in got.items():
        assert lines[n - 1].startswith(line)
    assert stats.lines == max(got)


def test_single_frame_truncated_in_the_middle(tmp_path: Path) -> None:
    lines = [
        b'{"id":"r%d","body":"%s"}' % (i, os.urandom(16).hex().encode()) for i in range(1, 8001)
    ]
    blob = zstandard.ZstdCompressor().compress(b"\n".join(lines) + b"\n")
    path = tmp_path / "RC_2021-07.zst"
    path.write_bytes(blob[: len(blob) * 2 // 3])
    reader = DumpReader(str(path))
    got = numbered(reader)
    assert reader.stats.truncated and reader.stats.frames == 0
    assert "frame 1 incomplete" in reader.stats.truncation
    complete = [n for n in got if n < max(got)]
    assert len(complete) > 1000
    for n in complete:
        assert got[n] == lines[n - 1]


def test_garbage_after_a_frame_is_reported_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "RC_2021-08.zst"
    path.write_bytes(zstandard.ZstdCompressor().compress(b"a\nb\n") + b"not zstd at all")
    reader = DumpReader(str(path))
    assert numbered(reader) == {1: b"a", 2: b"b"}
    assert reader.stats.truncated
    assert "corrupt zstd data" in reader.stats.truncation
    assert reader.stats.frames == 1


def test_crlf_and_blank_lines_are_numbered(tmp_path: Path) -> None:
    data = b'{"id":"a"}\r\n\r\n{"id":"b"}\r\n\n   \n{"id":"c"}\r\n'
    path = zst(tmp_path / "RC_2021-06.zst", data, frames=2)
    reader = DumpReader(str(path))
    got = numbered(reader)
    assert got == {
        1: b'{"id":"a"}\r',
        2: b"\r",
        3: b'{"id":"b"}\r',
        4: b"",
        5: b"   ",
        6: b'{"id":"c"}\r',
    }
    assert reader.stats.lines == 6


@pytest.mark.parametrize("name", ["my_comments.ndjson", "submissions.jsonl"])
def test_plain_files_accepted(tmp_path: Path, name: str) -> None:
    lines = records(50)
    data = b"\n".join(lines)  # no newline after the last line
    path = tmp_path / name
    path.write_bytes(data)
    reader = DumpReader(str(path))
    assert numbered(reader) == {i + 1: line for i, line in enumerate(lines)}
    assert reader.stats.lines == 50
    assert reader.stats.frames == 1
    assert reader.stats.compressed_bytes == reader.stats.decompressed_bytes == len(data)
    assert not reader.stats.truncated


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "RC_2021-06.zst"
    path.write_bytes(b"")
    reader = DumpReader(str(path))
    assert list(reader) == []
    assert reader.stats.lines == 0 and not reader.stats.truncated


# ---------------------------------------------------------------- long lines
def test_line_longer_than_chunk_bytes_is_yielded_intact(tmp_path: Path) -> None:
    long = b'{"id":"big","body":"' + b"z" * 50_000 + b'"}'
    data = jl([{"id": "a"}, long, {"id": "b"}])
    # The long line spans three frames, so it arrives in three decompressed blocks.
    cut1, cut2 = 20_000, 40_000
    path = frames_of(tmp_path / "RC_2021-06.zst", [data[:cut1], data[cut1:cut2], data[cut2:]])
    reader = DumpReader(str(path), chunk_bytes=64, max_line_bytes=1 << 20)
    got = numbered(reader)
    assert got == {1: b'{"id": "a"}', 2: long, 3: b'{"id": "b"}'}
    assert reader.stats.oversize == []
    assert reader.stats.frames == 3


def test_oversize_line_spanning_blocks_is_skipped_and_listed(tmp_path: Path) -> None:
    big = b"X" * 200
    parts = [b"a\nb\n" + big[:60], big[60:120], big[120:] + b"\nc\nd\n"]
    path = frames_of(tmp_path / "RS_2021-06.zst", parts)
    reader = DumpReader(str(path), max_line_bytes=50)
    got = numbered(reader)
    assert got == {1: b"a", 2: b"b", 4: b"c", 5: b"d"}
    [(line, head, size)] = reader.stats.oversize
    assert line == 3
    assert size == 200
    assert head and big.startswith(head) and len(head) <= 1024
    assert reader.stats.lines == 5


def test_oversize_last_line_without_newline(tmp_path: Path) -> None:
    big = b"Y" * 300
    path = frames_of(tmp_path / "RS_2021-06.zst", [b"a\n" + big[:100], big[100:]])
    reader = DumpReader(str(path), max_line_bytes=50)
    assert numbered(reader) == {1: b"a"}
    assert [(n, s) for n, _, s in reader.stats.oversize] == [(2, 300)]
    assert reader.stats.lines == 2


def test_oversize_line_inside_one_block_is_not_yielded(tmp_path: Path) -> None:
    """An over-long line that is complete inside one read block must still be held back.

    DumpReader documents: lines longer than max_line_bytes are not yielded; they are
    listed in stats.oversize. Here the file is small, so the whole of it is one block.
    """
    big = b'{"id":"huge","body":"' + b"x" * 500 + b'"}'
    data = b'{"id":"a"}\n' + big + b'\n{"id":"b"}\n{"id":"c"}\n'
    for path in (tmp_path / "x_comments.ndjson", tmp_path / "RC_2021-06.zst"):
        if path.suffix == ".zst":
            zst(path, data)
        else:
            path.write_bytes(data)
        reader = DumpReader(str(path), max_line_bytes=100)
        got = numbered(reader)
        assert got == {1: b'{"id":"a"}', 3: b'{"id":"b"}', 4: b'{"id":"c"}'}, path.name
        assert [(n, s) for n, _, s in reader.stats.oversize] == [(2, len(big))]
        assert reader.stats.lines == 4


# ---------------------------------------------------------------- chunking
def test_small_chunk_bytes_give_consistent_first_lines(tmp_path: Path) -> None:
    lines = records(1000, pad=10)
    data = b"\n".join(lines) + b"\n"
    path = zst(tmp_path / "RC_2021-06.zst", data, frames=7)
    reader = DumpReader(str(path), chunk_bytes=256)
    chunks = list(reader)
    assert len(chunks) >= 7
    expected_first = 1
    for chunk, first in chunks:
        assert chunk.endswith(b"\n")  # whole lines only
        assert first == expected_first
        expected_first += chunk.count(b"\n")
    assert b"".join(c for c, _ in chunks) == data
    assert reader.stats.lines == 1000 == expected_first - 1


def test_chunks_of_a_plain_file_larger_than_a_read_block(tmp_path: Path) -> None:
    line = b'{"id":"r","body":"' + b"q" * 1000 + b'"}\n'
    data = line * 5000  # ~5 MB: more than one 4 MiB read
    path = tmp_path / "big_comments.jsonl"
    path.write_bytes(data)
    reader = DumpReader(str(path), chunk_bytes=1 << 20)
    chunks = list(reader)
    assert len(chunks) >= 2
    expected_first = 1
    for chunk, first in chunks:
        assert first == expected_first
        assert chunk.endswith(b"\n") and chunk.count(b"\n") * len(line) == len(chunk)
        expected_first += chunk.count(b"\n")
    assert reader.stats.lines == 5000


# ---------------------------------------------------------------- names
@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("RS_2021-06.zst", "submissions"),
        ("RC_2021-06.zst", "comments"),
        ("/data/dumps/2021/RC_2005-12.zst", "comments"),
        ("RS_2023-01.ndjson", "submissions"),
        ("my_comments.jsonl", "comments"),
        ("Reddit_Submissions_sample.ndjson", "submissions"),
    ],
)
def test_dump_kind(name: str, kind: str) -> None:
    assert dump_kind(name) == kind


@pytest.mark.parametrize("name", ["data.ndjson", "2021-06.zst", "rs_2021-06.zst", "RX_2021-06.zst"])
def test_dump_kind_unknown_name(name: str) -> None:
    with pytest.raises(ValueError, match="submissions or comments"):
        dump_kind(name)


def test_find_dumps(tmp_path: Path) -> None:
    d = tmp_path / "dumps"
    (d / "2021").mkdir(parents=True)
    wanted = [
        d / "RS_2021-06.zst",
        d / "2021" / "RC_2021-06.zst",
        d / "x_comments.ndjson",
        d / "y_submissions.jsonl",
    ]
    for p in wanted:
        p.write_bytes(b"")
    (d / "README.txt").write_text("not a dump")
    (d / "RS_2021-07.zst.tmp").write_bytes(b"")
    assert find_dumps(str(d)) == sorted(str(p.resolve()) for p in wanted)

    assert find_dumps(str(d / "**" / "*.zst")) == sorted(
        str(p.resolve()) for p in wanted if p.suffix == ".zst"
    )
    # A glob takes every file it matches, whatever its suffix.
    assert find_dumps(str(d / "RS_*")) == [
        str((d / "RS_2021-06.zst").resolve()),
        str((d / "RS_2021-07.zst.tmp").resolve()),
    ]
    assert find_dumps(str(wanted[0])) == [str(wanted[0].resolve())]
    assert find_dumps(str(d / "nothing*.zst")) == []
    with pytest.raises(FileNotFoundError, match="no dump folder"):
        find_dumps(str(tmp_path / "missing"))
