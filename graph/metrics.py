"""Link-prediction and ImageAlign metrics computed from embeddings, shared by every
encoder (GATv2, the ablation baselines) on the same splits.

* AUC (per user, the reported one): for each user with held-out edges, the share of
  (held-out edge, random non-edge of that user) pairs ranked right (ties half), averaged
  over users, so an encoder whose score scale varies by user is not penalised; the pooled
  AUC (held-out edges vs as many random non-edges, all users in one ranking) is kept
  beside it as ``auc_pooled``.
* Posting accuracy: for each held-out (user, subreddit), the share of times the true
  subreddit outscores all of `candidates - 1` random subreddits the user never touched
  (chance: 1 / candidates).
* Recall@k: per user, the share of held-out subreddits in the top k of the subreddits that
  are not known positives of another split (message-passing edges and the other splits'
  held-out edges are excluded from the ranking), averaged over users.
* Image recall@k: per user with images, whether their own mean image embedding is in the
  top k for their projected embedding among those users' mean image embeddings.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import roc_auc_score


def edge_keys(users: np.ndarray, subs: np.ndarray, num_subs: int) -> np.ndarray:
    """Sorted int64 keys of (user, subreddit) pairs, for membership tests."""
    return np.unique(users.astype(np.int64) * num_subs + subs.astype(np.int64))


def is_edge(keys: np.ndarray, users: np.ndarray, subs: np.ndarray, num_subs: int) -> np.ndarray:
    """Whether each (user, subreddit) pair is among `keys` (`edge_keys`): a binary search,
    O(q log E), never a pass over all E keys per query batch (`np.isin` sorts or tables
    both arrays on every call: 0.4 s a training batch at 7M edges)."""
    q = users.astype(np.int64) * num_subs + subs
    i = np.searchsorted(keys, q).clip(0, max(len(keys) - 1, 0))
    return keys[i] == q if len(keys) else np.zeros(len(q), bool)


def random_non_edges(
    users: np.ndarray, n: int, num_subs: int, keys: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """`n` random subreddits per user, redrawn (a few times) where they are real edges."""
    subs = rng.integers(0, num_subs, (len(users), n))
    for _ in range(8):
        bad = is_edge(keys, np.repeat(users, n), subs.ravel(), num_subs).reshape(subs.shape)
        if not bad.any():
            break
        subs[bad] = rng.integers(0, num_subs, int(bad.sum()))
    return subs


def _scores(user_emb: torch.Tensor, sub_emb: torch.Tensor, u: np.ndarray, s: np.ndarray):
    return (user_emb[torch.from_numpy(u)] * sub_emb[torch.from_numpy(s)]).sum(-1).numpy()


def link_auc(user_emb, sub_emb, pairs: np.ndarray, keys: np.ndarray, seed: int = 0) -> float:
    """ROC AUC of held-out edges against one random non-edge each."""
    if pairs.shape[1] == 0:
        return float("nan")
    u, s = pairs
    neg = random_non_edges(u, 1, len(sub_emb), keys, np.random.default_rng(seed))[:, 0]
    scores = np.concatenate([_scores(user_emb, sub_emb, u, s), _scores(user_emb, sub_emb, u, neg)])
    labels = np.r_[np.ones(len(u)), np.zeros(len(u))]
    return float(roc_auc_score(labels, scores))


def per_user_auc(
    user_emb, sub_emb, pairs: np.ndarray, keys: np.ndarray, negatives: int = 20, seed: int = 0
) -> float:
    """Mean over users of each user's AUC: their held-out edges against `negatives`
    random non-edges of theirs (ties count half)."""
    if pairs.shape[1] == 0:
        return float("nan")
    users = np.unique(pairs[0])
    neg = random_non_edges(users, negatives, len(sub_emb), keys, np.random.default_rng(seed))
    neg_scores = _scores(user_emb, sub_emb, np.repeat(users, negatives), neg.ravel())
    neg_scores = neg_scores.reshape(len(users), negatives)
    pos = _scores(user_emb, sub_emb, pairs[0], pairs[1])
    row = np.searchsorted(users, pairs[0])
    wins = (pos[:, None] > neg_scores[row]).mean(1) + 0.5 * (pos[:, None] == neg_scores[row]).mean(
        1
    )
    per_user = np.bincount(row, wins, len(users)) / np.bincount(row, minlength=len(users))
    return float(per_user.mean())


def posting_accuracy(
    user_emb, sub_emb, pairs: np.ndarray, keys: np.ndarray, candidates: int = 5, seed: int = 0
) -> float:
    """Share of held-out edges whose subreddit outscores `candidates - 1` random ones."""
    if pairs.shape[1] == 0:
        return float("nan")
    u, s = pairs
    neg = random_non_edges(u, candidates - 1, len(sub_emb), keys, np.random.default_rng(seed))
    pos = _scores(user_emb, sub_emb, u, s)
    negs = _scores(user_emb, sub_emb, np.repeat(u, candidates - 1), neg.ravel())
    return float((pos[:, None] > negs.reshape(len(u), -1)).all(axis=1).mean())


def recall_at_k(
    user_emb,
    sub_emb,
    pairs: np.ndarray,
    known: np.ndarray,
    k: int = 10,
    max_users: int = 5000,
    seed: int = 0,
) -> float:
    """Mean over users (a seeded random `max_users` of them) of the share of their
    held-out subreddits in their top k; `known` are the (user, subreddit) keys already
    known positives, which are excluded from the ranking."""
    if pairs.shape[1] == 0:
        return float("nan")
    num_subs = len(sub_emb)
    users = np.unique(pairs[0]).astype(np.int64)
    if len(users) > max_users:
        users = np.sort(np.random.default_rng(seed).choice(users, max_users, replace=False))
    held = edge_keys(pairs[0], pairs[1], num_subs)
    recalls = []
    for chunk in np.array_split(users, max(1, len(users) // 1024)):
        scores = user_emb[torch.from_numpy(chunk)] @ sub_emb.T
        lo, hi = np.searchsorted(known, [chunk[0] * num_subs, (chunk[-1] + 1) * num_subs])
        kk = known[lo:hi]
        row = np.searchsorted(chunk, kk // num_subs)
        ok = chunk[row.clip(0, len(chunk) - 1)] == kk // num_subs
        scores[torch.from_numpy(row[ok]), torch.from_numpy(kk[ok] % num_subs)] = -torch.inf
        top = scores.topk(min(k, num_subs), dim=1).indices.numpy()
        hit = is_edge(held, np.repeat(chunk, top.shape[1]), top.ravel(), num_subs)
        hits = hit.reshape(top.shape).sum(1)
        lo, hi = np.searchsorted(held, [chunk * num_subs, (chunk + 1) * num_subs])
        recalls.append(hits / np.maximum(hi - lo, 1))
    return float(np.concatenate(recalls).mean())


def mean_images(
    users: np.ndarray, image_users: np.ndarray, images: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(sorted users among `users` that posted images, their mean image embedding)."""
    users = np.unique(users[np.isin(users, image_users)])
    sums = np.zeros((len(users), images.shape[1] if images.ndim == 2 else 0), np.float64)
    counts = np.zeros(len(users))
    if not len(users):  # no user of `users` posted an image
        return users, sums
    idx = np.searchsorted(users, image_users)
    mine = (idx < len(users)) & (users[idx.clip(0, max(len(users) - 1, 0))] == image_users)
    np.add.at(sums, idx[mine], images[mine])
    np.add.at(counts, idx[mine], 1)
    return users, sums / np.maximum(counts, 1)[:, None]


