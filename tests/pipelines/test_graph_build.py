"""Graph build on a real local SparkSession over an ingested sample world."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import pytest
from rich.console import Console

from jobs import graph, ingest
from jobs.config import load_config
from jobs.runner import run_stage
from storage.lake import Lake
from world.planted import SampleSpec
from world.write import write_sample

BOTS = {"AutoModerator", "RemindMeBot", "sneakpeekbot", "WikiSummarizerBot"}


@pytest.fixture(scope="module")
def built(spark, tmp_path_factory) -> tuple[Lake, object]:
    root = tmp_path_factory.mktemp("graph")
    write_sample(
        root / "w",
        SampleSpec(users=80, months=("2021-05",), image_size=8),
        console=Console(quiet=True),
    )
    cfg = load_config(
        "conf/local.yaml",
        [
            f"input.dumps={root / 'w/dumps'}",
            f"lake.root={root / 'lake'}",
            "spark.master=local[2]",
            "graph.min_user_interactions=2",
            "graph.min_subreddit_users=2",
            "graph.inductive_fraction=0.2",
        ],
    )
    lake = Lake(cfg.lake.root)
    quiet = Console(quiet=True)
    run_stage(ingest.STAGE, cfg, lake, quiet)
    run_stage(graph.STAGE, cfg, lake, quiet)
    return lake, cfg


def test_nodes_are_dense_filtered_and_real_users(built):
    lake, cfg = built
    users = lake.read("silver/users").to_pylist()
    subs = lake.read("silver/subreddits").to_pylist()
    assert sorted(u["user_id"] for u in users) == list(range(len(users)))
    assert sorted(s["subreddit_id"] for s in subs) == list(range(len(subs)))
    names = [u["author"] for u in users]
    by_id = sorted(users, key=lambda u: u["user_id"])
    assert [u["author"] for u in by_id] == sorted(names)  # id = rank of the name
    assert not ({"[deleted]"} | BOTS) & set(names)
    assert all(u["posts"] + u["comments"] >= cfg.graph.min_user_interactions for u in users)
    assert all(s["users"] >= cfg.graph.min_subreddit_users for s in subs)
    assert {u["role"] for u in users} == {"train", "inductive"}


def test_edges_match_bronze(built):
    lake, _ = built
    users = {u["author"]: u["user_id"] for u in lake.read("silver/users").to_pylist()}
    subs = {s["subreddit"]: s["subreddit_id"] for s in lake.read("silver/subreddits").to_pylist()}
    expect: dict[tuple[int, int], Counter] = defaultdict(Counter)
    for name, kind in (("bronze/submissions", "posts"), ("bronze/comments", "comments")):
        for r in lake.read(name).select(["author", "subreddit", "score"]).to_pylist():
            downvoted = (r["score"] or 0) < 0  # no sign of interest: no edge
            if r["author"] in users and r["subreddit"] in subs and not downvoted:
                key = (users[r["author"]], subs[r["subreddit"]])
                expect[key][kind] += 1
                expect[key]["score"] += r["score"] or 0
    edges = lake.read("silver/edges").to_pylist()
    got = {(e["user_id"], e["subreddit_id"]): e for e in edges}
    assert len(got) == len(edges) == len(expect)
    for key, c in expect.items():
        e = got[key]
        assert (e["posts"], e["comments"], e["score_sum"]) == (
            c["posts"],
            c["comments"],
            c["score"],
        )


def test_splits_hold_out_edges_and_whole_users(built):
    lake, _ = built
    role = {u["user_id"]: u["role"] for u in lake.read("silver/users").to_pylist()}
    edges = lake.read("silver/edges").to_pylist()
    per_user = defaultdict(list)
    for e in edges:
        per_user[e["user_id"]].append(e["split"])
        assert (e["split"] == "inductive") == (role[e["user_id"]] == "inductive")
    for uid, splits in per_user.items():
        if role[uid] == "train":
            assert "train" in splits
    counts = Counter(e["split"] for e in edges)
    assert counts["val"] > 0 and counts["test"] > 0 and counts["train"] > counts["val"]


def test_snippets_are_ranked_clean_evidence(built):
    lake, cfg = built
    snips = lake.read("silver/snippets").to_pylist()
    assert snips
    assert not any(s["text"].strip() in ("[removed]", "[deleted]") for s in snips)
    groups = defaultdict(list)
    for s in snips:
        groups[(s["user_id"], s["subreddit_id"])].append(s)
    for rows in groups.values():
        rows.sort(key=lambda s: s["rank"])
        assert [s["rank"] for s in rows] == list(range(1, len(rows) + 1))
        assert len(rows) <= cfg.graph.snippets_per_edge
        scores = [s["score"] if s["score"] is not None else -(10**9) for s in rows]
        assert scores == sorted(scores, reverse=True)
    bot_ids = {r["id"] for r in lake.read("bronze/comments").to_pylist() if r["author"] in BOTS}
    replies = {
        r["id"]
        for r in lake.read("bronze/comments").to_pylist()
        if r["parent_id"] and r["parent_id"][3:] in bot_ids
    }
    assert not replies & {s["record_id"] for s in snips}


def test_user_images_cover_single_and_gallery_posts(built):
    lake, _ = built
    imgs = lake.read("silver/user_images").to_pylist()
    origins = Counter(i["origin"] for i in imgs)
    assert origins["i.redd.it"] > 0 and origins["gallery"] > 0
    assert all("&amp;" not in i["image_url"] for i in imgs)
    assert all(i["image_url"].startswith("http://127.0.0.1:8765/images/") for i in imgs)
    posts = {r["id"]: r for r in lake.read("bronze/submissions").to_pylist()}
    for i in imgs:
        post = posts[i["post_id"]]
        if i["origin"] == "gallery":
            item = post["gallery"][i["position"]]
            assert item["media_id"] == i["media_id"] and item["kind"] == "Image"
    gallery_items = sum(
        len([g for g in (p["gallery"] or []) if g["kind"] == "Image"])
        for p in posts.values()
        if p["author"] in {u["author"] for u in lake.read("silver/users").to_pylist()}
    )
    assert origins["gallery"] == gallery_items


def test_rerun_gives_same_ids(built, tmp_path: Path):
    lake, cfg = built
    before = lake.read("silver/users").to_pylist()
    run_stage(graph.STAGE, cfg, lake, Console(quiet=True), force=True)
    after = lake.read("silver/users").to_pylist()
    key = lambda u: u["user_id"]  # noqa: E731
    assert sorted(before, key=key) == sorted(after, key=key)
