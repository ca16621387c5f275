"""The encoder stages end to end on a small planted world: real local Ray, Ray Train and PyG.

train -> embed through the stage runner; a training job killed mid-run resumes from its
last checkpoint and ends where an uninterrupted run ends; 2 DDP workers learn what 1 does.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from rich.console import Console

from graph.artifacts import MODEL_FILE
from jobs.config import load_config
from jobs.embed import STAGE as EMBED
from jobs.runner import run_stage
from jobs.train import STAGE as TRAIN
from storage.lake import Lake
from tests.graph.world import write_silver_world

REPO = Path(__file__).resolve().parents[2]
QUIET = Console(quiet=True)
EPOCHS = 8
SMALL = [
    "ray.num_cpus=2",
    "encoder.hidden=16",
    "encoder.heads=2",
    "encoder.batch_size=64",
    "encoder.fanouts=[5,5]",
    f"encoder.epochs={EPOCHS}",
    "encoder.patience=100",  # fixed length: every run trains all epochs
]
# every metric the workers compute, compared between runs (seconds and run name differ)
METRICS = ("loss_link", "loss_image", "val_auc", "posting_acc", "recall_at_k", "image_recall_at_k")
SILVER = (
    "silver/users",
    "silver/subreddits",
    "silver/edges",
    "silver/node_features",
    "silver/image_embeddings",
)


def overrides(root: Path, *extra: str) -> list[str]:
    return [f"lake.root={root}", *SMALL, *extra]


def config(root: Path, *extra: str):
    return load_config(REPO / "conf/local.yaml", overrides(root, *extra))


def metrics_rows(lake: Lake) -> list[dict]:
    """The metrics table's rows by epoch (the folder also holds metrics.png, model.pt)."""
    table = lake.read("models/encoder")
    assert table.num_rows, "no metrics table"
    return table.sort_by("epoch").to_pylist()


def auc_of(details: dict) -> float:
    """The test AUC from a train manifest."""
    return details["test"]["auc"]


@pytest.fixture(scope="module", autouse=True)
def ray_local():
    """A local Ray for this module (2 CPUs); shut down only if this module started it."""
    import ray

    from engines.ray import ray_session

    started = not ray.is_initialized()
    ray_session(None, 2)
    yield
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """World A: train (fixed 8 epochs, 1 worker) then embed, through the stage runner."""
    root = tmp_path_factory.mktemp("world_a") / "lake"
    truth = write_silver_world(root, busy_general=True)
    cfg, lake = config(root), Lake(root)
    t0 = time.perf_counter()
    train = run_stage(TRAIN, cfg, lake, QUIET)
    embed = run_stage(EMBED, cfg, lake, QUIET)
    return {
        "root": root,
        "truth": truth,
        "cfg": cfg,
        "lake": lake,
        "train": train,
        "embed": embed,
        "seconds": time.perf_counter() - t0,
    }


