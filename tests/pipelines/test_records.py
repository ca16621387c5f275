"""ChunkParser: typed bronze rows and quarantine rows from chunks of dump lines."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import polars as pl
import pyarrow as pa
import pytest

from pipelines.records import MAX_UTC, MIN_UTC, ChunkParser, _Fallback, media_columns
from schemas.reddit import BRONZE_COMMENTS, BRONZE_SUBMISSIONS, COMMENT_FIELDS
from tests.conftest import jl

T0 = 1622505600  # 2021-06-01T00:00:00Z
SRC = "RC_2021-06.zst"
#: What the fast path raises to send a chunk down the per-line path.
REFUSED = (pl.exceptions.PolarsError, _Fallback)


def comment(i: int, **kw) -> dict:
    rec = {
        "id": f"c{i}",
        "link_id": "t3_p1",
        "parent_id": "t3_p1",
        "author": f"user{i}",
        "subreddit": "pics",
        "subreddit_id": "t5_2qh0u",
        "created_utc": T0 + i,
        "body": f"comment {i}",
        "score": i,
        "controversiality": 0,
        "gilded": 0,
        "stickied": False,
        "is_submitter": False,
        "edited": False,
        "retrieved_on": T0 + 10**6,
    }
    rec.update(kw)
    return rec


def submission(i: int, **kw) -> dict:
    rec = {
        "id": f"s{i}",
        "author": f"user{i}",
        "subreddit": "pics",
        "created_utc": T0 + i,
        "title": f"title {i}",
        "selftext": "",
        "score": 1,
        "is_self": True,
        "over_18": False,
        "url": f"https://www.reddit.com/r/pics/comments/s{i}/",
        "thumbnail": "self",
        "edited": False,
        "num_comments": 0,
    }
    rec.update(kw)
    return rec


def parser(kind: str = "comments", blocklist: frozenset[str] = frozenset()) -> ChunkParser:
    return ChunkParser(kind, "RS_2021-06.zst" if kind == "submissions" else SRC, blocklist)


def rows_by_id(table: pa.Table) -> dict[str, dict]:
    return {r["id"]: r for r in table.to_pylist()}


def cjl(records: list) -> bytes:
    """Compact NDJSON, as the published dumps are written (the fast path's input)."""
    return b"".join(
        (r if isinstance(r, bytes) else json.dumps(r, separators=(",", ":")).encode()) + b"\n"
        for r in records
    )


def month_of(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m")


# ---------------------------------------------------------------- types and drift
def test_type_drift_is_coerced() -> None:
    lines = [
        comment(1, created_utc=str(T0 + 1), score="17"),  # numbers as strings
        comment(2, score=12.0),  # integral float
        comment(3, edited=False),
        comment(4, edited=True),  # oldest years: true
        comment(5, edited=T0 + 99.5),  # epoch float
        comment(6, edited=str(T0 + 7)),  # numeric string
        comment(7, score=None),
        {"id": "c8", "created_utc": T0 + 8},  # almost everything missing
        comment(9, score=" -3 ", stickied="true", gilded="2"),
        comment(10, created_utc=float(T0 + 10), controversiality=1.0, stickied=1),
    ]
    out = parser().parse(jl(lines), 1)
    assert out.quarantine == []
    rows = rows_by_id(out.table)
    assert set(rows) == {f"c{i}" for i in range(1, 11)}
    assert out.table.schema == BRONZE_COMMENTS

    assert rows["c1"]["created_utc"] == T0 + 1 and rows["c1"]["score"] == 17
    assert rows["c2"]["score"] == 12 and isinstance(rows["c2"]["score"], int)
    assert rows["c3"]["edited_utc"] is None
    assert rows["c4"]["edited_utc"] == 0.0
    assert rows["c5"]["edited_utc"] == T0 + 99.5
    assert rows["c6"]["edited_utc"] == float(T0 + 7)
    assert rows["c7"]["score"] is None and rows["c7"]["author"] == "user7"
    c8 = rows["c8"]
    assert c8["created_utc"] == T0 + 8
    for name in COMMENT_FIELDS:
        if name not in ("id", "created_utc"):
            assert c8[name] is None, name
    assert c8["edited_utc"] is None
    assert rows["c9"]["score"] == -3 and rows["c9"]["stickied"] is True
    assert rows["c9"]["gilded"] == 2
    assert rows["c10"]["created_utc"] == T0 + 10
    assert rows["c10"]["controversiality"] == 1 and rows["c10"]["stickied"] is True
    for i in range(1, 11):
        r = rows[f"c{i}"]
        assert r["source_line"] == i
        assert r["source_file"] == SRC
        assert r["month"] == month_of(r["created_utc"])


@pytest.mark.parametrize("encode", [cjl, jl], ids=["compact", "spaced"])
def test_clean_values_keep_their_types(encode) -> None:
    lines = [comment(i, edited=T0 + 0.5) if i == 3 else comment(i) for i in range(1, 6)]
    out = parser().parse(encode(lines), 41)
    assert out.table.schema == BRONZE_COMMENTS
    got = out.table.to_pylist()
    for rec, row in zip(lines, got, strict=True):
        for name in COMMENT_FIELDS:
            assert row[name] == rec.get(name), name
    assert [r["edited_utc"] for r in got] == [None, None, T0 + 0.5, None, None]
    assert [r["source_line"] for r in got] == [41, 42, 43, 44, 45]


def test_deleted_and_removed_records_are_kept() -> None:
    lines = [
        comment(1, author="[deleted]", body="[removed]"),
        comment(2, author="[deleted]", body="[deleted]", author_fullname=None),
        comment(3, author="AutoModerator", stickied=True, distinguished="moderator"),
    ]
    out = parser().parse(cjl(lines), 1)
    rows = rows_by_id(out.table)
    assert rows["c1"]["author"] == "[deleted]" and rows["c1"]["body"] == "[removed]"
    assert rows["c2"]["body"] == "[deleted]"
    assert rows["c3"]["author"] == "AutoModerator" and rows["c3"]["distinguished"] == "moderator"
    assert out.quarantine == [] and out.blocklisted == 0


def test_month_partition_from_created_utc() -> None:
    stamps = [MIN_UTC, 1622505599, 1622505600, 1640995199, 1640995200, MAX_UTC - 1]
    lines = [comment(i, created_utc=ts) for i, ts in enumerate(stamps)]
    out = parser().parse(cjl(lines), 1)
    got = [(r["created_utc"], r["month"]) for r in out.table.to_pylist()]
    assert got == [(ts, month_of(ts)) for ts in stamps]
    assert [m for _, m in got] == ["2005-01", "2021-05", "2021-06", "2021-12", "2022-01", "2099-12"]


def test_crlf_and_blank_lines() -> None:
    data = cjl([comment(1), b"", comment(2), b"   ", comment(3)]).replace(b"\n", b"\r\n")
    p = parser()
    p._fast(data, 7)  # taken by the fast path
    out = p.parse(data, 7)
    assert out.blank_lines == 2
    got = [(r["id"], r["source_line"], r["body"]) for r in out.table.to_pylist()]
    assert got == [("c1", 7, "comment 1"), ("c2", 9, "comment 2"), ("c3", 11, "comment 3")]


# ---------------------------------------------------------------- URLs and media
GALLERY = {
    "is_gallery": True,
    "gallery_data": {
        "items": [
            {"media_id": "m2", "id": 1},
            {"media_id": "bad", "id": 2},
            {"media_id": "m1", "id": 3},
            {"media_id": "m3", "id": 4},
        ]
    },
    "media_metadata": {
        "m1": {
            "status": "valid",
            "e": "Image",
            "m": "image/jpg",
            "s": {"x": 640, "y": 480, "u": "https://preview.redd.it/m1.jpg?w=640&amp;s=a1"},
        },
        "bad": {"status": "failed"},
        "m3": {
            "status": "valid",
            "e": "AnimatedImage",
            "m": "image/gif",
            "s": {"x": 100, "y": 100, "gif": "https://i.redd.it/m3.gif?a=1&amp;b=2"},
        },
        "m2": {
            "status": "valid",
            "e": "Image",
            "m": "image/png",
            "s": {"x": 10, "y": 20, "u": "https://preview.redd.it/m2.png?w=10&amp;s=b2"},
        },
    },
    "preview": {
        "images": [
            {
                "source": {
                    "url": "https://preview.redd.it/p.jpg?a=1&amp;b=2",
                    "width": 10,
                    "height": 10,
                }
            }
        ]
    },
}


@pytest.mark.parametrize("bad_line", [False, True], ids=["fast", "slow"])
def test_urls_unescaped_and_gallery_in_order(bad_line: bool) -> None:
    lines: list = [
        submission(
            1,
            url="https://x.io/a?b=1&amp;c=2&amp;d=&lt;3&gt;",
            thumbnail="https://b.thumbs.redditmedia.com/t.jpg?a=1&amp;b=2",
            is_self=False,
            **GALLERY,
        ),
        submission(2),
    ]
    if bad_line:
        lines.append(b'{"id": "s3", "title": "cut')
    p = parser("submissions")
    if not bad_line:
        p._fast(cjl(lines), 1)  # taken by the fast path
    out = p.parse(cjl(lines), 1)
    assert out.table.schema == BRONZE_SUBMISSIONS
    rows = rows_by_id(out.table)
    s1 = rows["s1"]
    assert s1["url"] == "https://x.io/a?b=1&c=2&d=<3>"
    assert s1["thumbnail"] == "https://b.thumbs.redditmedia.com/t.jpg?a=1&b=2"
    assert s1["preview_url"] == "https://preview.redd.it/p.jpg?a=1&b=2"
    assert s1["gallery"] == [
        {
            "media_id": "m2",
            "url": "https://preview.redd.it/m2.png?w=10&s=b2",
            "mime": "image/png",
            "kind": "Image",
            "width": 10,
            "height": 20,
        },
        {
            "media_id": "m1",
            "url": "https://preview.redd.it/m1.jpg?w=640&s=a1",
            "mime": "image/jpg",
            "kind": "Image",
            "width": 640,
            "height": 480,
        },
        {
            "media_id": "m3",
            "url": "https://i.redd.it/m3.gif?a=1&b=2",
            "mime": "image/gif",
            "kind": "AnimatedImage",
            "width": 100,
            "height": 100,
        },
    ]
    assert rows["s2"]["gallery"] is None and rows["s2"]["preview_url"] is None
    assert rows["s2"]["url"] == "https://www.reddit.com/r/pics/comments/s2/"
    assert len(out.quarantine) == int(bad_line)


def test_media_columns_without_gallery_data_uses_metadata_order() -> None:
    media = {
        "b": {"status": "valid", "s": {"u": "https://x/b?a=1&amp;c=2", "x": 1, "y": 2}},
        "a": {"status": "unprocessed"},
        "c": {"status": "valid", "s": {"mp4": "https://x/c.mp4"}},
    }
    preview_url, gallery = media_columns(media, None, None)
    assert preview_url is None
    assert [(g["media_id"], g["url"]) for g in gallery] == [
        ("b", "https://x/b?a=1&c=2"),
        ("c", "https://x/c.mp4"),
    ]
    assert media_columns(None, None, {"images": []}) == (None, None)


def test_non_json_text_in_a_media_field_does_not_crash_the_chunk() -> None:
    """`preview` / `media_metadata` / `gallery_data` holding a plain string.

    The slow path ignores such values (media_columns only reads dicts); the fast path
    must give the same result instead of raising out of parse().
    """
    lines = [
        submission(1, preview="not json"),
        submission(2, media_metadata="{broken"),
        submission(3, gallery_data="x"),
        submission(4),
    ]
    out = parser("submissions").parse(cjl(lines), 1)
    rows = rows_by_id(out.table)
    assert set(rows) == {"s1", "s2", "s3", "s4"}
    assert all(r["preview_url"] is None and r["gallery"] is None for r in rows.values())


# ---------------------------------------------------------------- encoding
def test_invalid_utf8_is_repaired_and_counted() -> None:
    bad = json.dumps(comment(2, body="caf\u00e9 au lait")).encode().replace(b"caf", b"\xff\xfe")
    data = cjl([comment(1), bad, comment(3)])
    out = parser().parse(data, 1)
    assert out.utf8_repaired == 1
    assert out.quarantine == []
    rows = rows_by_id(out.table)
    assert set(rows) == {"c1", "c2", "c3"}
    assert rows["c2"]["body"] == "\ufffd\ufffd\u00e9 au lait"
    assert rows["c2"]["source_line"] == 2
    assert rows["c1"]["body"] == "comment 1" and rows["c3"]["body"] == "comment 3"


LONE_SURROGATES = [rb"caf\ud800", rb"\ud83d tail", rb"x\udc00y", rb"\uDBFF\u0041"]


@pytest.mark.parametrize("escape", LONE_SURROGATES)
def test_lone_surrogate_never_becomes_nul(escape: bytes) -> None:
    line = b'{"id":"c1","created_utc":%d,"body":"%s","author":"u"}' % (T0, escape)
    out = parser().parse(cjl([line, comment(2)]), 1)
    assert {q["source_line"] for q in out.quarantine} <= {1}
    rows = rows_by_id(out.table)
    assert "c2" in rows
    if "c1" in rows:
        body = rows["c1"]["body"]
        assert "\x00" not in body
        body.encode("utf-8")  # valid text
        assert not any(0xD800 <= ord(ch) <= 0xDFFF for ch in body)


@pytest.mark.parametrize("escape", [rb"caf\ud800", rb"x\udc00y"])
def test_lone_surrogate_is_marked_with_replacement_char(escape: bytes) -> None:
    """A lone surrogate is repaired to U+FFFD (as invalid UTF-8 is), not to a plain '?'."""
    line = b'{"id":"c1","created_utc":%d,"body":"%s","author":"u"}' % (T0, escape)
    out = parser().parse(cjl([line]), 1)
    rows = rows_by_id(out.table)
    if "c1" in rows:
        assert "\ufffd" in rows["c1"]["body"]
        assert "?" not in rows["c1"]["body"]
    else:
        assert [q["source_line"] for q in out.quarantine] == [1]


def test_lone_surrogate_in_a_media_url_does_not_crash() -> None:
    lines = [
        b'{"id":"s1","created_utc":%d,'
        b'"preview":{"images":[{"source":{"url":"https://x/\\ud800"}}]}}' % T0,
        b'{"id":"s2","created_utc":%d,'
        b'"media_metadata":{"m1":{"status":"valid","s":{"u":"https://x/\\udc00"}}}}' % T0,
        submission(3),
    ]
    out = parser("submissions").parse(jl(lines), 1)
    rows = rows_by_id(out.table)
    assert "s3" in rows
    assert len(rows) + len(out.quarantine) == 3
    for r in rows.values():
        for url in [r["preview_url"], *(g["url"] for g in r["gallery"] or [])]:
            assert url is None or "\x00" not in url


# ---------------------------------------------------------------- quarantine
BAD_LINES = [
    (b'{"id": "c8", "body": "cut off', "json", "invalid JSON"),
    (b"[1, 2, 3]", "json", "list"),
    (b'"just a string"', "json", "str"),
    (json.dumps(comment(3, score="lots")).encode(), "type", "'score'"),
    (json.dumps(comment(4, score=12.5)).encode(), "type", "'score'"),
    (json.dumps(comment(5, stickied="maybe")).encode(), "type", "'stickied'"),
    (json.dumps(comment(6, edited="yesterday")).encode(), "type", "'edited'"),
    (json.dumps({k: v for k, v in comment(7).items() if k != "id"}).encode(), "type", "'id'"),
    (json.dumps(comment(8, id=None)).encode(), "type", "'id'"),
    (
        json.dumps({k: v for k, v in comment(9).items() if k != "created_utc"}).encode(),
        "type",
        "'created_utc'",
    ),
    (json.dumps(comment(10, created_utc=MIN_UTC - 1)).encode(), "type", "'created_utc'"),
    (json.dumps(comment(11, created_utc=MAX_UTC)).encode(), "type", "'created_utc'"),
    (json.dumps(comment(12, created_utc=-5)).encode(), "type", "'created_utc'"),
    (json.dumps(comment(13, score=2**63)).encode(), "type", "'score'"),
]


@pytest.mark.parametrize(
    ("raw", "error_kind", "needle"), BAD_LINES, ids=[f"bad{i}" for i in range(len(BAD_LINES))]
)
def test_bad_line_is_quarantined(raw: bytes, error_kind: str, needle: str) -> None:
    out = parser().parse(cjl([comment(1), raw, comment(2)]), 100)
    assert sorted(rows_by_id(out.table)) == ["c1", "c2"]
    [q] = out.quarantine
    assert q["source_line"] == 101
    assert q["source_file"] == SRC and q["kind"] == "comments"
    assert q["error_kind"] == error_kind
    assert needle in q["error"]
    assert q["raw"] == raw.decode()
    assert q["raw_bytes"] == len(raw)


def test_empty_id_is_quarantined_on_the_fast_path_too() -> None:
    """`id: ""` counts as a missing required field; the verdict must not depend on the path."""
    alone = parser().parse(cjl([comment(1, id=""), comment(2)]), 1)
    with_bad = parser().parse(cjl([comment(1, id=""), comment(2), b"{not json"]), 1)
    for out in (alone, with_bad):
        assert out.table["id"].to_pylist() == ["c2"]
        assert [q["source_line"] for q in out.quarantine if "'id'" in q["error"]] == [1]


def test_long_bad_line_raw_is_cut_to_1kb() -> None:
    raw = b'{"id": "c1", "body": "' + b"y" * 5000  # never closed
    crlf = jl([comment(1), raw]).replace(b"\n", b"\r\n")
    out = parser().parse(crlf, 1)
    [q] = out.quarantine
    assert q["source_line"] == 2
    assert len(q["raw"]) == 1024 and raw.decode().startswith(q["raw"])
    assert q["raw_bytes"] == len(raw)


def test_blocklisted_authors_dropped_and_counted() -> None:
    lines = [
        comment(1, author="optout"),
        comment(2),
        comment(3, author="optout"),
        comment(4, author="other_optout"),
        comment(5, author=None),
    ]
    out = parser(blocklist=frozenset({"optout", "other_optout"})).parse(cjl(lines), 1)
    assert out.blocklisted == 3
    assert sorted(rows_by_id(out.table)) == ["c2", "c5"]


def test_mixed_chunk_accounts_for_every_line() -> None:
    lines: list = []
    expected = {"rows": [], "quarantine": [], "blocked": 0, "blank": 0}
    for i in range(1, 301):
        if i % 37 == 0:
            lines.append(b'{"id": "broken')
            expected["quarantine"].append(i)
        elif i % 41 == 0:
            lines.append(comment(i, score="n/a"))
            expected["quarantine"].append(i)
        elif i % 29 == 0:
            lines.append(b"")
            expected["blank"] += 1
        elif i % 13 == 0:
            lines.append(comment(i, author="optout"))
            expected["blocked"] += 1
        else:
            lines.append(comment(i, score=str(i)) if i % 5 == 0 else comment(i))
            expected["rows"].append(i)
    out = parser(blocklist=frozenset({"optout"})).parse(cjl(lines), 1001)
    records_in = len(lines) - out.blank_lines
    assert out.blank_lines == expected["blank"]
    assert records_in == out.table.num_rows + len(out.quarantine) + out.blocklisted
    assert out.blocklisted == expected["blocked"]
    assert sorted(q["source_line"] for q in out.quarantine) == [
        1000 + i for i in expected["quarantine"]
    ]
    got = {r["id"]: r["source_line"] for r in out.table.to_pylist()}
    assert got == {f"c{i}": 1000 + i for i in expected["rows"]}
    assert all(r["score"] == int(r["id"][1:]) for r in out.table.to_pylist())


# ---------------------------------------------------------------- fast == slow
def varied_submissions(n: int) -> list[dict]:
    out = []
    for i in range(n):
        kw: dict = {
            "score": (i * 7) % 50 - 5,
            "over_18": i % 11 == 0,
            "title": f'title {i} \u00e9\u4e2d\U0001f600 "quoted" \\ back',
            "selftext": "line one\nline two\ttab" if i % 3 else "",
            "link_flair_text": None if i % 2 else f"flair {i}",
            "author": "[deleted]" if i % 17 == 0 else f"user{i % 9}",
            "url": f"https://x.io/{i}?a=1&amp;b={i}",
            "retrieved_on": T0 + 10**6,
        }
        if i % 4 == 0:
            kw["edited"] = T0 + i + 0.25
        elif i % 4 == 1:
            kw["edited"] = True
        if i % 5 == 0:
            kw.update(GALLERY)
        elif i % 5 == 1:
            kw["preview"] = {"images": [{"source": {"url": f"https://p.io/{i}?a&amp;b"}}]}
        out.append(submission(i, **kw))
    return out


def test_fast_path_equals_bisection_and_slow_path() -> None:
    recs = varied_submissions(200)
    clean = cjl(recs)
    p = parser("submissions")
    p._fast(clean, 1)  # the clean chunk really is taken by the fast path
    fast = p.parse(clean, 1)
    assert fast.quarantine == [] and fast.table.num_rows == 200

    bad = b'{"id": "zz", "title": "\xff cut'
    dirty = cjl(recs[:120] + [bad] + recs[120:])
    with pytest.raises(REFUSED):
        p._fast(dirty, 1)
    mixed = p.parse(dirty, 1)
    assert [q["source_line"] for q in mixed.quarantine] == [121]

    # Shift the source lines after the bad one back to compare row by row.
    mixed_rows = mixed.table.to_pylist()
    for r in mixed_rows:
        if r["source_line"] > 121:
            r["source_line"] -= 1
    assert mixed_rows == fast.table.to_pylist()
    assert mixed.table.schema == fast.table.schema

    # A small chunk with a bad line is parsed line by line: same values again.
    small = cjl(recs[:40] + [bad])
    slow = p.parse(small, 1)
    assert slow.table.to_pylist() == fast.table.slice(0, 40).to_pylist()

    # Spaced JSON ("edited": false) takes the fast path too, with the same values.
    spaced = jl(recs)
    assert p._fast(spaced, 1).table.num_rows == 200
    assert p.parse(spaced, 1).table.to_pylist() == fast.table.to_pylist()
