"""`zipp sample`: planted world v2, a Reddit world written as published monthly dumps.

Output under DIR:
  dumps/RS_YYYY-MM.zst, dumps/RC_YYYY-MM.zst   Pushshift/Arctic Shift field names and types
  images/<id>.png                              served as <image_base_url>/images/<id>.png
  ground_truth/users.parquet                   per user: communities, mixture, taste,
                                               activity, generic share, demographics,
                                               favourite subreddits, disliked community
  ground_truth/users_by_month.parquet          per user and month: communities, mixture
  ground_truth/communities.parquet             vocabulary, taste, subreddits, prior,
                                               demographic affinity
  ground_truth/subreddits.parquet              community (null: generic), popularity, rank
  ground_truth/images.parquet                  per image: post, author, subreddit, the
                                               taste it was rendered from
  world.json                                   the spec
Deterministic by seed: the same spec gives byte-identical dumps, images and ground truth.

What is planted (no pipeline stage reads it; checks and reports may):
- communities with a vocabulary and a visual taste; each owns subreddits whose
  popularity follows one Zipf law over all community subreddits; a community's prior
  grows with the summed popularity of its subreddits, so community sizes vary;
- generic high-traffic subreddits without a taste (AskReddit, news, ...) that take a
  Beta-distributed share of each user's activity, often more than any taste subreddit;
- users in 1-4 communities with a Dirichlet mixture and a few favourite subreddits per
  community (picked by popularity); the mixture drifts month to month and some users
  pick up a new community in a later month;
- demographics (age band, gender, region), shown weakly in the community prior and in
  occasional marker phrases in comments;
- image posts whose look follows the poster's taste with noise (per-image taste kept);
- one disliked community per user (not one they are or may become a member of): a small
  share of their comments (`DISLIKE_SHARE`) goes to its subreddits (by popularity),
  worded with generic negativity plus that community's words, and downvoted.

Everything is drawn with numpy over whole months (see `world/dumps.py` for
the vectorised JSON writer), so a million users write in minutes.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from world.images import TASTE_FIELDS
from world.lines import b36, check_json_safe
from world.vocab import (
    ADJECTIVES,
    GENERIC_SUBREDDITS,
    NOUNS,
    SUBREDDIT_NUMBERS,
    SUBREDDIT_PREFIXES,
    SUBREDDIT_SUFFIXES,
    THEMES,
)

WORLD_VERSION = "planted-world-v2"

POST_KINDS = ("self", "image", "gallery", "link")
SELF, IMAGE, GALLERY, LINK = range(len(POST_KINDS))
#: Post kind probabilities in community subreddits and in generic ones.
COMMUNITY_KIND_P = (0.35, 0.35, 0.15, 0.15)
GENERIC_KIND_P = (0.5, 0.08, 0.0, 0.42)

#: Demographic attribute -> (values, population shares).
DEMOGRAPHICS: dict[str, tuple[tuple[str, ...], tuple[float, ...]]] = {
    "age_band": (("18-24", "25-34", "35-44", "45-54", "55+"), (0.3, 0.33, 0.18, 0.11, 0.08)),
    "gender": (("female", "male", "nonbinary"), (0.4, 0.56, 0.04)),
    "region": (
        ("north_america", "europe", "latin_america", "asia", "oceania", "africa"),
        (0.45, 0.25, 0.1, 0.1, 0.05, 0.05),
    ),
}
DEMOGRAPHIC_VALUES = tuple(v for values, _ in DEMOGRAPHICS.values() for v in values)

ZIPF_EXPONENT = 1.0  # subreddit popularity ~ 1 / rank**s over all community subreddits
PRIOR_POWER = 0.5  # community prior ~ (summed popularity of its subreddits) ** power
MIN_SUBREDDITS = 2  # per community
COMMUNITIES_P = (0.4, 0.3, 0.2, 0.1)  # users in 1, 2, 3, 4 communities
MAX_COMMUNITIES = len(COMMUNITIES_P)
MIXTURE_ALPHA = 1.5  # Dirichlet concentration of a user's community mixture
FAVOURITES = 3  # favourite draws (with replacement, by popularity) per user and community
EXPLORE = 0.1  # share of community activity outside the favourites (by popularity)
STRAY = 0.03  # share of community activity in a random community's subreddit
GENERIC_SHARE = (2.0, 2.0)  # Beta(a, b) of each user's share of generic activity
GENERIC_CONCENTRATION = 3.0  # Dirichlet over generic subreddits, mean = their popularity
DRIFT_SIGMA = 0.3  # month to month: mixture *= lognormal(0, sigma), renormalised
PICKUP = 0.15  # chance per later month that a user in < 4 communities joins one more
PICKUP_SHARE = (0.1, 0.35)  # the new community's share of that month's mixture
DEMOGRAPHIC_AFFINITY = 0.4  # sd of each community's log-prior shift per demographic value
TASTE_NOISE = 0.04  # user taste around the mixture of their communities' tastes
IMAGE_NOISE = 0.05  # image taste around its poster's taste
GALLERY_FAILED = 0.2  # galleries with a failed upload entry
DISLIKE_SHARE = 0.04  # share of a user's comments that are downvoted, in the disliked community


@dataclass(frozen=True)
class SampleSpec:
    """What to generate. The defaults are the demo world."""

    users: int = 2000
    seed: int = 7
    communities: int = 48
    subreddits: int = 1200  # community subreddits; the generic ones come on top
    months: tuple[str, ...] = ("2021-05", "2021-06")
    posts_per_user_month: float = 2.0
    comments_per_user_month: float = 8.0
    image_base_url: str = "http://127.0.0.1:8765"
    image_size: int = 64
    images: bool = True
    corrupt_lines: int = 2
    deleted_share: float = 0.03
    removed_share: float = 0.03
    zstd_level: int = 3  # one setting for demo and large worlds (see lines.zstd_params)


def month_bounds(month: str) -> tuple[int, int]:
    """[start, end) of a YYYY-MM month in epoch seconds (UTC)."""
    y, m = (int(x) for x in month.split("-"))
    start = int(datetime(y, m, 1, tzinfo=UTC).timestamp())
    return start, start + calendar.monthrange(y, m)[1] * 86400


def _camel(theme: str) -> str:
    return "".join(w.capitalize() for w in theme.split("_"))


def subreddit_names(
    theme: str, vocab: tuple[str, ...], n: int, rng: np.random.Generator, taken: set[str]
) -> list[str]:
    """`n` Reddit-like names for a community's subreddits, most popular first.

    The theme itself comes first (`AnalogPhotography`, `analogphotography`), then vocabulary
    words with suffixes, prefixes and numbers (`LeicaPorn`, `TruePortra`, `Velvia400`) in a
    seeded order. Unique case-insensitively across `taken`, 3-21 characters.
    """
    words = [w.capitalize() for w in vocab]
    combos = [w + s for w in words for s in SUBREDDIT_SUFFIXES]
    combos += [p + w for w in words for p in SUBREDDIT_PREFIXES]
    combos += [w + d for w in words for d in SUBREDDIT_NUMBERS] + list(vocab)
    head = [_camel(theme), theme.replace("_", "")]
    names = []
    for name in head + [combos[i] for i in rng.permutation(len(combos))]:
        if 3 <= len(name) <= 21 and name.lower() not in taken:
            taken.add(name.lower())
            names.append(name)
            if len(names) == n:
                return names
    base = _camel(theme)[:14]
    while len(names) < n:  # only when many communities share one theme
        name = f"{base}{len(taken)}"
        if name.lower() not in taken:
            taken.add(name.lower())
            names.append(name)
    return names


def _rows_cdf(weights: np.ndarray) -> np.ndarray:
    """Per-row cumulative distributions, flattened with the row number added (see `draw`)."""
    cum = np.cumsum(weights, axis=1)
    cum /= cum[:, -1:]
    cum[:, -1] = 1.0
    return (cum + np.arange(len(weights))[:, None]).ravel()


def draw(flat_cdf: np.ndarray, width: int, rows: np.ndarray, u: np.ndarray) -> np.ndarray:
    """One column per entry of `rows`, drawn from that row's distribution (inverse CDF)."""
    col = np.searchsorted(flat_cdf, rows + u, side="right") - rows * width
    return np.minimum(col, width - 1)


