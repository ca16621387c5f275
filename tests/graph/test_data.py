"""Silver tables -> `BipartiteGraph`: CSRs, edge features, splits, node features."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import torch

from graph.data import edge_features, from_arrays, inductive_observed, load_graph
from graph.sampler import SUB, TO_SUB, TO_USER, USER
from schemas.silver import EDGES, NODE_FEATURES, SUBREDDITS, USERS


def unique_edges(num_users: int, num_subs: int, n: int, seed: int):
    rng = np.random.default_rng(seed)
    key = rng.choice(num_users * num_subs, n, replace=False)  # distinct, unsorted
    return key // num_subs, key % num_subs


def csr_pairs(csr) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of every CSR entry, in CSR order."""
    return np.repeat(np.arange(csr.rows), csr.degree()), csr.indices.astype(np.int64)


def user_csr_keys(g) -> np.ndarray:
    users, subs = csr_pairs(g.user_csr)
    return users * g.num_subs + subs


# --- from_arrays ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def small():
    U, S = 400, 40
    u, s = unique_edges(U, S, 3000, seed=0)
    rng = np.random.default_rng(1)
    attr = rng.normal(size=(len(u), 3)).astype(np.float32)
    g = from_arrays(u, s, attr, U, S, rng.random((U, 4)), rng.random((S, 8)))
    return g, u, s, attr


def test_from_arrays_csrs_hold_the_same_edges(small):
    g, u, s, _ = small
    assert g.num_edges == len(u)
    assert g.user_csr.indptr.dtype == np.int64 and g.user_csr.indices.dtype == np.int32
    assert g.sub_csr.indptr.dtype == np.int64 and g.sub_csr.indices.dtype == np.int32
    assert g.user_csr.rows == g.num_users and g.sub_csr.rows == g.num_subs
    want = np.sort(u * g.num_subs + s)
    uu, us = csr_pairs(g.user_csr)
    su, ss = csr_pairs(g.sub_csr)  # rows are subreddits here
    assert np.array_equal(np.sort(uu * g.num_subs + us), want)
    assert np.array_equal(np.sort(ss * g.num_subs + su), want)
    assert np.array_equal(g.user_csr.degree(), np.bincount(u, minlength=g.num_users))
    assert np.array_equal(g.sub_csr.degree(), np.bincount(s, minlength=g.num_subs))


def test_from_arrays_sub_to_user_pos(small):
    g, _, _, _ = small
    perm = g.sub_to_user_pos
    assert perm.dtype == np.int32
    assert np.array_equal(np.sort(perm), np.arange(g.num_edges))  # a permutation
    subs, users = csr_pairs(g.sub_csr)
    # entry i of the sub CSR is (users[i], subs[i]); its user-CSR position holds subs[i]
    # and lies inside users[i]'s row
    assert np.array_equal(g.user_csr.indices[perm], subs)
    assert (perm >= g.user_csr.indptr[users]).all()
    assert (perm < g.user_csr.indptr[users + 1]).all()


def test_from_arrays_edge_attr_in_user_csr_order(small):
    g, u, s, attr = small
    assert g.edge_attr.dtype == torch.float16 and g.edge_attr.shape == (len(u), 3)
    assert g.user_x.dtype == torch.float16 and g.sub_x.dtype == torch.float16
    of_key = dict(zip((u * g.num_subs + s).tolist(), range(len(u)), strict=True))
    src = np.array([of_key[k] for k in user_csr_keys(g).tolist()])
    assert torch.equal(g.edge_attr, torch.from_numpy(attr[src].astype(np.float16)))


def test_hetero_data_shares_tensors(small):
    g, _, _, _ = small
    data = g.hetero_data()
    assert data[USER].num_nodes == g.num_users and data[SUB].num_nodes == g.num_subs
    for et in (TO_USER, TO_SUB):
        assert data[et].edge_attr.data_ptr() == g.edge_attr.data_ptr()
        assert "edge_index" not in data[et]
    assert data[USER].x.data_ptr() == g.user_x.data_ptr()


