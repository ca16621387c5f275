"""The whole DAG, end to end, in Delta format, on a sample world with a canary planted in
the benchmark's held-out reference posts; then a deletion request, honoured by one more
plain `zipp run`.

One lake (module fixture) serves four checks: the Delta DAG, the canary (a unique word in
the titles and the comments of held-out posts, a unique colour in their images), the
files-by-content staleness of the blocklist, bots and prompts files, and the deletion run.
"""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import zstandard
from PIL import Image
from rich.console import Console
from typer.testing import CliRunner

from jobs.cli import app
from jobs.config import load_config
from jobs.dag import STAGES
from jobs.runner import dag_states, run_stage
from schemas.tables import TABLES
from storage.lake import Lake
from tests.static_server import serve_folder

CANARY = "quokkazebra"
MAGENTA = (255, 0, 255)
ARGS = [
    "lake.format=delta",
    "ray.num_cpus=2",
    "spark.master=local[2]",
    "spark.conf.spark.sql.shuffle.partitions=2",
    "encoder.epochs=2",
    "bench.users=6",
    "bench.prompts_per_user=1",
    "diffusion.steps=2",
    "diffusion.batch_size=8",
    "smoke.steps=20",
    "smoke.vae_steps=10",
    "smoke.batch_size=8",
]


def _read_dump(path: Path) -> list[bytes]:
    return zstandard.ZstdDecompressor().decompressobj().decompress(path.read_bytes()).splitlines()


