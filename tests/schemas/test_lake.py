"""The lake in both formats: Parquet folders and real Delta tables (deltalake), real Spark."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from schemas.tables import table
from storage.lake import Lake, RowLog, data_files, is_delta, table_fingerprint

FORMATS = ("parquet", "delta")
COMMENTS = "bronze/comments"
SCHEMA = table(COMMENTS).schema


def comments(ids, month="2021-05", author=None, source="RC_2021-05.zst") -> pa.Table:
    rows = [
        {n: None for n in SCHEMA.names}
        | {
            "id": f"c{i}",
            "author": author or f"user{i % 3}",
            "created_utc": 1620000000 + i,
            "body": f"comment {i}",
            "score": i,
            "source_file": source,
            "source_line": i,
            "month": month,
        }
        for i in ids
    ]
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def ids(lake: Lake, name: str = COMMENTS) -> list[str]:
    return sorted(lake.read(name, ["id"])["id"].to_pylist())


def on_disk(root: Path) -> pa.Table:
    """Every data file under a folder (live or not; Delta checkpoints aside), read with
    pyarrow."""
    files = [p for p in root.rglob("*.parquet") if "_delta_log" not in p.parts]
    return pa.concat_tables([pq.read_table(f).select(["id", "author"]) for f in files])


def check_delta(lake: Lake, name: str) -> DeltaTable:
    assert lake.is_delta(name)
    dt = DeltaTable(str(lake.path(name)))
    assert set(dt.schema().to_arrow().names) == set(table(name).schema.names)
    return dt


@pytest.mark.parametrize("fmt", FORMATS)
def test_write_read_round_trip_with_schema_and_partitions(tmp_path: Path, fmt: str):
    lake = Lake(tmp_path / "lake", fmt)
    empty = lake.read(COMMENTS)
    assert empty.num_rows == 0 and empty.schema == SCHEMA
    assert lake.rows(COMMENTS) == 0 and not lake.is_delta(COMMENTS)

    data = pa.concat_tables([comments(range(5)), comments(range(5, 8), month="2021-06")])
    lake.write_table(COMMENTS, data.select(list(reversed(SCHEMA.names))))  # any column order
    back = lake.read(COMMENTS)
    assert back.schema == SCHEMA
    key = [("id", "ascending")]
    assert back.sort_by(key).to_pylist() == data.sort_by(key).to_pylist()
    assert lake.rows(COMMENTS) == 8
    assert {p.parent.name for p in data_files(lake.path(COMMENTS))} == {
        "month=2021-05",
        "month=2021-06",
    }
    part = lake.read(COMMENTS, ["month", "id"])
    assert part.schema.names == ["month", "id"] and part.schema == pa.schema(
        [SCHEMA.field("month"), SCHEMA.field("id")]
    )
    assert lake.is_delta(COMMENTS) == (fmt == "delta")
    if fmt == "delta":
        dt = check_delta(lake, COMMENTS)
        assert dt.metadata().partition_columns == ["month"]
        assert dt.to_pyarrow_table().num_rows == 8

    # an unpartitioned table, replaced by a smaller one
    q = table("quarantine/records").schema
    rows = [
        {"source_file": "f", "source_line": i, "kind": "comments", "error_kind": "json"}
        | {"error": "bad", "raw": "{", "raw_bytes": 1}
        for i in range(3)
    ]
    lake.write_table("quarantine/records", pa.Table.from_pylist(rows, schema=q))
    lake.write_table("quarantine/records", pa.Table.from_pylist(rows[:1], schema=q))
    assert lake.read("quarantine/records").to_pylist() == rows[:1]
    assert lake.rows("quarantine/records") == 1
    if fmt == "delta":
        check_delta(lake, "quarantine/records")
        assert len(data_files(lake.path("quarantine/records"))) == 1  # old file vacuumed


@pytest.mark.parametrize("fmt", FORMATS)
def test_fingerprint_changes_on_each_commit_only(tmp_path: Path, fmt: str):
    lake = Lake(tmp_path / "lake", fmt)
    seen = [lake.fingerprint(COMMENTS)]
    assert lake.fingerprint(COMMENTS) == seen[0]  # missing: a stable value

    def committed() -> None:
        fp = lake.fingerprint(COMMENTS)
        assert fp not in seen
        assert lake.fingerprint(COMMENTS) == fp == table_fingerprint(lake.path(COMMENTS))
        lake.read(COMMENTS)
        lake.rows(COMMENTS)
        assert lake.fingerprint(COMMENTS) == fp  # reading changes nothing
        seen.append(fp)

    lake.write_table(COMMENTS, comments(range(4)))
    committed()
    lake.write_table(COMMENTS, comments(range(4)))  # same rows, still a new commit
    committed()
    staged = tmp_path / "staged"
    pq.write_table(comments(range(10, 12)).drop_columns(["month"]), _part(staged, "2021-05"))
    lake.append_parts(COMMENTS, staged, "b1")
    committed()
    assert lake.delete_where(COMMENTS, lambda t: pc.equal(t["id"], "nope")) == 0
    assert lake.fingerprint(COMMENTS) == seen[-1]  # nothing removed: no commit
    assert lake.delete_where(COMMENTS, lambda t: pc.equal(t["id"], "c1")) == 1
    committed()


def _part(folder: Path, month: str, name: str = "part-00000-x.c000.snappy.parquet") -> Path:
    path = folder / f"month={month}" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@pytest.mark.parametrize("fmt", FORMATS)
def test_delete_where_removes_exactly_the_rows_from_every_file(tmp_path: Path, fmt: str):
    lake = Lake(tmp_path / "lake", fmt)
    lake.write_table(
        COMMENTS,
        pa.concat_tables(
            [
                comments(range(6)),
                comments(range(6, 9), month="2021-06", author="optout"),  # a whole partition
                comments(range(9, 12), month="2021-07"),
            ]
        ),
    )
    staged = tmp_path / "staged"
    pq.write_table(comments(range(20, 23)).drop_columns(["month"]), _part(staged, "2021-05"))
    lake.append_parts(COMMENTS, staged, "b1")  # a second file in 2021-05
    lake.delete_where(COMMENTS, lambda t: pc.equal(t["id"], "none"))
    seen_rows = []

    def remove(t: pa.Table) -> pa.Array:
        seen_rows.extend(t["id"].to_pylist())
        return pc.or_(pc.equal(t["author"], "optout"), pc.is_in(t["id"], pa.array(["c2", "c21"])))

    before = lake.rows(COMMENTS)
    assert lake.delete_where(COMMENTS, remove) == 5
    assert sorted(seen_rows) == sorted(f"c{i}" for i in [*range(12), 20, 21, 22])  # once each
    assert lake.rows(COMMENTS) == before - 5
    assert ids(lake) == sorted(f"c{i}" for i in [0, 1, 3, 4, 5, 9, 10, 11, 20, 22])
    left = on_disk(lake.path(COMMENTS))  # no file, live or old, still holds the rows
    assert not set(left["id"].to_pylist()) & {"c2", "c21", "c6", "c7", "c8"}
    assert "optout" not in left["author"].to_pylist()
    assert not list(lake.path(COMMENTS).glob("month=2021-06/*.parquet"))
    # a projection is enough to decide; the rows keep all their columns
    assert lake.delete_where(COMMENTS, lambda t: pc.equal(t["month"], "2021-07"), ["month"]) == 3
    back = lake.read(COMMENTS).sort_by("id")
    assert back["id"].to_pylist() == sorted(f"c{i}" for i in [0, 1, 3, 4, 5, 20, 22])
    assert back["body"].to_pylist()[0] == "comment 0" and set(back["month"].to_pylist()) == {
        "2021-05"
    }
    if fmt == "delta":
        dt = check_delta(lake, COMMENTS)
        assert dt.to_pyarrow_table().num_rows == 7
        assert len(dt.file_uris()) == len(data_files(lake.path(COMMENTS)))
        # delta-rs can still run its own operations on the table we committed to
        dt.delete("id = 'c0'")
        assert lake.rows(COMMENTS) == 6

    # an unpartitioned table: a file left empty goes
    q = table("quarantine/records").schema
    rows = [
        {"source_file": f"f{i % 2}", "source_line": i, "kind": "comments", "error_kind": "json"}
        | {"error": "bad", "raw": f"raw {i}", "raw_bytes": 5}
        for i in range(4)
    ]
    lake.write_table("quarantine/records", pa.Table.from_pylist(rows, schema=q))
    folder = lake.path("quarantine/records")
    assert lake.delete_where("quarantine/records", lambda t: pc.equal(t["source_file"], "f1")) == 2
    assert lake.read("quarantine/records").to_pylist() == rows[0::2]
    raws = {r for f in data_files(folder) for r in pq.read_table(f)["raw"].to_pylist()}
    assert raws == {"raw 0", "raw 2"}
    assert lake.delete_where("quarantine/records", lambda t: pc.equal(t["kind"], "comments")) == 2
    assert lake.rows("quarantine/records") == 0 and not data_files(folder)
    assert lake.read("quarantine/records").schema == q
    if fmt == "delta":
        assert DeltaTable(str(folder)).to_pyarrow_table().num_rows == 0


@pytest.mark.parametrize("fmt", FORMATS)
def test_commit_table_from_hive_partitioned_staged_folder(tmp_path: Path, fmt: str):
    lake = Lake(tmp_path / "lake", fmt)
    lake.write_table(COMMENTS, comments(range(100, 103)))  # replaced by the commit
    staged = lake.staging("spark", COMMENTS)
    for month, rng in (("2021-05", range(3)), ("2021-06", range(3, 5))):
        pq.write_table(comments(rng, month=month).drop_columns(["month"]), _part(staged, month))
    (staged / "_SUCCESS").write_text("")
    lake.commit_table(COMMENTS, staged)
    assert not staged.exists()
    back = lake.read(COMMENTS).sort_by("id")
    assert back["id"].to_pylist() == [f"c{i}" for i in range(5)]
    assert back["month"].to_pylist() == ["2021-05"] * 3 + ["2021-06"] * 2
    assert not {"c100", "c101"} & set(on_disk(lake.path(COMMENTS))["id"].to_pylist())
    if fmt == "delta":
        check_delta(lake, COMMENTS)
    # a folder that is not a lake table (a report) is swapped in as it is
    report = lake.staging("report")
    report.mkdir(parents=True)
    (report / "index.html").write_text("<html/>")
    lake.commit_table("reports/zipbench", report)
    assert (lake.path("reports/zipbench") / "index.html").read_text() == "<html/>"


@pytest.mark.parametrize("fmt", FORMATS)
def test_append_parts_twice(tmp_path: Path, fmt: str):
    lake = Lake(tmp_path / "lake", fmt)
    for n, (batch, rng) in enumerate((("b1", range(3)), ("b2", range(3, 7)))):
        staged = tmp_path / f"staged{n}"
        pq.write_table(comments(rng).drop_columns(["month"]), _part(staged, "2021-05"))
        pq.write_table(
            comments([]).drop_columns(["month"]), _part(staged, "2021-06", "part-empty.parquet")
        )
        assert lake.append_parts(COMMENTS, staged, batch) == len(rng)
    assert ids(lake) == sorted(f"c{i}" for i in range(7))
    assert lake.rows(COMMENTS) == 7
    assert not list(lake.path(COMMENTS).glob("month=2021-06/*.parquet"))  # empty skipped
    if fmt == "parquet":
        names = sorted(p.name for p in data_files(lake.path(COMMENTS)))
        assert names == ["b1-00000.parquet", "b2-00000.parquet"]
    else:
        dt = check_delta(lake, COMMENTS)
        writes = [h for h in dt.history() if h["operation"] == "WRITE"]
        assert [h.get("zipp.batch") for h in writes] == ["b2", "b1"]  # one commit each
        assert dt.version() == 1
    staged = tmp_path / "nothing"
    staged.mkdir()
    fp = lake.fingerprint(COMMENTS)
    assert lake.append_parts(COMMENTS, staged, "b3") == 0
    assert lake.fingerprint(COMMENTS) == fp


@pytest.mark.parametrize("fmt", FORMATS)
def test_spark_round_trip(spark, tmp_path: Path, fmt: str):
    source = Lake(tmp_path / "source")
    data = pa.concat_tables([comments(range(4)), comments(range(4, 6), month="2021-06")])
    source.write_table(COMMENTS, data)
    lake = Lake(tmp_path / "lake", fmt)
    assert lake.read_spark(spark, "silver/users").count() == 0  # missing: empty, with schema
    lake.write_spark(COMMENTS, source.read_spark(spark, COMMENTS))
    assert lake.is_delta(COMMENTS) == (fmt == "delta")
    key = [("id", "ascending")]
    assert lake.read(COMMENTS).sort_by(key).to_pylist() == data.sort_by(key).to_pylist()
    df = lake.read_spark(spark, COMMENTS)
    assert df.columns == SCHEMA.names
    got = sorted((r["id"], r["month"], r["body"]) for r in df.collect())
    assert got == sorted(zip(*(data[c].to_pylist() for c in ("id", "month", "body")), strict=True))
    if fmt == "delta":
        check_delta(lake, COMMENTS)
        lake.write_table(COMMENTS, comments([]))
        assert lake.read_spark(spark, COMMENTS).count() == 0  # Delta, no live files
        # after a delete the old files are gone and Spark sees only the live ones
        lake.write_spark(COMMENTS, source.read_spark(spark, COMMENTS))
        lake.delete_where(COMMENTS, lambda t: pc.equal(t["month"], "2021-06"))
        assert lake.read_spark(spark, COMMENTS).count() == 4


def test_parquet_table_rewritten_as_delta_and_back(tmp_path: Path):
    root = tmp_path / "lake"
    Lake(root).write_table(COMMENTS, comments(range(5)))
    Lake(root).path("silver/users").mkdir(parents=True)  # an empty folder
    delta = Lake(root, "delta")
    assert not delta.is_delta(COMMENTS) and ids(delta) == [f"c{i}" for i in range(5)]
    delta.write_table(COMMENTS, comments(range(3, 8), month="2021-06"))
    check_delta(delta, COMMENTS)
    assert ids(delta) == [f"c{i}" for i in range(3, 8)]
    assert ids(Lake(root)) == ids(delta)  # a Parquet lake reads the Delta table too
    assert set(on_disk(delta.path(COMMENTS))["id"].to_pylist()) == {f"c{i}" for i in range(3, 8)}
    assert not list(root.glob("bronze/.comments*"))  # the swapped-out folder is gone

    # convert keeps the rows, both ways; ensure creates missing tables in the format
    parquet = Lake(root, "parquet")
    parquet.convert(COMMENTS)
    assert not is_delta(parquet.path(COMMENTS)) and ids(parquet) == ids(delta)
    delta.convert(COMMENTS)
    check_delta(delta, COMMENTS)
    assert ids(delta) == [f"c{i}" for i in range(3, 8)]
    assert delta.read(COMMENTS).schema == SCHEMA
    delta.ensure("silver/users")
    delta.ensure("quarantine/records")
    for name in ("silver/users", "quarantine/records"):
        dt = check_delta(delta, name)
        assert dt.to_pyarrow_table().num_rows == 0 and delta.read(name).schema == table(name).schema
    fp = delta.fingerprint(COMMENTS)
    delta.ensure(COMMENTS)  # already Delta: untouched
    assert delta.fingerprint(COMMENTS) == fp


def test_row_log_stays_parquet_staging_in_a_delta_lake(tmp_path: Path):
    lake = Lake(tmp_path / "lake", "delta")
    log = RowLog(lake, "ingest", COMMENTS, key="id")
    log.append(comments(range(2)))
    assert sorted(log.read()["id"].to_pylist()) == ["c0", "c1"]
    assert not is_delta(log.dir) and log.dir.is_relative_to(lake.staging())


def test_unknown_format_is_refused(tmp_path: Path):
    with pytest.raises(ValueError, match="lake.format"):
        Lake(tmp_path, "iceberg")  # type: ignore[arg-type]


def test_a_deleted_value_leaves_the_delta_log_too(tmp_path):
    """Delta commits carry min/max column statistics: after a delete, no log entry and no
    checkpoint still names a deleted author."""
    lake = Lake(tmp_path, "delta")
    name = "quarantine/records"

    def rows(raw: list[str]) -> pa.Table:
        n = len(raw)
        return pa.table(
            {
                "source_file": ["f"] * n,
                "source_line": pa.array(range(n), pa.int64()),
                "kind": ["comments"] * n,
                "error_kind": ["json"] * n,
                "error": ["x"] * n,
                "raw": raw,
                "raw_bytes": pa.array([10] * n, pa.int64()),
            }
        )

    lake.write_table(name, rows(['{"author": "aaa_gone"', "mmm_kept", "zzz_kept"]))
    gone = lake.delete_where(name, lambda t: pc.match_substring(t["raw"], "aaa_gone"))
    assert gone == 1 and lake.read(name)["raw"].to_pylist() == ["mmm_kept", "zzz_kept"]
    for f in (tmp_path / name).rglob("*"):
        if f.is_file():
            assert b"aaa_gone" not in f.read_bytes(), f


def test_leftovers_of_a_killed_write_are_cleaned(tmp_path):
    lake = Lake(tmp_path)
    lake.write_table(
        "silver/users",
        pa.table({"user_id": pa.array([1], pa.int32())})
        .append_column("author", pa.array(["a"]))
        .append_column("posts", pa.array([1]))
        .append_column("comments", pa.array([1]))
        .append_column("subreddits", pa.array([1]))
        .append_column("first_utc", pa.array([1]))
        .append_column("last_utc", pa.array([1]))
        .append_column("role", pa.array(["train"])),
    )
    (tmp_path / "_staging/aside/silver+users-1234").mkdir(parents=True)
    (tmp_path / "silver/.users.old-abcd").mkdir()
    (tmp_path / "_staging/rows/personas").mkdir(parents=True)  # a resume point: kept
    assert lake.clean_leftovers() == 2
    assert not (tmp_path / "silver/.users.old-abcd").exists()
    assert (tmp_path / "_staging/rows/personas").exists() and lake.rows("silver/users") == 1
