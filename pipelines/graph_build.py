"""Graph build (Spark): bronze -> the silver user–subreddit graph, snippets, user images.

Outputs, each a DataFrame with the schema of `schemas.silver`:
  users, subreddits  dense int32 ids (rank of the name: stable across reruns on one input,
                     shifted by a refresh that adds names; whatever must stay put across
                     refreshes is drawn from the names, see `generation.bench.name_key`)
  edges              one row per (user, subreddit): posts, comments, score sum, first/last
                     time, and the link-prediction split
  snippets           per user and subreddit, comments and post titles ranked as evidence
  user_images        one row per image a user posted (i.redd.it, gallery items, preview)
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

REMOVED_BODIES = ("[removed]", "[deleted]", "")
_VIDEO_EXT = r"(?i)\.(gif|gifv|mp4|webm|mov)(\?|$)"
_IMAGE_EXT = r"(?i)\.(png|jpe?g|webp)(\?|$)"


@dataclass(frozen=True)
class GraphOptions:
    bots: frozenset[str] = frozenset()
    min_user_interactions: int = 3
    min_subreddit_users: int = 3
    start_utc: int | None = None
    end_utc: int | None = None
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    inductive_fraction: float = 0.1
    snippets_per_edge: int = 5
    seed: int = 0


def _unit_hash(seed: int, *cols) -> F.Column:
    """A deterministic uniform number in [0, 1) from column values and a seed."""
    h = F.xxhash64(F.lit(seed), *cols)
    return (F.pmod(h, F.lit(1_000_003)) / F.lit(1_000_003.0)).cast("double")


def _window(df: DataFrame, opts: GraphOptions) -> DataFrame:
    if opts.start_utc is not None:
        df = df.where(F.col("created_utc") >= opts.start_utc)
    if opts.end_utc is not None:
        df = df.where(F.col("created_utc") < opts.end_utc)
    return df


def human_authors(df: DataFrame, bots: frozenset[str]) -> DataFrame:
    """Rows by real users: not `[deleted]`, not null, not on the bot list."""
    cond = F.col("author").isNotNull() & ~F.col("author").isin("[deleted]", "")
    if bots:
        cond &= ~F.lower(F.col("author")).isin(*sorted(b.lower() for b in bots))
    return df.where(cond)


def interactions(subs: DataFrame, comments: DataFrame, opts: GraphOptions) -> DataFrame:
    """(author, subreddit, created_utc, score, is_post) of every kept post and comment.
    A downvoted one (score < 0) is no sign of interest: it makes no edge (the encoder
    and attention would read it as participation), but stays a snippet, the evidence of
    what the user dislikes (ViPer's other side)."""
    cols = ["author", "subreddit", "created_utc", "score"]
    posts = subs.select(*cols, F.lit(1).alias("is_post"))
    coms = comments.select(*cols, F.lit(0).alias("is_post"))
    both = human_authors(_window(posts.unionByName(coms), opts), opts.bots)
    liked = F.col("score").isNull() | (F.col("score") >= 0)
    return both.where(F.col("subreddit").isNotNull() & liked)


def _filter(inter: DataFrame, opts: GraphOptions) -> DataFrame:
    """Minimum interactions per user, then minimum users per subreddit, then users again."""
    for _ in range(2):
        active = (
            inter.groupBy("author")
            .count()
            .where(F.col("count") >= opts.min_user_interactions)
            .select("author")
        )
        inter = inter.join(active, "author", "left_semi")
        popular = (
            inter.groupBy("subreddit")
            .agg(F.countDistinct("author").alias("n"))
            .where(F.col("n") >= opts.min_subreddit_users)
            .select("subreddit")
        )
        inter = inter.join(popular, "subreddit", "left_semi")
    return inter


def dense_ids(names: DataFrame, name_col: str, id_col: str) -> DataFrame:
    """Dense int ids 0..n-1 in name order: a distributed sort + zipWithIndex (scales to
    tens of millions of names without a single-partition window)."""
    ordered = names.select(name_col).distinct().orderBy(name_col)
    spark = names.sparkSession
    rdd = ordered.rdd.zipWithIndex().map(lambda r: (r[0][0], int(r[1])))
    return spark.createDataFrame(rdd, f"{name_col} string, {id_col} int")


def build_graph(
    spark: SparkSession, subs: DataFrame, comments: DataFrame, opts: GraphOptions
) -> dict[str, DataFrame]:
    """Every silver table of the graph build, as DataFrames (not yet written)."""
    inter = _filter(interactions(subs, comments, opts), opts).cache()
    users = dense_ids(inter, "author", "user_id")
    subreddits = dense_ids(inter, "subreddit", "subreddit_id")
    held_out = _unit_hash(opts.seed, F.col("author")) < opts.inductive_fraction
    users = users.withColumn("role", F.when(held_out, "inductive").otherwise("train")).cache()
    subreddits = subreddits.cache()  # both feed every output: compute the id maps once

    edge_stats = inter.groupBy("author", "subreddit").agg(
        F.sum("is_post").cast("int").alias("posts"),
        F.sum(1 - F.col("is_post")).cast("int").alias("comments"),
        F.coalesce(F.sum("score"), F.lit(0)).cast("long").alias("score_sum"),
        F.min("created_utc").alias("first_utc"),
        F.max("created_utc").alias("last_utc"),
    )
    edges = edge_stats.join(users, "author").join(subreddits, "subreddit")
    # drawn from the names, not the dense ids: a refresh that adds a user or a subreddit
    # shifts the ids of every later name, and would redraw every edge's split
    u = _unit_hash(opts.seed + 1, F.lower(F.col("author")), F.col("subreddit"))
    first = Window.partitionBy("user_id").orderBy(u, "subreddit")
    split = (
        F.when(F.col("role") == "inductive", "inductive")
        .when(F.row_number().over(first) == 1, "train")  # every user keeps a train edge
        .when(u < opts.val_fraction, "val")
        .when(u < opts.val_fraction + opts.test_fraction, "test")
        .otherwise("train")
    )
    edges = edges.withColumn("split", split).select(
        "user_id",
        "subreddit_id",
        "posts",
        "comments",
        "score_sum",
        "first_utc",
        "last_utc",
        "split",
    )

    user_stats = inter.groupBy("author").agg(
        F.sum("is_post").alias("posts"),
        F.sum(1 - F.col("is_post")).cast("long").alias("comments"),
        F.countDistinct("subreddit").alias("subreddits"),
        F.min("created_utc").alias("first_utc"),
        F.max("created_utc").alias("last_utc"),
    )
    users_out = users.join(user_stats, "author").select(
        "user_id",
        "author",
        F.col("posts").cast("long"),
        "comments",
        "subreddits",
        "first_utc",
        "last_utc",
        "role",
    )
    sub_stats = inter.groupBy("subreddit").agg(
        F.countDistinct("author").alias("users"),
        F.sum("is_post").cast("long").alias("posts"),
        F.sum(1 - F.col("is_post")).cast("long").alias("comments"),
        F.min("created_utc").alias("first_utc"),
        F.max("created_utc").alias("last_utc"),
    )
    subs_out = subreddits.join(sub_stats, "subreddit").select(
        "subreddit_id", "subreddit", "users", "posts", "comments", "first_utc", "last_utc"
    )
    return {
        "silver/users": users_out,
        "silver/subreddits": subs_out,
        "silver/edges": edges,
        "silver/snippets": snippets(subs, comments, users, subreddits, opts),
        "silver/user_images": user_images(subs, users, opts),
    }


def snippets(
    subs: DataFrame,
    comments: DataFrame,
    users: DataFrame,
    subreddits: DataFrame,
    opts: GraphOptions,
) -> DataFrame:
    """Comments and post titles per (user, subreddit), best first: score, then length.

    Removed/deleted bodies are dropped, and so are replies to bots (their text answers a
    bot's prompt, not the community).
    """
    bot_comments = comments.where(
        F.lower(F.col("author")).isin(*sorted(b.lower() for b in opts.bots))
        if opts.bots
        else F.lit(False)
    ).select(F.concat(F.lit("t1_"), F.col("id")).alias("parent_id"))
    com = (
        human_authors(_window(comments, opts), opts.bots)
        .where(~F.trim(F.col("body")).isin(*REMOVED_BODIES))
        .join(bot_comments, "parent_id", "left_anti")
        .select(
            "author",
            "subreddit",
            F.col("id").alias("record_id"),
            F.col("body").alias("text"),
            "score",
            "created_utc",
            F.lit("comment").alias("source"),
            F.regexp_replace(F.col("link_id"), "^t3_", "").alias("post_id"),
        )
    )
    titles = (
        human_authors(_window(subs, opts), opts.bots)
        .where(F.col("title").isNotNull() & (F.trim(F.col("title")) != ""))
        .select(
            "author",
            "subreddit",
            F.col("id").alias("record_id"),
            F.col("title").alias("text"),
            "score",
            "created_utc",
            F.lit("title").alias("source"),
            F.col("id").alias("post_id"),
        )
    )
    both = (
        com.unionByName(titles)
        .join(users.select("author", "user_id"), "author")
        .join(subreddits, "subreddit")
    )
    order = Window.partitionBy("user_id", "subreddit_id").orderBy(
        F.desc_nulls_last("score"), F.desc(F.length("text")), "record_id"
    )
    ranked = both.withColumn("rank", F.row_number().over(order)).where(
        F.col("rank") <= opts.snippets_per_edge
    )
    return ranked.select(
        "user_id",
        "subreddit_id",
        F.col("rank").cast("int"),
        "source",
        "record_id",
        "text",
        "score",
        "created_utc",
        "post_id",
    )


def user_images(subs: DataFrame, users: DataFrame, opts: GraphOptions) -> DataFrame:
    """One row per still image a kept user posted: i.redd.it links, every gallery item
    (animated media and videos left out), else the preview source."""
    posts = (
        human_authors(_window(subs, opts), opts.bots)
        .where(~F.coalesce(F.col("is_video"), F.lit(False)))
        .join(users.select("author", "user_id"), "author")
    )
    base = ["user_id", "subreddit", "title", "created_utc", F.col("id").alias("post_id")]
    direct = posts.where((F.col("domain") == "i.redd.it") & F.col("url").rlike(_IMAGE_EXT)).select(
        *base,
        F.lit(0).alias("position"),
        F.lit(None).cast("string").alias("media_id"),
        F.col("url").alias("image_url"),
        F.lit("i.redd.it").alias("origin"),
    )
    gallery = (
        posts.where(F.size("gallery") > 0)
        .select(*base, F.posexplode("gallery").alias("position", "item"))
        .where(
            (F.col("item.kind") == "Image")
            & F.col("item.url").isNotNull()
            & ~F.col("item.url").rlike(_VIDEO_EXT)
        )
        .select(
            "user_id",
            "subreddit",
            "title",
            "created_utc",
            "post_id",
            F.col("position").cast("int"),
            F.col("item.media_id").alias("media_id"),
            F.col("item.url").alias("image_url"),
            F.lit("gallery").alias("origin"),
        )
    )
    covered = direct.select("post_id").unionByName(gallery.select("post_id")).distinct()
    preview = (
        posts.where(F.col("preview_url").isNotNull() & ~F.col("preview_url").rlike(_VIDEO_EXT))
        .join(covered, F.col("id") == F.col("post_id"), "left_anti")
        .select(
            *base,
            F.lit(0).alias("position"),
            F.lit(None).cast("string").alias("media_id"),
            F.col("preview_url").alias("image_url"),
            F.lit("preview").alias("origin"),
        )
    )
    cols = [
        "user_id",
        "post_id",
        "position",
        "media_id",
        "subreddit",
        "title",
        "created_utc",
        "image_url",
        "origin",
    ]
    return direct.select(cols).unionByName(gallery.select(cols)).unionByName(preview.select(cols))
