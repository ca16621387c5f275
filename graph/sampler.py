"""A vectorised neighbour sampler for bipartite user–subreddit CSR graphs, behind PyG's
`BaseSampler` interface so `NodeLoader` / `LinkLoader` drive it.

Sampling without replacement uses Floyd's algorithm vectorised over rows (k rounds of
numpy ops, exact uniform k-subsets, no per-row Python). Global-to-local relabelling uses
a scratch array per node type (O(sampled) instead of a sort). Where pyg-lib is
installed, `pyg_lib_available()` lets the caller choose PyG's own sampler instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch_geometric.sampler import (
    BaseSampler,
    EdgeSamplerInput,
    HeteroSamplerOutput,
    NegativeSampling,
    NodeSamplerInput,
)

USER, SUB = "user", "subreddit"
#: messages subreddit -> user (sampled through the user CSR) and user -> subreddit
TO_USER = (SUB, "rev_posts_in", USER)
TO_SUB = (USER, "posts_in", SUB)


def pyg_lib_available() -> bool:
    """True when pyg-lib's C++ sampler is importable (then PyG samples natively)."""
    try:
        import pyg_lib  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class CSR:
    """Compressed rows: the neighbours of row r are indices[indptr[r]:indptr[r+1]]."""

    indptr: np.ndarray  # int64, rows + 1
    indices: np.ndarray  # int32

    @property
    def rows(self) -> int:
        return len(self.indptr) - 1

    def degree(self, rows: np.ndarray | None = None) -> np.ndarray:
        if rows is None:
            return np.diff(self.indptr)
        return self.indptr[rows + 1] - self.indptr[rows]

    def row_of_entries(self) -> np.ndarray:
        """The row of every entry, in CSR order (int32: the COO row of this CSR)."""
        return np.repeat(np.arange(self.rows, dtype=np.int32), self.degree())

    def row_positions(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row index into `rows`, CSR position) of every entry of the given rows."""
        starts = self.indptr[rows]
        counts = self.indptr[rows + 1] - starts
        owner = np.repeat(np.arange(len(rows)), counts)
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        return owner, np.repeat(starts, counts) + offsets


def sample_rows(
    csr: CSR, rows: np.ndarray, k: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Up to `k` distinct neighbours of each row, uniformly (all of them when the degree
    is ≤ k; `k < 0` takes all). Returns (row index into `rows`, CSR position)."""
    deg = csr.degree(rows)
    if k < 0:
        return csr.row_positions(rows)
    small = deg <= k
    own_small, pos_small = csr.row_positions(rows[small])
    own_small = np.flatnonzero(small)[own_small]
    big = np.flatnonzero(~small)
    if len(big) == 0:
        return own_small, pos_small
    d = deg[big]
    picked = np.empty((len(big), k), np.int64)
    for i in range(k):  # Floyd: for j in d-k..d-1, t ~ U[0, j]; t taken already -> j
        j = d - k + i
        t = (rng.random(len(big)) * (j + 1)).astype(np.int64)
        if i:
            t = np.where((picked[:, :i] == t[:, None]).any(axis=1), j, t)
        picked[:, i] = t
    pos_big = (csr.indptr[rows[big]][:, None] + picked).ravel()
    own_big = np.repeat(big, k)
    return np.concatenate([own_small, own_big]), np.concatenate([pos_small, pos_big])


class _Relabel:
    """Global -> local ids for one node type, in insertion order, reset after each batch."""

    def __init__(self, num_nodes: int):
        self.local = np.full(num_nodes, -1, np.int64)
        self.nodes: list[np.ndarray] = []
        self.count = 0

    def add(self, ids: np.ndarray) -> np.ndarray:
        """Local ids of `ids`, adding the unseen ones (first seen first)."""
        new = ids[self.local[ids] < 0]
        if len(new):
            slot = np.arange(len(new))
            self.local[new[::-1]] = slot[::-1]  # duplicates: the first occurrence wins
            first = new[self.local[new] == slot]
            self.local[first] = self.count + np.arange(len(first))
            self.nodes.append(first)
            self.count += len(first)
        return self.local[ids]

    def finish(self) -> np.ndarray:
        nodes = np.concatenate(self.nodes) if self.nodes else np.empty(0, np.int64)
        self.local[nodes] = -1
        self.nodes, self.count = [], 0
        return nodes


