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

from graph.sampler import TO_SUB, TO_USER

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
        self.to_user = nn.ModuleList(_conv(conv, hidden, heads, dropout, edge_dim) for _ in range(layers))
        self.to_sub = nn.ModuleList(_conv(conv, hidden, heads, dropout, edge_dim) for _ in range(layers))
        self.dropout = dropout

    def inputs(
        self, user_x: Tensor, sub_x: Tensor, bag: tuple[Tensor, Tensor, Tensor], all_sub_x: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Layer-0 states: users from their visual profile and weighted subreddit bag."""
        idx, offsets, w = bag
        total = F.embedding_bag(
            idx, all_sub_x, offsets, mode="sum", per_sample_weights=w.to(all_sub_x.dtype)
        )
        wsum = torch.zeros(len(offsets), dtype=w.dtype).index_add_(
            0, torch.repeat_interleave(torch.arange(len(offsets)), _bag_sizes(offsets, len(idx))), w
        )
        mean = total / wsum.clamp_min(1e-6)[:, None].to(total.dtype)
        h_user = F.gelu(self.user_in(user_x.float()) + self.user_bag(mean))
        h_sub = F.gelu(self.sub_in(sub_x.float()))
        return h_user, h_sub

    def layer(
        self,
        i: int,
        h_user: Tensor,
        h_sub: Tensor,
        edge_index: dict,
        edge_attr: dict,
        attention: bool = False,
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """One layer; with `attention`, also the subreddit->user attention (mean over heads)."""
        alpha = None
        conv_u, conv_s = self.to_user[i], self.to_sub[i]
        if self.kind == "sage":
            new_user = conv_u((h_sub, h_user), edge_index[TO_USER])
            new_sub = conv_s((h_user, h_sub), edge_index[TO_SUB])
        else:
            ea_u, ea_s = edge_attr[TO_USER].float(), edge_attr[TO_SUB].float()
            if attention:
                new_user, (_, a) = conv_u(
                    (h_sub, h_user), edge_index[TO_USER], ea_u, return_attention_weights=True
                )
                alpha = a.mean(dim=1)
            else:
                new_user = conv_u((h_sub, h_user), edge_index[TO_USER], ea_u)
            new_sub = conv_s((h_user, h_sub), edge_index[TO_SUB], ea_s)
        last = i == len(self.to_user) - 1
        if not last:
            new_user = F.dropout(F.gelu(new_user), self.dropout, self.training)
            new_sub = F.dropout(F.gelu(new_sub), self.dropout, self.training)
        return new_user, new_sub, alpha

    def forward(
        self,
        user_x: Tensor,
        sub_x: Tensor,
        bag: tuple[Tensor, Tensor, Tensor],
        all_sub_x: Tensor,
        edge_index: dict,
        edge_attr: dict,
    ) -> tuple[Tensor, Tensor]:
        h_user, h_sub = self.inputs(user_x, sub_x, bag, all_sub_x)
        for i in range(len(self.to_user)):
            h_user, h_sub, _ = self.layer(i, h_user, h_sub, edge_index, edge_attr)
        return h_user, h_sub


def _bag_sizes(offsets: Tensor, total: int) -> Tensor:
    return torch.diff(offsets, append=torch.tensor([total], dtype=offsets.dtype))


class ImageHead(nn.Module):
    """ImageAlign's projection of a user embedding into the image-embedding space."""

    def __init__(self, hidden: int, image_dim: int):
        super().__init__()
        self.proj = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, image_dim))

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


def image_align_loss(user_proj: Tensor, images: Tensor, temperature: float) -> Tensor:
    """Symmetric InfoNCE between projected users and one of their images each (in-batch
    negatives); both inputs L2-normalised."""
    logits = user_proj @ F.normalize(images, dim=-1).T / temperature
    target = torch.arange(len(logits))
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