@dataclass
class Month:
    """One month's activity as arrays; posts and comments sorted by created_utc."""

    index: int
    name: str
    start: int
    end: int
    # posts
    post_serial: np.ndarray  # global post number (ids derive from it)
    post_user: np.ndarray
    post_sub: np.ndarray
    post_kind: np.ndarray  # index into POST_KINDS
    post_deleted: np.ndarray
    post_created: np.ndarray
    post_comments: np.ndarray  # num_comments, bots included
    post_failed: np.ndarray  # galleries with a failed upload entry
    # images, grouped by post in post order
    image_post: np.ndarray  # row in the posts arrays
    image_position: np.ndarray  # 0 for image posts, 0.. for gallery items
    image_taste: np.ndarray  # (images, len(TASTE_FIELDS))
    image_follows: np.ndarray  # False: generic subreddit, random look
    # comments
    comment_serial: np.ndarray
    comment_user: np.ndarray  # -1 for bots
    comment_bot: np.ndarray  # index into BOTS, -1 for users
    comment_post: np.ndarray  # row in the posts arrays
    comment_parent: np.ndarray  # row in the comments arrays, -1: the post
    comment_deleted: np.ndarray
    comment_created: np.ndarray
    comment_negative: np.ndarray  # downvoted, in the author's disliked community


