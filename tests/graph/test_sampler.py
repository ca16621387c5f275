"""`sample_rows` and `BipartiteSampler`, on its own and driven by PyG's loaders."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch_geometric.sampler import EdgeSamplerInput, NegativeSampling, NodeSamplerInput

from graph.data import from_arrays
from graph.loader import BipartiteLinkLoader, BipartiteNodeLoader
from graph.sampler import CSR, SUB, TO_SUB, TO_USER, USER, BipartiteSampler, sample_rows


def random_csr(rows: int, max_deg: int, cols: int, seed: int) -> CSR:
    """Rows of degree 0..max_deg with distinct column ids per row."""
    rng = np.random.default_rng(seed)
    deg = rng.integers(0, max_deg + 1, rows)
    deg[:3] = [0, 1, max_deg]  # make sure the extremes are present
    indptr = np.zeros(rows + 1, np.int64)
    np.cumsum(deg, out=indptr[1:])
    indices = np.concatenate([rng.choice(cols, d, replace=False) for d in deg]).astype(np.int32)
    return CSR(indptr, indices)


def check_sample(csr: CSR, rows: np.ndarray, k: int, owner: np.ndarray, pos: np.ndarray):
    """Per row: ≤ k positions, inside the row's CSR range, distinct; all when deg ≤ k."""
    assert owner.shape == pos.shape
    assert ((owner >= 0) & (owner < len(rows))).all()
    for i, r in enumerate(rows):
        lo, hi = csr.indptr[r], csr.indptr[r + 1]
        mine = pos[owner == i]
        assert len(mine) == min(k, hi - lo)
        assert ((mine >= lo) & (mine < hi)).all()
        assert len(np.unique(mine)) == len(mine)
        if hi - lo <= k:
            assert sorted(mine.tolist()) == list(range(lo, hi))


@pytest.mark.parametrize("k", [0, 1, 3, 7, 40])
def test_sample_rows_bounds_ranges_and_distinct(k):
    csr = random_csr(300, 25, 1000, seed=1)
    rng = np.random.default_rng(2)
    # unsorted rows, with repeats: each occurrence is sampled on its own
    rows = np.concatenate([rng.permutation(csr.rows), rng.integers(0, csr.rows, 50)])
    owner, pos = sample_rows(csr, rows, k, np.random.default_rng(3))
    check_sample(csr, rows, k, owner, pos)
    assert len(pos) == np.minimum(csr.degree(rows), k).sum()


def test_sample_rows_all_when_k_negative():
    csr = random_csr(100, 30, 500, seed=4)
    rows = np.array([5, 2, 2, 0, 99, 50])
    owner, pos = sample_rows(csr, rows, -1, np.random.default_rng(0))
    for i, r in enumerate(rows):
        assert pos[owner == i].tolist() == list(range(csr.indptr[r], csr.indptr[r + 1]))
    assert len(pos) == csr.degree(rows).sum()


def test_sample_rows_seeded():
    csr = random_csr(200, 60, 5000, seed=5)
    rows = np.arange(csr.rows)
    a = sample_rows(csr, rows, 4, np.random.default_rng(11))
    b = sample_rows(csr, rows, 4, np.random.default_rng(11))
    c = sample_rows(csr, rows, 4, np.random.default_rng(12))
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert np.array_equal(a[0], c[0])  # same rows, same counts...
    assert not np.array_equal(a[1], c[1])  # ...but other neighbours


def test_sample_rows_uniform_marginals():
    d, k, reps = 20, 5, 20_000
    csr = CSR(np.array([0, 7, 7 + d], np.int64), np.arange(7 + d, dtype=np.int32))
    owner, pos = sample_rows(csr, np.full(reps, 1), k, np.random.default_rng(0))
    assert len(pos) == reps * k
    counts = np.bincount(pos - 7, minlength=d)
    assert len(counts) == d  # nothing outside the row
    expected = reps * k / d
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 50  # 19 dof: p ≈ 1e-4
    assert np.abs(counts / reps - k / d).max() < 0.015


def test_sample_rows_uniform_subsets():
    """Floyd's algorithm gives every k-subset the same probability, not just marginals."""
    d, k, reps = 5, 2, 30_000
    csr = CSR(np.array([0, d], np.int64), np.arange(d, dtype=np.int32))
    owner, pos = sample_rows(csr, np.zeros(reps, np.int64), k, np.random.default_rng(1))
    assert np.array_equal(np.bincount(owner, minlength=reps), np.full(reps, k))
    pairs = np.sort(pos[np.argsort(owner, kind="stable")].reshape(reps, k), axis=1)
    subsets = list(itertools.combinations(range(d), k))
    freq = np.array([((pairs[:, 0] == a) & (pairs[:, 1] == b)).sum() for a, b in subsets])
    assert freq.sum() == reps
    assert np.abs(freq / reps - 1 / len(subsets)).max() < 0.01


