"""Planted world v2 through the real stages up to the encoder (ingest -> graph -> split ->
images -> features, Spark and Ray, images served on loopback), then the encoder trained
with and without ImageAlign on the same splits. It asserts what the planted world is for:
the attention readout ranks users' planted taste communities above their raw activity,
and ImageAlign makes a user's communities reveal more of what they post (blind image
recall of a probe, on unseen users). Only the attention check reads the ground truth."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from evaluation.attention import check_attention
from graph.infer import attention_table, embed_all
from graph.train import blind_user_embeddings, build_objective, fit, image_probe, read_inputs
from jobs.config import load_config
from jobs.dag import BY_NAME
from jobs.runner import run_stage
from storage.lake import Lake
from tests.static_server import serve_folder
from world.planted import SampleSpec
from world.write import write_sample

QUIET = Console(file=io.StringIO())
SPEC = dict(users=700, communities=16, subreddits=200, image_size=32, seed=3)
UPSTREAM = ("ingest", "graph", "split", "images", "features")
ENCODER = [
    "encoder.epochs=8",
    "encoder.patience=100",
    "encoder.hidden=32",
    "encoder.heads=2",
]


@pytest.fixture(scope="module")
def world(spark, tmp_path_factory):
    """The silver lake of a small world v2 (a third of users unseen, for the probe)."""
    root = tmp_path_factory.mktemp("planted")
    (root / "w").mkdir()
    with serve_folder(root / "w") as base:
        write_sample(root / "w", SampleSpec(**SPEC, image_base_url=base), console=QUIET)
        cfg = load_config(
            "conf/local.yaml",
            [
                f"input.dumps={root / 'w/dumps'}",
                f"lake.root={root / 'lake'}",
                "spark.master=local[2]",
                "ray.num_cpus=2",
                "graph.inductive_fraction=0.3",
                *ENCODER,
            ],
        )
        lake = Lake(cfg.lake.root)
        for name in UPSTREAM:
            run_stage(BY_NAME[name], cfg, lake, QUIET)
    return {"cfg": cfg, "lake": lake, "truth": root / "w" / "ground_truth"}


def _train(world: dict, image_weight: float) -> dict:
    """Fit the encoder; its blind image probe (unseen users) and its attention check."""
    cfg = world["cfg"].encoder.model_copy(update={"image_weight": image_weight})
    root = str(world["lake"].root)
    state = fit(cfg, root, str(world["lake"].path("models/checkpoints")), f"ia-{image_weight}")
    observed = read_inputs(root, cfg.seed, message="observed")
    model = build_objective(cfg, observed)
    model.load_state_dict(state["best_model"])
    h_blind = blind_user_embeddings(model.encoder, observed.graph, cfg.inference_chunk)
    g = read_inputs(root, cfg.seed, message="all").graph
    _, _, att = embed_all(model.encoder, g, cfg.inference_chunk, attention=True)
    lake = world["lake"]
    edges = lake.read("silver/edges").select(["user_id", "subreddit_id", "posts", "comments"])
    check = check_attention(
        attention_table(g, att, edges),
        lake.read("silver/users"),
        lake.read("silver/subreddits"),
        world["truth"],
    )
    return {"probe": image_probe(h_blind, observed, cfg), "check": check}


@pytest.fixture(scope="module")
def trained(world):
    return {"with": _train(world, 0.5), "without": _train(world, 0.0)}


def test_attention_ranks_planted_communities_above_activity(trained):
    # With ImageAlign: 464 vs 8 users, precision 0.85 vs 0.52. Since the world plants
    # dislikes (comments moved into a disliked community) the encoder without ImageAlign
    # leads activity here by ~1.5x (257 vs 175, precision 0.58 vs 0.52), not the 2x it
    # had before: measured, not yet explained (issue 13's note)
    bars = {"with": (2.0, 0.1), "without": (1.3, 0.0)}
    for variant, (ratio, margin) in bars.items():
        check = trained[variant]["check"]
        assert check.users > 300, check
        assert check.attention_wins >= ratio * max(check.counts_win, 1), (variant, check.summary())
        assert check.attention_precision > check.counts_precision + margin, check.summary()


def test_image_align_raises_blind_image_recall(trained):
    """Chance is k / (unseen users with images), about 10 / 190 here."""
    with_ia, without = trained["with"]["probe"], trained["without"]["probe"]
    print(f"blind image recall@10 (probe, unseen users): {with_ia:.3f} vs {without:.3f}")
    assert with_ia > without + 0.05, (with_ia, without)
