"""`Lake.delete_where` streams each data file a row group at a time (issue 26): the same
rows and contents as a whole-file rewrite, `remove` once per row, untouched files left
as they are, emptied files deleted, in both lake formats."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from deltalake import WriterProperties, write_deltalake

from pipelines.deletion import _redactor
from schemas.tables import table
from storage.lake import Lake, data_files

COMMENTS = "bronze/comments"
SCHEMA = table(COMMENTS).schema
STORED = SCHEMA.remove(SCHEMA.get_field_index("month"))  # the file's columns (hive month)
GROUP = 3  # rows per row group of the files written here
BLOCKED = frozenset({"blocked_a"})
REDACT = _redactor(BLOCKED)

#: (month, part) -> rows as (author, body); "u/blocked_a" in a body is a mention to redact
FILES = {
    # removals in the 2nd row group, a mention in the last: rewritten
    ("2021-05", 0): [("u0", "hi")] * 4
    + [("BLOCKED_A", "mine")]
    + [("u1", "x")] * 4
    + [("u2", "thanks u/blocked_a!")],
    # nothing to remove or redact: untouched
    ("2021-05", 1): [("u3", "plain")] * 6,
    # every row removed: the file goes
    ("2021-06", 0): [("blocked_a", "all mine")] * 4,
    # no removals, one mention in the last row group: rewritten (earlier groups copied)
    ("2021-06", 1): [("u4", "a")] * 6 + [("u5", "see u/Blocked_A here")],
}


def rows_of(month: str, part: int) -> pa.Table:
    out = [
        {n: None for n in SCHEMA.names}
        | {
            "id": f"{month}-{part}-{i}",
            "author": author,
            "body": body,
            "created_utc": 1620000000 + i,
            "source_file": f"RC_{month}.zst",
            "source_line": i,
            "month": month,
        }
        for i, (author, body) in enumerate(FILES[month, part])
    ]
    return pa.Table.from_pylist(out, schema=SCHEMA)


def parquet_lake(tmp_path: Path) -> Lake:
    """A bronze table of hive-partitioned files of GROUP-row row groups, as ingest
    writes them (no Arrow schema stored)."""
    lake = Lake(tmp_path / "lake")
    for (month, part), _ in FILES.items():
        f = lake.path(COMMENTS) / f"month={month}" / f"part-{part:05d}.parquet"
        f.parent.mkdir(parents=True, exist_ok=True)
        data = rows_of(month, part).drop_columns(["month"]).cast(STORED)
        pq.write_table(data, f, row_group_size=GROUP, store_schema=False)
    return lake


def delta_lake(tmp_path: Path) -> Lake:
    """The same rows as a Delta table whose files have GROUP-row row groups."""
    lake = Lake(tmp_path / "lake", "delta")
    for key in FILES:
        write_deltalake(
            str(lake.path(COMMENTS)),
            rows_of(*key),
            mode="append",
            partition_by=["month"],
            writer_properties=WriterProperties(max_row_group_size=GROUP),
        )
    return lake


def blocked(t: pa.Table) -> pa.Array:
    lowered = pa.array(sorted(BLOCKED))
    return pc.fill_null(pc.is_in(pc.utf8_lower(t["author"]), value_set=lowered), False)


def whole_file(f: Path, edit) -> pa.Table | None:
    """The reference: what a whole-file rewrite makes of `f` (None: the file stays)."""
    rows = pq.read_table(f)
    mask = blocked(rows)
    kept = rows.filter(pc.invert(mask))
    edited = edit(kept) if edit is not None else None
    if edited is not None:
        return edited
    return kept if pc.any(mask).as_py() else None


class Remove:
    """`blocked`, recording the ids and the size of every piece it is shown."""

    def __init__(self, columns: list[str] | None = None):
        self.schema = SCHEMA if columns is None else pa.schema([SCHEMA.field(c) for c in columns])
        self.ids: list[str] = []
        self.pieces: list[int] = []

    def __call__(self, t: pa.Table) -> pa.Array:
        assert t.schema == self.schema
        self.ids += t["id"].to_pylist()
        self.pieces.append(t.num_rows)
        return blocked(t)


def all_ids() -> list[str]:
    return sorted(f"{m}-{p}-{i}" for (m, p), rows in FILES.items() for i in range(len(rows)))


@pytest.mark.parametrize("edit", [None, REDACT], ids=["remove", "remove+redact"])
@pytest.mark.parametrize("columns", [None, ["id", "author"]], ids=["all-columns", "id-author"])
def test_parquet_same_files_as_a_whole_file_rewrite(tmp_path: Path, edit, columns):
    lake = parquet_lake(tmp_path)
    files = data_files(lake.path(COMMENTS))
    assert all(pq.ParquetFile(f).num_row_groups > 1 for f in files)
    expected = {f: whole_file(f, edit) for f in files}
    before = {f: (f.read_bytes(), f.stat().st_mtime_ns) for f in files}
    remove = Remove(columns)

    removed = lake.delete_where(COMMENTS, remove, columns=columns, edit=edit)

    assert removed == 5
    assert sorted(remove.ids) == all_ids()  # each row once
    assert max(remove.pieces) <= GROUP  # a row group at a time
    for f, want in expected.items():
        if want is None:
            assert (f.read_bytes(), f.stat().st_mtime_ns) == before[f], f"{f} was rewritten"
        elif not want.num_rows:
            assert not f.exists()
        else:
            got = pq.read_table(f)
            assert got.equals(want), f
            assert pq.ParquetFile(f).num_row_groups > 1  # pieces, not one concatenation
    gone = lake.path(COMMENTS) / "month=2021-06" / "part-00000.parquet"
    assert not gone.exists()
    assert not [p for p in lake.path(COMMENTS).rglob(".*")]  # no temporary file left
    bodies = lake.read(COMMENTS)["body"].to_pylist()
    assert any("blocked_a" in b.lower() for b in bodies) == (edit is None)


def test_parquet_partition_column_remove_on_row_groups(tmp_path: Path):
    """`remove` over the hive partition column only (no stored column read)."""
    lake = parquet_lake(tmp_path)
    seen: list[int] = []

    def june(t: pa.Table) -> pa.Array:
        seen.append(t.num_rows)
        return pc.equal(t["month"], "2021-06")

    assert lake.delete_where(COMMENTS, june, columns=["month"]) == 11
    assert sum(seen) == len(all_ids()) and max(seen) <= GROUP
    assert not data_files(lake.path(COMMENTS) / "month=2021-06")
    assert set(lake.read(COMMENTS)["month"].to_pylist()) == {"2021-05"}


def test_parquet_failed_edit_leaves_the_file_and_no_temporary(tmp_path: Path):
    lake = parquet_lake(tmp_path)
    files = data_files(lake.path(COMMENTS))
    before = {f: f.read_bytes() for f in files}
    calls = 0

    def failing(rows: pa.Table) -> pa.Table | None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("edit failed")
        return REDACT(rows)

    with pytest.raises(RuntimeError, match="edit failed"):
        lake.delete_where(COMMENTS, blocked, edit=failing)
    assert {f: f.read_bytes() for f in files} == before
    assert not [p for p in lake.path(COMMENTS).rglob(".*")]


def part_of(f: Path) -> str:
    """Which of FILES a data file holds rows of (``2021-05-1``)."""
    return pq.read_table(f, columns=["id"])["id"][0].as_py().rsplit("-", 1)[0]


@pytest.mark.parametrize("edit", [None, REDACT], ids=["remove", "remove+redact"])
def test_delta_same_rows_as_a_whole_table_rewrite(tmp_path: Path, edit):
    lake = delta_lake(tmp_path)
    root = lake.path(COMMENTS)
    before = {f: f.stat().st_mtime_ns for f in data_files(root)}
    assert len(before) == len(FILES)
    assert all(pq.ParquetFile(f).num_row_groups > 1 for f in before)
    whole = lake.read(COMMENTS)
    want = whole.filter(pc.invert(blocked(whole)))
    if edit is not None:
        want = edit(want) or want
    remove = Remove()

    assert lake.delete_where(COMMENTS, remove, edit=edit) == 5

    assert sorted(remove.ids) == all_ids()  # each row once
    assert max(remove.pieces) <= GROUP
    assert lake.read(COMMENTS).sort_by("id").equals(want.sort_by("id"))
    assert lake.rows(COMMENTS) == want.num_rows  # numRecords of the new files
    after = set(data_files(root))  # after VACUUM: the live files only
    kept = {f for f in after if f in before}
    assert all(f.stat().st_mtime_ns == before[f] for f in kept)
    untouched = {"2021-05-1"} if edit else {"2021-05-1", "2021-06-1"}
    assert {part_of(f) for f in kept} == untouched
    new = after - kept  # the emptied 2021-06-0 has none
    assert {part_of(f) for f in new} == {"2021-05-0", "2021-06-1"} - untouched
    assert all(pq.ParquetFile(f).num_row_groups > 1 for f in new)
    for f in after:
        assert "blocked_a" not in {a.lower() for a in pq.read_table(f)["author"].to_pylist()}
