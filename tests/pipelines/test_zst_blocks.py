"""Arctic Shift's ``.zst_blocks`` dumps end to end: the reader (row addresses, corrupt and
cut-short blocks), `zst_blocks_row`, splitting a file over tasks, threaded parsing of a
plain ``.zst`` file, and the ``_meta`` columns; on real files written here and a real
local SparkSession."""

from __future__ import annotations

import json
import random
import struct
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import zstandard

from pipelines.dump_scan import FileScan
from pipelines.dumps import (
    BLOCK_ROWS,
    DumpReader,
    block_ndjson,
    zst_blocks_ranges,
    zst_blocks_row,
)
from pipelines.ingest import IngestOptions, ingest
from pipelines.records import ChunkParser
from pipelines.reddit_source import plan_partitions
from pipelines.stages.ingest import balanced
from schemas.reddit import BRONZE_COMMENTS, META_FIELDS
from storage.lake import Lake
from tests.conftest import jl, zst

T0 = 1685577600  # 2023-06-01 00:00 UTC
U32 = struct.Struct("<I")
META_COLS = [f"meta_{n}" for n in META_FIELDS]
NOT_COMPARED = ("seconds", "peak_rss_bytes")


# ---------------------------------------------------------------- writing .zst_blocks
def raw_block(rows: list[bytes], shuffled: bool = False) -> bytes:
    """One decompressed block: row count, (offset, size) table, rows data. `shuffled`
    stores the rows' bytes in reverse order (offsets need not follow the table)."""
    order = list(range(len(rows)))[::-1] if shuffled else list(range(len(rows)))
    offsets = [0] * len(rows)
    data = bytearray()
    for i in order:
        offsets[i] = len(data)
        data += rows[i]
    table = b"".join(struct.pack("<II", offsets[i], len(r)) for i, r in enumerate(rows))
    return U32.pack(len(rows)) + table + bytes(data)


def frame(raw: bytes, level: int = 3) -> bytes:
    """A block as it lies in the file: compressed size, then the zstd frame."""
    blob = zstandard.ZstdCompressor(level=level).compress(raw)
    return U32.pack(len(blob)) + blob


def write_blocks(path: Path, frames: list[bytes]) -> Path:
    path.write_bytes(b"".join(frames))
    return path


def row_bytes(rec) -> bytes:
    return rec if isinstance(rec, bytes) else json.dumps(rec).encode()


def comment(i: int, meta: dict | str | None = None, **kw) -> dict:
    rng = random.Random(i)
    rec = {
        "id": f"c{i}",
        "author": f"user{i % 11}",
        "subreddit": f"sub{i % 5}",
        "created_utc": T0 + 37 * i,
        "body": f"comment {i} " + "".join(rng.choice("abcdefgh ") for _ in range(60)),
        "score": i % 50 - 3,
        "link_id": f"t3_p{i % 9}",
        "parent_id": f"t3_p{i % 9}",
        "retrieved_on": T0 + 37 * i + 120,
    }
    if meta is not None:
        rec["_meta"] = meta
    rec.update(kw)
    return rec


def meta_of(i: int) -> dict | None:
    """Every third row has a ``_meta`` object, with varied fields."""
    if i % 3:
        return None
    if i % 2:
        return {"retrieved_2nd_on": T0 + i, "removal_type": "deleted", "was_deleted_later": True}
    return {"retrieved_2nd_on": T0 + i, "is_edited": False, "note": "no_2nd_retrieval"}


def expected_meta(rec: dict) -> dict:
    meta = rec.get("_meta") or {}
    return {f"meta_{n}": meta.get(n) for n in META_FIELDS}


def blocks_of_comments(sizes: list[int], start: int = 1) -> list[list[dict]]:
    out, i = [], start
    for n in sizes:
        out.append([comment(j, meta_of(j)) for j in range(i, i + n)])
        i += n
    return out


def address(block: int, row: int) -> int:
    return block * BLOCK_ROWS + row + 1