# --- BipartiteSampler through the loaders -------------------------------------------

U, S = 300, 30


@pytest.fixture(scope="module")
def graph():
    rng = np.random.default_rng(7)
    # skewed popularity so subreddit degrees vary; user degrees vary too
    p = rng.dirichlet(np.ones(S) * 0.5)
    users, subs = [], []
    for user in range(U):
        d = int(rng.integers(1, 16))
        users.append(np.full(d, user))
        subs.append(rng.choice(S, d, replace=False, p=p))
    u, s = np.concatenate(users), np.concatenate(subs)
    shuffle = rng.permutation(len(u))
    u, s = u[shuffle], s[shuffle]
    attr = rng.normal(size=(len(u), 3)).astype(np.float32)
    g = from_arrays(u, s, attr, U, S, rng.random((U, 5)), rng.random((S, 8)))
    return g, u, s


def edge_keys(g) -> set[int]:
    users = np.repeat(np.arange(g.num_users), g.user_csr.degree())
    return set((users * g.num_subs + g.user_csr.indices).tolist())


def check_edges(batch, g):
    """Every sampled edge is real and carries its own features; nodes appear once."""
    keys = edge_keys(g)
    for et in (TO_USER, TO_SUB):
        ei = batch[et].edge_index
        src = batch[et[0]].n_id[ei[0]].numpy()
        dst = batch[et[2]].n_id[ei[1]].numpy()
        users, subs = (dst, src) if et == TO_USER else (src, dst)
        assert set((users * g.num_subs + subs).tolist()) <= keys, et
        eid = batch[et].e_id.numpy()
        assert len(eid) == ei.shape[1]
        # e_id is the user-CSR position of this very (user, subreddit) edge
        assert (eid >= g.user_csr.indptr[users]).all()
        assert (eid < g.user_csr.indptr[users + 1]).all()
        assert np.array_equal(g.user_csr.indices[eid], subs)
        assert torch.equal(batch[et].edge_attr, g.edge_attr[batch[et].e_id])
        assert batch[et].edge_attr.dtype == torch.float16
    for t in (USER, SUB):
        n_id = batch[t].n_id
        assert len(n_id.unique()) == len(n_id), t
        assert torch.equal(batch[t].x, g.hetero_data()[t].x[n_id])


def incoming(batch, et) -> np.ndarray:
    return np.bincount(batch[et].edge_index[1].numpy(), minlength=batch[et[2]].num_nodes)