def test_resident_bytes_per_edge():
    U, S, E = 5000, 50, 100_000
    u, s = unique_edges(U, S, E, seed=2)
    rng = np.random.default_rng(3)
    g = from_arrays(u, s, rng.random((E, 3)), U, S, rng.random((U, 4)), rng.random((S, 8)))
    assert g.num_edges == E
    # 2 × int32 indices + int32 permutation + 3 × float16 features = 18 B/edge, plus nodes
    expected = 18 * E + 8 * (U + 1 + S + 1) + 2 * 4 * U + 2 * 8 * S
    assert g.resident_bytes() == expected
    assert g.resident_bytes() / g.num_edges <= 24


def test_user_bags(small):
    g, _, _, _ = small
    users = np.array([5, 0, 5, 17, g.num_users - 1, 3])
    ids, offsets, w = g.user_bags(users)
    assert ids.dtype == torch.int64 and offsets.dtype == torch.int64
    assert len(offsets) == len(users) and offsets[0] == 0
    ends = torch.cat([offsets[1:], torch.tensor([len(ids)])])
    assert len(w) == len(ids)
    for i, user in enumerate(users):
        lo, hi = g.user_csr.indptr[user], g.user_csr.indptr[user + 1]
        assert ids[offsets[i] : ends[i]].tolist() == g.user_csr.indices[lo:hi].tolist()
        want = g.edge_attr[lo:hi, :2].float().sum(1) + 1
        assert torch.allclose(w[offsets[i] : ends[i]], want)


def test_user_bags_zero_degree_user():
    g = from_arrays(
        np.array([0, 0, 2]),
        np.array([1, 0, 1]),
        np.ones((3, 3)),
        3,
        2,
        np.zeros((3, 1)),
        np.zeros((2, 1)),
    )
    ids, offsets, _ = g.user_bags(np.array([1, 0, 2, 1]))
    assert ids.tolist() == [0, 1, 1]
    assert offsets.tolist() == [0, 0, 2, 3]


# --- edge features and the inductive split ---------------------------------------------


def test_edge_features():
    f = edge_features(np.array([0, 3]), np.array([1, 0]), np.array([-9, 0]))
    assert f.dtype == np.float32
    np.testing.assert_allclose(f, [[0, np.log(2), -np.log(10)], [np.log(4), 0, 0]], rtol=1e-6)