def reader_rows(reader: DumpReader) -> dict[int, bytes]:
    """Every row the reader yields, by its source_line (no number twice)."""
    got: dict[int, bytes] = {}
    for chunk in reader.chunks():
        lines = chunk.data.split(b"\n")
        if chunk.data.endswith(b"\n"):
            lines.pop()
        assert len(lines) == chunk.lines
        numbers = (
            np.arange(chunk.first_line, chunk.first_line + chunk.lines)
            if chunk.line_numbers is None
            else chunk.line_numbers
        )
        assert len(numbers) == len(lines)
        for n, line in zip(numbers.tolist(), lines, strict=True):
            assert n not in got, f"source_line {n} yielded twice"
            got[n] = line
    return got


# ---------------------------------------------------------------- ingest helpers
def run_ingest(spark, lake_root: Path, paths: list[Path], **opts) -> list[dict]:
    lake = Lake(lake_root)
    return ingest(lambda: spark, lake, [str(p) for p in paths], IngestOptions(**opts))


def rows_by_line(lake_root: Path, name: str) -> list[dict]:
    rows = Lake(lake_root).read(name).to_pylist()
    return sorted(rows, key=lambda r: (r["source_file"], r["source_line"], r.get("error_kind", "")))


def no_seconds(ledger: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in NOT_COMPARED} for r in ledger]


# ---------------------------------------------------------------- 1. a good file
def test_good_file_read_addressed_and_ingested(spark, tmp_path: Path) -> None:
    sizes = [1, 37, 250, 0, 120, 64]
    blocks = blocks_of_comments(sizes)
    raws: list[list[bytes]] = [[row_bytes(r) for r in b] for b in blocks]
    # A pretty-printed row (raw newlines between tokens: still one row, one line) and a
    # block whose rows lie in the data in another order than the table's.
    blocks[2][5]["body"] = "multi\nline body"
    raws[2][5] = json.dumps(blocks[2][5], indent=1).encode()
    assert b"\n" in raws[2][5]
    decompressed = [raw_block(r, shuffled=(b == 4)) for b, r in enumerate(raws)]
    path = write_blocks(tmp_path / "RC_2023-06.zst_blocks", [frame(d) for d in decompressed])

    reader = DumpReader(str(path), chunk_bytes=8192)
    got = reader_rows(reader)
    expected = {address(b, r): raw for b, rows in enumerate(raws) for r, raw in enumerate(rows)}
    assert set(got) == set(expected)
    for line, raw in expected.items():
        assert got[line] == raw.replace(b"\n", b" "), line
    assert address(5, 63) in got and address(3, 0) not in got  # the empty block has no rows
    stats = reader.stats
    assert stats.frames == len(sizes)
    assert stats.lines == sum(sizes)
    assert stats.compressed_bytes == path.stat().st_size
    assert stats.decompressed_bytes == sum(len(d) for d in decompressed)
    assert not stats.truncated and stats.bad_blocks == [] and stats.oversize == []

    for b, r in [(0, 0), (1, 36), (2, 5), (2, 249), (4, 0), (4, 77), (5, 63)]:
        assert zst_blocks_row(str(path), address(b, r)) == raws[b][r], (b, r)
    text, count = block_ndjson(decompressed[4])
    assert count == 120 and text.splitlines() == raws[4]

    lake = tmp_path / "lake"
    (led,) = run_ingest(spark, lake, [path])
    assert balanced(led)
    assert (led["lines"], led["records"], led["quarantined"], led["blank_lines"]) == (
        sum(sizes),
        sum(sizes),
        0,
        0,
    )
    assert led["frames"] == len(sizes) and not led["truncated"]
    assert led["compressed_bytes"] == path.stat().st_size
    bronze = rows_by_line(lake, "bronze/comments")
    assert rows_by_line(lake, "quarantine/records") == []
    want = [(address(b, r), rec) for b, recs in enumerate(blocks) for r, rec in enumerate(recs)]
    assert [r["source_line"] for r in bronze] == [line for line, _ in want]
    for row, (_, rec) in zip(bronze, want, strict=True):
        for key in ("id", "author", "subreddit", "created_utc", "body", "score", "retrieved_on"):
            assert row[key] == rec[key], (rec["id"], key)
        assert {c: row[c] for c in META_COLS} == expected_meta(rec), rec["id"]
        assert row["month"] == "2023-06" and row["source_file"] == str(path)
    with_meta = [r for r in bronze if r["meta_retrieved_2nd_on"] is not None]
    assert 0 < len(with_meta) < len(bronze)
    assert any(r["meta_was_deleted_later"] is True for r in with_meta)
    table = Lake(lake).read("bronze/comments")
    assert table.schema.field("meta_retrieved_2nd_on").type == pa.int64()
    assert table.schema.field("meta_was_deleted_later").type == pa.bool_()
    assert table.schema.field("meta_removal_type").type == pa.string()


