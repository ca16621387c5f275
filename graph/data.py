"""Silver tables -> the training graph: two int32 CSRs, float16 edge features, node
features, link-prediction splits, and a PyG `HeteroData` view that shares those tensors.

Inductive users (``silver/users.role == "inductive"``) never enter training. Their edges
are split by a hash into *observed* (their subreddit list, the model's input) and
*target* (held out for evaluation); `message="observed"` adds the observed edges to
the message-passing graph for inference.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from torch_geometric.data import HeteroData

from graph.sampler import CSR, SUB, TO_SUB, TO_USER, USER

EDGE_FEATURES = ("log_posts", "log_comments", "signed_log_score")


@dataclass
class BipartiteGraph:
    """A user–subreddit graph held lean: int32 CSRs both ways, edge features once."""

    num_users: int
    num_subs: int
    user_csr: CSR  # message-passing edges, user -> subreddits
    sub_csr: CSR  # the same edges, subreddit -> users
    sub_to_user_pos: np.ndarray  # int32: sub-CSR entry -> user-CSR position
    edge_attr: torch.Tensor  # float16 [E, 3], user-CSR order
    user_x: torch.Tensor  # float16 [U, d_visual + 2]: visual profile, has_visual, log degree
    sub_x: torch.Tensor  # float16 [S, d_text + 1]: text vector, log users
    user_role: np.ndarray  # bool: inductive user
    splits: dict[str, np.ndarray] = field(default_factory=dict)  # name -> [2, n] int64

    @property
    def num_edges(self) -> int:
        return len(self.user_csr.indices)

    def resident_bytes(self) -> int:
        """Bytes held by the graph's arrays (CSR, permutation, features)."""
        arrays = [
            self.user_csr.indptr,
            self.user_csr.indices,
            self.sub_csr.indptr,
            self.sub_csr.indices,
            self.sub_to_user_pos,
        ]
        tensors = [self.edge_attr, self.user_x, self.sub_x]
        return sum(a.nbytes for a in arrays) + sum(t.numel() * t.element_size() for t in tensors)

    def hetero_data(self) -> HeteroData:
        """PyG view: node features and edge features, no COO copy (the sampler holds the
        CSRs; `TO_SUB` edge ids map into the shared edge features by a permutation)."""
        data = HeteroData()
        data[USER].x = self.user_x
        data[USER].num_nodes = self.num_users
        data[SUB].x = self.sub_x
        data[SUB].num_nodes = self.num_subs
        data[TO_USER].edge_attr = self.edge_attr
        data[TO_SUB].edge_attr = self.edge_attr
        return data

    def user_bags(
        self, users: np.ndarray, exclude: np.ndarray | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(subreddit ids, offsets, weights) of each user's subreddit list, for
        `embedding_bag`: a user's input is computed from their subreddits alone. `exclude`
        drops user-CSR positions (a batch's supervision edges must not be inputs)."""
        owner, pos = self.user_csr.row_positions(np.asarray(users, np.int64))
        if exclude is not None and len(exclude):  # a binary search into the few excluded
            ex = np.sort(exclude)  # (np.isin sorted all of `pos` on every batch)
            keep = ex[np.searchsorted(ex, pos).clip(0, len(ex) - 1)] != pos
            owner, pos = owner[keep], pos[keep]
        counts = np.bincount(owner, minlength=len(users))
        offsets = np.r_[0, np.cumsum(counts)][:-1]
        w = self.edge_attr[torch.from_numpy(pos)][:, :2].float().sum(1) + 1.0
        return (
            torch.from_numpy(self.user_csr.indices[pos].astype(np.int64)),
            torch.from_numpy(offsets.astype(np.int64)),
            w,
        )


def build_csr(rows: np.ndarray, cols: np.ndarray, num_rows: int) -> tuple[CSR, np.ndarray]:
    """CSR of (rows, cols) and the order that sorts the input into it."""
    order = np.lexsort((cols, rows))
    indptr = np.zeros(num_rows + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=num_rows), out=indptr[1:])
    return CSR(indptr, cols[order].astype(np.int32)), order


def from_arrays(
    users: np.ndarray,
    subs: np.ndarray,
    edge_attr: np.ndarray,
    num_users: int,
    num_subs: int,
    user_x: np.ndarray,
    sub_x: np.ndarray,
    user_role: np.ndarray | None = None,
    splits: dict[str, np.ndarray] | None = None,
) -> BipartiteGraph:
    """Assemble a graph from message-passing edges (any order) and node features."""
    user_csr, order = build_csr(users, subs, num_users)
    sub_csr, rev = build_csr(subs[order], users[order], num_subs)
    return BipartiteGraph(
        num_users=num_users,
        num_subs=num_subs,
        user_csr=user_csr,
        sub_csr=sub_csr,
        sub_to_user_pos=rev.astype(np.int32),
        edge_attr=torch.from_numpy(np.asarray(edge_attr, np.float16)[order]),
        user_x=torch.from_numpy(np.asarray(user_x, np.float16)),
        sub_x=torch.from_numpy(np.asarray(sub_x, np.float16)),
        user_role=np.zeros(num_users, bool) if user_role is None else user_role,
        splits=splits or {},
    )


def edge_features(posts: np.ndarray, comments: np.ndarray, score: np.ndarray) -> np.ndarray:
    """[log1p posts, log1p comments, sign(score) log1p |score|] per edge."""
    score = score.astype(np.float64)
    return np.stack(
        [np.log1p(posts), np.log1p(comments), np.sign(score) * np.log1p(np.abs(score))], 1
    ).astype(np.float32)


def _hash01(users: np.ndarray, subs: np.ndarray, seed: int) -> np.ndarray:
    """A stable pseudo-random number in [0, 1) per (user, subreddit)."""
    x = (users.astype(np.uint64) << np.uint64(32)) ^ subs.astype(np.uint64)
    x = x ^ np.uint64(seed * 0x9E3779B97F4A7C15 % 2**64)
    x = (x ^ (x >> np.uint64(33))) * np.uint64(0xFF51AFD7ED558CCD)
    x = (x ^ (x >> np.uint64(33))) * np.uint64(0xC4CEB93FE53A99C6)
    x = x ^ (x >> np.uint64(33))
    return (x >> np.uint64(11)).astype(np.float64) / float(2**53)


def inductive_observed(users: np.ndarray, subs: np.ndarray, seed: int = 0) -> np.ndarray:
    """Mask of an inductive user's edges that are observed (about half, at least one);
    the rest are the targets their embedding is evaluated on."""
    h = _hash01(users, subs, seed)
    order = np.lexsort((h, users))
    rank = np.empty(len(users), np.int64)
    first = np.r_[0, np.flatnonzero(np.diff(users[order])) + 1]
    counts = np.diff(np.r_[first, len(users)])
    rank[order] = np.arange(len(users)) - np.repeat(first, counts)
    deg = np.empty(len(users), np.int64)
    deg[order] = np.repeat(counts, counts)
    return rank < np.maximum(1, deg // 2)


def _vectors(features: pa.Table, node_type: str, feature_set: str, n: int) -> np.ndarray:
    rows = features.filter(
        pc.and_(
            pc.equal(features["node_type"], node_type),
            pc.equal(features["feature_set"], feature_set),
        )
    )
    if rows.num_rows == 0:
        return np.zeros((n, 0), np.float32)
    vecs = np.asarray(rows["vector"].to_pylist(), np.float32)
    out = np.zeros((n, vecs.shape[1]), np.float32)
    out[rows["node_id"].to_numpy()] = vecs
    return out


def load_graph(
    users: pa.Table,
    subreddits: pa.Table,
    edges: pa.Table,
    node_features: pa.Table,
    message: str = "train",
    seed: int = 0,
    text: str = "text",
) -> BipartiteGraph:
    """Silver tables -> graph. Message-passing edges: `train` (training), `observed` (plus
    inductive users' observed edges: evaluating unseen users) or `all` (every edge: the
    production embeddings and attention). Splits: train/val/test edges of training users
    and `inductive` target edges, each as a [2, n] (user, subreddit) array. `text`: the
    subreddit vectors' feature set (`text_no_metadata` where a subreddit has one, else
    `text`)."""
    if message not in ("train", "observed", "all"):
        raise ValueError(f"message must be train, observed or all, got {message!r}")
    num_users, num_subs = users.num_rows, subreddits.num_rows
    u = edges["user_id"].to_numpy().astype(np.int64)
    s = edges["subreddit_id"].to_numpy().astype(np.int64)
    split = np.asarray(edges["split"].to_pylist())
    attr = edge_features(
        edges["posts"].to_numpy(), edges["comments"].to_numpy(), edges["score_sum"].to_numpy()
    )
    role = np.zeros(num_users, bool)
    role[users["user_id"].to_numpy()] = np.asarray(users["role"].to_pylist()) == "inductive"
    ind = split == "inductive"
    observed = np.zeros(len(u), bool)
    observed[ind] = inductive_observed(u[ind], s[ind], seed)
    message = (
        np.ones(len(u), bool)
        if message == "all"
        else (split == "train") | (observed if message == "observed" else False)
    )
    splits = {
        name: np.stack([u[split == name], s[split == name]]) for name in ("train", "val", "test")
    }
    splits["inductive"] = np.stack([u[ind & ~observed], s[ind & ~observed]])
    splits["inductive_observed"] = np.stack([u[observed], s[observed]])
    visual = _vectors(node_features, "user", "visual", num_users)
    has_visual = np.zeros((num_users, 1), np.float32)
    if visual.shape[1]:
        has_visual[:, 0] = np.abs(visual).sum(1) > 0
    deg = np.bincount(u[message], minlength=num_users).astype(np.float32)
    user_x = np.concatenate([visual, has_visual, np.log1p(deg)[:, None]], 1)
    vectors = _vectors(node_features, "subreddit", "text", num_subs)
    if text != "text":  # the other feature set where it exists, `text` elsewhere
        other = _vectors(node_features, "subreddit", text, num_subs)
        if other.shape[1]:
            has = np.abs(other).sum(1) > 0
            vectors[has] = other[has]
    # a subreddit's size counts its training edges only: held-out and unseen users' edges
    # must not reach the inputs (silver/subreddits.users counts every split)
    sub_users = np.log1p(np.bincount(s[split == "train"], minlength=num_subs)).astype(np.float32)
    sub_x = np.concatenate([vectors, sub_users[:, None]], 1)
    return from_arrays(
        u[message], s[message], attr[message], num_users, num_subs, user_x, sub_x, role, splits
    )


def user_image_embeddings(image_embeddings: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """(user ids, embeddings) of every image fetched ok, for ImageAlign."""
    ok = image_embeddings.filter(pc.equal(image_embeddings["status"], "ok"))
    if ok.num_rows == 0:
        return np.empty(0, np.int64), np.zeros((0, 0), np.float32)
    return (
        ok["user_id"].to_numpy().astype(np.int64),
        np.asarray(ok["embedding"].to_pylist(), np.float32),
    )
