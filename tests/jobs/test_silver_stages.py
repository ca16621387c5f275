"""ingest -> graph -> images -> features through the stage runner, images served locally."""

from __future__ import annotations

from collections import Counter

import pytest
from rich.console import Console

from jobs.config import load_config
from jobs.dag import STAGES
from jobs.runner import run_stage
from storage.lake import Lake
from tests.static_server import serve_folder
from world.planted import SampleSpec
from world.write import write_sample


@pytest.fixture(scope="module")
def served_world(tmp_path_factory):
    root = tmp_path_factory.mktemp("silver")
    (root / "w").mkdir()
    with serve_folder(root / "w") as base:
        write_sample(
            root / "w",
            SampleSpec(users=50, months=("2021-05",), image_size=16, image_base_url=base),
            console=Console(quiet=True),
            subreddit_metadata=True,  # a subreddits_ dump: features then writes both sets
        )
        yield root


def test_every_stage_runs_then_is_skipped(spark, served_world):
    root = served_world
    cfg = load_config(
        "conf/local.yaml",
        [
            f"input.dumps={root / 'w/dumps'}",
            f"lake.root={root / 'lake'}",
            "spark.master=local[2]",
            "graph.min_user_interactions=2",
            "graph.min_subreddit_users=2",
            "ray.num_cpus=2",
            "smoke.steps=30",
            "smoke.vae_steps=10",
            "smoke.batch_size=8",
            "diffusion.seeds=1",
        ],
    )
    lake = Lake(cfg.lake.root)
    quiet = Console(quiet=True)
    first = {s.name: run_stage(s, cfg, lake, quiet) for s in STAGES}
    images = lake.read("silver/user_images")
    emb = lake.read("silver/image_embeddings")
    assert images.num_rows > 0 and emb.num_rows == images.num_rows
    assert Counter(emb["status"].to_pylist()) == {"ok": images.num_rows}
    feats = lake.read("silver/node_features").to_pylist()
    kinds = Counter((f["node_type"], f["feature_set"]) for f in feats)
    assert kinds[("subreddit", "text")] == lake.rows("silver/subreddits")
    # described subreddits also without their title/description (the ablation's row)
    assert 0 < kinds[("subreddit", "text_no_metadata")] <= kinds[("subreddit", "text")]
    vec = {(f["node_id"], f["feature_set"]): f["vector"] for f in feats}
    bare = [k for k in vec if k[1] == "text_no_metadata"]
    assert all(vec[k] != vec[(k[0], "text")] for k in bare)
    users_with_images = len(set(emb["user_id"].to_pylist()))
    assert kinds[("user", "visual")] == users_with_images
    assert first["images"]["details"]["status"] == {"ok": images.num_rows}
    users_with_attention = len(set(lake.read("gold/attention")["user_id"].to_pylist()))
    assert lake.rows("gold/personas") == users_with_attention > 0
    rewrites = lake.read("bench/rewrites")
    assert rewrites.num_rows == lake.rows("bench/prompts") * 6 > 0
    # a tiny world may hold no benchmark user of other communities to swap personas with
    failed = [
        r
        for r in rewrites.to_pylist()
        if r["status"] != "done" and not (r["method"] == "swapped" and "swap" in r["reason"])
    ]
    assert not failed, [(r["method"], r["reason"]) for r in failed]
    again = {s.name: run_stage(s, cfg, lake, quiet) for s in STAGES}
    assert all(again[n]["started_at"] == first[n]["started_at"] for n in first)
