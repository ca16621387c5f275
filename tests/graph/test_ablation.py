"""The encoder ablation's baselines (TF-IDF/LSA, implicit ALS, LightGCN) on a small planted
world: right shapes, finite, well above chance on the shared metrics, ALS tuned on the
validation split alone; `run_ablation` rows, the GNN variants (Ray Train) with and without
ImageAlign, and the `zipp ablation` command."""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from typer.testing import CliRunner

from graph.ablation import PAPER, VARIANTS, lightgcn_embeddings, run_ablation, tfidf_embeddings
from graph.als import GRID, als_embeddings, confidence, fold_in, interaction_counts
from graph.config import EncoderConfig
from graph.metrics import edge_keys
from graph.train import link_metrics, read_inputs
from jobs.config import load_config
from schemas.silver import IMAGE_EMBEDDINGS
from storage.lake import Lake
from tests.graph.world import write_silver_world

REPO = Path(__file__).resolve().parents[2]
SMALL = ["ray.num_cpus=2", "encoder.hidden=16", "encoder.epochs=3"]
# the GNN variants: short fixed-length runs (every variant trains all epochs)
GNN = ["encoder.heads=2", "encoder.fanouts=[5,5]", "encoder.epochs=2", "encoder.patience=100"]
ROW_KEYS = {
    "encoder",
    "image_align",
    "posting_acc",
    "auc",
    "recall_at_k",
    "unseen_posting_acc",
    "image_probe_recall",
    "paper_posting_acc",
    "note",
}


def encoder_cfg(root: Path, *extra: str) -> EncoderConfig:
    overrides = [f"lake.root={root}", *SMALL, *extra]
    return load_config(REPO / "conf/local.yaml", overrides).encoder


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("ablation") / "lake"
    truth = write_silver_world(root)
    cfg = encoder_cfg(root)
    return {
        "root": root,
        "truth": truth,
        "cfg": cfg,
        "inputs": read_inputs(str(root), cfg.seed, message="observed"),
    }


def check_embeddings(h_user, h_sub, inputs, cfg, max_dim: int) -> None:
    g = inputs.graph
    assert h_user.dtype == h_sub.dtype == torch.float32
    assert h_user.shape[0] == g.num_users and h_sub.shape[0] == g.num_subs
    assert 2 <= h_user.shape[1] == h_sub.shape[1] <= max_dim
    assert torch.isfinite(h_user).all() and torch.isfinite(h_sub).all()
    chance = 1 / cfg.posting_candidates
    for split in ("test", "inductive"):
        m = link_metrics(h_user, h_sub, inputs, cfg, split)
        assert m["posting_acc"] > 2.5 * chance, (split, m)
        assert m["auc"] > 0.8, (split, m)
        assert 0.0 <= m["recall_at_k"] <= 1.0, (split, m)


def test_world_premise(world):
    """Both held-out splits are non-empty and unseen users keep some observed edges."""
    g = world["inputs"].graph
    assert g.splits["test"].shape[1] > 50 and g.splits["inductive"].shape[1] > 20
    assert g.splits["inductive_observed"].shape[1] > 0
    assert len(world["inputs"].images) > 0


def test_tfidf_embeddings(world):
    inputs, cfg = world["inputs"], world["cfg"]
    h_user, h_sub = tfidf_embeddings(inputs, cfg.hidden)
    check_embeddings(h_user, h_sub, inputs, cfg, cfg.hidden)
    # deterministic, and unseen users are folded in: non-zero from their observed edges
    again_user, again_sub = tfidf_embeddings(inputs, cfg.hidden)
    assert torch.equal(h_user, again_user) and torch.equal(h_sub, again_sub)
    unseen = np.unique(inputs.graph.splits["inductive_observed"][0])
    assert (h_user[torch.from_numpy(unseen)].norm(dim=1) > 1e-6).all()


