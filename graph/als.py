"""Implicit-feedback matrix factorisation (Hu, Koren & Volinsky 2008), the ablation's
non-GNN baseline: every (user, subreddit) cell has preference p = 1 where the user was
active and 0 elsewhere, with confidence c = 1 + alpha * log1p(posts + comments) on active
cells and 1 on the rest. Alternating least squares minimises
sum_ui c_ui (p_ui - x_u . y_s)^2 + reg (|x_u|^2 + |y_s|^2); each half step solves, per row,
(Y^T Y + Y^T (C_u - I) Y + reg I) x_u = Y^T C_u p_u with Y^T Y computed once, by a few
conjugate-gradient steps warm-started from the last solution (Takacs et al. 2011), batched
over all rows with sparse products (no dense users x subreddits matrix).

Only training users' message-passing edges train. Unseen (inductive) users are folded in
afterwards: one exact least-squares solve per user from their observed edges, with the
subreddit factors fixed. Hyper-parameters are chosen on the validation split by recall@k.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch

from graph.config import EncoderConfig
from graph.data import BipartiteGraph
from graph.train import TrainInputs, link_metrics

#: the validation grid; factors are fractions of `encoder.hidden`, so ALS is never wider
#: than the other encoders; `iterations` are read off one run (no extra training)
GRID = {
    "factors": (0.25, 1.0),
    "reg": (0.1, 1.0, 10.0),
    "alpha": (1.0, 10.0, 40.0),
    "iterations": (5, 15),
}
CG_STEPS = 3


@dataclass
class ALSResult:
    """Embeddings of the chosen configuration and the validation table behind the choice."""

    user: torch.Tensor  # float32 [U, factors]; unseen users folded in
    sub: torch.Tensor  # float32 [S, factors]
    params: dict  # the chosen factors, reg, alpha, iterations
    table: list[dict] = field(default_factory=list)  # one row per configuration: val metrics


def interaction_counts(g: BipartiteGraph) -> sp.csr_matrix:
    """Users x subreddits posts + comments of the message-passing edges."""
    w = (g.edge_attr[:, :2].float().exp() - 1.0).sum(1).numpy()
    return sp.csr_matrix(
        (w, g.user_csr.indices, g.user_csr.indptr), shape=(g.num_users, g.num_subs)
    )


def confidence(counts: sp.csr_matrix, alpha: float) -> sp.csr_matrix:
    """c = 1 + alpha * log1p(count) on the observed cells (float32)."""
    c = counts.astype(np.float32, copy=True)
    c.data = 1.0 + alpha * np.log1p(np.maximum(c.data, 0.0))
    return c


def _cg_rows(
    c: sp.csr_matrix, y: np.ndarray, x: np.ndarray, gram: np.ndarray, steps: int
) -> np.ndarray:
    """CG on one block of rows (see `_cg`)."""
    rows = np.repeat(np.arange(c.shape[0]), np.diff(c.indptr))
    y_nz, extra = y[c.indices], c.data - 1.0

    def apply(v: np.ndarray) -> np.ndarray:  # (Y^T C_u Y + reg I) v_u, every row at once
        w = extra * np.einsum("ij,ij->i", v[rows], y_nz)
        return v @ gram + sp.csr_matrix((w, c.indices, c.indptr), shape=c.shape) @ y

    r = np.asarray(c @ y) - apply(x)  # Y^T C_u p_u with p = 1 on observed cells
    p, rs = r.copy(), (r * r).sum(1)
    for _ in range(steps):
        ap = apply(p)
        step = np.divide(rs, (p * ap).sum(1), out=np.zeros_like(rs), where=rs > 1e-20)
        x = x + step[:, None] * p
        r = r - step[:, None] * ap
        rs_new = (r * r).sum(1)
        p = r + np.divide(rs_new, rs, out=np.zeros_like(rs), where=rs > 1e-20)[:, None] * p
        rs = rs_new
    return x


def _cg(
    c: sp.csr_matrix, y: np.ndarray, x: np.ndarray, reg: float, steps: int, block: int = 1 << 20
) -> np.ndarray:
    """`steps` CG steps from `x` on every row's normal equations (rows of `c` = rows of
    x), in row blocks of about `block` nonzeros so memory stays bounded."""
    gram = y.T @ y + reg * np.eye(y.shape[1], dtype=y.dtype)
    cuts = np.searchsorted(c.indptr, np.arange(block, c.nnz, block))
    cuts = np.unique(np.r_[0, cuts, c.shape[0]])
    out = np.empty_like(x)
    for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
        out[lo:hi] = _cg_rows(c[lo:hi], y, x[lo:hi], gram, steps)
    return out


def fold_in(c: sp.csr_matrix, y: np.ndarray, reg: float) -> np.ndarray:
    """The exact user solve for every row of `c` with subreddit factors `y` fixed (CG from
    zero, one step per factor)."""
    x = np.zeros((c.shape[0], y.shape[1]), y.dtype)
    return _cg(c, y, x, reg, y.shape[1])


def als_runs(
    c: sp.csr_matrix, factors: int, reg: float, iterations: tuple[int, ...], seed: int
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """ALS on confidence matrix `c` (training users' rows); yields (iterations done, user
    factors, subreddit factors) after each count in `iterations`."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((c.shape[0], factors)) * 0.01).astype(np.float32)
    y = (rng.standard_normal((c.shape[1], factors)) * 0.01).astype(np.float32)
    ct = c.T.tocsr()
    for it in range(1, max(iterations) + 1):
        x = _cg(c, y, x, reg, CG_STEPS)
        y = _cg(ct, x, y, reg, CG_STEPS)
        if it in iterations:
            yield it, x, y


