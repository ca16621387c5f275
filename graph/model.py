"""The encoder: a 2-layer edge-aware GATv2 over the bipartite user–subreddit graph (GAT
and GraphSAGE variants for the ablation), plus the two objectives' heads.

A user's input is computed from what they did, never from an id: the weighted mean of
their subreddits' input features (an `embedding_bag`) plus their visual profile, so a
brand-new user is embedded from their subreddit list alone.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import GATConv, GATv2Conv, SAGEConv

from graph.sampler import SUB, TO_SUB, TO_USER, USER

ConvKind = Literal["gatv2", "gat", "sage"]


def _conv(kind: ConvKind, hidden: int, heads: int, dropout: float, edge_dim: int) -> nn.Module:
    if kind == "sage":
        return SAGEConv((hidden, hidden), hidden)
    cls = GATv2Conv if kind == "gatv2" else GATConv
    return cls(
        (hidden, hidden),
        hidden // heads,
        heads=heads,
        edge_dim=edge_dim,
        add_self_loops=False,  # no self loops across node types
        dropout=dropout,
        residual=True,
    )


class Encoder(nn.Module):
    """Bipartite message passing: every layer updates users from subreddits and
    subreddits from users, with attention over edge features (log counts, score)."""

    def __init__(
        self,
        user_dim: int,
        sub_dim: int,
        hidden: int = 64,
        heads: int = 4,
        layers: int = 2,
        dropout: float = 0.1,
        conv: ConvKind = "gatv2",
        edge_dim: int = 3,
    ):
        super().__init__()
        self.kind = conv
        self.sub_in = nn.Linear(sub_dim, hidden)
        self.user_in = nn.Linear(user_dim, hidden)
        self.user_bag = nn.Linear(sub_dim, hidden, bias=False)
        self.to_user = nn.ModuleList(
            _conv(conv, hidden, heads, dropout, edge_dim) for _ in range(layers)
        )
        self.to_sub = nn.ModuleList(
            _conv(conv, hidden, heads, dropout, edge_dim) for _ in range(layers)
        )
        self.dropout = dropout

    def user_inputs(
        self, user_x: Tensor, bag: tuple[Tensor, Tensor, Tensor], all_sub_x: Tensor
    ) -> Tensor:
        """Layer-0 user states: visual profile + weighted mean of their subreddits' inputs
        (mean(W x) = W mean(x), so the bag is taken over the raw subreddit features)."""
        idx, offsets, w = bag
        w = w.float()
        total = F.embedding_bag(  # float16 features are summed in float16 (error ~1e-3)
            idx, all_sub_x, offsets, mode="sum", per_sample_weights=w.to(all_sub_x.dtype)
        ).float()
        dev = offsets.device
        owner = torch.repeat_interleave(
            torch.arange(len(offsets), device=dev), _bag_sizes(offsets, len(idx))
        )
        wsum = torch.zeros(len(offsets), dtype=w.dtype, device=dev).index_add_(0, owner, w)
        mean = total / wsum.clamp_min(1e-6)[:, None]
        return F.gelu(self.user_in(user_x.float()) + self.user_bag(mean))

    def sub_inputs(self, sub_x: Tensor) -> Tensor:
        """Layer-0 subreddit states from their text vector and size."""
        return F.gelu(self.sub_in(sub_x.float()))

    def step(
        self,
        i: int,
        to: str,
        x_src: Tensor,
        x_dst: Tensor,
        edge_index: Tensor,
        edge_attr: Tensor,
        attention: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """Layer `i` in one direction (`to` = "user" or "subreddit"); with `attention`,
        also the per-edge attention (mean over heads)."""
        conv = (self.to_user if to == "user" else self.to_sub)[i]
        alpha = None
        if self.kind == "sage":
            out = conv((x_src, x_dst), edge_index)
        elif attention:
            out, (_, a) = conv(
                (x_src, x_dst), edge_index, edge_attr.float(), return_attention_weights=True
            )
            alpha = a.mean(dim=1)
        else:
            out = conv((x_src, x_dst), edge_index, edge_attr.float())
        if i < len(self.to_user) - 1:
            out = F.dropout(F.gelu(out), self.dropout, self.training)
        return out, alpha

    def forward(
        self,
        user_x: Tensor,
        sub_x: Tensor,
        bag: tuple[Tensor, Tensor, Tensor],
        all_sub_x: Tensor,
        edge_index: dict,
        edge_attr: dict,
        seeds: dict | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Embeddings of a sampled subgraph's users and subreddits. With `seeds` (seed
        node counts per type and first-hop edge counts per edge type, hop-ordered as the
        sampler emits them), the last layer runs on the seeds only (PyG's trimming)."""
        h_user, h_sub = self.user_inputs(user_x, bag, all_sub_x), self.sub_inputs(sub_x)
        last = len(self.to_user) - 1
        for i in range(len(self.to_user)):
            if i == last and seeds is not None:  # only the seeds' outputs are needed:
                edge_index, edge_attr = _first_hop(edge_index, edge_attr, seeds)
                h_user_dst, h_sub_dst = h_user[: seeds[USER]], h_sub[: seeds[SUB]]
                new_user, _ = self.step(
                    i, "user", h_sub, h_user_dst, edge_index[TO_USER], edge_attr[TO_USER]
                )
                new_sub, _ = self.step(
                    i, "subreddit", h_user, h_sub_dst, edge_index[TO_SUB], edge_attr[TO_SUB]
                )
                return new_user, new_sub
            new_user, _ = self.step(
                i, "user", h_sub, h_user, edge_index[TO_USER], edge_attr[TO_USER]
            )
            new_sub, _ = self.step(
                i, "subreddit", h_user, h_sub, edge_index[TO_SUB], edge_attr[TO_SUB]
            )
            h_user, h_sub = new_user, new_sub
        return h_user, h_sub