def test_tfidf_separates_planted_communities(world):
    """Subreddits of one planted community sit closer together than across communities."""
    h_user, h_sub = tfidf_embeddings(world["inputs"], world["cfg"].hidden)
    comm = world["truth"]["subreddit_community"]
    planted = [s for s, c in comm.items() if c is not None]
    unit = torch.nn.functional.normalize(h_sub[planted], dim=1)
    cos = (unit @ unit.T).numpy()
    same = np.array([[comm[a] == comm[b] for b in planted] for a in planted])
    off_diag = ~np.eye(len(planted), dtype=bool)
    assert cos[same & off_diag].mean() > cos[~same].mean() + 0.3


def test_lightgcn_embeddings(world):
    inputs, cfg = world["inputs"], world["cfg"]
    h_user, h_sub = lightgcn_embeddings(inputs, cfg, image_align=False)
    check_embeddings(h_user, h_sub, inputs, cfg, cfg.hidden)
    assert h_user.shape[1] == cfg.hidden
    # seeded: the same run gives the same vectors
    again_user, _ = lightgcn_embeddings(inputs, cfg, image_align=False)
    assert torch.allclose(h_user, again_user)

    ia_user, ia_sub = lightgcn_embeddings(inputs, cfg, image_align=True)
    check_embeddings(ia_user, ia_sub, inputs, cfg, cfg.hidden)
    assert not torch.allclose(ia_user, h_user, atol=1e-4)  # ImageAlign changed the training


@pytest.fixture(scope="module")
def als(world):
    return als_embeddings(world["inputs"], world["cfg"])


def test_als_embeddings(world, als):
    inputs, cfg = world["inputs"], world["cfg"]
    check_embeddings(als.user, als.sub, inputs, cfg, cfg.hidden)
    assert als.user.shape[1] == als.params["factors"]
    again = als_embeddings(inputs, cfg)  # seeded: the same run gives the same vectors
    assert torch.equal(als.user, again.user) and torch.equal(als.sub, again.sub)


def test_als_is_tuned_on_validation_only(world, als):
    """One table row per grid configuration; the choice is its best validation recall@k
    (ties: per-user AUC); test and unseen users' held-out edges are never read."""
    inputs, cfg = world["inputs"], world["cfg"]
    widths = {max(2, round(f * cfg.hidden)) for f in GRID["factors"]}
    grid = itertools.product(widths, GRID["reg"], GRID["alpha"], GRID["iterations"])
    keys = ("factors", "reg", "alpha", "iterations")
    assert sorted(tuple(r[k] for k in keys) for r in als.table) == sorted(grid)
    chosen = next(r for r in als.table if all(r[k] == als.params[k] for k in keys))
    best = max(r["val_recall_at_k"] for r in als.table)
    assert chosen["val_recall_at_k"] == best
    assert chosen["val_auc"] == max(r["val_auc"] for r in als.table if r["val_recall_at_k"] == best)
    assert len({round(r["val_recall_at_k"], 9) for r in als.table}) > 1  # the grid matters

    # scrambled test and inductive splits, and none of their edges known: the same result
    g = inputs.graph
    rng = np.random.default_rng(1)
    fake = {
        name: np.stack([rng.permutation(g.splits[name][0]), rng.permutation(g.splits[name][1])])
        for name in ("test", "inductive")
    }
    blind = dataclasses.replace(inputs, graph=dataclasses.replace(g, splits={**g.splits, **fake}))
    other = als_embeddings(blind, cfg)
    assert other.params == als.params and other.table == als.table
    assert torch.equal(other.user, als.user) and torch.equal(other.sub, als.sub)


