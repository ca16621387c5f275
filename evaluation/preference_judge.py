"""A learned preference judge in the ViPer proxy-metric style: for a user, the probability
that a query image is one the user would post, from the user's HISTORY images against
other users' images, in any image feature space (the lake's colour features, or CLIP).

One logistic regression shared by all users, fitted on (history set, query) pairs:
positives leave one of a user's own history images out and ask it back against the rest;
negatives ask other users' history images against the same set. Features: max and mean
cosine to the set, cosine to its centroid, the nearest and the centroid distance, an RBF
kernel score and the set's size, all in the standardised feature space. Seeded and
deterministic. It never sees the benchmark's held-out references: `history_by_user`
applies the stage contract's history view (`contract.stage_io.without_held_out`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from contract.history import without_held_out

PREFERENCE_VERSION = "preference-v1"
FEATURES = (
    "max_cos",
    "mean_cos",
    "centroid_cos",
    "nearest_dist",
    "centroid_dist",
    "kernel",
    "log_history",
)
#: leave-one-out positives taken per user at most (bounds training at scale)
MAX_POSITIVES = 8
EMBEDDINGS = "silver/image_embeddings"


class NoHistory(LookupError):
    """The user has no history image to judge against."""


def history_by_user(embeddings: pa.Table, references: pa.Table) -> dict[int, np.ndarray]:
    """silver/image_embeddings' history view (held-out reference posts removed, every
    image of them), ``ok`` rows only -> per user, their images' embeddings (rows in
    post, position order)."""
    t = without_held_out(embeddings, EMBEDDINGS, references)
    t = t.filter(pc.equal(t["status"], "ok"))
    t = t.sort_by([("user_id", "ascending"), ("post_id", "ascending"), ("position", "ascending")])
    out: dict[int, list] = {}
    for u, v in zip(t["user_id"].to_pylist(), t["embedding"].to_pylist(), strict=True):
        if v is not None:
            out.setdefault(u, []).append(v)
    return {u: np.asarray(v, np.float64) for u, v in out.items()}


def _unit(a: np.ndarray) -> np.ndarray:
    return a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)


def pair_features(h: np.ndarray, q: np.ndarray, sigma2: float) -> np.ndarray:
    """Features (len(q), len(FEATURES)) of queries `q` against one history set `h`, both
    already standardised."""
    d = h.shape[1]
    cos = _unit(q) @ _unit(h).T
    c = h.mean(axis=0, keepdims=True)
    d2 = ((q[:, None, :] - h[None, :, :]) ** 2).sum(-1) / d
    dc = ((q - c) ** 2).sum(-1) / d
    return np.column_stack(
        [
            cos.max(1),
            cos.mean(1),
            (_unit(q) @ _unit(c).T)[:, 0],
            d2.min(1),
            dc,
            np.exp(-d2 / (2 * sigma2)).mean(1),
            np.full(len(q), np.log(len(h))),
        ]
    )


def _pairs(
    history: dict[int, np.ndarray], users: list[int], negatives: int, rng: np.random.Generator
) -> tuple[list[tuple[int, int]], list[np.ndarray], list[np.ndarray]]:
    """Leave-one-out (user, held-out index) contexts with their positive and negatives:
    returns (contexts, queries per context, labels per context)."""
    pool_owner = np.concatenate([np.full(len(history[u]), u) for u in users])
    pool = np.concatenate([history[u] for u in users])
    contexts, queries, labels = [], [], []
    for u in users:
        n = len(history[u])
        if n < 2:
            continue
        for i in rng.permutation(n)[:MAX_POSITIVES]:
            cand = rng.choice(len(pool), size=min(len(pool), negatives * 2 + 4), replace=False)
            cand = cand[pool_owner[cand] != u][:negatives]
            contexts.append((u, int(i)))
            queries.append(np.vstack([history[u][i : i + 1], pool[cand]]))
            labels.append(np.r_[1.0, np.zeros(len(cand))])
    return contexts, queries, labels


@dataclass
class PreferenceJudge:
    """The fitted judge: standardisation, kernel bandwidth, the logistic regression, and
    every user's standardised history set."""

    mean: np.ndarray
    scale: np.ndarray
    sigma2: float
    model: object  # sklearn Pipeline(StandardScaler, LogisticRegression)
    history: dict[int, np.ndarray] = field(repr=False)
    details: dict = field(default_factory=dict)

    def _std(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, np.float64) - self.mean) / self.scale

    def history_size(self, user: int) -> int:
        """History images the judge compares a user's queries with (0: none)."""
        h = self.history.get(int(user))
        return 0 if h is None else len(h)

    def features(self, user: int, queries: np.ndarray) -> np.ndarray:
        """`pair_features` of raw query embeddings against the user's history."""
        h = self.history.get(int(user))
        if h is None or not len(h):
            raise NoHistory(f"user {user} has no history image to judge against")
        return pair_features(h, self._std(np.atleast_2d(queries)), self.sigma2)

    def score(self, user: int, queries: np.ndarray) -> np.ndarray:
        """P(the user would post it) in [0, 1] for each query embedding; `NoHistory` when
        the user has no history image."""
        q = np.atleast_2d(np.asarray(queries, np.float64))
        if not len(q):
            return np.zeros(0)
        return self.model.predict_proba(self.features(user, q))[:, 1]


