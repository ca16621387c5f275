"""`zipp export`: real Parquet, JSONL, Delta and HF `datasets` writers on a small lake;
pseudonymised exports name no user and no rare community, and carry a dataset card."""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from typer.testing import CliRunner

from jobs.cli import app
from storage.lake import Lake

KEY = "test-secret-key-3f9a1c"
AUTHORS = ["alice_film", "bob_garden", "carol"]
LLMS = ["template:template", "openai:tiny"]
SIZE = (24, 16)  # width, height of the rendered PNGs
#: subreddits: (name, users); the last two are rare (fewer than export.min_community_users)
SUBREDDITS = [("BigFilm", 60), ("BigGarden", 80), ("TinyKnitCircle", 3), ("LonelyPlace", 1)]
#: user -> subreddit ids: TinyKnitCircle shares two users with BigFilm, one with BigGarden;
#: LonelyPlace's one user (not a persona user) is in no big subreddit
MEMBERS = {0: [0, 2], 1: [0, 1, 2], 2: [1], 9: [3]}
#: how the rare names are written in the rows (every form the scrubber must catch)
RARE_FORMS = ("tinyknitcircle", "tiny knit circle", "tiny-knit-circle", "lonelyplace")
NEAR = "a community near r/BigFilm"

_CALL = {
    "template": True,
    "status": "done",
    "reason": None,
    "raw": None,
    "prompt_version": "v1",
    "prompt_tokens": 10,
    "completion_tokens": 5,
    "attempts": 1,
    "seconds": 0.1,
}


def _hmac_user(author: str) -> str:
    return "u_" + hmac.new(KEY.encode(), author.encode(), hashlib.sha256).hexdigest()[:16]


def _write_lake(root: Path) -> None:
    lake = Lake(root)
    n = len(AUTHORS)
    lake.write_table(
        "silver/users",
        pa.table(
            {
                "user_id": pa.array(range(n), pa.int32()),
                "author": AUTHORS,
                "posts": [3] * n,
                "comments": [10] * n,
                "subreddits": [2] * n,
                "first_utc": [0] * n,
                "last_utc": [1] * n,
                "role": ["train"] * n,
            }
        ),
    )
    lake.write_table(
        "silver/subreddits",
        pa.table(
            {
                "subreddit_id": pa.array(range(len(SUBREDDITS)), pa.int32()),
                "subreddit": [name for name, _ in SUBREDDITS],
                "users": [n for _, n in SUBREDDITS],
                "posts": [5] * len(SUBREDDITS),
                "comments": [9] * len(SUBREDDITS),
                "first_utc": [0] * len(SUBREDDITS),
                "last_utc": [1] * len(SUBREDDITS),
            }
        ),
    )
    edges = [(u, s) for u, subs in MEMBERS.items() for s in subs]
    lake.write_table(
        "silver/edges",
        pa.table(
            {
                "user_id": pa.array([u for u, _ in edges], pa.int32()),
                "subreddit_id": pa.array([s for _, s in edges], pa.int32()),
                "posts": pa.array([1] * len(edges), pa.int32()),
                "comments": pa.array([2] * len(edges), pa.int32()),
                "score_sum": [3] * len(edges),
                "first_utc": [0] * len(edges),
                "last_utc": [1] * len(edges),
                "split": ["train"] * len(edges),
            }
        ),
    )
    personas = [
        {
            "user_id": u,
            "source": "llm",
            "demographics": {
                "age": "30s",
                "gender": None,
                "region": "EU",
                "occupation": "moderator of /r/tinyknitcircle",
            },
            "interests": ["film", "tiny knit circle"],
            "affective_traits": ["calm", "a regular of r/LonelyPlace"],
            "visual_interests": ["muted colour", "TINYKNITCIRCLE"],
            "text": f"I am user {u}, persona by {llm}; I hang out in r/TinyKnitCircle.",
            "evidence_mode": "full",
            "evidence_subreddits": [0, 1],
            "evidence_ids": ["c1", "c2"],
            "evidence_tokens": 42,
            "tokenizer": "whitespace",
            "evidence": "some snippets",
            "llm": llm,
            **_CALL,
            "request_id": f"r{u}{llm}",
        }
        for u in range(n)
        for llm in LLMS
    ]
    lake.write_table("gold/personas", pa.Table.from_pylist(personas))
    images = []
    for u in range(n):
        for i, (method, llm) in enumerate([("base", "-"), ("zero_shot", LLMS[1])]):
            png = Image.new("RGB", SIZE, (40 * u, 100 + 50 * i, 90))
            path = root / "tmp.png"
            png.save(path)
            sha = hashlib.sha256(path.read_bytes()).hexdigest()
            rel = f"media/{sha[:2]}/{sha}.png"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            path.rename(root / rel)
            images.append(
                {
                    "image_id": f"img{u}{i}",
                    "user_id": u,
                    "prompt_id": f"p{u}",
                    "method": method,
                    "llm": llm,
                    "seed_index": 0,
                    "seed": 7,
                    "prompt": f"a photo, rewritten by {method} for the tiny-knit-circle crowd",
                    "negative_prompt": None,
                    "model": "smoke",
                    "smoke_model": True,
                    "status": "done",
                    "reason": None,
                    "path": rel,
                    "sha256": sha,
                    "width": SIZE[0],
                    "height": SIZE[1],
                    "seconds": 0.2,
                }
            )
    failed = {**images[0], "image_id": "failed", "status": "failed", "reason": "oom"}
    failed.update(path=None, sha256=None, width=None, height=None)
    lake.write_table("bench/images", pa.Table.from_pylist([*images, failed]))


