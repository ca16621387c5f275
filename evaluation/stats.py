"""Scores and statistics: CLIPScore, pairwise win rates with a binomial test, and IPF
(raking) re-weighting to target marginals."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np


def _unit(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, np.float64)
    return a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)


def clip_score(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """CLIPScore ×100 (torchmetrics convention): 100 · max(cos(a, b), 0), row by row."""
    return 100.0 * np.maximum(np.sum(_unit(a) * _unit(b), axis=-1), 0.0)


def clip_score_to_set(a: np.ndarray, refs: np.ndarray) -> float:
    """Mean CLIPScore ×100 of one embedding against a set (a user's reference images)."""
    cos = _unit(refs) @ _unit(a)
    return float(np.mean(100.0 * np.maximum(cos, 0.0)))


def win_rate(a: Sequence[float], b: Sequence[float]) -> dict:
    """Paired comparison of method A vs B on the same items: wins, losses, ties, the win
    rate over decided pairs and a two-sided exact binomial test against 0.5. A pair with a
    missing score (NaN) on either side is not compared; `unscored` counts them."""
    from scipy.stats import binomtest

    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape:
        raise ValueError("win_rate: A and B must score the same items")
    scored = ~(np.isnan(a) | np.isnan(b))
    a, b = a[scored], b[scored]
    wins, losses = int(np.sum(a > b)), int(np.sum(a < b))
    ties = len(a) - wins - losses
    decided = wins + losses
    p = binomtest(wins, decided, 0.5).pvalue if decided else 1.0
    return {
        "wins": wins,
        "losses": losses,
        "ties": ties,
        "unscored": int(np.sum(~scored)),
        "win_rate": wins / decided if decided else float("nan"),
        "p_value": float(p),
    }


def ipf_weights(
    groups: Mapping[str, Sequence[str]],
    targets: Mapping[str, Mapping[str, float]],
    max_iter: int = 200,
    tol: float = 1e-10,
) -> np.ndarray:
    """Raking: weights (mean 1) such that each attribute's weighted shares match its target
    marginal. `groups[attr][i]` is row i's category; `targets[attr][category]` the wanted
    share (normalised); None is the category "unknown". A category with rows but no
    target gets weight 0; a target with no rows, or targets these rows cannot reach
    together (raking does not converge), is an error."""
    names = list(targets)
    n = len(next(iter(groups.values()))) if groups else 0
    w = np.ones(n)
    cats = {
        a: np.asarray(["unknown" if c is None else c for c in groups[a]], dtype=object)
        for a in names
    }
    for a in names:
        total = sum(targets[a].values())
        missing = [c for c, share in targets[a].items() if share > 0 and not np.any(cats[a] == c)]
        if missing:
            raise ValueError(f"ipf: no rows for {a}={missing[0]!r}, its target cannot be met")
        if total <= 0:
            raise ValueError(f"ipf: target shares of {a} sum to {total}")
    for _ in range(max_iter):
        worst = 0.0
        for a in names:
            total = sum(targets[a].values())
            for c in np.unique(cats[a]):
                mask = cats[a] == c
                want = targets[a].get(c, 0.0) / total
                have = w[mask].sum() / w.sum()
                if have > 0:
                    w[mask] *= want / have
                worst = max(worst, abs(want - have))
        if w.sum() <= 0:
            raise ValueError("ipf: every weight went to 0; these rows cannot meet the targets")
        if worst < tol:
            return w * (n / w.sum())
    raise ValueError(
        f"ipf: no convergence in {max_iter} rounds (largest share gap {worst:.3g}); "
        "these rows cannot meet the targets together"
    )


@dataclass
class Raking:
    """Raking on known rows: the weights (mean 1), the attributes raked and, for each one
    left out, why."""

    weights: np.ndarray
    raked: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def rake_known(
    groups: Mapping[str, Sequence[str | None]],
    targets: Mapping[str, Mapping[str, float]],
    max_iter: int = 500,
    tol: float = 1e-10,
) -> Raking:
    """Raking where attributes are partly unknown: each attribute is raked on the rows
    that have one of its target categories (`groups[attr][i]`); a row whose category is
    None or not in the targets keeps its weight for that attribute, and the known rows
    together keep theirs, so the known rows end with the target shares. A category with
    share 0 gets weight 0. An attribute no row knows, or whose target category with a
    share > 0 has no known row, is left out (`skipped`, with the reason); targets the
    rows cannot meet together (no convergence) are an error."""
    n = len(next(iter(groups.values()))) if groups else 0
    w = np.ones(n)
    out = Raking(w)
    masks: dict[str, list[tuple[np.ndarray, float]]] = {}
    known: dict[str, np.ndarray] = {}
    for a, shares in targets.items():
        cats = np.asarray([c if c in shares else None for c in groups[a]], dtype=object)
        total = sum(shares.values())
        missing = [c for c, s in shares.items() if s > 0 and not np.any(cats == c)]
        if not np.any(cats != None):  # noqa: E711 (elementwise)
            out.skipped[a] = "no row knows it"
        elif missing:
            out.skipped[a] = f"no known row for {missing[0]!r}"
        elif total <= 0:
            out.skipped[a] = f"target shares sum to {total}"
        else:
            known[a] = cats != None  # noqa: E711
            masks[a] = [(cats == c, s / total) for c, s in shares.items()]
            out.raked.append(a)
    for _ in range(max_iter):
        worst = 0.0
        for a in out.raked:
            base = w[known[a]].sum()
            if base <= 0:
                raise ValueError(f"ipf: every known row of {a} went to weight 0")
            ratios = []
            for mask, want in masks[a]:
                have = w[mask].sum() / base
                worst = max(worst, abs(want - have))
                ratios.append((mask, want / have if have > 0 else 0.0))
            for mask, r in ratios:
                w[mask] *= r
        if worst < tol:
            out.weights = w * (n / w.sum())
            return out
    raise ValueError(
        f"ipf: no convergence in {max_iter} rounds (largest share gap {worst:.3g}); "
        "these rows cannot meet the targets together"
    )


def weighted_mean(values: Sequence[float], weights: Sequence[float]) -> float:
    """Mean of `values` under `weights`."""
    v, w = np.asarray(values, float), np.asarray(weights, float)
    return float(np.sum(v * w) / np.sum(w))