def test_als_folds_in_unseen_users_from_observed_edges(world, als):
    """Unseen users' edges never train (the subreddit factors and training users' vectors
    are the same without them); their vectors are the exact least-squares solve from their
    observed edges, and their held-out targets are not in the graph at all."""
    inputs, cfg = world["inputs"], world["cfg"]
    g = inputs.graph
    unseen = np.flatnonzero(g.user_role)
    mp_keys = edge_keys(g.user_csr.row_of_entries(), g.user_csr.indices, g.num_subs)
    targets = edge_keys(*g.splits["inductive"], g.num_subs)
    held = edge_keys(*np.concatenate([g.splits["val"], g.splits["test"]], 1), g.num_subs)
    assert not np.isin(targets, mp_keys).any() and not np.isin(held, mp_keys).any()

    no_unseen = read_inputs(str(world["root"]), cfg.seed, message="train")
    assert no_unseen.graph.user_csr.degree(unseen).sum() == 0
    without = als_embeddings(no_unseen, cfg)
    assert without.params == als.params
    assert torch.equal(without.sub, als.sub)
    trained = torch.from_numpy(np.flatnonzero(~g.user_role))
    assert torch.equal(without.user[trained], als.user[trained])
    assert (without.user[torch.from_numpy(unseen)] == 0).all()

    # fold-in: the exact solve of (Y^T C_u Y + reg I) x = Y^T C_u p_u
    c = confidence(interaction_counts(g)[unseen], als.params["alpha"]).toarray()
    y = als.sub.double().numpy()
    for row, u in enumerate(unseen[:5]):
        cu = np.where(c[row] > 0, c[row], 1.0)
        a = (y.T * cu) @ y + als.params["reg"] * np.eye(y.shape[1])
        x = np.linalg.solve(a, (y.T * cu) @ (c[row] > 0))
        np.testing.assert_allclose(als.user[u].numpy(), x, rtol=1e-3, atol=1e-4)
    one = fold_in(confidence(interaction_counts(g)[unseen[:1]], 1.0), als.sub.numpy(), 1.0)
    assert one.shape == (1, als.sub.shape[1]) and np.isfinite(one).all()
    unseen_m = link_metrics(als.user, als.sub, inputs, cfg, "inductive")
    assert unseen_m["posting_acc"] > 2.5 / cfg.posting_candidates, unseen_m


def test_run_ablation_rows(world):
    root, cfg = world["root"], world["cfg"]
    stale = root / "models" / "ablation" / "stale.txt"
    stale.parent.mkdir(parents=True)
    stale.write_text("from an earlier run")
    seen: list[str] = []
    variants = (("tfidf", False), ("als", False), ("lightgcn", False))
    rows = run_ablation(str(root), cfg, variants, seen.append)
    assert seen == ["ablation: tfidf", "ablation: als", "ablation: lightgcn"]
    assert not stale.exists()
    assert [(r["encoder"], r["image_align"]) for r in rows] == list(variants)
    assert [r["paper_posting_acc"] for r in rows] == [0.55, None, 0.59]
    chance = 1 / cfg.posting_candidates
    for r in rows:
        assert set(r) == ROW_KEYS
        assert r["posting_acc"] > 2.5 * chance and r["unseen_posting_acc"] > 2.5 * chance, r
        assert 0.8 < r["auc"] <= 1.0 and 0.0 <= r["recall_at_k"] <= 1.0, r
    # the TF-IDF row is the metrics of tfidf_embeddings on the same splits
    h_user, h_sub = tfidf_embeddings(world["inputs"], cfg.hidden)
    test = link_metrics(h_user, h_sub, world["inputs"], cfg, "test")
    unseen = link_metrics(h_user, h_sub, world["inputs"], cfg, "inductive")
    assert rows[0]["posting_acc"] == pytest.approx(test["posting_acc"])
    assert rows[0]["auc"] == pytest.approx(test["auc"])
    assert rows[0]["recall_at_k"] == pytest.approx(test["recall_at_k"])
    assert rows[0]["unseen_posting_acc"] == pytest.approx(unseen["posting_acc"])
    # the ALS row: the tuned embeddings' test metrics, the choice in its note
    als = als_embeddings(world["inputs"], cfg)
    test = link_metrics(als.user, als.sub, world["inputs"], cfg, "test")
    assert rows[1]["posting_acc"] == pytest.approx(test["posting_acc"])
    assert rows[1]["recall_at_k"] == pytest.approx(test["recall_at_k"])
    p = als.params
    assert rows[1]["note"] == (
        f"tuned on validation: factors={p['factors']}, reg={p['reg']:g}, "
        f"alpha={p['alpha']:g}, iterations={p['iterations']}"
    )
    assert rows[0]["note"] is None and rows[2]["note"] is None