def validation_view(inputs: TrainInputs) -> TrainInputs:
    """What tuning may see: the message-passing edges and the training and validation
    splits (`link_metrics` on "val" knows training edges only). Test and unseen users'
    held-out edges are neither scored nor known: they count as non-edges, as they would
    in deployment."""
    g = inputs.graph
    splits = {name: g.splits[name] for name in ("train", "val")}
    return dataclasses.replace(inputs, graph=dataclasses.replace(g, splits=splits))


def als_embeddings(inputs: TrainInputs, cfg: EncoderConfig, grid: dict = GRID) -> ALSResult:
    """Fit ALS on training users' message-passing edges for every grid configuration,
    score each on the validation split (recall@k, ties by per-user AUC), fold unseen
    users into the chosen one. Only `validation_view(inputs)` is read."""
    inputs = validation_view(inputs)
    g = inputs.graph
    counts = interaction_counts(g)
    seen = sp.diags((~g.user_role).astype(np.float32))
    unseen = np.flatnonzero(g.user_role)
    table, best = [], None
    widths = sorted({max(2, round(f * cfg.hidden)) for f in grid["factors"]})
    for factors, reg, alpha in itertools.product(widths, grid["reg"], grid["alpha"]):
        c = (seen @ confidence(counts, alpha)).tocsr()  # unseen users' edges never train
        c.eliminate_zeros()  # c >= 1 on every edge: only unseen users' rows go
        for it, x, y in als_runs(c, factors, reg, tuple(grid["iterations"]), cfg.seed):
            h_user, h_sub = torch.from_numpy(x.copy()), torch.from_numpy(y.copy())
            val = link_metrics(h_user, h_sub, inputs, cfg, "val")
            params = {"factors": factors, "reg": reg, "alpha": alpha, "iterations": it}
            table.append({**params, **{f"val_{k}": v for k, v in val.items()}})
            key = (val["recall_at_k"], val["auc"])
            if best is None or key > best[0]:
                best = (key, params, x.copy(), y.copy())
    _, params, x, y = best
    if len(unseen):
        x[unseen] = fold_in(confidence(counts[unseen], params["alpha"]), y, params["reg"])
    return ALSResult(torch.from_numpy(x), torch.from_numpy(y), params, table)
