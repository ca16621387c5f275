"""Stage `graph` (Spark): bronze -> silver users, subreddits, edges (with splits),
snippets and user images."""

from __future__ import annotations

from datetime import UTC, datetime, time

from contract.stage import Stage
from contract.stage_io import StageIO
from pipelines.config import GraphConfig

GRAPH_TABLES = (
    "silver/users",
    "silver/subreddits",
    "silver/edges",
    "silver/snippets",
    "silver/user_images",
)


def _epoch(day) -> int | None:
    return None if day is None else int(datetime.combine(day, time(), UTC).timestamp())


def graph(io: StageIO) -> None:
    """bronze -> silver users, subreddits, edges (with splits), snippets, user images."""
    from pipelines.graph_build import GraphOptions, build_graph

    g: GraphConfig = io.config.graph
    opts = GraphOptions(
        bots=io.names("graph.bots"),
        min_user_interactions=g.min_user_interactions,
        min_subreddit_users=g.min_subreddit_users,
        start_utc=_epoch(g.start),
        end_utc=_epoch(g.end),
        val_fraction=g.val_fraction,
        test_fraction=g.test_fraction,
        inductive_fraction=g.inductive_fraction,
        snippets_per_edge=g.snippets_per_edge,
        seed=g.seed,
    )
    with io.console.status("graph: starting Spark"):
        spark = io.spark
    subs, comments = (io.read_spark(f"bronze/{k}") for k in ("submissions", "comments"))
    frames = build_graph(spark, subs, comments, opts)
    for name in GRAPH_TABLES:
        with io.console.status(f"graph: writing {name}"):
            io.write_spark(name, frames[name])
        io.console.print(f"  {name}: {io.lake.rows(name):,} rows")


STAGE = Stage(
    name="graph",
    run=graph,
    engine="spark",
    inputs=("bronze/submissions", "bronze/comments"),
    files=("graph.bots",),
    outputs=GRAPH_TABLES,
    config=("graph",),
    summary="bronze -> silver/{users,subreddits,edges,snippets,user_images} with splits",
)
