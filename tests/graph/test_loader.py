"""Sampler choice and the batch contract shared by both samplers."""

from __future__ import annotations

import numpy as np
import torch

from graph.data import from_arrays
from graph.loader import BipartiteLinkLoader, link_loader, use_pyg_sampler
from graph.model import Encoder
from graph.sampler import SUB, TO_SUB, TO_USER, USER, pyg_lib_available
from graph.train import _drop_supervision_edges, seed_counts


def _graph(seed: int = 0):
    rng = np.random.default_rng(seed)
    users, subs = 200, 25
    key = np.unique(rng.integers(0, users, 2000) * subs + rng.integers(0, subs, 2000))
    u, s = key // subs, key % subs
    g = from_arrays(
        u, s, rng.random((len(u), 3)), users, subs, rng.random((users, 5)), rng.random((subs, 8))
    )
    return g, key, subs


def test_sampler_choice():
    assert use_pyg_sampler("pyg") and not use_pyg_sampler("own")
    assert use_pyg_sampler("auto") == pyg_lib_available()
    g, _, _ = _graph()
    assert isinstance(link_loader(g, np.arange(10), [3, 2], 2, 4, 0, "own"), BipartiteLinkLoader)
    if not pyg_lib_available():
        assert isinstance(link_loader(g, np.arange(10), [3, 2], 2, 4, 0), BipartiteLinkLoader)


def test_dropping_supervision_edges_keeps_hop_counts_and_trimming_exact():
    g, key, subs = _graph()
    positions = np.arange(g.num_edges)
    batch = next(iter(link_loader(g, positions, [4, 3], 2, 16, 0, "own")))
    supervision = torch.from_numpy(positions)[batch[TO_SUB].input_id]
    _drop_supervision_edges(batch, supervision)
    for et in (TO_USER, TO_SUB):
        assert not torch.isin(batch[et].e_id, supervision).any()
        assert sum(batch[et].num_sampled_edges) == batch[et].edge_index.shape[1]
        users, sub_ids = (
            (batch[USER].n_id[batch[et].edge_index[1]], batch[SUB].n_id[batch[et].edge_index[0]])
            if et == TO_USER
            else (
                batch[USER].n_id[batch[et].edge_index[0]],
                batch[SUB].n_id[batch[et].edge_index[1]],
            )
        )
        assert np.isin((users * subs + sub_ids).numpy(), key).all()
    counts = seed_counts(batch)
    assert counts[USER] == len(batch[USER].src_index.unique())
    model = Encoder(5, 8, hidden=16, heads=2).eval()
    bag = g.user_bags(batch[USER].n_id.numpy(), exclude=supervision.numpy())
    args = (batch[USER].x, batch[SUB].x, bag, g.sub_x, batch.edge_index_dict, batch.edge_attr_dict)
    full_u, full_s = model(*args)
    trim_u, trim_s = model(*args, counts)
    assert trim_u.shape[0] == counts[USER] < full_u.shape[0]
    torch.testing.assert_close(trim_u, full_u[: counts[USER]], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(trim_s, full_s[: counts[SUB]], atol=1e-5, rtol=1e-4)
    del batch[TO_USER].num_sampled_edges  # a sampler without per-hop counts: no trimming
    assert seed_counts(batch) is None