def test_inductive_observed():
    rng = np.random.default_rng(4)
    deg = np.r_[1, 2, 3, rng.integers(1, 60, 200)]
    users = np.repeat(np.arange(len(deg)), deg)
    subs = np.concatenate([rng.choice(1000, d, replace=False) for d in deg])
    shuffle = rng.permutation(len(users))
    users, subs = users[shuffle], subs[shuffle]
    mask = inductive_observed(users, subs, seed=0)
    observed = np.bincount(users[mask], minlength=len(deg))
    assert (observed >= 1).all()
    assert np.array_equal(observed, np.maximum(1, deg // 2))
    big = deg >= 20
    assert big.sum() > 50
    frac = observed[big] / deg[big]
    assert ((frac > 0.45) & (frac <= 0.5)).all()
    # deterministic, independent of row order, and seed-dependent
    assert np.array_equal(mask, inductive_observed(users, subs, seed=0))
    back = rng.permutation(len(users))
    assert np.array_equal(inductive_observed(users[back], subs[back], seed=0), mask[back])
    other = inductive_observed(users, subs, seed=1)
    assert not np.array_equal(other, mask)
    assert np.array_equal(np.bincount(users[other], minlength=len(deg)), observed)


# --- load_graph ------------------------------------------------------------------------

NU, NS, VISUAL, TEXT = 60, 12, 6, 4


@pytest.fixture(scope="module")
def silver():
    rng = np.random.default_rng(5)
    role = np.where(np.arange(NU) % 4 == 0, "inductive", "train")
    users = pa.table(
        {
            "user_id": np.arange(NU, dtype=np.int32),
            "author": [f"u{i}" for i in range(NU)],
            "posts": np.zeros(NU, np.int64),
            "comments": np.zeros(NU, np.int64),
            "subreddits": np.zeros(NU, np.int64),
            "first_utc": np.zeros(NU, np.int64),
            "last_utc": np.zeros(NU, np.int64),
            "role": role.tolist(),
        },
        schema=USERS,
    )
    sub_users = rng.integers(1, 1000, NS)
    subreddits = pa.table(
        {
            "subreddit_id": np.arange(NS, dtype=np.int32),
            "subreddit": [f"r{i}" for i in range(NS)],
            "users": sub_users,
            "posts": np.zeros(NS, np.int64),
            "comments": np.zeros(NS, np.int64),
            "first_utc": np.zeros(NS, np.int64),
            "last_utc": np.zeros(NS, np.int64),
        },
        schema=SUBREDDITS,
    )
    u, s = unique_edges(NU, NS, 400, seed=6)
    split = np.where(
        role[u] == "inductive",
        "inductive",
        rng.choice(["train", "val", "test"], len(u), p=[0.7, 0.15, 0.15]),
    )
    posts = rng.integers(0, 20, len(u)).astype(np.int32)
    comments = rng.integers(0, 50, len(u)).astype(np.int32)
    score = rng.integers(-100, 500, len(u))
    edges = pa.table(
        {
            "user_id": u.astype(np.int32),
            "subreddit_id": s.astype(np.int32),
            "posts": posts,
            "comments": comments,
            "score_sum": score,
            "first_utc": np.zeros(len(u), np.int64),
            "last_utc": np.zeros(len(u), np.int64),
            "split": split.tolist(),
        },
        schema=EDGES,
    )
    with_visual = np.flatnonzero(rng.random(NU) < 0.5)
    visual = rng.normal(size=(len(with_visual), VISUAL)).astype(np.float32)
    text = rng.normal(size=(NS, TEXT)).astype(np.float32)
    features = pa.table(
        {
            "node_type": ["user"] * len(with_visual) + ["subreddit"] * NS,
            "node_id": np.r_[with_visual, np.arange(NS)].astype(np.int32),
            "feature_set": ["visual"] * len(with_visual) + ["text"] * NS,
            "model": ["m"] * (len(with_visual) + NS),
            "count": np.ones(len(with_visual) + NS, np.int64),
            "vector": [v.tolist() for v in visual] + [v.tolist() for v in text],
        },
        schema=NODE_FEATURES,
    )
    arrays = {
        "u": u,
        "s": s,
        "split": split,
        "role": role,
        "attr": edge_features(posts, comments, score),
        "with_visual": with_visual,
        "visual": visual,
        "text": text,
        "sub_users": sub_users,
    }
    return (users, subreddits, edges, features), arrays


def keys_where(a, mask) -> np.ndarray:
    return np.sort(a["u"][mask] * NS + a["s"][mask])


def test_load_graph_train_messages(silver):
    tables, a = silver
    g = load_graph(*tables, message="train")
    assert (g.num_users, g.num_subs) == (NU, NS)
    assert np.array_equal(np.sort(user_csr_keys(g)), keys_where(a, a["split"] == "train"))
    assert np.array_equal(g.user_role, a["role"] == "inductive")
    # inductive users have no message edges at all in training
    assert (g.user_csr.degree()[g.user_role] == 0).all()
    for name in ("train", "val", "test"):
        m = a["split"] == name
        assert g.splits[name].dtype == np.int64
        assert np.array_equal(g.splits[name], np.stack([a["u"][m], a["s"][m]])), name
    ind = np.sort(
        np.r_[
            g.splits["inductive"][0] * NS + g.splits["inductive"][1],
            g.splits["inductive_observed"][0] * NS + g.splits["inductive_observed"][1],
        ]
    )
    assert np.array_equal(ind, keys_where(a, a["split"] == "inductive"))
    # edge features follow their edges
    of_key = dict(zip((a["u"] * NS + a["s"]).tolist(), range(len(a["u"])), strict=True))
    src = np.array([of_key[k] for k in user_csr_keys(g).tolist()])
    assert torch.equal(g.edge_attr, torch.from_numpy(a["attr"][src].astype(np.float16)))


def test_load_graph_observed_messages(silver):
    tables, a = silver
    g = load_graph(*tables, message="observed")
    keys = user_csr_keys(g)
    target = g.splits["inductive"][0] * NS + g.splits["inductive"][1]
    seen = g.splits["inductive_observed"][0] * NS + g.splits["inductive_observed"][1]
    assert len(target) > 0 and len(seen) > 0
    assert not np.isin(target, keys).any()  # targets never leak into message passing
    want = np.sort(np.r_[keys_where(a, a["split"] == "train"), seen])
    assert np.array_equal(np.sort(keys), want)
    # every inductive user with edges is visible through at least one observed edge
    ind_users = np.unique(a["u"][a["split"] == "inductive"])
    assert (g.user_csr.degree()[ind_users] >= 1).all()
    assert set(np.unique(g.splits["inductive"][0]).tolist()) <= set(ind_users.tolist())
    # the split is the same hash-based split inductive_observed computes
    m = a["split"] == "inductive"
    mask = inductive_observed(a["u"][m], a["s"][m], seed=0)
    assert np.array_equal(np.sort(seen), np.sort(a["u"][m][mask] * NS + a["s"][m][mask]))
    g2 = load_graph(*tables, message="observed", seed=3)
    assert not np.array_equal(np.sort(user_csr_keys(g2)), np.sort(keys))


def test_load_graph_all_messages(silver):
    tables, a = silver
    g = load_graph(*tables, message="all")
    assert np.array_equal(np.sort(user_csr_keys(g)), np.sort(a["u"] * NS + a["s"]))
    deg = np.bincount(a["u"], minlength=NU)
    np.testing.assert_allclose(g.user_x[:, -1].float().numpy(), np.log1p(deg), rtol=2e-3)


def test_load_graph_rejects_unknown_message(silver):
    tables, _ = silver
    with pytest.raises(ValueError, match="message"):
        load_graph(*tables, message="val")


def test_load_graph_node_features(silver):
    tables, a = silver
    g = load_graph(*tables, message="train")
    assert g.user_x.dtype == torch.float16 and g.user_x.shape == (NU, VISUAL + 2)
    x = g.user_x.float().numpy()
    has = np.zeros(NU, bool)
    has[a["with_visual"]] = True
    np.testing.assert_allclose(x[a["with_visual"], :VISUAL], a["visual"], atol=2e-3, rtol=2e-3)
    assert (x[~has, :VISUAL] == 0).all()
    assert np.array_equal(x[:, VISUAL], has.astype(np.float32))
    deg = np.bincount(a["u"][a["split"] == "train"], minlength=NU)
    np.testing.assert_allclose(x[:, VISUAL + 1], np.log1p(deg), rtol=2e-3)
    assert g.sub_x.dtype == torch.float16 and g.sub_x.shape == (NS, TEXT + 1)
    np.testing.assert_allclose(g.sub_x[:, :TEXT].float().numpy(), a["text"], rtol=1e-3, atol=1e-3)
    train_users = np.bincount(a["s"][a["split"] == "train"], minlength=NS)  # train edges only
    np.testing.assert_allclose(g.sub_x[:, TEXT].float().numpy(), np.log1p(train_users), rtol=1e-3)


def test_load_graph_without_node_features(silver):
    (users, subreddits, edges, features), _ = silver
    g = load_graph(users, subreddits, edges, features.slice(0, 0), message="train")
    assert g.user_x.shape == (NU, 2) and g.sub_x.shape == (NS, 1)
    assert (g.user_x[:, 0] == 0).all()


def test_subreddit_size_input_counts_training_edges_only(silver):
    """Held-out and unseen users' edges must not reach the inputs: the subreddit size
    feature follows the train split, not silver/subreddits.users (counted over all)."""
    (users, subreddits, edges, features), a = silver
    g = load_graph(users, subreddits, edges, features, message="all")
    train = np.asarray(edges["split"].to_pylist()) == "train"
    s = edges["subreddit_id"].to_numpy()
    want = np.log1p(np.bincount(s[train], minlength=subreddits.num_rows))
    np.testing.assert_allclose(g.sub_x[:, -1].float().numpy(), want, rtol=1e-2)
    inflated = subreddits.set_column(
        subreddits.schema.get_field_index("users"),
        "users",
        pa.array(np.full(subreddits.num_rows, 10**6, np.int64)),
    )
    same = load_graph(users, inflated, edges, features, message="all")
    assert torch.equal(same.sub_x, g.sub_x)