# ---------------------------------------------------------------- 2. corrupt blocks
def corrupt_file(tmp_path: Path) -> tuple[Path, list[list[dict]], list[int]]:
    """Five blocks: 0, 2, 4 good; 1 with its compressed bytes garbled (same length); 3 a
    valid zstd frame whose row table claims more rows than the block holds."""
    blocks = blocks_of_comments([40, 30, 50, 20, 45])
    frames = [frame(raw_block([row_bytes(r) for r in b])) for b in blocks]
    garbled = bytes(x ^ 0xA5 for x in frames[1][4:])
    frames[1] = frames[1][:4] + garbled
    too_many = bytearray(raw_block([row_bytes(r) for r in blocks[3]]))
    too_many[:4] = U32.pack(5000)  # 5000 rows' table does not fit in the block
    frames[3] = frame(bytes(too_many))
    return write_blocks(tmp_path / "RC_2023-06.zst_blocks", frames), blocks, [1, 3]


def test_corrupt_blocks_are_recorded_not_raised(tmp_path: Path) -> None:
    path, blocks, bad = corrupt_file(tmp_path)
    reader = DumpReader(str(path), chunk_bytes=4096)
    got = reader_rows(reader)
    good = [b for b in range(len(blocks)) if b not in bad]
    assert set(got) == {address(b, r) for b in good for r in range(len(blocks[b]))}
    stats = reader.stats
    assert [line for line, _ in stats.bad_blocks] == [b * BLOCK_ROWS for b in bad]
    for (_, error), b in zip(stats.bad_blocks, bad, strict=True):
        assert error.startswith(f"corrupt block {b}: ")
    assert "does not fit" in stats.bad_blocks[1][1]
    assert stats.frames == len(blocks)
    assert stats.lines == sum(len(blocks[b]) for b in good)
    assert not stats.truncated
    assert stats.compressed_bytes == path.stat().st_size


def test_row_past_the_block_end_is_a_corrupt_block(tmp_path: Path) -> None:
    rows = [row_bytes(r) for r in blocks_of_comments([10])[0]]
    raw = bytearray(raw_block(rows))
    struct.pack_into("<II", raw, 4 + 8 * 9, 0, len(raw))  # the last row's size overruns
    good = raw_block(rows)
    path = write_blocks(tmp_path / "RC_2023-06.zst_blocks", [frame(good), frame(bytes(raw))])
    reader = DumpReader(str(path))
    assert set(reader_rows(reader)) == {address(0, r) for r in range(10)}
    assert [line for line, _ in reader.stats.bad_blocks] == [BLOCK_ROWS]
    assert "corrupt block 1" in reader.stats.bad_blocks[0][1]


def test_corrupt_blocks_ingest_the_other_blocks(spark, tmp_path: Path) -> None:
    path, blocks, bad = corrupt_file(tmp_path)
    lake = tmp_path / "lake"
    (led,) = run_ingest(spark, lake, [path])
    good = [b for b in range(len(blocks)) if b not in bad]
    bronze = rows_by_line(lake, "bronze/comments")
    assert [(r["source_line"], r["id"]) for r in bronze] == [
        (address(b, r), rec["id"]) for b in good for r, rec in enumerate(blocks[b])
    ]
    q = rows_by_line(lake, "quarantine/records")
    assert [(r["source_line"], r["error_kind"]) for r in q] == [
        (b * BLOCK_ROWS, "corrupt_block") for b in bad
    ]
    assert all(r["source_file"] == str(path) for r in q)
    assert "corrupt block 1" in q[0]["error"] and "corrupt block 3" in q[1]["error"]
    assert balanced(led)
    assert led["quarantined"] == len(bad)
    assert led["records"] == len(bronze) == sum(len(blocks[b]) for b in good)
    assert led["lines"] == led["records"] + len(bad)
    assert led["frames"] == len(blocks) and not led["truncated"]


