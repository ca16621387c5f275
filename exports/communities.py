"""Community labels of rare subreddits, from who they share users with (silver/edges).

Every subreddit with fewer than ``export.min_community_users`` users gets a label: "a
community near r/Big" (Big: the subreddit with at least that many users that shares the
most users with it) or "a small community" when there is none. `exports.scrub` puts the
labels in place of the names.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from contract.stage_io import TableAccess

#: what the labels are computed from
INPUTS = ("silver/subreddits", "silver/edges")


def community_labels(tables: TableAccess, min_users: int) -> dict[str, str]:
    """Every subreddit with fewer than `min_users` users -> its community label: "a
    community near r/Big", Big being the subreddit with at least `min_users` users that
    shares the most users with it (ties: the bigger, then the name), else "a small
    community". Reads only the rare subreddits' edges and their members' edges."""
    subs = tables.read("silver/subreddits", ["subreddit_id", "subreddit", "users"])
    rare_mask = pc.less(subs["users"], min_users)
    rare = subs.filter(rare_mask)
    if not rare.num_rows:
        return {}
    big = subs.filter(pc.invert(rare_mask))
    near: dict[int, str] = {}
    if big.num_rows:
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
        sizes = dict(zip(big["subreddit_id"].to_pylist(), big["users"].to_pylist(), strict=True))
        names = dict(
            zip(big["subreddit_id"].to_pylist(), big["subreddit"].to_pylist(), strict=True)
        )
        best: dict[int, tuple] = {}
        for s, b, n in zip(
            shared["subreddit_id"].to_pylist(),
            shared["big_id"].to_pylist(),
            shared["user_id_count_distinct"].to_pylist(),
            strict=True,
        ):
            rank = (-n, -sizes[b], names[b])
            if s not in best or rank < best[s]:
                best[s] = rank
        near = {s: rank[2] for s, rank in best.items()}
    return {
        name: f"a community near r/{near[s]}" if s in near else "a small community"
        for s, name in zip(
            rare["subreddit_id"].to_pylist(), rare["subreddit"].to_pylist(), strict=True
        )
    }


def _edges(tables: TableAccess, where: ds.Expression) -> pa.Table:
    """The (user_id, subreddit_id) rows of silver/edges matching `where`; only those are
    read."""
    return tables.read("silver/edges", ["user_id", "subreddit_id"], filter=where)
