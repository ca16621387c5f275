"""`zipp export`: real Parquet, JSONL, Delta and HF `datasets` writers on a small lake."""

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
from schemas.lake import Lake

KEY = "test-secret-key-3f9a1c"
AUTHORS = ["alice_film", "bob_garden", "carol"]
LLMS = ["template:template", "openai:tiny"]
SIZE = (24, 16)  # width, height of the rendered PNGs

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
    personas = [
        {
            "user_id": u,
            "source": "llm",
            "demographics": {"age": "30s", "gender": None, "region": "EU", "occupation": None},
            "interests": ["film", "grain"],
            "affective_traits": ["calm"],
            "visual_interests": ["muted colour"],
            "text": f"I am user {u}, persona by {llm}.",
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
                    "prompt": f"a photo, rewritten by {method}",
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
    assert rows[(bob, "-")]["persona"] == f"I am user 1, persona by {LLMS[0]}."
    assert rows[(bob, "-")]["persona_llm"] == LLMS[0]  # no LLM: the user's first persona
    assert rows[(bob, LLMS[1])]["persona"] == f"I am user 1, persona by {LLMS[1]}."
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
        assert [p.name for p in out.iterdir()] == [f"{kind}.{fmt}"]
    table = pq.read_table(tmp_path / f"{kind}_parquet" / f"{kind}.parquet")
    lines = (tmp_path / f"{kind}_jsonl" / f"{kind}.jsonl").read_text().splitlines()
    assert table.num_rows == len(lines) == rows
    first = json.loads(lines[0])
    assert first == table.slice(0, 1).to_pylist()[0]
    if kind == "personas":
        assert first["demographics"]["region"] == "EU" and first["interests"] == ["film", "grain"]


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
    assert sorted(p.name for p in out.iterdir()) == ["personas.jsonl"]


def test_a_failed_export_leaves_nothing_behind(lake_root, tmp_path, keyed):
    rows = Lake(lake_root).read("bench/images").to_pylist()
    (lake_root / rows[0]["path"]).unlink()  # an image the hf export cannot embed
    out = tmp_path / "broken"
    result = _export(lake_root, "bench", "--format", "hf", "--out", str(out))
    assert result.exit_code == 2 and "missing" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lake"]