# ---------------------------------------------------------------- 3. truncated file
def test_truncated_last_block(spark, tmp_path: Path) -> None:
    blocks = blocks_of_comments([100, 80, 120])
    frames = [frame(raw_block([row_bytes(r) for r in b])) for b in blocks]
    cut = frames[2][: len(frames[2]) // 2]
    path = write_blocks(tmp_path / "RC_2023-06.zst_blocks", [*frames[:2], cut])

    reader = DumpReader(str(path))
    got = reader_rows(reader)
    assert set(got) == {address(b, r) for b in (0, 1) for r in range(len(blocks[b]))}
    stats = reader.stats
    assert stats.truncated and "block 2 incomplete" in stats.truncation
    assert stats.frames == 2 and stats.lines == 180 and stats.bad_blocks == []
    assert stats.compressed_bytes == path.stat().st_size
    # The split plan keeps the cut block in the last run, read from the headers alone.
    ranges = zst_blocks_ranges(str(path), 1)
    assert [(r.first_block, r.start) for r in ranges] == [
        (0, 0),
        (1, len(frames[0])),
        (2, len(frames[0]) + len(frames[1])),
    ]
    assert ranges[-1].end == path.stat().st_size

    lake = tmp_path / "lake"
    (led,) = run_ingest(spark, lake, [path])
    bronze = rows_by_line(lake, "bronze/comments")
    assert [r["id"] for r in bronze] == [rec["id"] for b in blocks[:2] for rec in b]
    assert [r["source_line"] for r in bronze] == sorted(got)
    q = rows_by_line(lake, "quarantine/records")
    assert [r["error_kind"] for r in q] == ["truncated_file"]
    assert "block 2 incomplete" in q[0]["error"]
    # Its lineage points into the cut block, as every source_line of a .zst_blocks file
    # is a block address (a corrupt block's row is block * 10**6).
    assert q[0]["source_line"] // BLOCK_ROWS == 2, q[0]["source_line"]
    assert led["truncated"] and balanced(led)
    assert led["records"] == 180 and led["lines"] == 180 and led["quarantined"] == 0


def test_file_cut_inside_a_size_header(tmp_path: Path) -> None:
    blocks = blocks_of_comments([30, 20])
    frames = [frame(raw_block([row_bytes(r) for r in b])) for b in blocks]
    path = write_blocks(tmp_path / "RC_2023-06.zst_blocks", [frames[0], frames[1][:2]])
    reader = DumpReader(str(path))
    assert set(reader_rows(reader)) == {address(0, r) for r in range(30)}
    assert reader.stats.truncated and "block 1 incomplete" in reader.stats.truncation
    assert reader.stats.compressed_bytes == path.stat().st_size
    assert reader.stats.frames == 1


# ---------------------------------------------------------------- 4. split = unsplit
def test_split_file_ingests_like_unsplit(spark, tmp_path: Path) -> None:
    rng = random.Random(7)
    sizes = [rng.randint(40, 90) for _ in range(20)]
    blocks: list[list] = [list(b) for b in blocks_of_comments(sizes)]
    bad_json = {(2, 3), (9, 0), (19, sizes[19] - 1)}
    for b, r in bad_json:
        blocks[b][r] = b'{"id": "broken", "body": "cut'
    blocks[5][7] = comment(90_001, {"retrieved_2nd_on": str(T0 + 5)})  # drift: coerced
    blocks[12][1] = comment(90_002, "removed")  # _meta not an object: quarantined
    blocks[14][2] = comment(90_003, score="lots")  # uncoercible score
    frames = [frame(raw_block([row_bytes(r) for r in b])) for b in blocks]
    path = write_blocks(tmp_path / "RC_2023-06.zst_blocks", frames)

    split_mb = 3 * max(len(f) for f in frames) / (1 << 20)
    parts = plan_partitions([str(path)], int(split_mb * (1 << 20)))
    assert len(parts) >= 4
    assert [p.span.first_block for p in parts] == sorted({p.span.first_block for p in parts})
    assert len(plan_partitions([str(path)], 256 << 20)) == 1

    whole, split = tmp_path / "whole", tmp_path / "split"
    led_whole = run_ingest(spark, whole, [path])
    led_split = run_ingest(spark, split, [path], split_mb=split_mb)
    bronze = rows_by_line(whole, "bronze/comments")
    assert rows_by_line(split, "bronze/comments") == bronze
    quarantine = rows_by_line(whole, "quarantine/records")
    assert rows_by_line(split, "quarantine/records") == quarantine
    assert no_seconds(led_split) == no_seconds(led_whole)

    # And both are right, not just alike.
    quarantined = bad_json | {(12, 1), (14, 2)}
    want = [
        (address(b, r), rec["id"])
        for b, recs in enumerate(blocks)
        for r, rec in enumerate(recs)
        if (b, r) not in quarantined
    ]
    assert [(r["source_line"], r["id"]) for r in bronze] == want
    assert [(r["source_line"], r["error_kind"]) for r in quarantine] == sorted(
        [(address(b, r), "json") for b, r in bad_json]
        + [(address(12, 1), "type"), (address(14, 2), "type")]
    )
    for r in quarantine:
        assert zst_blocks_row(str(path), r["source_line"]).decode()[:100] == r["raw"][:100]
    drift = next(r for r in bronze if r["id"] == "c90001")
    assert drift["meta_retrieved_2nd_on"] == T0 + 5
    (led,) = led_whole
    assert balanced(led) and led["frames"] == 20 and led["lines"] == sum(sizes)
    assert led["quarantined"] == len(quarantined) and not led["truncated"]


# ---------------------------------------------------------------- 5. threads
@pytest.fixture
def big_zst(tmp_path: Path) -> Path:
    """A plain .zst comments file over two months, with bad lines here and there."""
    recs: list = [
        comment(i, meta_of(i), created_utc=T0 + 900 * i) for i in range(1, 3001)
    ]  # 2023-06-01 .. 2023-07-02
    for i in (17, 400, 1501, 2999):
        recs[i] = b'{"id": "bad", "body": '
    recs[800] = comment(801, score="many")
    recs[1200] = b""  # blank
    recs[2100] = comment(2101, {"retrieved_2nd_on": "1690000000"})
    # A chunk is at least one decompressed frame: 120 frames of 25 lines make 120 chunks.
    return zst(tmp_path / "RC_2023-06.zst", jl(recs), frames=120)


def _sorted(table: pa.Table) -> pa.Table:
    return table.sort_by([("source_line", "ascending")])


def test_threaded_write_equals_one_thread(big_zst: Path, tmp_path: Path) -> None:
    chunks = [(c.first_line, c.lines) for c in DumpReader(str(big_zst), 4096).chunks()]
    assert len(chunks) >= 100
    # line 2880 is the first of July: one chunk holds both months
    assert any(first <= 2879 and first + n > 2880 for first, n in chunks)

    one = FileScan(str(big_zst), "comments", chunk_bytes=4096)
    serial = pa.Table.from_batches(list(one.batches()), schema=BRONZE_COMMENTS)
    q_one, led_one = one.finish()

    two = FileScan(str(big_zst), "comments", chunk_bytes=4096)
    parts = two.write(str(tmp_path / "out"), "p00000-test", workers=2)
    q_two, led_two = two.finish()
    assert len({p for p, _ in parts}) == len(parts) >= 2
    tables = []
    for p, n in parts:
        t = pq.read_table(p)
        assert t.num_rows == n
        month = Path(p).parent.name.removeprefix("month=")
        tables.append(t.append_column("month", pa.array([month] * n, pa.string())))
    months = {Path(p).parent.name for p, _ in parts}
    assert months == {"month=2023-06", "month=2023-07"}
    threaded = pa.concat_tables(tables).select(BRONZE_COMMENTS.names).cast(BRONZE_COMMENTS)

    assert one.reader.stats.lines == 3000 and led_one["frames"] == 120
    assert serial.num_rows == 3000 - 4 - 1 - 1  # bad JSON, bad type, blank
    assert _sorted(threaded).equals(_sorted(serial))
    assert serial["source_line"].to_pylist() == sorted(serial["source_line"].to_pylist())
    key = lambda r: (r["source_line"], r["error_kind"])  # noqa: E731
    assert sorted(q_two, key=key) == sorted(q_one, key=key)
    assert [(r["source_line"], r["error_kind"]) for r in sorted(q_one, key=key)] == [
        (18, "json"),
        (401, "json"),
        (801, "type"),
        (1502, "json"),
        (3000, "json"),
    ]
    assert no_seconds([led_two]) == no_seconds([led_one])
    assert balanced(led_one) and led_one["blank_lines"] == 1
    drift = serial.filter(pc.equal(serial["id"], "c2101"))
    assert drift["meta_retrieved_2nd_on"].to_pylist() == [1690000000]


def test_ingest_workers_per_task_same_bronze(spark, big_zst: Path, tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    led_one = run_ingest(spark, one, [big_zst], workers_per_task=1, chunk_bytes=4096)
    led_two = run_ingest(spark, two, [big_zst], workers_per_task=2, chunk_bytes=4096)
    bronze = rows_by_line(one, "bronze/comments")
    assert len(bronze) == 3000 - 6
    assert rows_by_line(two, "bronze/comments") == bronze
    assert rows_by_line(two, "quarantine/records") == rows_by_line(one, "quarantine/records")
    assert no_seconds(led_two) == no_seconds(led_one)


# ---------------------------------------------------------------- 6. _meta drift
def test_meta_type_drift(tmp_path: Path, monkeypatch) -> None:
    slow_lines: list[int] = []
    real_slow = ChunkParser._slow

    def spy(self, chunk: bytes, first_line: int):
        slow_lines.extend(range(first_line, first_line + chunk.count(b"\n")))
        return real_slow(self, chunk, first_line)

    monkeypatch.setattr(ChunkParser, "_slow", spy)
    parser = ChunkParser("comments", "RC_2023-06.zst_blocks")

    good = [comment(i, meta_of(i)) for i in range(1, 201)]
    fast = parser.parse(jl(good), 1)
    assert slow_lines == [] and fast.quarantine == [] and fast.table.num_rows == 200
    assert fast.table.select(META_COLS).to_pylist() == [expected_meta(r) for r in good]
    small = parser.parse(jl(good[:10]), 1)  # under _SMALL_CHUNK_LINES: still the fast path
    assert slow_lines == []
    assert small.table.equals(fast.table.slice(0, 10))
    # Both paths give the same typed values.
    by_hand = real_slow(parser, jl(good), 1)
    assert parser._finish(by_hand.table).equals(fast.table)

    drift = comment(500, {"retrieved_2nd_on": "1690000000", "was_deleted_later": True})
    out = parser.parse(jl([drift]), 1)
    assert slow_lines == [1]  # coerced by the per-line path
    assert out.quarantine == []
    (row,) = out.table.to_pylist()
    assert row["meta_retrieved_2nd_on"] == 1690000000 and row["meta_was_deleted_later"] is True

    slow_lines.clear()
    lines = [*good[:100], comment(501, "removed"), *good[100:]]
    out = parser.parse(jl(lines), 1)
    assert 101 in slow_lines
    (q,) = out.quarantine
    assert (q["source_line"], q["error_kind"]) == (101, "type")
    assert "_meta" in q["error"] and '"removed"' in q["raw"]
    assert out.table.num_rows == 200
    assert out.table.select(META_COLS).to_pylist() == [expected_meta(r) for r in good]

    # The same lines in a .zst_blocks file: the quarantine row has the row's address.
    frames = [
        frame(raw_block([row_bytes(r) for r in good[:50]])),
        frame(raw_block([row_bytes(r) for r in [*good[50:60], drift, comment(501, "x")]])),
    ]
    path = write_blocks(tmp_path / "RC_2023-06.zst_blocks", frames)
    scan = FileScan(str(path), "comments")
    table = pa.Table.from_batches(list(scan.batches()), schema=BRONZE_COMMENTS)
    quarantine, led = scan.finish()
    assert [(r["source_line"], r["error_kind"]) for r in quarantine] == [(address(1, 11), "type")]
    got = table.filter(pc.equal(table["id"], "c500"))
    assert got["source_line"].to_pylist() == [address(1, 10)]
    assert got["meta_retrieved_2nd_on"].to_pylist() == [1690000000]
    assert table.num_rows == 61 and balanced(led)