class World:
    """The planted structure: communities, subreddits, users, their mixtures and tastes.

    Subreddits are numbered community by community (most popular first inside each), then
    the generic ones. Arrays are indexed by user, community or subreddit number.
    """

    def __init__(self, spec: SampleSpec):
        if spec.subreddits < MIN_SUBREDDITS * spec.communities:
            raise ValueError(f"need at least {MIN_SUBREDDITS} subreddits per community")
        check_json_safe(spec.image_base_url)
        self.spec = spec
        self.max_communities = min(MAX_COMMUNITIES, spec.communities)
        self.bounds = [month_bounds(m) for m in spec.months]
        rng = np.random.default_rng([spec.seed, 0])
        self._communities(rng)
        self._subreddits(rng)
        self._users(rng)
        self._memberships(rng)
        self._tastes(rng)
        self._dislikes(np.random.default_rng([spec.seed, 6]))

    # ------------------------------------------------------------ structure
    def _communities(self, rng: np.random.Generator) -> None:
        c = self.spec.communities
        themes = list(THEMES)
        self.theme = np.arange(c) % len(themes)  # index into THEMES
        self.community_names = [
            themes[k % len(themes)] + (f"_{k // len(themes)}" if k >= len(themes) else "")
            for k in range(c)
        ]
        hue = rng.uniform(0, 1, c)
        self.community_taste = np.stack(
            [
                hue,
                (hue + rng.uniform(0.05, 0.25, c)) % 1,
                rng.uniform(0.2, 1, c),
                rng.uniform(0.25, 0.95, c),
                rng.uniform(0, 1, c),
                rng.uniform(0, 1, c),
            ],
            axis=1,
        )
        self.affinity = rng.normal(0, DEMOGRAPHIC_AFFINITY, (c, len(DEMOGRAPHIC_VALUES)))

    def _subreddits(self, rng: np.random.Generator) -> None:
        c, s = self.spec.communities, self.spec.subreddits
        size_weight = rng.lognormal(0, 0.7, c)
        sizes = MIN_SUBREDDITS + rng.multinomial(
            s - MIN_SUBREDDITS * c, size_weight / size_weight.sum()
        )
        community = np.repeat(np.arange(c), sizes)
        weight = 1.0 / (rng.permutation(s) + 1.0) ** ZIPF_EXPONENT
        order = np.lexsort((-weight, community))
        self.sub_community = community[order]
        self.sub_weight = weight[order] / weight.sum()  # sums to 1 over community subreddits
        self.community_lo = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        self.community_size = sizes
        self.community_weight = np.bincount(self.sub_community, self.sub_weight, c)
        prior = self.community_weight**PRIOR_POWER
        self.community_prior = prior / prior.sum()
        taken = {g.lower() for g in GENERIC_SUBREDDITS}
        names: list[str] = []
        themes = list(THEMES)
        for k in range(c):
            theme = themes[self.theme[k]]
            names += subreddit_names(theme, THEMES[theme], int(sizes[k]), rng, taken)
        generic = 1.0 / np.arange(1, len(GENERIC_SUBREDDITS) + 1)
        self.generic_weight = generic / generic.sum()
        self.first_generic = s
        self.subreddit_names = names + list(GENERIC_SUBREDDITS)
        n = len(self.subreddit_names)
        self.sub_community = np.concatenate([self.sub_community, np.full(len(generic), -1)])
        self.subreddit_ids = pc.binary_join_element_wise(
            "t5_", b36(36**4 + np.arange(n) * 7919), ""
        )
        self.sub_cdf = np.cumsum(self.sub_weight)  # over community subreddits

    def _users(self, rng: np.random.Generator) -> None:
        n = self.spec.users
        numbers = 99990  # suffixes 10..99999
        combos = len(ADJECTIVES) * len(NOUNS) * numbers
        pick = rng.choice(combos, n, replace=False)
        adj, rest = np.divmod(pick, len(NOUNS) * numbers)
        noun, number = np.divmod(rest, numbers)
        self.usernames = pc.binary_join_element_wise(
            pa.array(ADJECTIVES).take(pa.array(adj)),
            "_",
            pa.array(NOUNS).take(pa.array(noun)),
            pc.cast(pa.array(number + 10), pa.string()),
            "",
        )
        self.user_fullnames = pc.binary_join_element_wise(
            "t2_", b36(36**5 + np.arange(n) * 104729), ""
        )
        self.demographics = np.stack(
            [rng.choice(len(values), n, p=p) for values, p in DEMOGRAPHICS.values()], axis=1
        )
        offsets = np.cumsum([0] + [len(v) for v, _ in DEMOGRAPHICS.values()])[:-1]
        self.demographic_value = self.demographics + offsets  # index into DEMOGRAPHIC_VALUES
        self.activity = rng.lognormal(0, 0.6, n)
        self.generic_share = rng.beta(*GENERIC_SHARE, n)
        alpha = GENERIC_CONCENTRATION * self.generic_weight
        pref = rng.gamma(alpha, size=(n, len(alpha))) + 1e-12
        self.generic_pref = pref / pref.sum(axis=1, keepdims=True)
        self.generic_cdf = _rows_cdf(self.generic_pref)

    def _memberships(self, rng: np.random.Generator) -> None:
        """Communities (Gumbel top-k on the demographic prior), mixtures, drift, favourites."""
        n, k = self.spec.users, self.max_communities
        log_prior = np.log(self.community_prior)
        top = np.empty((n, k), dtype=np.int64)
        for lo in range(0, n, 1 << 17):
            hi = min(n, lo + (1 << 17))
            logits = log_prior + self.affinity[:, self.demographic_value[lo:hi]].sum(axis=2).T
            keys = logits + rng.gumbel(size=logits.shape)
            best = np.argpartition(-keys, k - 1, axis=1)[:, :k]
            rank = np.argsort(-np.take_along_axis(keys, best, axis=1), axis=1)
            top[lo:hi] = np.take_along_axis(best, rank, axis=1)
        self.top = top  # the first `joined` are the user's communities, in order of joining
        p = np.array(COMMUNITIES_P[:k]) / sum(COMMUNITIES_P[:k])
        joined = rng.choice(k, n, p=p) + 1
        gamma = rng.gamma(MIXTURE_ALPHA, size=(n, k)) * (np.arange(k) < joined[:, None])
        mix = gamma / gamma.sum(axis=1, keepdims=True)
        mixes = [mix]
        for _ in self.spec.months[1:]:
            mix = mix * rng.lognormal(0, DRIFT_SIGMA, (n, k))
            mix /= mix.sum(axis=1, keepdims=True)
            pickup = (joined < k) & (rng.random(n) < PICKUP)
            share = rng.uniform(*PICKUP_SHARE, n) * pickup
            mix *= 1 - share[:, None]
            mix[np.flatnonzero(pickup), joined[pickup]] = share[pickup]
            joined = joined + pickup
            mixes.append(mix)
        self.joined = joined
        self.month_mix = np.stack(mixes)  # (months, users, max_communities)
        self.mix_cdf = [_rows_cdf(m) for m in self.month_mix]
        # favourites: FAVOURITES draws by popularity inside each of the (possible) communities
        self.favourites = self.popular_in(
            np.repeat(top, FAVOURITES, axis=1), rng.random((n, k * FAVOURITES))
        ).reshape(n, k, FAVOURITES)

    def _tastes(self, rng: np.random.Generator) -> None:
        """Mixture-weighted community tastes; the hues are the dominant community's."""
        mix = self.mixture
        taste = np.einsum("uk,ukf->uf", mix, self.community_taste[self.top])
        dominant = self.top[np.arange(len(mix)), mix.argmax(axis=1)]
        taste[:, :2] = self.community_taste[dominant, :2]  # hues do not average
        noise = rng.normal(0, TASTE_NOISE, taste.shape)
        self.taste = np.clip(taste + noise, 0, 1)

    def _dislikes(self, rng: np.random.Generator) -> None:
        """One community per user, uniform over those outside `top` (the user's communities
        and every one they could pick up); -1 when no community is left."""
        n, (c, k) = self.spec.users, (self.spec.communities, self.max_communities)
        if c <= k:
            self.disliked = np.full(n, -1, dtype=np.int64)
            return
        pick = rng.integers(0, c - k, n)
        for member in np.sort(self.top, axis=1).T:  # the pick-th community not in `top`
            pick += pick >= member
        self.disliked = pick

    @property
    def mixture(self) -> np.ndarray:
        """Each user's mixture over `top`, averaged over the months (sums to 1)."""
        return self.month_mix.mean(axis=0)

    def popular_in(self, community: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Subreddits drawn by popularity inside the given communities (u uniform [0, 1))."""
        lo = self.community_lo[community]
        before = np.where(lo > 0, self.sub_cdf[lo - 1], 0.0)
        target = before + u * self.community_weight[community]
        hi = lo + self.community_size[community] - 1
        return np.clip(np.searchsorted(self.sub_cdf, target, side="right"), lo, hi)

    # ------------------------------------------------------------ activity
    def choose_subreddits(
        self, users: np.ndarray, month: int, rng: np.random.Generator
    ) -> np.ndarray:
        """A subreddit per activity of `users` in a month: generic, favourite or explored."""
        sub = np.empty(len(users), dtype=np.int64)
        generic = rng.random(len(users)) < self.generic_share[users]
        g = users[generic]
        width = len(GENERIC_SUBREDDITS)
        sub[generic] = self.first_generic + draw(self.generic_cdf, width, g, rng.random(len(g)))
        c_users = users[~generic]
        m = len(c_users)
        slot = draw(self.mix_cdf[month], self.max_communities, c_users, rng.random(m))
        fav = self.favourites[c_users, slot, rng.integers(0, FAVOURITES, m)]
        community = self.top[c_users, slot]
        explore = rng.random(m) < EXPLORE
        fav[explore] = self.popular_in(community[explore], rng.random(int(explore.sum())))
        stray = rng.random(m) < STRAY
        fav[stray] = np.searchsorted(self.sub_cdf, rng.random(int(stray.sum())), side="right")
        sub[~generic] = np.minimum(fav, self.first_generic - 1)
        return sub

    def month(self, index: int, post_base: int = 0, comment_base: int = 0) -> Month:
        """One month's posts, images and comments (serial numbers from the given bases)."""
        spec, (start, end) = self.spec, self.bounds[index]
        rng = np.random.default_rng([spec.seed, 1, index])
        n = spec.users
        # posts
        users = np.repeat(np.arange(n), rng.poisson(spec.posts_per_user_month * self.activity))
        sub = self.choose_subreddits(users, index, rng)
        generic = self.sub_community[sub] < 0
        kind = np.where(
            generic,
            rng.choice(4, len(users), p=GENERIC_KIND_P),
            rng.choice(4, len(users), p=COMMUNITY_KIND_P),
        )
        deleted = rng.random(len(users)) < spec.deleted_share
        kind[deleted & np.isin(kind, (IMAGE, GALLERY))] = LINK  # no media of deleted authors
        created = rng.integers(start, end, len(users))
        order = np.argsort(created, kind="stable")
        users, sub, kind, deleted, created = (
            a[order] for a in (users, sub, kind, deleted, created)
        )
        failed = (kind == GALLERY) & (rng.random(len(users)) < GALLERY_FAILED)
        images = self._images(users, sub, kind, rng)
        comments = self._comments(users, sub, created, index, end, rng)
        return Month(
            index=index,
            name=spec.months[index],
            start=start,
            end=end,
            post_serial=post_base + np.arange(len(users)),
            post_user=users,
            post_sub=sub,
            post_kind=kind,
            post_deleted=deleted,
            post_created=created,
            post_comments=np.bincount(comments["post"], minlength=len(users)),
            post_failed=failed,
            **images,
            comment_serial=comment_base + np.arange(len(comments["post"])),
            **{f"comment_{k}": v for k, v in comments.items()},
        )

    def _images(
        self, users: np.ndarray, sub: np.ndarray, kind: np.ndarray, rng: np.random.Generator
    ) -> dict[str, np.ndarray]:
        """Images of the image (1) and gallery (2-4) posts; taste = poster's + noise."""
        per_post = np.where(kind == GALLERY, rng.integers(2, 5, len(kind)), kind == IMAGE)
        post = np.repeat(np.arange(len(kind)), per_post)
        first = np.repeat(np.cumsum(per_post) - per_post, per_post)
        follows = self.sub_community[sub[post]] >= 0
        taste = self.taste[users[post]] + rng.normal(0, IMAGE_NOISE, (len(post), len(TASTE_FIELDS)))
        taste[:, :2] %= 1.0  # hues wrap
        taste = np.clip(taste, 0, 1)
        taste[~follows] = rng.random((int((~follows).sum()), len(TASTE_FIELDS)))
        return {
            "image_post": post,
            "image_position": np.arange(len(post)) - first,
            "image_taste": taste,
            "image_follows": follows,
        }

    def _comments(
        self,
        post_user: np.ndarray,
        post_sub: np.ndarray,
        post_created: np.ndarray,
        index: int,
        end: int,
        rng: np.random.Generator,
    ) -> dict[str, np.ndarray]:
        """Users' comments on this month's posts of the subreddit they chose, then bots'."""
        spec, n_posts = self.spec, len(post_user)
        n = spec.users
        users = np.repeat(np.arange(n), rng.poisson(spec.comments_per_user_month * self.activity))
        sub = self.choose_subreddits(users, index, rng)
        negative = self._downvoted(users, sub, index)
        by_sub = np.argsort(post_sub, kind="stable")
        count = np.bincount(post_sub, minlength=len(self.subreddit_names))
        first = np.cumsum(count) - count
        keep = count[sub] > 0  # no post in that subreddit this month: no comment
        users, sub, negative = users[keep], sub[keep], negative[keep]
        post = by_sub[first[sub] + (rng.random(len(sub)) * count[sub]).astype(np.int64)]
        since = post_created[post]
        created = since + (rng.random(len(post)) * (end - since)).astype(np.int64)
        deleted = rng.random(len(post)) < spec.deleted_share
        bot_post = [np.flatnonzero(rng.random(n_posts) < 0.1)]  # AutoModerator stickies
        for _ in range(3):  # RemindMeBot, sneakpeekbot, WikiSummarizerBot
            bot_post.append(rng.integers(0, n_posts, max(1, len(post) // 200) * (n_posts > 0)))
        bots = np.concatenate([np.full(len(p), b) for b, p in enumerate(bot_post)]).astype(int)
        bot_post = np.concatenate(bot_post).astype(np.int64)
        all_post = np.concatenate([post, bot_post])
        all_created = np.concatenate([created, np.minimum(post_created[bot_post] + 5, end - 1)])
        order = np.argsort(all_created, kind="stable")
        out = {
            "user": np.concatenate([users, np.full(len(bot_post), -1)])[order],
            "bot": np.concatenate([np.full(len(post), -1), bots])[order],
            "post": all_post[order],
            "deleted": np.concatenate([deleted, np.zeros(len(bot_post), bool)])[order],
            "created": all_created[order],
            "negative": np.concatenate([negative, np.zeros(len(bot_post), bool)])[order],
        }
        out["parent"] = _reply_parents(out["post"], out["bot"] < 0, rng)
        return out

    def _downvoted(self, users: np.ndarray, sub: np.ndarray, index: int) -> np.ndarray:
        """Move `DISLIKE_SHARE` of the comments to a subreddit of their author's disliked
        community (by popularity), in place; returns which (own seeded stream)."""
        rng = np.random.default_rng([self.spec.seed, 6, index])
        disliked = self.disliked[users]
        negative = (disliked >= 0) & (rng.random(len(users)) < DISLIKE_SHARE)
        sub[negative] = self.popular_in(disliked[negative], rng.random(int(negative.sum())))
        return negative

    # ------------------------------------------------------------ ground truth
    def ground_truth(self, images: pa.Table) -> dict[str, pa.Table]:
        """The planted tables; `images` is the per-image table gathered while writing."""
        names = np.array(self.community_names, dtype=object)
        mix = self.mixture
        order = np.argsort(-mix, axis=1, kind="stable")
        mix_sorted = np.take_along_axis(mix, order, axis=1)
        top_sorted = np.take_along_axis(self.top, order, axis=1)
        k = (mix_sorted > 0).sum(axis=1)
        subs = np.array(self.subreddit_names, dtype=object)
        slots = np.arange(self.max_communities)[None, :, None] < self.joined[:, None, None]
        fav = np.sort(np.where(slots, self.favourites, -1).reshape(len(mix), -1), axis=1)
        fresh = np.diff(fav, axis=1, prepend=-1) > 0  # distinct, joined communities only
        fav = np.take_along_axis(fav, np.argsort(~fresh, axis=1, kind="stable"), axis=1)
        demo = {
            attr: np.array(values, dtype=object)[self.demographics[:, j]]
            for j, (attr, (values, _)) in enumerate(DEMOGRAPHICS.items())
        }
        users = pa.table(
            {
                "author": self.usernames,
                "author_fullname": self.user_fullnames,
                "communities": _ragged(names[top_sorted], k),
                "mixture": _ragged(mix_sorted, k),
                "taste": _ragged(self.taste, np.full(len(mix), len(TASTE_FIELDS))),
                "activity": self.activity,
                "generic_share": self.generic_share,
                **{a: pa.array(v, pa.string()) for a, v in demo.items()},
                "favourite_subreddits": _ragged(subs[fav], fresh.sum(axis=1)),
                "disliked_community": pa.array(  # -1 (none) takes the appended null
                    np.append(names, None)[self.disliked].tolist(), pa.string()
                ),
            }
        )
        meta = {
            "taste_fields": ",".join(TASTE_FIELDS),
            "world": WORLD_VERSION,
            "generic_subreddits": ",".join(GENERIC_SUBREDDITS),
        }
        return {
            "users": users.replace_schema_metadata(meta),
            "users_by_month": self._users_by_month(names),
            "communities": self._communities_table(),
            "subreddits": self._subreddits_table(),
            "images": images,
        }

    def _users_by_month(self, names: np.ndarray) -> pa.Table:
        parts = []
        for m, month in enumerate(self.spec.months):
            mix = self.month_mix[m]
            order = np.argsort(-mix, axis=1, kind="stable")
            mix_sorted = np.take_along_axis(mix, order, axis=1)
            k = (mix_sorted > 0).sum(axis=1)
            top = np.take_along_axis(self.top, order, axis=1)
            parts.append(
                pa.table(
                    {
                        "author": self.usernames,
                        "month": pa.array([month] * self.spec.users, pa.string()),
                        "communities": _ragged(names[top], k),
                        "mixture": _ragged(mix_sorted, k),
                    }
                )
            )
        return pa.concat_tables(parts)

    def _communities_table(self) -> pa.Table:
        themes = list(THEMES)
        subs = [
            self.subreddit_names[lo : lo + size]
            for lo, size in zip(self.community_lo, self.community_size, strict=True)
        ]
        return pa.table(
            {
                "community": self.community_names,
                "subreddits": subs,
                "vocab": [list(THEMES[themes[t]]) for t in self.theme],
                "taste": pa.array(list(self.community_taste)),
                "prior": self.community_prior,
                "affinity": pa.array(list(self.affinity)),
            }
        ).replace_schema_metadata(
            {
                "taste_fields": ",".join(TASTE_FIELDS),
                "affinity_values": ",".join(DEMOGRAPHIC_VALUES),
            }
        )

    def _subreddits_table(self) -> pa.Table:
        community = [self.community_names[c] if c >= 0 else None for c in self.sub_community]
        generic = self.sub_community < 0
        popularity = np.concatenate([self.sub_weight, self.generic_weight])
        rank = np.empty(len(popularity), dtype=np.int64)
        rank[~generic] = np.argsort(np.argsort(-self.sub_weight, kind="stable")) + 1
        rank[generic] = np.arange(1, generic.sum() + 1)
        return pa.table(
            {
                "subreddit": self.subreddit_names,
                "subreddit_id": self.subreddit_ids,
                "community": pa.array(community, pa.string()),
                "generic": generic,
                "popularity": popularity,
                "rank": rank,
            }
        )


def _ragged(values: np.ndarray, lengths: np.ndarray) -> pa.ListArray:
    """The first `lengths[i]` entries of each row of a 2-D array, as a list column."""
    keep = np.arange(values.shape[1])[None, :] < lengths[:, None]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    flat = values[keep]
    flat = pa.array(flat.tolist()) if flat.dtype == object else pa.array(flat)
    return pa.ListArray.from_arrays(pa.array(offsets), flat)


def _reply_parents(post: np.ndarray, human: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per comment: -1 (replies to the post) or the row of an earlier user comment on the
    same post (30% of user comments that have one). Rows are sorted by created_utc."""
    parent = np.full(len(post), -1, dtype=np.int64)
    rows = np.flatnonzero(human)
    order = rows[np.argsort(post[rows], kind="stable")]  # by post, then by time
    grouped = post[order]
    start = np.searchsorted(grouped, grouped, side="left")
    rank = np.arange(len(order)) - start
    reply = (rank > 0) & (rng.random(len(order)) < 0.3)
    pick = start + (rng.random(len(order)) * rank).astype(np.int64)
    parent[order[reply]] = order[pick[reply]]
    return parent