def image_recall_at_k(
    user_proj: torch.Tensor, image_users: np.ndarray, images: np.ndarray, users: np.ndarray, k: int
) -> float:
    """Among `users` that posted images: how often a user's own mean image embedding is in
    the top k for their projected embedding (chance k / len(users))."""
    users, means = mean_images(users, image_users, images)
    if len(users) < 2 or len(images) == 0:
        return float("nan")
    target = torch.nn.functional.normalize(torch.from_numpy(means).float(), dim=-1)
    scores = user_proj[torch.from_numpy(users)] @ target.T
    top = scores.topk(min(k, len(users)), dim=1).indices
    return float((top == torch.arange(len(users))[:, None]).any(1).float().mean())


def probe_image_recall(
    h_user: torch.Tensor,
    image_users: np.ndarray,
    images: np.ndarray,
    fit_users: np.ndarray,
    eval_users: np.ndarray,
    k: int,
    ridge: float = 1.0,
) -> float:
    """Image recall@k of *any* user embedding, the same way for every encoder: a ridge
    probe from embeddings to users' mean image embedding, fitted on `fit_users` and scored
    with `image_recall_at_k` on `eval_users` (disjoint; chance k / their number). Given
    embeddings computed without the visual input, it says how much of what a user posts
    their communities alone reveal: the measure of what ImageAlign adds."""
    fit, y = mean_images(np.setdiff1d(fit_users, eval_users), image_users, images)
    if len(fit) < 2 or len(images) == 0:
        return float("nan")
    x = h_user[torch.from_numpy(fit)].double().numpy()
    mu_x, sd_x, mu_y = x.mean(0), x.std(0) + 1e-9, y.mean(0)
    xs = (x - mu_x) / sd_x
    w = np.linalg.solve(xs.T @ xs + ridge * len(fit) * np.eye(x.shape[1]), xs.T @ (y - mu_y))
    pred = (h_user.double().numpy() - mu_x) / sd_x @ w + mu_y
    proj = torch.nn.functional.normalize(torch.from_numpy(pred).float(), dim=-1)
    return image_recall_at_k(proj, image_users, images, eval_users, k)