def test_train_then_embed(trained):
    cfg, lake, truth = trained["cfg"], trained["lake"], trained["truth"]
    details = trained["train"]["details"]
    chance = 1 / cfg.encoder.posting_candidates
    assert details["chance_posting_acc"] == pytest.approx(chance)
    assert auc_of(details) > 0.7, details
    assert details["test"]["posting_acc"] > 2 * chance, details
    assert details["resumed_at"] == [] and details["epochs"] == EPOCHS
    assert details["stopped_early"] is False

    # the metrics table: one row per epoch, contiguous from 1, and the artifacts
    rows = metrics_rows(lake)
    assert [r["epoch"] for r in rows] == list(range(1, EPOCHS + 1))
    assert {r["run"] for r in rows} == {details["run"]}
    assert {r["workers"] for r in rows} == {1}
    assert all(0 <= r["val_auc"] <= 1 and math.isfinite(r["loss_link"]) for r in rows)
    assert rows[-1]["loss_link"] < rows[0]["loss_link"]
    out = lake.path("models/encoder")
    assert (out / "metrics.png").stat().st_size > 0
    assert (out / MODEL_FILE).stat().st_size > 0
    # encoder.select_on: validation recall@k, ties to the better validation AUC
    best = max(rows, key=lambda r: (r["recall_at_k"], r["val_auc"]))
    assert details["best_epoch"] == best["epoch"]

    # embeddings: every user, inductive ones included, role preserved
    users = lake.read("silver/users").sort_by("user_id")
    emb = lake.read("gold/user_embeddings").sort_by("user_id")
    assert emb["user_id"].to_pylist() == users["user_id"].to_pylist()
    assert emb["role"].to_pylist() == users["role"].to_pylist()
    assert (
        Counter(emb["role"].to_pylist())["inductive"]
        == Counter(truth["roles"].values())["inductive"]
    )
    assert set(emb["model"].to_pylist()) == {f"{cfg.encoder.conv}:{details['run']}"}
    vecs = np.asarray(emb["embedding"].to_pylist(), np.float64)
    assert vecs.shape == (users.num_rows, cfg.encoder.hidden)
    assert np.isfinite(vecs).all()
    norms = np.linalg.norm(vecs, axis=1)
    assert (norms > 1e-6).all()

    # unseen users land near their planted communities
    unit = vecs / norms[:, None]
    comms = {u: set(c) for u, c in truth["user_communities"].items()}
    train_users = [u for u, r in truth["roles"].items() if r == "train"]
    inductive = [u for u, r in truth["roles"].items() if r == "inductive"]
    margins = []
    for u in inductive:
        same = [v for v in train_users if comms[v] & comms[u]]
        other = [v for v in train_users if not comms[v] & comms[u]]
        cos = unit[[*same, *other]] @ unit[u]
        margins.append(cos[: len(same)].mean() - cos[len(same) :].mean())
    margins = np.asarray(margins)
    assert margins.mean() > 0.3, margins
    assert (margins > 0).all(), margins

    # attention: one row per edge, a user's weights sum to 1, ranks 1..degree
    edges = lake.read("silver/edges")
    att = lake.read("gold/attention")
    assert att.num_rows == edges.num_rows
    key = pc.add(pc.multiply(pc.cast(att["user_id"], "int64"), 1_000_000), att["subreddit_id"])
    want = pc.add(pc.multiply(pc.cast(edges["user_id"], "int64"), 1_000_000), edges["subreddit_id"])
    assert sorted(key.to_pylist()) == sorted(want.to_pylist())
    per_user: dict[int, list[tuple[int, float]]] = {}
    for r in att.to_pylist():
        per_user.setdefault(r["user_id"], []).append((r["rank"], r["attention"]))
    assert set(per_user) == set(range(users.num_rows))
    for u, items in per_user.items():
        ranks = sorted(rank for rank, _ in items)
        assert ranks == list(range(1, len(items) + 1)), (u, items)
        assert sum(a for _, a in items) == pytest.approx(1.0, abs=1e-3), (u, items)
        by_rank = [a for _, a in sorted(items)]
        assert by_rank == sorted(by_rank, reverse=True), (u, items)
    deg = Counter(edges["user_id"].to_pylist())
    assert {u: len(items) for u, items in per_user.items()} == dict(deg)

    # both stages are current now: a rerun skips them
    again_train = run_stage(TRAIN, cfg, lake, QUIET)
    again_embed = run_stage(EMBED, cfg, lake, QUIET)
    assert again_train["started_at"] == trained["train"]["started_at"]
    assert again_embed["started_at"] == trained["embed"]["started_at"]
    assert metrics_rows(lake) == rows


def _snapshot_count(lake_root: Path) -> int:
    """Checkpoints listed in the (single) run's Ray Train snapshot; 0 while none."""
    best = 0
    for f in (lake_root / "models/checkpoints").glob("*/checkpoint_manager_snapshot.json"):
        try:
            best = max(best, len(json.loads(f.read_text())["checkpoint_results"]))
        except (OSError, ValueError, KeyError):  # being written
            continue
    return best


