"""Which large subreddit a rare one is about: its nearest large subreddit by lift, generic
hubs left out, from shared users alone (no ground truth, no names).

For a rare subreddit r (n_r users) and a large one b (n_b users) among N users, sharing
c users, the **lift** is c / E[c] with E[c] = n_r * n_b / N, the users they would share if
joining one said nothing about joining the other (PMI is its logarithm: the same order).
Raw shared users pick the biggest hub for nearly every rare subreddit; lift asks which
large subreddit is over-represented among the rare one's users.

The rule (`nearest`):

* **support floor**: the pair shares at least ``min_shared`` users, so a pair sharing one
  or two users by chance (one of a 3-user subreddit's users in a 2% subreddit: lift 17)
  never wins;
* **minimum lift**: at least ``min_lift`` (2: twice as many shared users as independence
  gives), so a large subreddit no more common among the rare one's users than among
  everyone never names it;
* **not chance**: so many shared users are unlikely under independence: the one-sided
  Fisher exact test (hypergeometric: n_r users drawn from N, n_b of them in b) gives
  P(shared >= c) at most ``max_p`` / K, K the large subreddits each rare one is compared
  with (Bonferroni: ``max_p`` = 0.05 is the chance that any of them is named by luck).
  A neighbouring community's subreddit, which a few of the rare one's users also join,
  passes lift 2 with 3 users but not this;
* **generic hubs out** (`generic_hubs`): a large subreddit whose users spread over the rare
  subreddits as independence predicts (AskReddit, funny: everyone's, about nothing) is
  never a stand-in. The test is Pearson's dispersion of its shared-user counts over every
  rare subreddit, zeros included: D = mean over r of (c - mu)^2 / var with mu = n_r * p,
  var = mu * (1 - p), p = n_b / N (binomial). Under independence each term has mean 1 and
  variance 2 + (1 - 6p(1-p)) / var, so D has mean 1 and a known spread; a large subreddit
  is generic unless D lies ``generic_z`` standard deviations above 1 (3: one-sided
  p ~ 0.001). A topical subreddit's users crowd into its few topical rare neighbours and
  leave the rest, so its D is far above 1; a hub's D stays near 1 however many users it
  shares with each rare subreddit;
* the highest lift wins; ties: more shared users, then the bigger, then the lower id.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import hypergeom

#: defaults of the rule (see the module docstring)
MIN_SHARED = 3
MIN_LIFT = 2.0
MAX_P = 0.05
GENERIC_Z = 3.0


@dataclass(frozen=True)
class Overlap:
    """Users shared between rare and large subreddits, and the sizes lift needs."""

    users: int  # N: users in the lake
    rare: dict[int, int]  # rare subreddit id -> its users
    big: dict[int, int]  # large subreddit id -> its users
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray]  # (rare id, large id, shared users)

    def sizes(self) -> tuple[np.ndarray, np.ndarray]:
        """Each pair's (rare users, large users)."""
        r, b, _ = self.pairs
        n_r = np.array([self.rare[x] for x in r.tolist()], float)
        n_b = np.array([self.big[x] for x in b.tolist()], float)
        return n_r, n_b

    def lift(self) -> np.ndarray:
        """Each pair's lift: shared users / the users independence would give."""
        n_r, n_b = self.sizes()
        return self.pairs[2] * self.users / np.maximum(n_r * n_b, 1.0)

    def chance(self) -> np.ndarray:
        """Each pair's one-sided Fisher p-value: P(shared >= c) under independence."""
        n_r, n_b = self.sizes()
        total = max(self.users, int(n_r.max(initial=0)), int(n_b.max(initial=0)))
        return hypergeom.sf(self.pairs[2] - 1, total, n_b, n_r)


def generic_hubs(overlap: Overlap, generic_z: float = GENERIC_Z) -> set[int]:
    """The large subreddits whose shared-user counts over the rare subreddits do not
    depart from independence by `generic_z` standard deviations (module docstring)."""
    if not overlap.rare or overlap.users <= 0:
        return set(overlap.big)
    sizes = np.array(list(overlap.rare.values()), float)
    count, total, inverse = len(sizes), sizes.sum(), (1.0 / sizes).sum()
    r, b, c = overlap.pairs
    n_r = np.array([overlap.rare[x] for x in r.tolist()], float)
    generic = set()
    for big, n_b in overlap.big.items():
        p = n_b / overlap.users
        q = p * (1.0 - p)
        if q <= 0:  # everyone (or no one) is in it: it says nothing
            generic.add(big)
            continue
        # sum over every rare subreddit of (c - mu)^2 / var, the zeros in closed form
        terms = total * p / (1.0 - p)
        mine = b == big
        mu, var = n_r[mine] * p, n_r[mine] * q
        terms += float((((c[mine] - mu) ** 2 - mu**2) / var).sum())
        spread = np.sqrt(2.0 * count + (1.0 - 6.0 * q) / q * inverse) / count
        if (terms / count - 1.0) / spread < generic_z:
            generic.add(big)
    return generic


def nearest(
    overlap: Overlap,
    min_shared: int = MIN_SHARED,
    min_lift: float = MIN_LIFT,
    max_p: float = MAX_P,
    generic_z: float = GENERIC_Z,
) -> dict[int, int]:
    """Each rare subreddit -> its nearest large subreddit by lift (module docstring);
    rare subreddits with none near enough are left out."""
    r, b, c = overlap.pairs
    generic = generic_hubs(overlap, generic_z)
    compared = len(overlap.big) - len(generic)
    if not len(r) or not compared:
        return {}
    lift = overlap.lift()
    keep = (c >= min_shared) & (lift >= min_lift) & ~np.isin(b, list(generic))
    keep &= overlap.chance() <= max_p / compared
    best: dict[int, tuple] = {}
    for rare, big, shared, value in zip(
        r[keep].tolist(), b[keep].tolist(), c[keep].tolist(), lift[keep].tolist(), strict=True
    ):
        rank = (-value, -shared, -overlap.big[big], big)
        if rare not in best or rank < best[rare]:
            best[rare] = rank
    return {rare: rank[3] for rare, rank in best.items()}
