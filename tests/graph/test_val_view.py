"""The bounded validation view (`encoder.val_fanout`): exact where nothing is sampled
away, bounded where it is, its users' inputs whole and its splits renumbered."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from graph.data import from_arrays
from graph.infer import embed_all
from graph.train import build_encoder
from graph.val_view import validation_view
from jobs.config import load_config

REPO = Path(__file__).resolve().parents[2]
USERS, SUBS = 400, 24


def random_graph(seed: int = 0):
    """A random bipartite graph; half its edges train, the rest validate."""
    rng = np.random.default_rng(seed)
    keys = np.unique(rng.integers(0, USERS, 4000) * SUBS + rng.integers(0, SUBS, 4000))
    u, s = keys // SUBS, keys % SUBS
    val = rng.random(len(u)) < 0.2
    return from_arrays(
        u[~val],
        s[~val],
        rng.random((int((~val).sum()), 3)),
        USERS,
        SUBS,
        rng.random((USERS, 5)),
        rng.random((SUBS, 7)),
        splits={"train": np.stack([u[~val], s[~val]]), "val": np.stack([u[val], s[val]])},
    )


def encoder(g):
    cfg = load_config(REPO / "conf/local.yaml", ["encoder.hidden=16", "encoder.heads=2"])
    torch.manual_seed(0)
    return build_encoder(cfg.encoder, g)


def val_users(g, n: int = 30) -> np.ndarray:
    return np.unique(g.splits["val"][0])[:n]


def test_without_sampling_the_view_embeds_exactly_as_the_whole_graph():
    g = random_graph()
    users = val_users(g)
    view, kept = validation_view(g, users, fanout=10**6, seed=0)
    model = encoder(g)
    h_user, h_sub, _ = embed_all(model, g, chunk=64)
    v_user, v_sub, _ = embed_all(model, view, chunk=64)
    assert torch.allclose(v_sub, h_sub, atol=1e-5)
    assert torch.allclose(v_user, h_user[kept], atol=1e-5)


def test_a_small_fanout_bounds_the_view_and_keeps_users_whole():
    g = random_graph()
    users = val_users(g)
    view, kept = validation_view(g, users, fanout=3, seed=0)
    assert view.sub_csr.degree().max() <= 3
    assert view.num_edges < g.num_edges / 2
    assert set(users) <= set(kept)
    # every kept user's subreddit row (their input bag) is whole
    assert np.array_equal(view.user_csr.degree(), g.user_csr.degree(kept))
    for a, b in zip(view.user_bags(np.arange(len(kept))), g.user_bags(kept), strict=True):
        assert torch.equal(a, b)
    # the validation users' own embeddings see their whole rows: a subreddit's sampled
    # users differ, so only their first layer's inputs match; the view still runs
    model = encoder(g)
    v_user, v_sub, _ = embed_all(model, view, chunk=64)
    assert v_user.shape[0] == len(kept) and v_sub.shape[0] == SUBS
    # the same seed, the same view: every epoch validates on it
    again, _ = validation_view(g, users, fanout=3, seed=0)
    assert np.array_equal(again.sub_csr.indices, view.sub_csr.indices)


def test_the_view_splits_are_its_users_renumbered():
    g = random_graph()
    users = val_users(g, 10)
    view, kept = validation_view(g, users, fanout=3, seed=0)
    for name, pairs in g.splits.items():
        mine = pairs[:, np.isin(pairs[0], users)]
        got = view.splits[name]
        assert np.array_equal(kept[got[0]], mine[0]) and np.array_equal(got[1], mine[1])
    assert set(kept[view.splits["val"][0]]) == set(users)
    # a kept user's view edges point at the same subreddits with the same features
    owner, pos = g.user_csr.row_positions(kept)
    assert np.array_equal(view.user_csr.indices, g.user_csr.indices[pos])
    assert torch.equal(view.edge_attr, g.edge_attr[torch.from_numpy(pos)])
    # each sampled subreddit entry is a real edge, with its own features
    sub_of = view.sub_csr.row_of_entries()
    u = kept[view.sub_csr.indices]
    p = view.sub_to_user_pos
    assert np.array_equal(view.user_csr.indices[p], sub_of)
    assert np.array_equal(kept[view.user_csr.row_of_entries()[p]], u)
