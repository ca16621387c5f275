"""Training throughput of the encoder on a synthetic bipartite graph, and a projection of
memory and epoch time to the paper's scale (23M users, 40K subreddits, 300M edges).

Measures seed edges/s of one CPU worker through the production step
(`graph.train.train_epoch`: sampler + PyG loader + GATv2 + link loss + ImageAlign), and, as
the peer in the same run, the same loop with the sampler's work only (the loader
iterated, no model), so the printed ratio says how much of an epoch is sampling.

**Against a bare PyG loop** (issue 26): the same batches (sampled once, copied for each
side) go through the project's step and through a plain PyTorch + PyG loop written here
with no project code: the same encoder (input projections, a weighted mean of each user's
subreddit inputs by `embedding_bag`, GATv2 both ways with edge features, the last layer
on the seeds only), the same sampled-softmax link loss over in-batch and triplet
negatives, AdamW. Both without images (so no ImageAlign on either side). What the
project's step does beyond it is its leak-free bookkeeping: the batch's supervision edges
out of message passing, the bag and the degree; visual dropout; collisions masked and the
logQ correction. Steps/s of each at 1 and 2 torch threads (one CPU worker with
`cpus_per_worker` 1 or 2); bar: project >= 0.9x the peer.

    .venv/bin/python perf/train_epoch.py [--users 200000 --edges 3000000 --batches 40] \
        [--peer-batches 30 --peer-threads 1,2]
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import GATv2Conv
from torch_geometric.sampler import NegativeSampling

sys.path.insert(
    0, str(Path(__file__).resolve().parents[1])
)  # the repo's `graph`, not perf/graph.py
from graph.config import EncoderConfig  # noqa: E402
from graph.data import from_arrays  # noqa: E402
from graph.loader import BipartiteLinkLoader  # noqa: E402
from graph.sampler import SUB, TO_SUB, TO_USER, USER, BipartiteSampler  # noqa: E402
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


class PlainEncoder(nn.Module):
    """The encoder written with torch and PyG alone (the peer's model)."""

    def __init__(self, user_dim: int, sub_dim: int, hidden: int, heads: int, layers: int):
        super().__init__()
        self.sub_in = nn.Linear(sub_dim, hidden)
        self.user_in = nn.Linear(user_dim, hidden)
        self.user_bag = nn.Linear(sub_dim, hidden, bias=False)

        def conv():
            return GATv2Conv(
                (hidden, hidden),
                hidden // heads,
                heads=heads,
                edge_dim=3,
                add_self_loops=False,
                dropout=0.1,
                residual=True,
            )

        self.to_user = nn.ModuleList(conv() for _ in range(layers))
        self.to_sub = nn.ModuleList(conv() for _ in range(layers))

    def forward(self, batch, bag, all_sub_x):
        idx, offsets, w = bag
        total = F.embedding_bag(idx, all_sub_x, offsets, mode="sum", per_sample_weights=w)
        sizes = torch.diff(offsets, append=torch.tensor([len(idx)]))
        wsum = torch.zeros(len(offsets)).index_add_(
            0, torch.repeat_interleave(torch.arange(len(offsets)), sizes), w
        )
        mean = total.float() / wsum.clamp_min(1e-6)[:, None]
        h_u = F.gelu(self.user_in(batch[USER].x.float()) + self.user_bag(mean))
        h_s = F.gelu(self.sub_in(batch[SUB].x.float()))
        ei, ea = batch.edge_index_dict, {k: v.float() for k, v in batch.edge_attr_dict.items()}
        last = len(self.to_user) - 1
        for i in range(len(self.to_user)):
            if i == last:  # the seeds' outputs only: first-hop edges into the seed nodes
                n_u, n_s = batch[USER].num_sampled_nodes[0], batch[SUB].num_sampled_nodes[0]
                k_u = batch[TO_USER].num_sampled_edges[0]
                k_s = batch[TO_SUB].num_sampled_edges[0]
                u = self.to_user[i]((h_s, h_u[:n_u]), ei[TO_USER][:, :k_u], ea[TO_USER][:k_u])
                s = self.to_sub[i]((h_u, h_s[:n_s]), ei[TO_SUB][:, :k_s], ea[TO_SUB][:k_s])
                return u, s
            u = self.to_user[i]((h_s, h_u), ei[TO_USER], ea[TO_USER])
            s = self.to_sub[i]((h_u, h_s), ei[TO_SUB], ea[TO_SUB])
            h_u, h_s = F.dropout(F.gelu(u), 0.1, True), F.dropout(F.gelu(s), 0.1, True)


def plain_loop(model, opt, batches, indptr, indices, weights, all_sub_x) -> None:
    """The peer: a bare PyTorch + PyG training loop over already-sampled batches."""
    model.train()
    for batch in batches:
        users = batch[USER].n_id
        starts, ends = indptr[users], indptr[users + 1]
        sizes = ends - starts
        pos = torch.repeat_interleave(starts - torch.cumsum(sizes, 0) + sizes, sizes)
        pos = pos + torch.arange(int(sizes.sum()))
        bag = (indices[pos], torch.cumsum(sizes, 0) - sizes, weights[pos])
        h_u, h_s = model(batch, bag, all_sub_x)
        anchor = h_u[batch[USER].src_index]
        positive = h_s[batch[SUB].dst_pos_index]
        negative = h_s[batch[SUB].dst_neg_index]
        logits = torch.cat([anchor @ positive.T, torch.einsum("bd,bkd->bk", anchor, negative)], 1)
        loss = F.cross_entropy(logits, torch.arange(len(logits)))
        opt.zero_grad()
        loss.backward()
        opt.step()


def against_bare_pyg(cfg: EncoderConfig, inputs: TrainInputs, n: int, threads: list[int]):
    """Steps/s of the project's step and of the plain loop on the same `n` batches."""
    g = inputs.graph
    bare = TrainInputs(g, inputs.image_users[:0], inputs.images[:0])  # no ImageAlign
    owner = g.user_csr.row_of_entries()
    label = torch.from_numpy(np.stack([owner, g.user_csr.indices]).astype(np.int64))
    sampler = BipartiteSampler(g.user_csr, g.sub_csr, g.sub_to_user_pos, cfg.fanouts, 0)
    loader = BipartiteLinkLoader(
        g.hetero_data(),
        sampler,
        edge_label_index=(TO_SUB, label),
        neg_sampling=NegativeSampling("triplet", amount=cfg.negatives),
        batch_size=cfg.batch_size,
        shuffle=True,
    )
    it = iter(loader)
    batches = [next(it) for _ in range(n + 2)]  # two to warm up
    indptr = torch.from_numpy(g.user_csr.indptr.astype(np.int64))
    indices = torch.from_numpy(g.user_csr.indices.astype(np.int64))
    weights = g.edge_attr[:, :2].float().sum(1) + 1.0
    all_sub_x = g.sub_x.float()
    positions = np.arange(g.num_edges)
    out = {}
    for t in threads:
        torch.set_num_threads(t)
        torch.manual_seed(0)
        mine = Objective(build_encoder(cfg, g), 1)
        theirs = PlainEncoder(g.user_x.shape[1], g.sub_x.shape[1], cfg.hidden, cfg.heads, 2)
        opt_m = torch.optim.AdamW(mine.parameters(), lr=cfg.lr)
        opt_t = torch.optim.AdamW(theirs.parameters(), lr=cfg.lr)
        rng = np.random.default_rng(0)
        cpu = torch.device("cpu")
        seconds = {"project": 0.0, "bare PyG": 0.0}
        warm, timed = batches[:2], batches[2:]
        train_epoch(mine, opt_m, copy.deepcopy(warm), positions, bare, cfg, rng, cpu)
        plain_loop(theirs, opt_t, copy.deepcopy(warm), indptr, indices, weights, all_sub_x)
        for first, half in enumerate((timed[: n // 2], timed[n // 2 :])):
            for side in ("project", "bare PyG") if first == 0 else ("bare PyG", "project"):
                work = copy.deepcopy(half)  # each side gets the batches untouched
                t0 = time.perf_counter()
                if side == "project":
                    train_epoch(mine, opt_m, work, positions, bare, cfg, rng, cpu)
                else:
                    plain_loop(theirs, opt_t, work, indptr, indices, weights, all_sub_x)
                seconds[side] += time.perf_counter() - t0
        rates = {k: n / v for k, v in seconds.items()}
        ratio = rates["project"] / rates["bare PyG"]
        print(
            f"{t} thread(s): project {rates['project']:.2f} steps/s, bare PyG loop "
            f"{rates['bare PyG']:.2f} steps/s on the same {n} batches: ratio {ratio:.2f} "
            f"({'meets' if ratio >= 0.9 else 'BELOW'} 0.9)"
        )
        out[t] = rates | {"ratio": ratio}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=200_000)
    ap.add_argument("--subs", type=int, default=40_000)
    ap.add_argument("--edges", type=int, default=3_000_000)
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--visual-dim", type=int, default=32)
    ap.add_argument("--text-dim", type=int, default=384)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--peer-batches", type=int, default=30, help="0: skip the bare PyG peer")
    ap.add_argument("--peer-threads", default="1,2")
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
    if args.peer_batches:
        threads = [int(t) for t in args.peer_threads.split(",")]
        against_bare_pyg(cfg, inputs, args.peer_batches, threads)
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
