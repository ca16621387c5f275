"""Ingest end to end on a real local SparkSession with real .zst dumps full of dirt, in
both lake formats (Parquet folders, real Delta tables)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import zstandard
from deltalake import DeltaTable
from rich.console import Console

from jobs.config import load_config
from pipelines.ingest import JOURNAL, OUTPUTS, IngestOptions, ingest, read_journal
from storage.lake import Lake, data_files
from tests.conftest import jl, zst

T0 = 1622505600  # 2021-06-01


def comment(i: int, **kw) -> dict:
    rec = {
        "id": f"c{i}",
        "author": f"user{i % 7}",
        "subreddit": "pics",
        "created_utc": T0 + i,
        "body": f"comment {i}",
        "score": i,
        "link_id": "t3_p1",
        "parent_id": "t3_p1",
        "edited": False,
        "stickied": False,
        "controversiality": 0,
    }
    rec.update(kw)
    return rec


def submission(i: int, **kw) -> dict:
    rec = {
        "id": f"s{i}",
        "author": f"user{i % 7}",
        "subreddit": "pics",
        "created_utc": T0 + i,
        "title": f"title {i}",
        "selftext": "",
        "score": 1,
        "is_self": True,
        "url": f"https://www.reddit.com/r/pics/comments/s{i}/",
        "edited": False,
    }
    rec.update(kw)
    return rec


@pytest.fixture
def dumps(tmp_path: Path) -> Path:
    d = tmp_path / "dumps"
    d.mkdir()
    lines: list = [comment(i) for i in range(1, 41)]
    lines[2] = comment(3, score="17", created_utc=str(T0 + 3))  # numbers as strings
    lines[3] = comment(4, edited=T0 + 99.5)  # edited as float
    lines[4] = comment(5, edited=True, score=None)  # edited true, null score
    lines[5] = comment(6, author="[deleted]", body="[removed]")  # kept in bronze
    lines[6] = comment(7, author="AutoModerator", stickied=True)  # bots kept in bronze
    lines[7] = b'{"id": "c8", "body": "cut off'  # corrupt JSON
    lines[8] = json.dumps(comment(9, body="caf\u00e9")).encode().replace(b"caf", b"\xff\xfe")
    lines[9] = comment(10, author="optout_user")  # blocklisted
    lines[10] = comment(11, body="x" * 300_000)  # very long line
    lines[11] = b"[1, 2, 3]"  # not an object
    lines[12] = comment(13, score="lots")  # uncoercible type
    data = jl(lines).replace(b'"id": "c20"', b'"id":"c20"')
    data = data.replace(b"\n", b"\r\n", 5)  # CRLF on a few lines
    zst(d / "RC_2021-06.zst", data, frames=3)
    subs = jl(
        [submission(21, id="surl", url="https://x.io/a?b=1&amp;c=2")]
        + [submission(i, selftext=f"text {i * 7919}" * 20) for i in range(1, 2000)]
    )
    blob = zstandard.ZstdCompressor().compress(subs)
    (d / "RS_2021-06.zst").write_bytes(blob[: len(blob) * 2 // 3])  # truncated download
    (d / "extra_comments.ndjson").write_bytes(
        jl([comment(i, created_utc=T0 + 40 * 86400) for i in range(100, 105)])
    )
    return d


def config(dumps: Path, lake: Path, fmt: str = "parquet", blocklist: Path | None = None):
    bl = blocklist or dumps.parent / "blocklist.txt"
    if not bl.exists():
        bl.write_text("# deletion requests\noptout_user\n")
    return load_config(
        None,
        [
            f"input.dumps={dumps}",
            f"lake.root={lake}",
            f"lake.format={fmt}",
            f"ingest.blocklist={bl}",
            "ingest.files_per_job=1",
            "spark.master=local[2]",
        ],
    )


def run(
    dumps: Path,
    lake: Path,
    force: bool = False,
    console: Console | None = None,
    blocklist: Path | None = None,
    fmt: str = "parquet",
) -> dict:
    """The ingest stage through the runner."""
    from jobs.ingest import STAGE
    from jobs.runner import run_stage

    cfg = config(dumps, lake, fmt, blocklist=blocklist)
    lake_ = Lake(cfg.lake.root, cfg.lake.format)
    return run_stage(STAGE, cfg, lake_, console or Console(quiet=True), force=force)


def run_ingest(spark, dumps: Path, root: Path, fmt: str, force: bool = False) -> list[dict]:
    """`pipelines.ingest.ingest` itself, its lake and options from the config."""
    from pipelines.dumps import find_dumps

    cfg = config(dumps, root, fmt)
    c = cfg.ingest
    opts = IngestOptions(
        blocklist=c.usernames(),
        files_per_job=c.files_per_job,
        chunk_bytes=c.chunk_mb << 20,
        max_line_bytes=c.max_line_mb << 20,
    )
    lake = Lake(cfg.lake.root, cfg.lake.format)
    return ingest(lambda: spark, lake, find_dumps(cfg.input.dumps), opts, force=force)


def sorted_rows(lake: Lake, name: str) -> list[dict]:
    return sorted(lake.read(name).to_pylist(), key=lambda r: (r["source_file"], r["source_line"]))


def test_ingest_counts_quarantine_and_types(spark, dumps: Path, tmp_path: Path):
    from pipelines.stages.ingest import balanced

    lake = Lake(tmp_path / "lake")
    manifest = run(dumps, lake.root)
    ledger = {Path(r["source_file"]).name: r for r in manifest["details"]["files"]}
    assert set(ledger) == {"RC_2021-06.zst", "RS_2021-06.zst", "extra_comments.ndjson"}
    assert all(balanced(r) for r in ledger.values())
    rc = ledger["RC_2021-06.zst"]
    assert (rc["lines"], rc["records"], rc["quarantined"], rc["blocklisted"]) == (40, 36, 3, 1)
    assert rc["frames"] == 3 and rc["utf8_repaired"] == 1 and not rc["truncated"]
    rs = ledger["RS_2021-06.zst"]
    assert rs["truncated"] and 100 < rs["records"] < 2000  # lines before the cut survive
    subs = {r["id"]: r for r in lake.read("bronze/submissions").to_pylist()}
    assert subs["surl"]["url"] == "https://x.io/a?b=1&c=2"

    comments = {r["id"]: r for r in lake.read("bronze/comments").to_pylist()}
    assert len(comments) == 36 + 5
    assert comments["c3"]["score"] == 17 and comments["c3"]["created_utc"] == T0 + 3
    assert comments["c4"]["edited_utc"] == T0 + 99.5
    assert comments["c5"]["edited_utc"] == 0.0 and comments["c5"]["score"] is None
    assert comments["c6"]["author"] == "[deleted]" and comments["c6"]["body"] == "[removed]"
    assert comments["c7"]["author"] == "AutoModerator" and comments["c7"]["stickied"] is True
    assert "\ufffd" in comments["c9"]["body"]
    assert len(comments["c11"]["body"]) == 300_000
    assert "c10" not in comments
    assert comments["c1"]["month"] == "2021-06" and comments["c100"]["month"] == "2021-07"
    assert comments["c1"]["source_line"] == 1
    assert comments["c20"]["source_line"] == 20

    q = sorted_rows(lake, "quarantine/records")
    got = {(Path(r["source_file"]).name, r["source_line"], r["error_kind"]) for r in q}
    assert {
        ("RC_2021-06.zst", 8, "json"),
        ("RC_2021-06.zst", 12, "json"),
        ("RC_2021-06.zst", 13, "type"),
    } <= got
    typed = next(r for r in q if r["source_line"] == 13)
    assert "score" in typed["error"] and '"lots"' in typed["raw"]
    trunc = [r for r in q if r["error_kind"] == "truncated_file"]
    assert len(trunc) == 1 and "ended early" in trunc[0]["error"]
    assert trunc[0]["source_line"] == rs["lines"] + 1

    # records in = bronze + quarantine (+ blocklisted), over the whole run
    lines_in = sum(r["lines"] - r["blank_lines"] for r in ledger.values())
    bronze = lake.rows("bronze/comments") + lake.rows("bronze/submissions")
    bad_lines = lake.rows("quarantine/records") - len(trunc)
    assert lines_in == bronze + bad_lines + sum(r["blocklisted"] for r in ledger.values())


def test_rerun_skipped_force_identical(spark, dumps: Path, tmp_path: Path):
    lake = Lake(tmp_path / "lake")
    first = run(dumps, lake.root)
    before = {n: sorted_rows(lake, n) for n in first["outputs"]}
    files_before = {n: data_files(lake.path(n)) for n in first["outputs"]}
    again = run(dumps, lake.root)
    assert again["started_at"] == first["started_at"]  # skipped: same manifest
    assert {n: data_files(lake.path(n)) for n in first["outputs"]} == files_before
    forced = run(dumps, lake.root, force=True)
    assert forced["outputs"].keys() == first["outputs"].keys()
    for n, rows in before.items():
        assert sorted_rows(lake, n) == rows, n
    for n in first["outputs"]:
        assert forced["outputs"][n]["rows"] == first["outputs"][n]["rows"]


def test_killed_commit_resumes_without_duplicates(spark, dumps: Path, tmp_path: Path):
    lake = Lake(tmp_path / "lake")
    run(dumps, lake.root)
    expected = {n: sorted_rows(lake, n) for n in ("bronze/comments", "quarantine/records")}
    journal = lake.manifests / JOURNAL
    lines = journal.read_text().splitlines()
    # Kill after the last batch moved its files but before its journal line landed,
    # and leave a torn half-line as a crash mid-append would.
    journal.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][: len(lines[-1]) // 2])
    # And a stray part of a batch that never committed.
    part = data_files(lake.path("bronze/comments"))[0]
    shutil.copy(part, part.with_name("bdeadbeef0000000-00000.parquet"))
    manifest_path = lake.manifests / "ingest.json"
    manifest_path.unlink()
    run(dumps, lake.root)
    for n, rows in expected.items():
        assert sorted_rows(lake, n) == rows, n
    ids = pc.unique(lake.read("bronze/comments")["id"])
    assert len(ids) == lake.rows("bronze/comments")
    assert len(read_journal(lake)) == 3


def test_new_and_changed_files_only_redo_their_batch(spark, dumps: Path, tmp_path: Path):
    from jobs.runner import read_manifest

    lake = Lake(tmp_path / "lake")
    run(dumps, lake.root)
    kept = {b["batch"] for b in read_journal(lake)}
    zst(
        dumps / "RC_2021-07.zst",
        jl([comment(i, created_utc=T0 + 35 * 86400) for i in range(500, 510)]),
    )
    m = run(dumps, lake.root)
    batches = {b["batch"] for b in read_journal(lake)}
    assert kept < batches and len(batches) == len(kept) + 1
    assert read_manifest(lake, "ingest")["started_at"] == m["started_at"]
    assert lake.rows("bronze/comments") == 41 + 10
    # Replace a file: its old rows go, its new rows come, nothing else is redone.
    (dumps / "extra_comments.ndjson").write_bytes(jl([comment(900, created_utc=T0)]))
    run(dumps, lake.root)
    ids = set(lake.read("bronze/comments")["id"].to_pylist())
    assert "c900" in ids and "c100" not in ids
    assert lake.rows("bronze/comments") == 41 - 5 + 1 + 10


def no_seconds(ledger: list[dict]) -> list[dict]:
    return sorted(
        ({k: v for k, v in r.items() if k not in ("seconds", "peak_rss_bytes")} for r in ledger),
        key=str,
    )


def versions(lake: Lake) -> dict[str, int]:
    return {n: DeltaTable(str(lake.path(n))).version() for n in OUTPUTS}


def test_delta_ingest_same_rows_as_parquet_and_idempotent(spark, dumps: Path, tmp_path: Path):
    parquet, delta = Lake(tmp_path / "parquet"), Lake(tmp_path / "delta", "delta")
    ledger_p = run_ingest(spark, dumps, parquet.root, "parquet")
    ledger_d = run_ingest(spark, dumps, delta.root, "delta")
    assert no_seconds(ledger_d) == no_seconds(ledger_p)
    for name in OUTPUTS:
        assert delta.is_delta(name) and not parquet.is_delta(name), name
        dt = DeltaTable(str(delta.path(name)))
        assert dt.to_pyarrow_table().num_rows == delta.rows(name) == parquet.rows(name) > 0
        assert sorted_rows(delta, name) == sorted_rows(parquet, name), name
    history = DeltaTable(str(delta.path("bronze/comments"))).history()
    batches = {b["batch"] for b in read_journal(delta) if b["kind"] == "comments"}
    assert {h.get("zipp.batch") for h in history if h["operation"] == "WRITE"} == batches

    fps = {n: delta.fingerprint(n) for n in OUTPUTS}
    before = versions(delta)
    again = run_ingest(spark, dumps, delta.root, "delta")
    assert no_seconds(again) == no_seconds(ledger_d)
    assert versions(delta) == before  # nothing committed
    assert {n: delta.fingerprint(n) for n in OUTPUTS} == fps
    run_ingest(spark, dumps, delta.root, "delta", force=True)
    for name in OUTPUTS:
        assert sorted_rows(delta, name) == sorted_rows(parquet, name), name


def test_delta_killed_commit_and_changed_file(spark, dumps: Path, tmp_path: Path):
    lake = Lake(tmp_path / "lake", "delta")
    run_ingest(spark, dumps, lake.root, "delta")
    expected = {n: sorted_rows(lake, n) for n in OUTPUTS}
    journal = lake.manifests / JOURNAL
    lines = journal.read_text().splitlines()
    # Killed after the last batch committed to the tables but before its journal line
    # landed (a torn half-line): the next run removes its rows and redoes it.
    journal.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][: len(lines[-1]) // 2])
    run_ingest(spark, dumps, lake.root, "delta")
    for n, rows in expected.items():
        assert sorted_rows(lake, n) == rows, n
    ids = pc.unique(lake.read("bronze/comments")["id"])
    assert len(ids) == lake.rows("bronze/comments")
    assert len(read_journal(lake)) == 3

    # Replace a file: its old rows go (from every file on disk too), its new rows come.
    (dumps / "extra_comments.ndjson").write_bytes(jl([comment(900, created_utc=T0)]))
    run_ingest(spark, dumps, lake.root, "delta")
    ids = set(lake.read("bronze/comments")["id"].to_pylist())
    assert "c900" in ids and "c100" not in ids
    assert lake.rows("bronze/comments") == 41 - 5 + 1
    on_disk = {
        i
        for f in lake.path("bronze/comments").rglob("*.parquet")
        if "_delta_log" not in f.parts
        for i in pq.read_table(f, columns=["id"])["id"].to_pylist()
    }
    assert "c100" not in on_disk and "c900" in on_disk


def test_switching_lake_format_converts_the_tables(spark, dumps: Path, tmp_path: Path):
    root = tmp_path / "lake"
    run_ingest(spark, dumps, root, "parquet")
    parquet = Lake(root)
    expected = {n: sorted_rows(parquet, n) for n in OUTPUTS}
    batches = read_journal(parquet)
    run_ingest(spark, dumps, root, "delta")  # nothing to ingest: converted
    delta = Lake(root, "delta")
    for n, rows in expected.items():
        assert delta.is_delta(n) and sorted_rows(delta, n) == rows, n
    assert read_journal(delta) == batches
    run_ingest(spark, dumps, root, "parquet")  # and back, files named after their batch
    valid = {b["batch"] for b in batches}
    for n, rows in expected.items():
        assert not parquet.is_delta(n) and sorted_rows(parquet, n) == rows, n
        assert {f.name.split("-", 1)[0] for f in data_files(parquet.path(n))} <= valid
    files = {n: data_files(parquet.path(n)) for n in OUTPUTS}
    run_ingest(spark, dumps, root, "parquet")
    assert {n: data_files(parquet.path(n)) for n in OUTPUTS} == files
    for n, rows in expected.items():
        assert sorted_rows(parquet, n) == rows, n


def test_delta_stage_through_the_runner(spark, dumps: Path, tmp_path: Path):
    lake = Lake(tmp_path / "lake", "delta")
    first = run(dumps, lake.root, fmt="delta")
    for name in OUTPUTS:
        dt = DeltaTable(str(lake.path(name)))
        assert first["outputs"][name]["rows"] == dt.to_pyarrow_table().num_rows > 0
        assert first["outputs"][name]["fingerprint"] == lake.fingerprint(name)
    again = run(dumps, lake.root, fmt="delta")
    assert again["started_at"] == first["started_at"]  # current: skipped


def test_delta_blocklisted_user_leaves_every_file(spark, dumps: Path, tmp_path: Path):
    lake = Lake(tmp_path / "lake", "delta")
    bl = tmp_path / "blocklist.txt"
    bl.write_text("optout_user\n")
    run(dumps, lake.root, fmt="delta", blocklist=bl)
    assert "user3" in lake.read("bronze/comments")["author"].to_pylist()
    bl.write_text("optout_user\nuser3\n")
    run(dumps, lake.root, fmt="delta", blocklist=bl)
    for name in ("bronze/comments", "bronze/submissions"):
        assert "user3" not in lake.read(name)["author"].to_pylist()
        on_disk = [
            a
            for f in lake.path(name).rglob("*.parquet")
            if "_delta_log" not in f.parts
            for a in pq.read_table(f, columns=["author"])["author"].to_pylist()
        ]
        assert on_disk and "user3" not in on_disk, name
        DeltaTable(str(lake.path(name))).to_pyarrow_table()