def _write_dump(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(zstandard.ZstdCompressor().compress(b"\n".join(lines) + b"\n"))


def _plant_canary(data: Path, posts: set[str], image_files: list[Path]) -> int:
    """The canary word into the title of every held-out post and the body of every
    comment under one; the canary colour into every held-out image. Returns lines changed."""
    changed = 0
    for dump in sorted((data / "dumps").glob("R*_*.zst")):
        lines = _read_dump(dump)
        for i, line in enumerate(lines):
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if dump.name.startswith("RS_") and rec.get("id") in posts:
                rec["title"] = f"{rec.get('title') or ''} {CANARY}"
            elif dump.name.startswith("RC_") and (rec.get("link_id") or "")[3:] in posts:
                rec["body"] = f"{rec.get('body') or ''} {CANARY}"
            else:
                continue
            lines[i] = json.dumps(rec).encode()
            changed += 1
        _write_dump(dump, lines)
    for f in image_files:
        with Image.open(f) as im:
            size = im.size
        Image.new("RGB", size, MAGENTA).save(f)
    return changed


def _cfg(root: Path, data: Path, blocklist: Path, *extra: str):
    return load_config(
        "conf/local.yaml",
        [
            f"lake.root={root}",
            f"input.dumps={data / 'dumps'}",
            f"ingest.blocklist={blocklist}",
            f"report.ground_truth={data / 'ground_truth'}",
            *ARGS,
            *extra,
        ],
    )


def _strings(table: pa.Table) -> list[str]:
    """Every string in a table, nested lists and structs included."""
    return [json.dumps(r, default=str) for r in table.to_pylist()]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The lake after a full DAG run in Delta format, canary planted."""
    from world.planted import SampleSpec
    from world.write import write_sample

    base = tmp_path_factory.mktemp("e2e")
    data, root = base / "data", base / "lake"
    blocklist = base / "blocklist.txt"
    blocklist.write_text("# deletion requests\n")
    prompts = base / "prompts.txt"
    shutil.copy("conf/prompts.txt", prompts)
    bots = base / "bots.txt"
    shutil.copy("conf/bots.txt", bots)
    with serve_folder(data) as url:
        write_sample(data, SampleSpec(users=120, seed=11, image_base_url=url, corrupt_lines=1))
        extra = (f"bench.prompts={prompts}", f"graph.bots={bots}")
        cfg = _cfg(root, data, blocklist, *extra)
        lake = Lake(root, "delta")
        quiet = Console(file=io.StringIO())
        for stage in STAGES[:3]:  # ingest, graph, split: which posts are held out
            run_stage(stage, cfg, lake, quiet)
        refs = lake.read("bench/references")
        posts = set(refs["post_id"].to_pylist())
        # a corrupt line by the benchmark user whose deletion is requested later
        users = lake.read("silver/users")
        uid = lake.read("bench/users")["user_id"][0].as_py()
        name = users.filter(pc.equal(users["user_id"], uid))["author"][0].as_py()
        dump = data / "dumps" / "RC_2021-05.zst"
        lines = _read_dump(dump)
        for i, line in enumerate(lines):  # ... and another user who names them
            rec = json.loads(line) if line.startswith(b"{") else {}
            if rec.get("body") and rec.get("author") not in (name, "[deleted]"):
                rec["body"] += f" (thanks u/{name.upper()}!)"
                lines[i] = json.dumps(rec).encode()
                break
        _write_dump(dump, [*lines, b'{"author": "%s", "body": "cut' % name.encode()])
        files = [
            data / re.sub(r"^https?://[^/]+/", "", u).split("?")[0]
            for u in refs["image_url"].to_pylist()
        ]
        assert posts and _plant_canary(data, posts, files) >= len(posts)
        args = [
            f"lake.root={root}",
            f"input.dumps={data / 'dumps'}",
            f"ingest.blocklist={blocklist}",
            f"report.ground_truth={data / 'ground_truth'}",
            *ARGS,
            *extra,
        ]
        out = CliRunner().invoke(app, ["run", "-c", "conf/local.yaml", *args])
        assert out.exit_code == 0, out.output
        yield {
            "root": root,
            "data": data,
            "lake": lake,
            "cfg": cfg,
            "args": args,
            "blocklist": blocklist,
            "prompts": prompts,
            "bots": bots,
            "url": url,
            "posts": posts,
            "refs": lake.read("bench/references"),
            "name": name,
        }


def test_every_table_is_delta(world):
    from deltalake import DeltaTable

    lake: Lake = world["lake"]
    written = [n for n in TABLES if lake.path(n).exists()]
    assert {"bronze/comments", "silver/edges", "gold/personas", "bench/scores"} <= set(written)
    for name in written:
        assert lake.is_delta(name), name
        dt = DeltaTable(str(lake.path(name)))
        assert dt.to_pyarrow_table().num_rows == lake.rows(name), name
    states = dag_states(STAGES, world["cfg"], lake)
    assert all(s["current"] for s in states), [(s["stage"].name, s["why"]) for s in states]
    out = CliRunner().invoke(app, ["dag", "--json", "-c", "conf/local.yaml", *world["args"]])
    assert out.exit_code == 0, out.output
    dag = {d["stage"]: d for d in json.loads(out.output)}
    assert list(dag) == [s.name for s in STAGES]
    assert dag["features"]["producers"] == {
        "bronze/subreddits": "ingest",
        "silver/subreddits": "graph",
        "silver/edges": "graph",
        "silver/snippets": "graph",
        "silver/image_embeddings": "images",
        "bench/references": "split",
    }
    assert dag["ingest"]["files"] == ["ingest.blocklist"] and dag["split"]["engine"] == "local"
    assert all(d["current"] for d in dag.values())


def test_canary_reaches_nothing_that_learns_or_is_measured(world):
    lake: Lake = world["lake"]
    # the canary did reach bronze (planted for real) ...
    assert any(CANARY in s for s in lake.read("bronze/submissions")["title"].to_pylist() if s)
    # ... and no gold or bench table, prompt, rewrite or evidence
    for name in TABLES:
        if name.startswith(("gold/", "bench/")):
            hits = [s for s in _strings(lake.read(name)) if CANARY in s]
            assert not hits, f"{name}: {hits[:1]}"
    # the smoke model learnt from history titles only: the canary is no word it knows
    model = world["root"] / "models/smoke-diffusion/pipeline"
    vocab = json.loads((model / "tokenizer/tokenizer.json").read_text())["model"]["vocab"]
    assert len(vocab) > 600 and not [w for w in vocab if CANARY in w]
    smoke = json.loads((world["root"] / "_manifests/smoke.json").read_text())["details"]
    posts = lake.read("silver/user_images")["post_id"].to_pylist()
    history = sum(p not in set(world["refs"]["post_id"].to_pylist()) for p in posts)
    assert smoke["trained_on"] == history > 0
    # no reference post among the personas' evidence (titles or comments under them)
    snippets = lake.read("silver/snippets")
    held = snippets.filter(pc.is_in(snippets["post_id"], pa.array(sorted(world["posts"]))))
    held_ids = set(held["record_id"].to_pylist()) | world["posts"]
    used = {i for ids in lake.read("gold/personas")["evidence_ids"].to_pylist() for i in ids}
    assert used and not used & held_ids
    # visual profiles (node features) and ImageAlign targets come from history images only
    from graph.train import lake_tables, read_inputs

    emb = lake.read("silver/image_embeddings").filter(pc.equal(pc.field("status"), "ok"))
    ref_keys = {
        (p, q)
        for p, q in zip(
            world["refs"]["post_id"].to_pylist(), world["refs"]["position"].to_pylist(), strict=True
        )
    }
    is_ref = np.array(
        [
            (p, q) in ref_keys
            for p, q in zip(emb["post_id"].to_pylist(), emb["position"].to_pylist(), strict=True)
        ]
    )
    assert is_ref.any()
    inputs = read_inputs(lake_tables(str(world["root"])), 0)
    assert len(inputs.images) == int((~is_ref).sum())
    feats = lake.read("silver/node_features")
    visual = {
        u: np.asarray(v)
        for u, t, v in zip(
            feats["node_id"].to_pylist(),
            feats["node_type"].to_pylist(),
            feats["vector"].to_pylist(),
            strict=True,
        )
        if t == "user"
    }
    vecs = np.asarray(emb["embedding"].to_pylist(), np.float32)
    users = np.asarray(emb["user_id"].to_pylist())
    checked = 0
    for u in set(world["refs"]["user_id"].to_pylist()):
        hist = vecs[(users == u) & ~is_ref]
        if len(hist):
            np.testing.assert_allclose(visual[u], hist.mean(0), rtol=1e-4, atol=1e-5)
            checked += 1
    assert checked


def test_the_report_shows_the_smoke_models_images_agreement_and_ipf_in_chromium(world):
    """What `make demo`'s report shows, on this world's smoke model: images that differ by
    method for the same user, prompt and seed, the agreement table (the report read the
    ground truth) and the IPF section, in headless Chromium."""
    from tests.jobs.test_generate import _chromium_dom

    lake: Lake = world["lake"]
    images = lake.read("bench/images").filter(pc.equal(pc.field("status"), "done")).to_pylist()
    assert images and all(r["smoke_model"] for r in images)
    assert {r["model"].split("@")[0] for r in images} == {"lake:models/smoke-diffusion"}
    by_pair: dict[tuple, set] = {}
    for r in images:
        by_pair.setdefault((r["user_id"], r["prompt_id"], r["seed_index"]), set()).add(r["sha256"])
    assert all(len(v) >= 5 for v in by_pair.values())  # base, none, zero_shot, ... differ
    dom = _chromium_dom(world["root"] / "reports/zipbench/index.html")
    body = re.search(r"<body([^>]*)>", dom).group(1)
    total = int(re.search(r'data-images-total="(\d+)"', body).group(1))
    assert total > 0 and f'data-images-loaded="{total}"' in body
    agreement = re.search(r"<table class=\"agreement\">(.*?)</table>", dom, re.S)
    assert agreement and "preference judge" in agreement.group(1)
    assert "CLIPScore vs references" in agreement.group(1)
    assert "IPF re-weighting" in dom and "Smoke model" in dom and "Community check" in dom
    grid = re.search(r'<div class="grid">(.*?)</div></div>', dom, re.S).group(1)
    srcs = re.findall(r"<img src=['\"]([^'\"]+)['\"]", grid)
    assert len(srcs) >= 5 and len(set(srcs)) >= 4  # one image per method, not all the same


def test_editing_a_file_in_place_makes_exactly_its_readers_stale(world):
    lake: Lake = world["lake"]
    names = [s.name for s in STAGES]

    def stale_after(path: Path, text: str) -> list[str]:
        old = path.read_text()
        path.write_text(old + text)
        try:
            states = dag_states(STAGES, world["cfg"], lake)
            return [s["stage"].name for s in states if not s["current"]]
        finally:
            path.write_text(old)

    assert stale_after(world["bots"], "\nsome_new_bot\n") == names[names.index("graph") :]
    prompts = stale_after(world["prompts"], "\na lighthouse at dawn\n")
    assert prompts == ["prompts", "rewrite", "generate", "score", "report"]
    assert stale_after(world["blocklist"], "\nsomeone\n") == names
    assert all(s["current"] for s in dag_states(STAGES, world["cfg"], lake))


def test_deletion_request_is_honoured_by_one_plain_run(world, tmp_path):
    lake: Lake = world["lake"]
    users = lake.read("silver/users")
    name = world["name"]
    uid = users.filter(pc.equal(users["author"], name))["user_id"][0].as_py()
    raw = lake.read("quarantine/records")["raw"].to_pylist()
    assert any(name in (r or "") for r in raw)  # planted above: must go too
    bodies = lake.read("bronze/comments", ["body"])["body"].to_pylist()
    assert any(f"u/{name.upper()}" in (b or "") for b in bodies)  # another user's mention
    before_media = set(
        lake.read("bench/images").filter(pc.equal(pc.field("user_id"), uid))["sha256"].to_pylist()
    ) - {None}
    assert before_media
    world["blocklist"].write_text(world["blocklist"].read_text() + f"\n{name.upper()}\n")
    out = CliRunner().invoke(app, ["run", "-c", "conf/local.yaml", *world["args"]])
    assert out.exit_code == 0, out.output
    assert "deletion requests: removed" in out.output
    assert re.search(r"[1-9][\d,]* media files", out.output), out.output
    assert re.search(r"[1-9][\d,]* records", out.output), out.output
    # gone from every table of the lake (quarantine raw text included) ...
    needle = re.compile(re.escape(name), re.IGNORECASE)
    for table in TABLES:
        hits = [s for s in _strings(lake.read(table)) if needle.search(s)]
        assert not hits, f"{table}: {hits[:1]}"
    bodies = lake.read("bronze/comments", ["body"])["body"].to_pylist()
    assert any("(thanks u/[deleted]!)" in (b or "") for b in bodies)  # redacted, kept
    # ... from every file (media orphaned by the deletion removed), reports included
    for f in world["root"].rglob("*"):
        if f.is_file() and f.suffix in (".json", ".jsonl", ".html", ".md", ".txt"):
            assert not needle.search(f.read_text(errors="ignore")), f
    media = {p.name.removesuffix(".png") for p in (world["root"] / "media").rglob("*.png")}
    made = set(lake.read("bench/images")["sha256"].to_pylist()) - {None}
    assert media == made and not (before_media & media)
    checkpoints = [p for p in (world["root"] / "models/checkpoints").iterdir() if p.is_dir()]
    assert len(checkpoints) == 1
    # ... and from exports, even with usernames included
    out = CliRunner().invoke(
        app,
        [
            "export",
            "personas",
            "--format",
            "jsonl",
            "--out",
            str(tmp_path / "x"),
            "--include-usernames",
            "-c",
            "conf/local.yaml",
            *world["args"],
        ],
    )
    assert out.exit_code == 0, out.output
    text = "".join(f.read_text() for f in (tmp_path / "x").rglob("*.jsonl"))
    assert text and not needle.search(text)
    # records in = bronze + quarantined + blocklisted, per file, still
    manifest = json.loads((world["root"] / "_manifests/ingest.json").read_text())
    for row in manifest["details"]["files"]:
        assert row["lines"] - row["blank_lines"] == (
            row["records"] + row["quarantined"] + row["blocklisted"]
        )
    assert sum(r["blocklisted"] for r in manifest["details"]["files"]) > 0