@pytest.fixture
def lake_root(tmp_path):
    root = tmp_path / "lake"
    _write_lake(root)
    return root


@pytest.fixture
def keyed(monkeypatch):
    monkeypatch.setenv("ZIPP_PSEUDONYM_KEY", KEY)


def _export(root: Path, *args: str):
    return CliRunner().invoke(app, ["export", *args, f"lake.root={root}"])


def _all_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def test_delta_export_pseudonymises_users_and_never_writes_the_key(lake_root, tmp_path, keyed):
    from deltalake import DeltaTable

    out = tmp_path / "out" / "personas_delta"
    result = _export(lake_root, "personas", "--format", "delta", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "wrote 6 personas rows" in result.output and KEY not in result.output
    table = DeltaTable(str(out)).to_pyarrow_table()
    source = Lake(lake_root).read("gold/personas")
    assert table.num_rows == source.num_rows
    assert "author" not in table.column_names
    # would lead back to the account: user_id is the author's rank in name order
    traceable = {"user_id", "evidence", "evidence_ids", "evidence_subreddits", "raw"}
    traceable |= {"request_id"}  # a hash of the evidence
    assert set(table.column_names) == {*source.column_names, "user"} - traceable
    expected = [_hmac_user(AUTHORS[u]) for u in source["user_id"].to_pylist()]
    assert sorted(table["user"].to_pylist()) == sorted(expected)
    data = _all_bytes(out)
    assert KEY.encode() not in data and b"alice_film" not in data
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no staging left


def test_hf_bench_embeds_images_that_outlive_the_lake(lake_root, tmp_path, keyed):
    import datasets

    out = tmp_path / "bench_hf"
    result = _export(lake_root, "bench", "--format", "hf", "--out", str(out))
    assert result.exit_code == 0, result.output
    lake_ids = set(Lake(lake_root).read("bench/images")["image_id"].to_pylist())
    shutil.rmtree(lake_root)
    ds = datasets.load_from_disk(str(out))
    assert ds.num_rows == 6  # the failed image is not exported
    image = ds[0]["image"]
    assert isinstance(image, Image.Image) and image.size == SIZE
    assert not {"user_id", "seed"} & set(ds.column_names)  # both derive from the user's rank
    rows = {(r["user"], r["llm"]): r for r in ds.remove_columns("image")}
    bob, carol = _hmac_user("bob_garden"), _hmac_user("carol")
    first = sorted(LLMS)[0]  # no LLM: the user's done persona whose LLM label sorts first
    assert rows[(bob, "-")]["persona"] == f"I am user 1, persona by {first}; I hang out in {NEAR}."
    assert rows[(bob, "-")]["persona_llm"] == first
    assert (
        rows[(bob, LLMS[1])]["persona"]
        == f"I am user 1, persona by {LLMS[1]}; I hang out in {NEAR}."
    )
    assert (carol, "-") in rows
    ids = ds["image_id"]  # keyed: the lake's ids hash the user id
    assert all(i.startswith("i_") and len(i) == 18 for i in ids) and not set(ids) & lake_ids
    assert KEY.encode() not in _all_bytes(out)


@pytest.mark.parametrize("kind, rows", [("personas", 6), ("bench", 6)])
def test_parquet_and_jsonl_round_trip_row_counts(lake_root, tmp_path, keyed, kind, rows):
    for fmt in ("parquet", "jsonl"):
        out = tmp_path / f"{kind}_{fmt}"
        result = _export(lake_root, kind, "--format", fmt, "--out", str(out))
        assert result.exit_code == 0, result.output
        assert sorted(p.name for p in out.iterdir()) == ["README.md", f"{kind}.{fmt}"]
    table = pq.read_table(tmp_path / f"{kind}_parquet" / f"{kind}.parquet")
    lines = (tmp_path / f"{kind}_jsonl" / f"{kind}.jsonl").read_text().splitlines()
    assert table.num_rows == len(lines) == rows
    first = json.loads(lines[0])
    assert first == table.slice(0, 1).to_pylist()[0]
    if kind == "personas":
        assert first["demographics"]["region"] == "EU"
        assert first["interests"] == ["film", NEAR]


def test_include_usernames_keeps_author_and_needs_no_key(lake_root, tmp_path, monkeypatch):
    monkeypatch.delenv("ZIPP_PSEUDONYM_KEY", raising=False)
    out = tmp_path / "named"
    args = ["personas", "--format", "parquet", "--out", str(out), "--include-usernames"]
    result = _export(lake_root, *args)
    assert result.exit_code == 0, result.output
    table = pq.read_table(out / "personas.parquet")
    assert "user" not in table.column_names
    assert set(table["author"].to_pylist()) == set(AUTHORS)
    assert {"evidence", "evidence_ids"} <= set(table.column_names)


def test_missing_key_is_a_clear_error_naming_the_variable(lake_root, tmp_path, monkeypatch):
    monkeypatch.delenv("MY_EXPORT_KEY", raising=False)
    out = tmp_path / "nokey"
    args = ["personas", "--format", "jsonl", "--out", str(out), "--key-env", "MY_EXPORT_KEY"]
    result = _export(lake_root, *args)
    assert result.exit_code == 2
    assert "MY_EXPORT_KEY" in result.output and "not set" in result.output
    assert not out.exists()
    monkeypatch.setenv("MY_EXPORT_KEY", KEY)
    assert _export(lake_root, *args).exit_code == 0


def test_non_empty_out_needs_overwrite(lake_root, tmp_path, keyed):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    args = ["personas", "--format", "jsonl", "--out", str(out)]
    refused = _export(lake_root, *args)
    assert refused.exit_code == 2 and "--overwrite" in refused.output
    assert (out / "keep.txt").read_text() == "mine"
    replaced = _export(lake_root, *args, "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "personas.jsonl"]


def test_a_failed_export_leaves_nothing_behind(lake_root, tmp_path, keyed):
    rows = Lake(lake_root).read("bench/images").to_pylist()
    (lake_root / rows[0]["path"]).unlink()  # an image the hf export cannot embed
    out = tmp_path / "broken"
    result = _export(lake_root, "bench", "--format", "hf", "--out", str(out))
    assert result.exit_code == 2 and "missing" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lake"]


def _rows(out: Path, kind: str, fmt: str) -> list[dict]:
    """The rows of an export, read back with each format's own reader."""
    if fmt == "parquet":
        return pq.read_table(out / f"{kind}.parquet").to_pylist()
    if fmt == "jsonl":
        return [json.loads(ln) for ln in (out / f"{kind}.jsonl").read_text().splitlines()]
    if fmt == "delta":
        from deltalake import DeltaTable

        return DeltaTable(str(out)).to_pyarrow_table().to_pylist()
    import datasets

    ds = datasets.load_from_disk(str(out))
    return [dict(r) for r in (ds.remove_columns("image") if "image" in ds.column_names else ds)]


def _text(rows: list[dict]) -> str:
    return json.dumps(rows, ensure_ascii=False, default=str).lower()


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "delta", "hf"])
@pytest.mark.parametrize("kind", ["personas", "bench"])
def test_rare_communities_appear_nowhere_in_a_pseudonymised_export(
    lake_root, tmp_path, keyed, kind, fmt
):
    out = tmp_path / f"{kind}_{fmt}"
    result = _export(lake_root, kind, "--format", fmt, "--out", str(out))
    assert result.exit_code == 0, result.output
    text = _text(_rows(out, kind, fmt))
    for form in RARE_FORMS:
        assert form not in text, f"{form!r} left in the {kind} {fmt} export"
    assert NEAR.lower() in text  # TinyKnitCircle: its closest big community
    if kind == "personas":
        assert "a regular of a small community" in text  # LonelyPlace: no big neighbour
        assert "bigfilm" in text and "film" in text  # big communities stay
    everything = _all_bytes(out).lower()  # the card and every file, not only the rows
    for name in (b"tinyknitcircle", b"lonelyplace", b"alice_film", b"bob_garden"):
        assert name not in everything
    card = (out / "README.md").read_text()
    assert card.startswith("---\n") and "\n---\n" in card[4:]
    assert "fewer than 50 users" in card and "HMAC-SHA256" in card and "ZIPP_PSEUDONYM_KEY" in card
    assert "Reddit's User Agreement" in card and "blocklist" in card
    assert "re-identifying" in card
    fields = [ln for ln in card.splitlines() if ln.startswith("- `")]
    columns = set(pq.read_schema(out / f"{kind}.parquet").names) if fmt == "parquet" else None
    if columns is not None:
        assert {ln.split("`")[1] for ln in fields} == columns  # one line per column


