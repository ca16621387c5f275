"""ViPer's negative side, end to end: a planted sample world (each user dislikes one
community and is downvoted in its subreddits) through the real stages, ingest to
preferences with the template backend. The downvoted comments survive the snippet
selection, stay out of the positive evidence, and the template's dislikes name the
planted disliked community's words, not the user's own nor the negativity words.
Only the checks read the ground truth."""

from __future__ import annotations

import io
from collections import Counter

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from rich.console import Console

from jobs.config import load_config
from jobs.dag import BY_NAME
from jobs.runner import run_stage
from storage.lake import Lake
from tests.static_server import serve_folder
from world.planted import SampleSpec
from world.vocab import NEGATIVE
from world.write import write_sample

QUIET = Console(file=io.StringIO())
# heavy commenters, so that most users have a few downvoted comments at the planted share
SPEC = dict(users=150, communities=12, subreddits=120, comments_per_user_month=30.0)
STAGES = ("ingest", "graph", "split", "images", "features", "train", "embed", "preferences")


@pytest.fixture(scope="module")
def world(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("dislikes")
    (root / "w").mkdir()
    with serve_folder(root / "w") as base:
        write_sample(
            root / "w", SampleSpec(**SPEC, image_size=16, image_base_url=base), console=QUIET
        )
        cfg = load_config(
            "conf/local.yaml",
            [
                f"input.dumps={root / 'w/dumps'}",
                f"lake.root={root / 'lake'}",
                "spark.master=local[2]",
                "ray.num_cpus=2",
                "encoder.epochs=2",
                "encoder.hidden=16",
                "encoder.heads=2",
            ],
        )
        lake = Lake(cfg.lake.root)
        for name in STAGES:
            run_stage(BY_NAME[name], cfg, lake, QUIET)
    truth = root / "w" / "ground_truth"
    users = pq.read_table(truth / "users.parquet").to_pylist()
    communities = pq.read_table(truth / "communities.parquet").to_pylist()
    vocab = {c["community"]: set(c["vocab"]) for c in communities}
    author = dict(
        zip(*(lake.read("silver/users")[c].to_pylist() for c in ("user_id", "author")), strict=True)
    )
    return {
        "lake": lake,
        "users": {u["author"]: u for u in users},
        "vocab": vocab,
        "author": author,
    }


def test_downvoted_comments_survive_the_snippet_selection(world):
    lake = world["lake"]
    comments = lake.read("bronze/comments", ["id", "author", "score", "body"])
    negative = comments.filter(
        pc.and_(
            pc.less(comments["score"], 0),
            pc.invert(pc.is_in(comments["body"], pc.cast(["[removed]", "[deleted]"], "string"))),
        )
    )
    snippets = lake.read("silver/snippets", ["record_id", "score"])
    kept = set(snippets["record_id"].to_pylist())
    kept_users = set(world["author"].values())
    mine = [
        i
        for i, a in zip(negative["id"].to_pylist(), negative["author"].to_pylist(), strict=True)
        if a in kept_users
    ]
    assert len(mine) > 100
    assert sum(i in kept for i in mine) / len(mine) > 0.8


def test_dislikes_name_the_planted_disliked_community(world):
    lake, users, vocab = world["lake"], world["users"], world["vocab"]
    prefs = lake.read("gold/visual_preferences").to_pylist()
    assert len(prefs) > 100 and {p["status"] for p in prefs} == {"done"}
    negative = {w for p in NEGATIVE for w in p.split()}
    with_dislikes = hits = own = words = 0
    for p in prefs:
        truth = users[world["author"][p["user_id"]]]
        dislikes = p["dislikes"] or []
        assert not set(dislikes) & negative, dislikes
        assert not set(dislikes) & set(p["likes"])
        with_dislikes += bool(dislikes)
        theirs = set().union(*(vocab[c] for c in truth["communities"]))
        words += len(dislikes)
        hits += sum(w in vocab[truth["disliked_community"]] for w in dislikes)
        own += sum(w in theirs for w in dislikes)
    print(f"users with dislikes {with_dislikes}/{len(prefs)}, precision {hits / words:.2f}")
    assert with_dislikes / len(prefs) > 0.6
    assert hits / words > 0.6 and own / words < 0.1


def test_downvoted_snippets_are_quoted_apart_from_the_evidence(world):
    lake = world["lake"]
    snippets = lake.read("silver/snippets", ["record_id", "score"])
    negative = set(snippets.filter(pc.less(snippets["score"], 0))["record_id"].to_pylist())
    prefs = lake.read("gold/visual_preferences").to_pylist()
    quoted = Counter(i in negative for p in prefs for i in p["evidence_ids"])
    assert quoted[True] > 50
    for p in prefs:  # the positive evidence text never holds a downvoted snippet
        assert "not a fan of" not in p["evidence"]
