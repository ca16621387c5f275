"""The encoder ablation's baselines (TF-IDF/LSA and LightGCN) on a small planted world:
right shapes, finite, well above chance on the shared metrics; `run_ablation` rows and the
`zipp ablation` command. The GNN variants train through Ray Train and are left to
test_train.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from typer.testing import CliRunner

from graph.ablation import PAPER, VARIANTS, lightgcn_embeddings, run_ablation, tfidf_embeddings
from graph.train import link_metrics, read_inputs
from jobs.config import load_config
from schemas.lake import Lake
from schemas.silver import IMAGE_EMBEDDINGS
from tests.graph.world import write_silver_world

REPO = Path(__file__).resolve().parents[2]
SMALL = ["ray.num_cpus=2", "encoder.hidden=16", "encoder.epochs=3"]
ROW_KEYS = {
    "encoder",
    "image_align",
    "posting_acc",
    "auc",
    "recall_at_k",
    "unseen_posting_acc",
    "paper_posting_acc",
    "note",
}


def encoder_cfg(root: Path) -> dict:
    return load_config(REPO / "conf/local.yaml", [f"lake.root={root}", *SMALL]).encoder.model_dump()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("ablation") / "lake"
    truth = write_silver_world(root)
    cfg = encoder_cfg(root)
    return {
        "root": root,
        "truth": truth,
        "cfg": cfg,
        "inputs": read_inputs(str(root), cfg["seed"], message="observed"),
    }


def check_embeddings(h_user, h_sub, inputs, cfg, max_dim: int) -> None:
    g = inputs.graph
    assert h_user.dtype == h_sub.dtype == torch.float32
    assert h_user.shape[0] == g.num_users and h_sub.shape[0] == g.num_subs
    assert 2 <= h_user.shape[1] == h_sub.shape[1] <= max_dim
    assert torch.isfinite(h_user).all() and torch.isfinite(h_sub).all()
    chance = 1 / cfg["posting_candidates"]
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
    h_user, h_sub = tfidf_embeddings(inputs, cfg["hidden"])
    check_embeddings(h_user, h_sub, inputs, cfg, cfg["hidden"])
    # deterministic, and unseen users are folded in: non-zero from their observed edges
    again_user, again_sub = tfidf_embeddings(inputs, cfg["hidden"])
    assert torch.equal(h_user, again_user) and torch.equal(h_sub, again_sub)
    unseen = np.unique(inputs.graph.splits["inductive_observed"][0])
    assert (h_user[torch.from_numpy(unseen)].norm(dim=1) > 1e-6).all()


def test_tfidf_separates_planted_communities(world):
    """Subreddits of one planted community sit closer together than across communities."""
    h_user, h_sub = tfidf_embeddings(world["inputs"], world["cfg"]["hidden"])
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
    check_embeddings(h_user, h_sub, inputs, cfg, cfg["hidden"])
    assert h_user.shape[1] == cfg["hidden"]
    # seeded: the same run gives the same vectors
    again_user, _ = lightgcn_embeddings(inputs, cfg, image_align=False)
    assert torch.allclose(h_user, again_user)

    ia_user, ia_sub = lightgcn_embeddings(inputs, cfg, image_align=True)
    check_embeddings(ia_user, ia_sub, inputs, cfg, cfg["hidden"])
    assert not torch.allclose(ia_user, h_user, atol=1e-4)  # ImageAlign changed the training


def test_run_ablation_rows(world):
    root, cfg = world["root"], world["cfg"]
    stale = root / "models" / "ablation" / "stale.txt"
    stale.parent.mkdir(parents=True)
    stale.write_text("from an earlier run")
    seen: list[str] = []
    rows = run_ablation(str(root), cfg, (("tfidf", False), ("lightgcn", False)), seen.append)
    assert seen == ["ablation: tfidf", "ablation: lightgcn"]
    assert not stale.exists()
    assert [(r["encoder"], r["image_align"]) for r in rows] == [
        ("tfidf", False),
        ("lightgcn", False),
    ]
    assert [r["paper_posting_acc"] for r in rows] == [0.55, 0.59]
    chance = 1 / cfg["posting_candidates"]
    for r in rows:
        assert set(r) == ROW_KEYS
        assert r["posting_acc"] > 2.5 * chance and r["unseen_posting_acc"] > 2.5 * chance, r
        assert 0.8 < r["auc"] <= 1.0 and 0.0 <= r["recall_at_k"] <= 1.0, r
    # the TF-IDF row is the metrics of tfidf_embeddings on the same splits
    h_user, h_sub = tfidf_embeddings(world["inputs"], cfg["hidden"])
    test = link_metrics(h_user, h_sub, world["inputs"], cfg, "test")
    unseen = link_metrics(h_user, h_sub, world["inputs"], cfg, "inductive")
    assert rows[0]["posting_acc"] == pytest.approx(test["posting_acc"])
    assert rows[0]["auc"] == pytest.approx(test["auc"])
    assert rows[0]["recall_at_k"] == pytest.approx(test["recall_at_k"])
    assert rows[0]["unseen_posting_acc"] == pytest.approx(unseen["posting_acc"])


def test_variants_and_paper_figures():
    assert len(VARIANTS) == len(set(VARIANTS)) == 9
    assert {conv for conv, _ in VARIANTS} == {"tfidf", "lightgcn", "sage", "gat", "gatv2"}
    assert ("tfidf", True) not in VARIANTS  # TF-IDF has nothing for ImageAlign to train
    assert set(PAPER) <= set(VARIANTS)
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


def test_cli_ablation(world, tmp_path):
    import ray

    from jobs.cli import app

    runner = CliRunner()
    config = str(REPO / "conf/local.yaml")
    empty = runner.invoke(app, ["ablation", "-c", config, f"lake.root={tmp_path / 'none'}"])
    assert empty.exit_code == 2 and "no silver/edges" in empty.output, empty.output

    started = not ray.is_initialized()
    try:
        out = runner.invoke(
            app,
            ["ablation", "-c", config, "--only", "tfidf", f"lake.root={world['root']}", *SMALL],
        )
    finally:
        if started:
            ray.shutdown()
    assert out.exit_code == 0, (out.output, out.exception)
    assert "ablation: tfidf" in out.output and "lightgcn" not in out.output
    report = world["root"] / "reports" / "ablation"
    table = pq.read_table(report / "ablation.parquet")
    assert isinstance(table, pa.Table) and table.num_rows == 1
    row = table.to_pylist()[0]
    assert set(row) == ROW_KEYS
    assert row["encoder"] == "tfidf" and row["image_align"] is False
    assert row["paper_posting_acc"] == pytest.approx(0.55)
    assert row["posting_acc"] > 2.5 / world["cfg"]["posting_candidates"]
    md = (report / "ablation.md").read_text().splitlines()
    assert md[0].startswith("| encoder | ImageAlign | posting acc")
    assert len(md) == 3 and md[2].startswith("| tfidf | no | ")
    assert md[2].endswith(" | 55% |")
    assert f"{row['posting_acc']:.1%}" in md[2]
