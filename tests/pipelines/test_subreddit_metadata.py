"""Subreddit metadata dumps (Arctic Shift ``subreddits_YYYY-MM.zst``, the Pushshift
subreddit dump as plain NDJSON) through the real local Spark ingest into
``bronze/subreddits``: typed, one row per id (the newest), bad lines quarantined with a
reason, the ledger balanced; then node text documents with and without the metadata."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pytest
import zstandard

from jobs.config import load_config
from pipelines.dumps import dump_kind
from pipelines.ingest import IngestOptions, ingest, plan_batches, read_journal, run_batch
from pipelines.stages.ingest import balanced
from pipelines.subreddit_meta import TEXT_COLUMNS, metadata_texts
from pipelines.text_features import subreddit_documents
from storage.lake import Lake
from tests.conftest import jl, zst

T0 = 1704067200  # 2024-01-01, when the dumps were fetched
CREATED = 1201233135  # 2008-01-25
SNIPPETS = pa.schema(
    [
        pa.field("subreddit_id", pa.int32()),
        pa.field("text", pa.string()),
        pa.field("score", pa.int64()),
    ]
)


def about(sid: str, name: str, retrieved: int, **kw) -> dict:
    """One subreddit as Reddit's about.json ``data`` (as the dumps hold it)."""
    rec = {
        "id": sid,
        "name": f"t5_{sid}",
        "display_name": name,
        "title": f"{name} title",
        "public_description": f"all about {name}",
        "description": f"sidebar of {name}",
        "subscribers": 1000,
        "created_utc": float(CREATED),  # about.json gives a float
        "over18": False,
        "lang": "en",
        "subreddit_type": "public",
        "retrieved_on": retrieved,
    }
    rec.update(kw)
    return rec


