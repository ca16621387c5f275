"""Full-neighbourhood, layer-wise inference: embeddings of every user and subreddit and the
per-(user, subreddit) attention, in chunks so memory stays bounded at any graph size."""

from __future__ import annotations

import numpy as np
import torch

from graph.data import BipartiteGraph
from graph.model import Encoder


def _chunks(n: int, size: int):
    for start in range(0, n, size):
        yield np.arange(start, min(n, start + size))


@torch.no_grad()
def embed_all(
    model: Encoder,
    g: BipartiteGraph,
    chunk: int = 4096,
    attention: bool = False,
    sub_states: list | None = None,
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray | None]:
    """(user embeddings, subreddit embeddings, attention) over the whole graph. Attention
    is per user-CSR edge: the first layer's subreddit -> user weight, averaged over heads
    (None for encoders without attention). The first layer is the one that weighs a
    user's subreddits by what they are (their own text and size); a deeper layer weighs
    their aggregated neighbourhoods, which ranks a user's taste communities well on some
    worlds and at chance on others, while the first layer held on every world measured
    (README, "Attention readout"). A `sub_states` list receives the subreddit states
    each layer reads (what embedding a new user needs: `graph.cold_start`)."""
    model.eval()
    dev = next(model.parameters()).device

    def on(*tensors):
        return [t.to(dev) for t in tensors]

    def bag(c):
        return tuple(on(*g.user_bags(c)))

    sub_x = g.sub_x.to(dev)
    h_user = [
        model.user_inputs(g.user_x[c].to(dev), bag(c), sub_x).cpu()
        for c in _chunks(g.num_users, chunk)
    ]
    h_user = torch.cat(h_user) if h_user else torch.zeros(0, model.sub_in.out_features)
    h_sub = model.sub_inputs(sub_x).cpu()
    att_sum = np.zeros(g.num_edges, np.float32) if attention and model.kind != "sage" else None
    perm = torch.from_numpy(g.sub_to_user_pos.astype(np.int64))
    for i in range(len(model.to_user)):
        if sub_states is not None:
            sub_states.append(h_sub)
        new_user, new_sub = [], []
        for c in _chunks(g.num_users, chunk):
            owner, pos = g.user_csr.row_positions(c)
            src, local = np.unique(g.user_csr.indices[pos], return_inverse=True)
            ei = torch.from_numpy(np.stack([local, owner]).astype(np.int64))
            out, alpha = model.step(
                i,
                "user",
                *on(h_sub[torch.from_numpy(src.astype(np.int64))], h_user[c], ei),
                g.edge_attr[torch.from_numpy(pos)].to(dev),
                attention=att_sum is not None and i == 0,
            )
            new_user.append(out.cpu())
            if att_sum is not None and i == 0:
                att_sum[pos] = alpha.cpu().numpy()
        for c in _chunks(g.num_subs, chunk):
            owner, pos = g.sub_csr.row_positions(c)
            src, local = np.unique(g.sub_csr.indices[pos], return_inverse=True)
            ei = torch.from_numpy(np.stack([local, owner]).astype(np.int64))
            out, _ = model.step(
                i,
                "subreddit",
                *on(h_user[torch.from_numpy(src.astype(np.int64))], h_sub[c], ei),
                g.edge_attr[perm[torch.from_numpy(pos)]].to(dev),
            )
            new_sub.append(out.cpu())
        h_user = torch.cat(new_user) if new_user else h_user
        h_sub = torch.cat(new_sub)
    return h_user, h_sub, att_sum


def attention_table(g, att, edges):
    """gold/attention: every (user, subreddit) edge with its attention and its rank among
    the user's subreddits (1 = most attended), joined with the edge's activity. An
    attention-free encoder (`att` None) ranks by activity order instead."""
    import numpy as np
    import pyarrow as pa

    owner = g.user_csr.row_of_entries()
    if att is None:
        att = np.zeros(g.num_edges, np.float32)
    order = np.lexsort((-att, owner))
    rank = np.empty(g.num_edges, np.int32)
    starts = np.repeat(g.user_csr.indptr[:-1], g.user_csr.degree())
    rank[order] = (np.arange(g.num_edges) - starts + 1).astype(np.int32)
    table = pa.table(
        {"user_id": owner, "subreddit_id": g.user_csr.indices, "attention": att, "rank": rank}
    ).join(edges, ["user_id", "subreddit_id"])
    return table.sort_by([("user_id", "ascending"), ("rank", "ascending")])