def test_run_ablation_gnn_variants(world):
    """GraphSAGE, GAT and GATv2, each with and without ImageAlign, through Ray Train: every
    row finite and above chance, ImageAlign changes the result, no checkpoint outlives it."""
    from engines.ray import ray_session

    root = world["root"]
    cfg = encoder_cfg(root, *GNN)
    variants = tuple((conv, ia) for conv in ("sage", "gat", "gatv2") for ia in (False, True))
    ray_session(None, 2)  # the module's Ray is shut down after it (conftest)
    seen: list[str] = []
    rows = run_ablation(str(root), cfg, variants, seen.append)
    assert [(r["encoder"], r["image_align"]) for r in rows] == list(variants)
    assert seen == [f"ablation: {c}{' + ImageAlign' if ia else ''}" for c, ia in variants]
    chance = 1 / cfg.posting_candidates
    metrics = ("posting_acc", "auc", "recall_at_k", "unseen_posting_acc", "image_probe_recall")
    for r in rows:
        assert set(r) == ROW_KEYS and r["note"] is None, r
        assert 0.0 <= r["image_probe_recall"] <= 1.0, r
        assert all(math.isfinite(r[m]) for m in metrics), r
        assert r["posting_acc"] > 2 * chance and r["unseen_posting_acc"] > 2 * chance, r
        assert 0.6 < r["auc"] <= 1.0 and 0.0 < r["recall_at_k"] <= 1.0, r
        assert r["paper_posting_acc"] == PAPER.get((r["encoder"], r["image_align"]))
    for plain, aligned in zip(rows[::2], rows[1::2], strict=True):
        assert [plain[m] for m in metrics] != [aligned[m] for m in metrics], (plain, aligned)
    assert not (root / "models" / "ablation").exists()


def test_variants_and_paper_figures():
    assert len(VARIANTS) == len(set(VARIANTS)) == 11
    assert {conv for conv, _ in VARIANTS} == {
        "tfidf",
        "als",
        "lightgcn",
        "sage",
        "gat",
        "gatv2",
        "gatv2-no-metadata",
    }
    assert VARIANTS[:2] == (("tfidf", False), ("als", False))
    assert ("tfidf", True) not in VARIANTS  # TF-IDF has nothing for ImageAlign to train
    assert ("als", True) not in VARIANTS
    assert set(PAPER) <= set(VARIANTS) and ("als", False) not in PAPER
    assert PAPER[("gat", True)] == max(PAPER.values())


def test_a_variant_that_cannot_run_says_so_in_its_row(tmp_path):
    """No image embeddings: the ImageAlign variant is not trained, and its row says why
    (the table keeps every variant instead of leaving it out)."""
    root = tmp_path / "lake"
    write_silver_world(root, users=120, seed=3)
    Lake(root).write_table("silver/image_embeddings", IMAGE_EMBEDDINGS.empty_table())
    cfg = encoder_cfg(root)
    seen: list[str] = []
    rows = run_ablation(str(root), cfg, (("lightgcn", True), ("tfidf", False)), seen.append)
    assert seen == ["ablation: tfidf"]
    assert [(r["encoder"], r["image_align"]) for r in rows] == [
        ("lightgcn", True),
        ("tfidf", False),
    ]
    assert rows[0]["note"].startswith("not run") and np.isnan(rows[0]["posting_acc"])
    assert rows[1]["note"] is None and rows[1]["posting_acc"] > 0


