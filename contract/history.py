"""The benchmark's held-out rule, written once: which rows of a lake table belong to a
held-out reference post (all of its images, its title and the comments under it), and a
table's history view without them. The benchmark split comes first; every stage that
learns or conditions reads history only (`StageIO.history`)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from contract.errors import ContractError

#: the table that says which posts are held out as benchmark references
REFERENCES = "bench/references"
#: per table, the columns holding a post id; a row is held out when any of them names a
#: held-out post (a snippet is a post's title or a comment under it)
POST_COLUMNS: dict[str, tuple[str, ...]] = {
    "silver/user_images": ("post_id",),
    "silver/image_embeddings": ("post_id",),
    "silver/snippets": ("record_id", "post_id"),
}


#: what the edges' history view needs besides the columns asked for
EDGE_COLUMNS = ("user_id", "subreddit_id", "posts", "comments")


def held_out(table: pa.Table, name: str, posts: pa.Array) -> pa.Array:
    """Boolean mask: the rows of `table` (lake table `name`) that belong to held-out posts."""
    mask = pa.array([False] * table.num_rows, pa.bool_())
    for col in POST_COLUMNS[name]:
        if col in table.column_names:
            mask = pc.or_(mask, pc.fill_null(pc.is_in(table[col], posts), False))
    return mask


def edges_without_held_out(edges: pa.Table, references: pa.Table) -> pa.Table:
    """silver/edges as if the held-out posts had not been made: each (user, subreddit)
    edge loses one post per held-out post in it, and an edge left with no post and no
    comment (a community the user shows only in a held-out post) goes."""
    if not references.num_rows or not edges.num_rows:
        return edges
    held = (
        references.select(["user_id", "subreddit_id", "post_id"])
        .group_by(["user_id", "subreddit_id"])
        .aggregate([("post_id", "count_distinct")])
    )
    joined = edges.join(held, ["user_id", "subreddit_id"], join_type="left outer")
    held_posts = pc.fill_null(joined["post_id_count_distinct"], 0).cast(pa.int32())
    posts = pc.max_element_wise(pc.subtract(joined["posts"], held_posts), 0)
    joined = joined.set_column(joined.schema.get_field_index("posts"), "posts", posts)
    keep = pc.greater(pc.add(joined["posts"], joined["comments"]), 0)
    out = joined.filter(keep).drop_columns(["post_id_count_distinct"])
    return out.select(edges.column_names).sort_by(
        [("user_id", "ascending"), ("subreddit_id", "ascending")]
    )


def without_held_out(table: pa.Table, name: str, references: pa.Table) -> pa.Table:
    """`table` minus every row of a held-out reference post (all its images, its title
    and the comments under it); for silver/edges, see `edges_without_held_out`."""
    if name == "silver/edges":
        return edges_without_held_out(table, references)
    if name not in POST_COLUMNS:
        raise ContractError(f"{name} has no history view (known: {', '.join(POST_COLUMNS)})")
    posts = pc.unique(references["post_id"])
    if not len(posts) or not table.num_rows:
        return table
    return table.filter(pc.invert(held_out(table, name, posts)))
