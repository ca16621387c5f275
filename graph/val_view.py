"""A bounded validation graph: the validation users' whole neighbourhoods and at most
`fanout` sampled users per subreddit, so validating an epoch costs
O((val users + subreddits x fanout) x degree), not O(edges).

Layer-wise inference on the view computes the validation users exactly as on the whole
graph (their own subreddit rows are whole); each subreddit's states aggregate its sampled
users only, as a neighbour-sampled training batch does (PyG's `NeighborLoader` applies the
same approximation to inference on large graphs). Kept users keep their whole subreddit
rows, so their inputs (`user_bags`) are exact. Built once per fit with a fixed seed: every
epoch is validated on the same view, so epochs compare.
"""

from __future__ import annotations

import numpy as np
import torch

from graph.data import BipartiteGraph
from graph.sampler import CSR, sample_rows


def validation_view(
    g: BipartiteGraph, users: np.ndarray, fanout: int, seed: int
) -> tuple[BipartiteGraph, np.ndarray]:
    """(the view, its users' ids in `g`, sorted): users are renumbered 0..K-1 in the view;
    its splits are `g`'s restricted to `users` and renumbered."""
    subs = np.arange(g.num_subs)
    sub_of, picked = sample_rows(g.sub_csr, subs, fanout, np.random.default_rng([seed, 11]))
    order = np.argsort(picked, kind="stable")  # sub-CSR order: (subreddit, user)
    sub_of, picked = sub_of[order], picked[order]
    old_user = g.sub_csr.indices[picked].astype(np.int64)
    kept = np.union1d(np.asarray(users, np.int64), old_user)
    owner, pos = g.user_csr.row_positions(kept)
    deg = np.bincount(owner, minlength=len(kept))
    indptr = np.r_[0, np.cumsum(deg)].astype(np.int64)
    user_csr = CSR(indptr, g.user_csr.indices[pos])
    # the sampled subreddit -> user entries, renumbered; sub-CSR order is (subreddit,
    # user) and renumbering keeps users' order, so the entries stay a CSR
    new_user = np.searchsorted(kept, old_user)
    old_pos = g.sub_to_user_pos[picked].astype(np.int64)
    new_pos = indptr[new_user] + old_pos - g.user_csr.indptr[old_user]
    sub_indptr = np.zeros(g.num_subs + 1, np.int64)
    np.cumsum(np.bincount(sub_of, minlength=g.num_subs), out=sub_indptr[1:])
    splits = {}
    for name, pairs in g.splits.items():
        mine = pairs[:, np.isin(pairs[0], users)]
        splits[name] = np.stack([np.searchsorted(kept, mine[0]), mine[1]])
    view = BipartiteGraph(
        num_users=len(kept),
        num_subs=g.num_subs,
        user_csr=user_csr,
        sub_csr=CSR(sub_indptr, new_user.astype(np.int32)),
        sub_to_user_pos=new_pos.astype(np.int32),
        edge_attr=g.edge_attr[torch.from_numpy(pos)],
        user_x=g.user_x[torch.from_numpy(kept)],
        sub_x=g.sub_x,
        user_role=g.user_role[kept],
        splits=splits,
    )
    return view, kept