def test_the_no_metadata_row_needs_subreddit_metadata_and_reads_its_vectors(tmp_path):
    """Without subreddit metadata the row says so; with `text_no_metadata` vectors the
    encoder's inputs take them where present and `text` elsewhere."""
    import pyarrow.compute as pc

    from graph.ablation import NO_METADATA

    root = tmp_path / "lake"
    write_silver_world(root, users=120, seed=3)
    cfg = encoder_cfg(root)
    rows = run_ablation(str(root), cfg, ((NO_METADATA, True),), print)
    assert rows[0]["encoder"] == NO_METADATA and "no subreddit metadata" in rows[0]["note"]
    lake = Lake(root)
    feats = lake.read("silver/node_features")
    text = feats.filter(pc.equal(feats["feature_set"], "text")).slice(0, 2)
    other = text.set_column(
        text.schema.get_field_index("feature_set"),
        text.schema.field("feature_set"),
        pa.array(["text_no_metadata"] * 2),
    )
    dim = len(text["vector"][0].as_py())
    other = other.set_column(
        other.schema.get_field_index("vector"),
        other.schema.field("vector"),
        pa.array([[0.5] * dim] * 2, other.schema.field("vector").type),
    )
    lake.write_table("silver/node_features", pa.concat_tables([feats, other]))
    plain = read_inputs(str(root), cfg.seed).graph.sub_x.float()
    bare = read_inputs(str(root), cfg.seed, text="text_no_metadata").graph.sub_x.float()
    changed = text["node_id"].to_pylist()
    assert (bare[changed, :-1] == 0.5).all() and not (plain[changed, :-1] == 0.5).all()
    rest = [i for i in range(len(plain)) if i not in changed]
    assert (bare[rest] == plain[rest]).all()


def test_cli_ablation(world, tmp_path):
    import ray

    from jobs.cli import app

    runner = CliRunner()
    config = str(REPO / "conf/local.yaml")
    empty = runner.invoke(app, ["ablation", "-c", config, f"lake.root={tmp_path / 'none'}"])
    assert empty.exit_code == 2 and "no silver/edges" in empty.output, empty.output
    typo = runner.invoke(
        app, ["ablation", "-c", config, "--only", "tfidf,alss", f"lake.root={world['root']}"]
    )
    assert typo.exit_code == 2 and "unknown encoder(s) for --only: alss" in typo.output

    started = not ray.is_initialized()
    try:
        out = runner.invoke(
            app,
            [
                "ablation",
                *("-c", config, "--only", "tfidf,als"),
                *(f"lake.root={world['root']}", *SMALL),
            ],
        )
    finally:
        if started:
            ray.shutdown()
    assert out.exit_code == 0, (out.output, out.exception)
    assert "ablation: tfidf" in out.output and "ablation: als" in out.output
    assert "lightgcn" not in out.output and "tuned on validation: factors=" in out.output
    report = world["root"] / "reports" / "ablation"
    table = pq.read_table(report / "ablation.parquet")
    assert isinstance(table, pa.Table) and table.num_rows == 2
    row, als_row = table.to_pylist()
    assert set(row) == ROW_KEYS
    assert row["encoder"] == "tfidf" and row["image_align"] is False
    assert row["paper_posting_acc"] == pytest.approx(0.55)
    assert row["posting_acc"] > 2.5 / world["cfg"].posting_candidates
    assert als_row["encoder"] == "als" and als_row["paper_posting_acc"] is None
    assert als_row["note"].startswith("tuned on validation: factors=")
    md = (report / "ablation.md").read_text().splitlines()
    assert md[0].startswith("| encoder | ImageAlign | posting acc") and md[0].endswith(" | note |")
    assert len(md) == 4 and md[2].startswith("| tfidf | no | ")
    assert md[2].endswith(" | 55% | — |")
    assert f"{row['posting_acc']:.1%}" in md[2]
    assert md[3].startswith("| als | no | ") and md[3].endswith(f" | — | {als_row['note']} |")
    assert f"{als_row['posting_acc']:.1%}" in md[3]