class BipartiteSampler(BaseSampler):
    """Multi-hop neighbour sampling over a user–subreddit graph held as two CSRs.

    `user_csr` lists each user's subreddits, `sub_csr` each subreddit's users;
    `sub_to_user_pos[i]` is the user-CSR position of the sub-CSR entry i (edge features
    live once, in user-CSR order). `num_neighbors` is per hop, as in PyG.
    """

    def __init__(
        self,
        user_csr: CSR,
        sub_csr: CSR,
        sub_to_user_pos: np.ndarray,
        num_neighbors: list[int],
        seed: int = 0,
    ):
        self.csr = {USER: user_csr, SUB: sub_csr}
        self.num_nodes = {USER: user_csr.rows, SUB: sub_csr.rows}
        self.perm = torch.from_numpy(sub_to_user_pos)
        self.num_neighbors = list(num_neighbors)
        self.rng = np.random.default_rng(seed)
        self._relabel = {t: _Relabel(n) for t, n in self.num_nodes.items()}

    @property
    def edge_permutation(self):
        return {TO_USER: None, TO_SUB: self.perm}

    def reseed(self, seed: int) -> None:
        """Restart the random stream (e.g. per epoch and worker) for reproducibility."""
        self.rng = np.random.default_rng(seed)

    def sample(self, seeds: dict[str, np.ndarray]) -> HeteroSamplerOutput:
        """Sample around global seed ids per node type; seeds come first in `node`."""
        rel = self._relabel
        for t, ids in seeds.items():  # a seed repeated (e.g. in several edges) counts once
            rel[t].add(np.asarray(ids, np.int64))
        frontier = {t: np.arange(rel[t].count) for t in seeds if rel[t].count}
        global_of = {t: rel[t] for t in rel}
        rows = {TO_USER: [], TO_SUB: []}
        cols = {TO_USER: [], TO_SUB: []}
        edges = {TO_USER: [], TO_SUB: []}
        sampled_nodes = {t: [rel[t].count] for t in rel}
        sampled_edges = {TO_USER: [], TO_SUB: []}
        for k in self.num_neighbors:
            nxt: dict[str, list[np.ndarray]] = {USER: [], SUB: []}
            hop_edges = {TO_USER: 0, TO_SUB: 0}  # per hop, 0 where a type had no frontier
            for dst_type, local_dst in frontier.items():
                src_type = SUB if dst_type == USER else USER
                et = TO_USER if dst_type == USER else TO_SUB
                dst_global = np.concatenate(global_of[dst_type].nodes)[local_dst]
                csr = self.csr[dst_type]
                owner, pos = sample_rows(csr, dst_global, k, self.rng)
                before = rel[src_type].count
                src_local = rel[src_type].add(csr.indices[pos].astype(np.int64))
                rows[et].append(src_local)
                cols[et].append(local_dst[owner])
                edges[et].append(pos)
                hop_edges[et] = len(pos)
                nxt[src_type].append(np.arange(before, rel[src_type].count))
            for et, n in hop_edges.items():
                sampled_edges[et].append(n)
            frontier = {t: np.concatenate(v) for t, v in nxt.items() if v}
            frontier = {t: f for t, f in frontier.items() if len(f)}
            for t in rel:
                sampled_nodes[t].append(rel[t].count - sum(sampled_nodes[t]))
            if not frontier:
                break
        node = {t: torch.from_numpy(rel[t].finish()) for t in rel}

        def cat(parts: list[np.ndarray]) -> torch.Tensor:
            return torch.from_numpy(np.concatenate(parts) if parts else np.empty(0, np.int64))

        return HeteroSamplerOutput(
            node=node,
            row={et: cat(v) for et, v in rows.items()},
            col={et: cat(v) for et, v in cols.items()},
            edge={et: cat(v) for et, v in edges.items()},
            num_sampled_nodes=sampled_nodes,
            num_sampled_edges=sampled_edges,
        )

    def sample_from_nodes(self, index: NodeSamplerInput, **kwargs) -> HeteroSamplerOutput:
        node = index.node.numpy()
        out = self.sample({index.input_type: node})
        out.metadata = (index.input_id, None)
        return out

    def sample_from_edges(
        self, index: EdgeSamplerInput, neg_sampling: NegativeSampling | None = None
    ) -> HeteroSamplerOutput:
        """Seeds: the edges' users and subreddits, plus `amount` uniform negative
        subreddits per edge (triplet mode), as PyG's `LinkLoader` expects."""
        if index.input_type != TO_SUB:
            raise ValueError(f"edge seeds must be of type {TO_SUB}, got {index.input_type}")
        users = index.row.numpy().astype(np.int64)
        pos = index.col.numpy().astype(np.int64)
        amount = int(neg_sampling.amount) if neg_sampling is not None else 0
        if neg_sampling is not None and not neg_sampling.is_triplet():
            raise ValueError("BipartiteSampler supports triplet negative sampling")
        neg = self.rng.integers(0, self.num_nodes[SUB], (len(users), amount))
        out = self.sample({USER: users, SUB: np.concatenate([pos, neg.ravel()])})
        n = len(users)
        # seeds come first in `node`, so local ids follow from first occurrence
        u_local = _first_index(out.node[USER].numpy(), users)
        s_local = _first_index(out.node[SUB].numpy(), np.concatenate([pos, neg.ravel()]))
        out.metadata = (
            index.input_id,
            torch.from_numpy(u_local),
            torch.from_numpy(s_local[:n]),
            torch.from_numpy(s_local[n:].reshape(n, amount)),
            None,
        )
        return out


def _first_index(nodes: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Position of each of `ids` in `nodes` (all present; `nodes` unique)."""
    order = np.argsort(nodes, kind="stable")
    return order[np.searchsorted(nodes, ids, sorter=order)]
