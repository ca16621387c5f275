"""`RowLog.merge`: one row per asked id in the asked order; a done row beats a failed
one, the newest wins among equals; ids no longer asked for are dropped."""

from __future__ import annotations

import pyarrow as pa

from schemas.bench import REWRITES
from storage.lake import Lake, RowLog

#: a value of each type a required column of bench/rewrites has
ZERO = {"string": "", "int32": 0, "int64": 0, "bool": False, "double": 0.0, "float": 0.0}


def rows(*spec: tuple[str, str, str]) -> pa.Table:
    """(request id, status, text) rows of bench/rewrites; the other required columns a
    zero of their type, the rest empty."""
    zero = {f.name: ZERO[str(f.type)] for f in REWRITES if not f.nullable}
    out = [
        zero | {"request_id": rid, "status": status, "prompt": text} for rid, status, text in spec
    ]
    return pa.Table.from_pylist(out, schema=REWRITES)


def merged(tmp_path, previous: pa.Table, *parts: pa.Table, ids: list[str]) -> list[tuple]:
    log = RowLog(Lake(tmp_path), "rewrite", "bench/rewrites")
    for part in parts:
        log.append(part)
    out = log.merge(ids, previous)
    assert out.schema == REWRITES
    cols = [out[c].to_pylist() for c in ("request_id", "status", "prompt")]
    return list(zip(*cols, strict=True))


def test_done_beats_failed_and_the_newest_wins_among_equals(tmp_path):
    previous = rows(("a", "done", "a-old"), ("b", "failed", "b-old"), ("gone", "done", "x"))
    first = rows(("b", "done", "b-1"), ("c", "failed", "c-1"), ("a", "failed", "a-1"))
    second = rows(("c", "failed", "c-2"), ("b", "done", "b-2"), ("d", "done", "d-1"))
    got = merged(tmp_path, previous, first, second, ids=["d", "c", "b", "a"])
    assert got == [
        ("d", "done", "d-1"),
        ("c", "failed", "c-2"),  # both failed: the newest
        ("b", "done", "b-2"),  # both done: the newest
        ("a", "done", "a-old"),  # a done row from before beats a newer failure
    ]


def test_nothing_logged_and_nothing_asked(tmp_path):
    previous = rows(("a", "done", "a"), ("b", "done", "b"))
    assert merged(tmp_path, previous, ids=["b"]) == [("b", "done", "b")]
    assert merged(tmp_path, previous, ids=[]) == []
    assert merged(tmp_path, REWRITES.empty_table(), ids=[]) == []
