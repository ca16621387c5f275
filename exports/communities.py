"""Community labels of rare subreddits, from who they share users with (silver/edges).

Every subreddit with fewer than ``export.min_community_users`` users gets a label that
says what it is about without naming it: "a community near r/Big", Big being its nearest
large subreddit by lift with generic hubs left out (`exports.neighbours`); else, when no
large subreddit is near enough, "a small community about w1, w2, w3" in its users' own
words (`exports.topics`); else "a small community". A label that would still hold a rare
subreddit's name (as `exports.scrub` matches names) falls back to "a small community".
`exports.scrub` puts the labels in place of the names.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from contract.stage_io import TableAccess
from exports import topics
from exports.neighbours import GENERIC_Z, MAX_P, MIN_LIFT, MIN_SHARED, Overlap, nearest
from exports.scrub import CommunityScrubber
from exports.topics import community_words

#: what the labels are computed from
INPUTS = ("silver/users", "silver/subreddits", "silver/edges", *topics.INPUTS)

#: the stand-in of a rare subreddit with no large subreddit near enough
SMALL = "a small community"


def community_labels(
    tables: TableAccess,
    min_users: int,
    min_shared: int = MIN_SHARED,
    min_lift: float = MIN_LIFT,
    max_p: float = MAX_P,
    generic_z: float = GENERIC_Z,
) -> dict[str, str]:
    """Every subreddit with fewer than `min_users` users -> its label: "a community near
    r/Big" (`exports.neighbours.nearest` with these thresholds), else "a small community
    about ..." (`exports.topics`), else "a small community". Reads only the rare
    subreddits' edges, their members' edges into large subreddits and their snippets."""
    subs = tables.read("silver/subreddits", ["subreddit_id", "subreddit", "users"])
    rare_mask = pc.less(subs["users"], min_users)
    rare, big = subs.filter(rare_mask), subs.filter(pc.invert(rare_mask))
    if not rare.num_rows:
        return {}
    near: dict[int, str] = {}
    if big.num_rows:
        picks = nearest(_overlap(tables, rare, big), min_shared, min_lift, max_p, generic_z)
        big_names = _names(big)
        near = {r: f"a community near r/{big_names[b]}" for r, b in picks.items()}
    names = _names(rare)
    words = community_words(tables, {s: n for s, n in names.items() if s not in near})
    about = {s: f"{SMALL} about {', '.join(w)}" for s, w in words.items()}
    labels = {name: near.get(s) or about.get(s) or SMALL for s, name in names.items()}
    scrub = CommunityScrubber(labels).text
    return {name: label if scrub(label) == label else SMALL for name, label in labels.items()}


def _overlap(tables: TableAccess, rare: pa.Table, big: pa.Table) -> Overlap:
    """Users shared by each (rare, large) pair with any, and the sizes lift needs."""
    rare_ids = pa.array(rare["subreddit_id"].to_pylist(), pa.int32())
    mine = _edges(tables, ds.field("subreddit_id").isin(rare_ids))
    members = pc.unique(mine["user_id"])
    big_ids = pa.array(big["subreddit_id"].to_pylist(), pa.int32())
    theirs = _edges(
        tables, ds.field("user_id").isin(members) & ds.field("subreddit_id").isin(big_ids)
    ).rename_columns(["user_id", "big_id"])
    shared = (
        mine.join(theirs, "user_id", join_type="inner")
        .group_by(["subreddit_id", "big_id"])
        .aggregate([("user_id", "count_distinct")])
    )
    return Overlap(
        users=tables.read("silver/users", ["user_id"]).num_rows,
        rare=_sizes(rare),
        big=_sizes(big),
        pairs=(
            np.asarray(shared["subreddit_id"].to_numpy(), np.int64),
            np.asarray(shared["big_id"].to_numpy(), np.int64),
            np.asarray(shared["user_id_count_distinct"].to_numpy(), np.int64),
        ),
    )


def _names(subs: pa.Table) -> dict[int, str]:
    return dict(zip(subs["subreddit_id"].to_pylist(), subs["subreddit"].to_pylist(), strict=True))


def _sizes(subs: pa.Table) -> dict[int, int]:
    return dict(zip(subs["subreddit_id"].to_pylist(), subs["users"].to_pylist(), strict=True))


def _edges(tables: TableAccess, where: ds.Expression) -> pa.Table:
    """The (user_id, subreddit_id) rows of silver/edges matching `where`; only those are
    read."""
    return tables.read("silver/edges", ["user_id", "subreddit_id"], filter=where)