def _first_hop(edge_index: dict, edge_attr: dict, seeds: dict) -> tuple[dict, dict]:
    """The edges into seed nodes: the first `seeds[edge_type]` of each type."""
    return (
        {et: ei[:, : seeds[et]] for et, ei in edge_index.items()},
        {et: ea[: seeds[et]] for et, ea in edge_attr.items()},
    )


def _bag_sizes(offsets: Tensor, total: int) -> Tensor:
    return torch.diff(
        offsets, append=torch.tensor([total], dtype=offsets.dtype, device=offsets.device)
    )


class ImageHead(nn.Module):
    """ImageAlign's projection of a user embedding into the image-embedding space."""

    def __init__(self, hidden: int, image_dim: int):
        super().__init__()
        self.proj = nn.Sequential(
            nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, image_dim)
        )

    def forward(self, h_user: Tensor) -> Tensor:
        return F.normalize(self.proj(h_user), dim=-1)


def link_loss(h_user: Tensor, h_pos: Tensor, h_neg: Tensor) -> Tensor:
    """Binary cross-entropy of dot scores: positives vs sampled negatives ([B, K, d])."""
    pos = (h_user * h_pos).sum(-1)
    neg = torch.einsum("bd,bkd->bk", h_user, h_neg)
    return F.binary_cross_entropy_with_logits(
        torch.cat([pos, neg.flatten()]),
        torch.cat([torch.ones_like(pos), torch.zeros_like(neg.flatten())]),
    )


def softmax_link_loss(
    h_user: Tensor,
    h_pos: Tensor,
    h_neg: Tensor,
    collide: Tensor,
    neg_collide: Tensor,
    log_q_pos: Tensor,
    log_q_neg: float,
) -> Tensor:
    """Sampled softmax of each user's positive against the batch's other positives
    (in-batch negatives, popularity-sampled) and its `K` uniform negatives ([B, K, d]),
    with the logQ correction (Yi et al. 2019) so the dot score stays unbiased by
    popularity: a logit minus the log of its expected count under its proposal
    (`log_q_pos` per in-batch column, `log_q_neg` for the uniform ones). `collide` [B, B]
    and `neg_collide` [B, K] mask negatives that are known positives of the row's user."""
    in_batch = h_user @ h_pos.T - log_q_pos[None, :]
    in_batch = in_batch.masked_fill(collide, float("-inf"))
    uniform = torch.einsum("bd,bkd->bk", h_user, h_neg) - log_q_neg
    uniform = uniform.masked_fill(neg_collide, float("-inf"))
    logits = torch.cat([in_batch, uniform], 1)
    return F.cross_entropy(logits, torch.arange(len(logits), device=logits.device))


def image_align_loss(user_proj: Tensor, images: Tensor, temperature: float) -> Tensor:
    """Symmetric InfoNCE between projected users and one of their images each (in-batch
    negatives); both inputs L2-normalised."""
    logits = user_proj @ F.normalize(images, dim=-1).T / temperature
    target = torch.arange(len(logits), device=logits.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