@pytest.fixture(scope="module")
def ingested(spark, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("subreddit_meta")
    dumps = root / "dumps"
    dumps.mkdir()
    lines = [
        about("2qh1i", "AskReddit", T0, title="old title"),  # 1: superseded by line 2
        about("2qh1i", "AskReddit", T0 + 100, title="Ask Reddit anything"),  # 2: newest
        about("abc12", "Lanterns", T0 + 50, public_description="paper lanterns glowing"),  # 3
        b'{"id": "zz9", "title": "cut off',  # 4: not JSON
        about("", "NoId", T0),  # 5: missing id
        about("q1", "Wrong", T0, subscribers="lots"),  # 6: wrong type
        b"",  # 7: blank
        about("abc12", "Lanterns", T0 + 10, title="stale"),  # 8: older than line 3
        about("q2", "Adult", T0, over18="maybe"),  # 9: wrong type
    ]
    zst(dumps / "subreddits_2024-01.zst", jl(lines), frames=2)
    pushshift = [
        about("2qh1i", "AskReddit", T0 + 60, title="pushshift title"),  # older than zst line 2
        # fetched earlier, but the second retrieval (Arctic Shift's _meta) is the newest
        about("p9x", "Kites", T0 - 500, _meta={"retrieved_2nd_on": T0 + 900}),
        about("p9x", "Kites", T0 + 5, title="kites stale"),
    ]
    (dumps / "subreddits.ndjson").write_bytes(jl(pushshift))
    lake = Lake(root / "lake")
    cfg = load_config(None, [f"input.dumps={dumps}", f"lake.root={lake.root}"])
    files = sorted(str(p) for p in dumps.iterdir())
    opts = IngestOptions(files_per_job=cfg.ingest.files_per_job)
    ledger = ingest(lambda: spark, lake, files, opts)
    return {"lake": lake, "files": files, "opts": opts, "ledger": ledger, "dumps": dumps}


def by_id(lake: Lake) -> dict[str, dict]:
    return {r["id"]: r for r in lake.read("bronze/subreddits").to_pylist()}


def test_file_names_are_recognised():
    assert dump_kind("/d/subreddits_2024-01.zst") == "subreddits"
    assert dump_kind("reddit_subreddits.ndjson") == "subreddits"
    assert dump_kind("subreddit_comments.jsonl") == "comments"


def test_newest_version_per_id_typed(ingested):
    rows = by_id(ingested["lake"])
    assert set(rows) == {"2qh1i", "abc12", "p9x"}
    ask = rows["2qh1i"]
    assert ask["title"] == "Ask Reddit anything" and ask["retrieved_on"] == T0 + 100
    assert ask["name"] == "t5_2qh1i" and ask["display_name"] == "AskReddit"
    assert ask["created_utc"] == CREATED and ask["subscribers"] == 1000
    assert ask["over18"] is False and ask["lang"] == "en" and ask["month"] == "2008-01"
    assert ask["source_line"] == 2 and ask["source_file"].endswith("subreddits_2024-01.zst")
    assert rows["abc12"]["public_description"] == "paper lanterns glowing"
    kites = rows["p9x"]
    assert kites["title"] == "Kites title" and kites["meta_retrieved_2nd_on"] == T0 + 900


def test_bad_lines_quarantined_with_a_reason(ingested):
    q = ingested["lake"].read("quarantine/records").to_pylist()
    got = {(r["source_line"], r["error_kind"]) for r in q}
    assert got == {(4, "json"), (5, "type"), (6, "type"), (9, "type")}
    reasons = {r["source_line"]: r["error"] for r in q}
    assert "invalid JSON" in reasons[4]
    assert "required field 'id' is missing" in reasons[5]
    assert "subscribers" in reasons[6] and "over18" in reasons[9]
    assert all(r["kind"] == "subreddits" for r in q)


def test_ledger_balances(ingested):
    lake = ingested["lake"]
    ledger = {Path(r["source_file"]).name: r for r in ingested["ledger"]}
    assert all(balanced(r) for r in ledger.values())
    z, p = ledger["subreddits_2024-01.zst"], ledger["subreddits.ndjson"]
    assert (z["lines"], z["blank_lines"], z["records"], z["quarantined"]) == (9, 1, 4, 4)
    assert (z["superseded"], p["records"], p["superseded"]) == (2, 3, 2)
    kept = lake.rows("bronze/subreddits")
    assert kept == sum(r["records"] - r["superseded"] for r in ledger.values()) == 3
    assert lake.rows("quarantine/records") == sum(r["quarantined"] for r in ledger.values())


def test_text_documents_with_and_without_metadata(ingested):
    about_ = metadata_texts(ingested["lake"].read("bronze/subreddits", TEXT_COLUMNS))
    assert about_["lanterns"] == "Lanterns title — paper lanterns glowing"
    subs = pa.table({"subreddit_id": [1, 2], "subreddit": ["lanterns", "pics"]})
    snippets = pa.Table.from_pylist(
        [{"subreddit_id": 1, "text": "my lantern", "score": 3}], schema=SNIPPETS
    )
    _, on, _ = subreddit_documents(subs, snippets, metadata=about_)
    _, off, _ = subreddit_documents(subs, snippets, metadata={})
    assert on[0] == "r/lanterns: Lanterns title — paper lanterns glowing | my lantern"
    assert off[0] == "r/lanterns: my lantern"
    assert on[1] == off[1] == "r/pics: "


def test_features_switch_reaches_the_stage(ingested):
    """The stage's own helper, through a real StageIO on the ingested lake."""
    from rich.console import Console

    from jobs.runner import stage_io
    from pipelines.stages.features import STAGE, subreddit_metadata

    for on in (True, False):
        cfg = load_config(
            None, [f"lake.root={ingested['lake'].root}", f"features.subreddit_metadata={on}"]
        )
        io = stage_io(STAGE, cfg, ingested["lake"], Console(quiet=True))
        got = subreddit_metadata(io, io.config.features, ["LANTERNS", "askreddit", "pics"])
        if on:
            assert set(got) == {"askreddit", "lanterns"}
            assert got["lanterns"] == "Lanterns title — paper lanterns glowing"
        else:
            assert got == {}


# the tests below change the dumps: they come last
def test_rerun_skips_and_a_changed_file_redoes_every_metadata_batch(spark, ingested):
    lake, files, opts = ingested["lake"], ingested["files"], ingested["opts"]
    before = by_id(lake)
    ingest(lambda: pytest.fail("nothing to do, Spark not needed"), lake, files, opts)
    assert by_id(lake) == before
    # the Pushshift file changes: its newest AskReddit version now wins
    path = ingested["dumps"] / "subreddits.ndjson"
    path.write_bytes(path.read_bytes() + jl([about("2qh1i", "AskReddit", T0 + 999)]))
    os.utime(path, (T0 + 10, T0 + 10))
    ledger = ingest(lambda: spark, lake, files, opts)
    rows = by_id(lake)
    assert set(rows) == {"2qh1i", "abc12", "p9x"}
    assert rows["2qh1i"]["retrieved_on"] == T0 + 999 and rows["abc12"]["title"] != "stale"
    assert all(balanced(r) for r in ledger) and len(read_journal(lake)) == 1
    assert sum(r["records"] - r["superseded"] for r in ledger) == 3


def test_a_run_killed_before_keeping_the_newest_is_finished_by_the_next(spark, ingested):
    lake, opts = ingested["lake"], ingested["opts"]
    new = ingested["dumps"] / "subreddits_2024-02.zst"
    zst(new, jl([about("abc12", "Lanterns", T0 + 5000, title="Lanterns renamed")]))
    files = [*ingested["files"], str(new)]
    # what a run killed right after committing the new batch leaves
    (batch,) = plan_batches(files, {f for b in read_journal(lake) for f in b["files"]}, opts)
    run_batch(spark, lake, batch, opts)
    assert [r["id"] for r in lake.read("bronze/subreddits").to_pylist()].count("abc12") == 2
    ledger = ingest(lambda: pytest.fail("nothing to ingest, Spark not needed"), lake, files, opts)
    rows = by_id(lake)
    assert len(rows) == 3 and rows["abc12"]["title"] == "Lanterns renamed"
    assert all(balanced(r) and "superseded" in r for r in ledger)
    assert sum(r["records"] - r["superseded"] for r in ledger) == 3


def test_sample_world_metadata_file(tmp_path: Path):
    """The world's ``subreddits_YYYY-MM.zst``: every subreddit once current, its text
    from its community's words, stale versions older, corrupt lines quarantined."""
    from pipelines.records import ChunkParser
    from pipelines.subreddit_meta import older_versions
    from world.about import write_about
    from world.planted import SampleSpec, World
    from world.vocab import THEMES

    world = World(SampleSpec(users=40, communities=4, subreddits=12, months=("2021-05",)))
    ((name, lines),) = write_about(world, tmp_path).items()
    assert name == "subreddits_2021-05.zst" and dump_kind(name) == "subreddits"
    text = zstandard.ZstdDecompressor().decompressobj().decompress((tmp_path / name).read_bytes())
    out = ChunkParser("subreddits", name).parse(text, 1)
    assert len(out.quarantine) == world.spec.corrupt_lines
    assert out.table.num_rows + len(out.quarantine) == lines
    rows = out.table.to_pylist()
    current = {r["display_name"]: r for r in rows[: len(world.subreddit_names)]}
    assert list(current) == world.subreddit_names
    first = world.subreddit_names[0]  # the first community's top subreddit
    vocab = set(THEMES[list(THEMES)[world.theme[0]]])
    words = current[first]["public_description"].removeprefix("A place for ").split()
    assert words and set(words) <= vocab
    stale = older_versions(out.table)
    assert len(stale) == out.table.num_rows - len(current) > 0
    newest = {r["id"]: r["retrieved_on"] for r in current.values()}
    keys = set(stale.to_pylist())
    for r in rows:
        if f"{r['source_file']}\x00{r['source_line']}" in keys:
            assert r["retrieved_on"] < newest[r["id"]]