def test_killed_training_resumes(trained, tmp_path_factory):
    base = tmp_path_factory.mktemp("world_b")
    root = base / "lake"
    write_silver_world(root, busy_general=True)  # the same world as `trained`
    lake = Lake(root)
    for name in SILVER:  # the same world, written again from the same seed
        assert lake.read(name).equals(trained["lake"].read(name)), name

    log = base / "train.log"
    env = dict(os.environ)
    env.pop("RAY_ADDRESS", None)  # the job starts its own Ray, which dies with it
    t0 = time.perf_counter()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jobs.train", "-c", "conf/local.yaml"] + overrides(root),
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 180
            while _snapshot_count(root) < 2 and proc.poll() is None:
                assert time.monotonic() < deadline, "no 2 checkpoints within 180 s"
                time.sleep(0.05)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
    tail = log.read_text(errors="replace")[-3000:]
    assert proc.returncode == -signal.SIGKILL, tail  # killed, not finished or crashed
    assert not lake.path("models/encoder").exists()
    killed_after = time.perf_counter() - t0

    details = run_stage(TRAIN, config(root), lake, QUIET)["details"]
    assert details["resumed_at"], details
    assert all(2 <= e < EPOCHS for e in details["resumed_at"]), details
    rows = metrics_rows(lake)
    epochs = [r["epoch"] for r in rows]
    assert epochs == list(range(1, EPOCHS + 1))
    assert details["epochs"] == EPOCHS

    # the same numbers as the uninterrupted run of world A (training is seeded per epoch)
    ref = metrics_rows(trained["lake"])
    for got, want in zip(rows, ref, strict=True):
        for k in METRICS:
            assert got[k] == pytest.approx(want[k], rel=1e-6, abs=1e-6), (got["epoch"], k)
    ref_details = trained["train"]["details"]
    assert details["best_epoch"] == ref_details["best_epoch"]
    for split in ("test", "inductive"):
        assert details[split] == pytest.approx(ref_details[split], abs=1e-4), split
    print(f"killed after {killed_after:.1f}s, resumed at {details['resumed_at']}")


def test_attention_finds_planted_communities_not_activity(trained, tmp_path):
    """The attention readout (first layer, mean over heads): on a world where users are
    busiest in general subreddits, it ranks their planted communities' subreddits above
    raw activity for at least twice as many users as the reverse."""
    from evaluation.attention import check_attention

    lake, truth = trained["lake"], trained["truth"]
    users, subs = lake.read("silver/users"), lake.read("silver/subreddits")
    names = subs["subreddit"].to_pylist()
    pq.write_table(
        pa.table(
            {
                "author": users["author"],
                "communities": [
                    [f"c{c}" for c in truth["user_communities"][u]]
                    for u in users["user_id"].to_pylist()
                ],
            }
        ),
        tmp_path / "users.parquet",
    )
    community = [truth["subreddit_community"][i] for i in range(len(names))]
    pq.write_table(
        pa.table(
            {"subreddit": names, "community": [None if c is None else f"c{c}" for c in community]}
        ),
        tmp_path / "subreddits.parquet",
    )
    got = check_attention(lake.read("gold/attention"), users, subs, tmp_path)
    assert got.users > 50, got
    assert got.attention_wins >= 2 * max(got.counts_win, 1), got.summary()
    assert got.attention_precision > got.counts_precision + 0.1, got.summary()


def test_two_workers_match_one(trained, tmp_path_factory):
    root = tmp_path_factory.mktemp("world_c") / "lake"
    write_silver_world(root, busy_general=True)  # the same world as `trained`
    lake = Lake(root)
    cfg = config(root, "encoder.num_workers=2", "encoder.cpus_per_worker=1")
    details = run_stage(TRAIN, cfg, lake, QUIET)["details"]
    rows = metrics_rows(lake)
    assert [r["epoch"] for r in rows] == list(range(1, EPOCHS + 1))
    assert {r["workers"] for r in rows} == {2}

    one = trained["train"]["details"]
    ref = metrics_rows(trained["lake"])
    assert {r["workers"] for r in ref} == {1}
    best_two = max(r["val_auc"] for r in rows)
    best_one = max(r["val_auc"] for r in ref)
    chance = 1 / cfg.encoder.posting_candidates
    for d, best in ((one, best_one), (details, best_two)):
        assert best > 0.75 and auc_of(d) > 0.7, d
        assert d["test"]["posting_acc"] > 2 * chance, d
    assert abs(best_two - best_one) < 0.07
    assert abs(details["test"]["posting_acc"] - one["test"]["posting_acc"]) < 0.12
    # the two runs really differ (each worker sees half the edges per epoch)
    assert any(r2["loss_link"] != r1["loss_link"] for r1, r2 in zip(ref, rows, strict=True))