def test_include_usernames_keeps_community_names_and_says_so(lake_root, tmp_path, monkeypatch):
    monkeypatch.delenv("ZIPP_PSEUDONYM_KEY", raising=False)
    for kind in ("personas", "bench"):
        out = tmp_path / f"named_{kind}"
        args = [kind, "--format", "jsonl", "--out", str(out), "--include-usernames"]
        result = _export(lake_root, *args)
        assert result.exit_code == 0, result.output
        text = _text(_rows(out, kind, "jsonl"))
        assert "tinyknitcircle" in text and "a community near" not in text
        card = (out / "README.md").read_text()
        assert "Not pseudonymised" in card and "user names" in card
    assert "lonelyplace" in _text(_rows(tmp_path / "named_personas", "personas", "jsonl"))


def test_the_threshold_comes_from_the_config(lake_root, tmp_path, keyed):
    out = tmp_path / "threshold"
    args = ["personas", "--format", "parquet", "--out", str(out), "export.min_community_users=3"]
    result = _export(lake_root, *args)
    assert result.exit_code == 0, result.output
    text = _text(_rows(out, "personas", "parquet"))
    assert "tinyknitcircle" in text  # 3 users: not rare at a threshold of 3
    assert "lonelyplace" not in text and "a small community" in text
    assert "fewer than 3 users" in (out / "README.md").read_text()


def test_the_scrubber_catches_every_written_form_and_only_whole_names(lake_root):
    from exports.communities import community_labels
    from exports.export import export_tables
    from exports.scrub import CommunityScrubber

    labels = community_labels(export_tables(Lake(lake_root), "personas"), 50)
    assert labels == {"TinyKnitCircle": NEAR, "LonelyPlace": "a small community"}
    scrub = CommunityScrubber(labels).text
    assert scrub("r/TinyKnitCircle's best") == f"{NEAR}'s best"
    assert scrub("see /r/tinyknitcircle, R/TINYKNITCIRCLE") == f"see {NEAR}, {NEAR}"
    assert scrub("Tiny Knit Circle and tiny-knit\ncircle") == f"{NEAR} and {NEAR}"
    assert scrub("lonelyplace.") == "a small community."
    untouched = "TinyKnitCircleFans, tiny knit, BigFilm, xr/LonelyPlaceholder"
    assert scrub(untouched) == untouched