def _fit_model(x: np.ndarray, y: np.ndarray, seed: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    model.set_params(logisticregression__random_state=seed)
    return model.fit(x, y)


def _design(history, users, negatives, rng, sigma2):
    ctx, queries, labels = _pairs(history, users, negatives, rng)
    xs = [
        pair_features(np.delete(history[u], i, axis=0), q, sigma2)
        for (u, i), q in zip(ctx, queries, strict=True)
    ]
    if not xs:
        return np.zeros((0, len(FEATURES))), np.zeros(0)
    return np.vstack(xs), np.concatenate(labels)


def fit_preference_judge(
    history: dict[int, np.ndarray],
    seed: int = 0,
    negatives: int = 4,
    max_users: int = 20000,
    val_fraction: float = 0.2,
) -> PreferenceJudge:
    """Fit the shared judge on users' history sets (a seeded sample of `max_users`):
    validation AUC on users held out of the fit (leave-one-out positives vs other
    validation users' images), then the final fit on every sampled user. Raises
    ValueError when fewer than 4 users have two history images or more."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    users = sorted(int(u) for u, h in history.items() if len(h))
    if len(users) > max_users:
        users = sorted(int(u) for u in rng.choice(users, size=max_users, replace=False))
    fit_users = [u for u in users if len(history[u]) >= 2]
    if len(fit_users) < 4:
        raise ValueError(
            f"preference judge: {len(fit_users)} user(s) with two or more history images; "
            "at least 4 are needed to fit it"
        )
    pool = np.concatenate([history[u] for u in users]).astype(np.float64)
    mean, scale = pool.mean(0), np.maximum(pool.std(0), 1e-6)
    std = {u: (np.asarray(history[u], np.float64) - mean) / scale for u in users}
    a, b = rng.integers(0, len(pool), (2, 4096))
    pd2 = (((pool[a] - pool[b]) / scale) ** 2).sum(-1) / pool.shape[1]
    sigma2 = float(max(np.median(pd2[a != b]) if np.any(a != b) else 1.0, 1e-6))

    order = [users[i] for i in rng.permutation(len(users))]
    n_val = max(2, int(round(len(order) * val_fraction)))
    val, train = sorted(order[:n_val]), sorted(order[n_val:])
    details: dict = {"version": PREFERENCE_VERSION, "users": len(users), "seed": seed}
    xt, yt = _design(std, train, negatives, rng, sigma2)
    xv, yv = _design(std, val, negatives, rng, sigma2)
    if len(set(yt)) == 2 and len(set(yv)) == 2:
        m = _fit_model(xt, yt, seed)
        details |= {
            "val_users": len(val),
            "val_pairs": int(len(yv)),
            "val_auc": round(float(roc_auc_score(yv, m.predict_proba(xv)[:, 1])), 4),
            "val_auc_centroid_cos": round(float(roc_auc_score(yv, xv[:, 2])), 4),
            "val_auc_max_cos": round(float(roc_auc_score(yv, xv[:, 0])), 4),
        }
    x, y = _design(std, users, negatives, rng, sigma2)
    model = _fit_model(x, y, seed)
    lr = model[-1]
    details |= {
        "pairs": int(len(y)),
        "positives": int(y.sum()),
        "coef": {f: round(float(c), 4) for f, c in zip(FEATURES, lr.coef_[0], strict=True)},
    }
    full = {int(u): (np.asarray(h, np.float64) - mean) / scale for u, h in history.items()}
    return PreferenceJudge(mean, scale, sigma2, model, full, details)