def test_a_cut_ray_snapshot_resumes_from_the_newest_whole_checkpoint(tmp_path):
    """A kill while Ray Train rewrites its snapshot leaves it cut (Ray then refuses the
    run): `fit` drops it and resumes from the newest checkpoint that loads."""
    import torch

    from graph.train import RAY_SNAPSHOT, _resume_after_cut_snapshot

    run = tmp_path / "run"
    assert _resume_after_cut_snapshot(run) is None  # no run yet
    for epoch, stamp in ((1, "2026-12-02_10-00-01.0"), (2, "2026-12-02_10-00-09.0")):
        d = run / f"checkpoint_{stamp}"
        d.mkdir(parents=True)
        torch.save({"epoch": epoch}, d / "state.pt")
        (d / "metrics.json").write_text(json.dumps({"epoch": epoch}))
    (run / RAY_SNAPSHOT).write_text(json.dumps({"checkpoint_results": []}))
    assert _resume_after_cut_snapshot(run) is None  # a whole snapshot: Ray resumes itself
    newest = run / "checkpoint_2026-12-02_10-00-12.0"  # cut while being written
    newest.mkdir()
    (newest / "state.pt").write_bytes(b"PK\x03")
    (run / RAY_SNAPSHOT).write_text("")
    ckpt = _resume_after_cut_snapshot(run)
    assert ckpt is not None and Path(ckpt.path).name == "checkpoint_2026-12-02_10-00-09.0"
    assert not (run / RAY_SNAPSHOT).exists()


def test_epoch_edges_cover_every_edge_once_before_any_repeats():
    from graph.train import epoch_edges, sample_users

    n, budget = 103, 40
    epochs = [epoch_edges(n, e, budget, seed=5) for e in range(6)]  # two cycles of 3
    assert [len(e) for e in epochs] == [35, 34, 34] * 2  # at most the budget, even
    for cycle in (epochs[:3], epochs[3:]):  # no epoch repeats an edge of its cycle
        assert sorted(np.concatenate(cycle)) == list(range(n))
    assert np.concatenate(epochs[:3]).tolist() != np.concatenate(epochs[3:]).tolist()
    assert np.array_equal(epoch_edges(n, 3, budget, seed=5), epochs[3])  # resumable
    assert not np.array_equal(epoch_edges(n, 3, budget, seed=6), epochs[3])
    full = epoch_edges(n, 2, None, seed=5)
    assert sorted(full) == list(range(n)) and np.array_equal(full, epoch_edges(n, 2, 500, 5))

    pairs = np.array([[0, 0, 1, 2, 2, 3, 4], [1, 2, 0, 1, 3, 0, 2]])
    assert sample_users(pairs, None, 0) is None and sample_users(pairs, 5, 0) is None
    some = sample_users(pairs, 3, 0)
    assert len(some) == 3 and set(some) <= {0, 1, 2, 3, 4}
    assert np.array_equal(some, sample_users(pairs, 3, 0))


def test_an_epoch_budget_bounds_training_and_validation(trained, tmp_path_factory):
    """`encoder.edges_per_epoch` sets each epoch's seed edges whatever the graph's size;
    `encoder.val_users` validates on a fixed sample of users, on the bounded view
    `encoder.val_fanout` builds; early stopping still runs."""
    from graph.train import read_inputs

    root = tmp_path_factory.mktemp("budget") / "lake"
    write_silver_world(root, busy_general=True)
    budget = 320
    cfg = config(
        root,
        f"encoder.edges_per_epoch={budget}",
        "encoder.val_users=20",
        "encoder.val_fanout=5",
        "encoder.epochs=4",
    )
    lake = Lake(root)
    details = run_stage(TRAIN, cfg, lake, QUIET)["details"]
    rows = metrics_rows(lake)
    edges = read_inputs(str(root)).graph.num_edges
    per_cycle = -(-edges // budget)  # a cycle's epochs share its edges evenly
    sizes = [len(part) for part in np.array_split(range(edges), per_cycle)]
    assert [r["seed_edges"] for r in rows] == [sizes[e % per_cycle] for e in range(4)]
    assert all(r["seed_edges"] <= budget for r in rows)
    assert all(0 <= r["val_seconds"] <= r["seconds"] for r in rows)
    assert details["epochs"] == 4 and 1 <= details["best_epoch"] <= 4
    # the full run's epochs trained on every training edge
    edges = read_inputs(str(trained["root"])).graph.num_edges
    assert {r["seed_edges"] for r in metrics_rows(trained["lake"])} == {edges}
    assert budget < edges / 3