def test_node_loader_fanouts_and_edges(graph):
    g, _, _ = graph
    smp = BipartiteSampler(g.user_csr, g.sub_csr, g.sub_to_user_pos, [3, 2], seed=0)
    seeds = torch.from_numpy(np.random.default_rng(0).permutation(U))
    loader = BipartiteNodeLoader(g.hetero_data(), smp, input_nodes=(USER, seeds), batch_size=32)
    batches = list(loader)
    assert len(batches) == -(-U // 32)
    seen = []
    for batch in batches:
        bs = batch[USER].batch_size
        n_id = batch[USER].n_id
        assert torch.equal(n_id[:bs], seeds[batch[USER].input_id])
        seen.append(n_id[:bs])
        # hop 1: each user seed gets min(3, degree) subreddit edges, and only seeds do
        hop1 = incoming(batch, TO_USER)
        assert (hop1[bs:] == 0).all()
        assert np.array_equal(hop1[:bs], np.minimum(3, g.user_csr.degree(n_id[:bs].numpy())))
        # hop 2: each subreddit reached in hop 1 gets min(2, degree) user edges
        sub_ids = batch[SUB].n_id.numpy()
        assert set(batch[TO_USER].edge_index[0].tolist()) == set(range(len(sub_ids)))
        hop2 = incoming(batch, TO_SUB)
        assert np.array_equal(hop2, np.minimum(2, g.sub_csr.degree(sub_ids)))
        # the users hop 2 reached are the new ones, after the seeds
        assert batch[USER].num_sampled_nodes == [bs, 0, len(n_id) - bs]
        assert batch[SUB].num_sampled_nodes == [0, len(sub_ids), 0]
        for et in (TO_USER, TO_SUB):  # distinct seeds: no edge sampled twice
            ei = batch[et].edge_index
            assert torch.unique(ei, dim=1).shape == ei.shape, et
        check_edges(batch, g)
    assert torch.equal(torch.sort(torch.cat(seen)).values, torch.arange(U))


def test_reseed_reproduces_a_batch(graph):
    g, _, _ = graph
    smp = BipartiteSampler(g.user_csr, g.sub_csr, g.sub_to_user_pos, [4, 3])
    seeds = NodeSamplerInput(torch.arange(20), torch.arange(40, 60), input_type=USER)

    def draw(seed):
        smp.reseed(seed)
        out = smp.sample_from_nodes(seeds)
        return [out.node[t] for t in (USER, SUB)] + [out.edge[et] for et in (TO_USER, TO_SUB)]

    a, b, c = draw(3), draw(3), draw(4)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(x.shape == y.shape and torch.equal(x, y) for x, y in zip(a, c, strict=True))


@pytest.fixture(scope="module")
def link_batches(graph):
    g, u, s = graph
    smp = BipartiteSampler(g.user_csr, g.sub_csr, g.sub_to_user_pos, [3, 2], seed=1)
    eli = torch.from_numpy(np.stack([u, s]))
    torch.manual_seed(0)
    loader = BipartiteLinkLoader(
        g.hetero_data(),
        smp,
        edge_label_index=(TO_SUB, eli),
        neg_sampling=NegativeSampling("triplet", amount=2),
        batch_size=16,
        shuffle=True,
    )
    return eli, list(itertools.islice(loader, 12))


def test_link_loader_seed_edges_and_negatives(graph, link_batches):
    g, _, _ = graph
    eli, batches = link_batches
    ids = []
    for batch in batches:
        input_id = batch[TO_SUB].input_id
        n = len(input_id)
        assert n == 16
        ids.append(input_id)
        users = batch[USER].n_id[batch[USER].src_index]
        pos = batch[SUB].n_id[batch[SUB].dst_pos_index]
        assert torch.equal(users, eli[0, input_id])
        assert torch.equal(pos, eli[1, input_id])
        neg = batch[SUB].dst_neg_index
        assert neg.shape == (n, 2)
        assert ((neg >= 0) & (neg < batch[SUB].num_nodes)).all()
        assert ((batch[SUB].n_id[neg] >= 0) & (batch[SUB].n_id[neg] < S)).all()
        # seeds come first: users in src order of first occurrence, then sampled ones
        assert batch[USER].src_index.max() < batch[USER].num_sampled_nodes[0]
        check_edges(batch, g)
    ids = torch.cat(ids)
    assert len(ids.unique()) == len(ids)  # no seed edge twice within an epoch


def test_link_loader_negatives_cover_subreddits(link_batches):
    _, batches = link_batches
    negs = torch.cat([b[SUB].n_id[b[SUB].dst_neg_index].ravel() for b in batches])
    assert len(negs) == 12 * 16 * 2
    assert len(negs.unique()) > S // 2  # uniform over subreddits, not one fixed id


def test_link_loader_respects_fanout_with_repeated_seeds(link_batches):
    _, batches = link_batches
    for batch in batches:
        for et in (TO_USER, TO_SUB):
            ei = batch[et].edge_index
            assert torch.unique(ei, dim=1).shape == ei.shape, et
        assert incoming(batch, TO_USER).max() <= 3
        assert incoming(batch, TO_SUB).max() <= 3


def test_sample_from_edges_rejects_other_edge_types(graph):
    g, u, s = graph
    smp = BipartiteSampler(g.user_csr, g.sub_csr, g.sub_to_user_pos, [2])
    wrong = EdgeSamplerInput(
        input_id=torch.arange(4),
        row=torch.from_numpy(s[:4]),
        col=torch.from_numpy(u[:4]),
        input_type=TO_USER,
    )
    with pytest.raises(ValueError, match="posts_in"):
        smp.sample_from_edges(wrong, NegativeSampling("triplet", amount=1))
    right = EdgeSamplerInput(
        input_id=torch.arange(4),
        row=torch.from_numpy(u[:4]),
        col=torch.from_numpy(s[:4]),
        input_type=TO_SUB,
    )
    with pytest.raises(ValueError, match="triplet"):
        smp.sample_from_edges(right, NegativeSampling("binary", amount=1))
