"""Training throughput of the encoder on a synthetic bipartite graph, and a projection of
memory and epoch time to the paper's scale (23M users, 40K subreddits, 300M edges).

Measures seed edges/s of one CPU worker through the production step
(`graph.train.train_epoch`: sampler + PyG loader + GATv2 + link loss + ImageAlign), and, as
the peer in the same run, the same loop with the sampler's work only (the loader
iterated, no model), so the printed ratio says how much of an epoch is sampling.

    .venv/bin/python perf/train_epoch.py [--users 200000 --edges 3000000 --batches 40]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch_geometric.sampler import NegativeSampling

sys.path.insert(
    0, str(Path(__file__).resolve().parents[1])
)  # the repo's `graph`, not perf/graph.py
from graph.config import EncoderConfig  # noqa: E402
from graph.data import from_arrays  # noqa: E402
from graph.loader import BipartiteLinkLoader  # noqa: E402
from graph.sampler import TO_SUB, BipartiteSampler  # noqa: E402
from graph.train import Objective, TrainInputs, build_encoder, train_epoch  # noqa: E402

PAPER = {"users": 23_000_000, "subs": 40_000, "edges": 300_000_000}


def synthetic(users: int, subs: int, edges: int, visual_dim: int, text_dim: int, seed: int = 0):
    """A power-law bipartite graph with node features and image embeddings."""
    rng = np.random.default_rng(seed)
    pop = 1.0 / np.arange(1, subs + 1) ** 0.9
    s = rng.choice(subs, edges, p=pop / pop.sum())
    u = rng.integers(0, users, edges)
    key = np.unique(u.astype(np.int64) * subs + s)
    u, s = key // subs, key % subs
    attr = rng.random((len(u), 3), np.float32)
    user_x = rng.standard_normal((users, visual_dim + 2), np.float32)
    sub_x = rng.standard_normal((subs, text_dim + 1), np.float32)
    g = from_arrays(u, s, attr, users, subs, user_x, sub_x)
    img_users = np.sort(rng.integers(0, users, users // 2))
    images = rng.standard_normal((len(img_users), visual_dim), np.float32)
    return TrainInputs(g, img_users, images)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=200_000)
    ap.add_argument("--subs", type=int, default=40_000)
    ap.add_argument("--edges", type=int, default=3_000_000)
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--visual-dim", type=int, default=32)
    ap.add_argument("--text-dim", type=int, default=384)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = EncoderConfig()
    t0 = time.perf_counter()
    inputs = synthetic(args.users, args.subs, args.edges, args.visual_dim, args.text_dim)
    g = inputs.graph
    print(f"graph: {g.num_users:,} users, {g.num_edges:,} edges in {time.perf_counter() - t0:.1f}s")
    positions = np.arange(g.num_edges)
    owner = g.user_csr.row_of_entries()

    def loader():
        sampler = BipartiteSampler(g.user_csr, g.sub_csr, g.sub_to_user_pos, cfg.fanouts)
        return BipartiteLinkLoader(
            g.hetero_data(),
            sampler,
            edge_label_index=(
                TO_SUB,
                torch.from_numpy(np.stack([owner, g.user_csr.indices]).astype(np.int64)),
            ),
            neg_sampling=NegativeSampling("triplet", amount=cfg.negatives),
            batch_size=cfg.batch_size,
            shuffle=True,
        )

    model = Objective(build_encoder(cfg, g), args.visual_dim)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    rng = np.random.default_rng(0)
    cpu = torch.device("cpu")
    train_epoch(model, opt, loader(), positions, inputs, cfg, rng, cpu, max_batches=2)  # warm-up
    t0 = time.perf_counter()
    out = train_epoch(model, opt, loader(), positions, inputs, cfg, rng, cpu, args.batches)
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    it = iter(loader())
    for _ in range(args.batches):
        next(it)
    sample_s = time.perf_counter() - t0
    seeds = out["batches"] * cfg.batch_size
    rate = seeds / train_s
    print(f"training: {rate:,.0f} seed edges/s on one CPU worker ({args.threads} threads)")
    print(f"peer (sampling + PyG filtering only): {seeds / sample_s:,.0f} seed edges/s")
    print(f"ratio training / sampling-only: {sample_s / train_s:.2f}x (share of time sampling)")
    per_edge = g.resident_bytes() / g.num_edges
    fixed = g.user_x.element_size() * g.user_x.shape[1] + 8  # user row + indptr
    proj_bytes = PAPER["edges"] * 18 + PAPER["users"] * fixed + PAPER["subs"] * 385 * 4
    print(f"graph memory here: {per_edge:.1f} bytes/edge")
    train_edges = PAPER["edges"] * 0.8
    for workers in (1, 8, 64):
        hours = train_edges / (rate * workers) / 3600
        print(
            f"projection, {workers} CPU worker(s): epoch over {train_edges / 1e6:.0f}M train "
            f"edges ≈ {hours:.1f} h"
        )
    print(
        f"projection, memory at 23M users / 300M edges: {proj_bytes / 2**30:.1f} GiB per "
        f"worker ({proj_bytes / PAPER['edges']:.1f} bytes/edge)"
    )


if __name__ == "__main__":
    main()
