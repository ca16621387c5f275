"""Stage `graph` (Spark): bronze -> silver users, subreddits, edges, snippets, user images.

python -m jobs.graph -c conf/cluster.yaml [key=value ...]
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, time

from pyspark.sql import functions as F

from jobs.runner import Stage, StageContext
from schemas.lake import count_rows
from schemas.spark import spark_schema
from schemas.tables import table

OUTPUTS = (
    "silver/users",
    "silver/subreddits",
    "silver/edges",
    "silver/snippets",
    "silver/user_images",
)


def _epoch(day) -> int | None:
    return None if day is None else int(datetime.combine(day, time(), UTC).timestamp())


def run(ctx: StageContext) -> None:
    """Build the graph tables with Spark and commit each by a folder swap."""
    from pipelines.graph_build import GraphOptions, build_graph
    from pipelines.spark import spark_session

    cfg = ctx.config
    g = cfg.graph
    opts = GraphOptions(
        bots=g.bot_names(),
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
    with ctx.console.status("graph: starting Spark"):
        spark = spark_session(cfg.spark.master, cfg.spark.app_name, cfg.spark.conf)
    lake = ctx.lake

    def bronze(name: str):
        spec = table(name)
        lake.path(name).mkdir(parents=True, exist_ok=True)
        return spark.read.schema(spark_schema(spec.schema)).parquet(str(lake.path(name)))

    frames = build_graph(spark, bronze("bronze/submissions"), bronze("bronze/comments"), opts)
    staging = lake.staging("graph")
    shutil.rmtree(staging, ignore_errors=True)
    for name in OUTPUTS:
        with ctx.console.status(f"graph: writing {name}"):
            fields = spark_schema(table(name).schema).fields
            df = frames[name].select([F.col(f.name).cast(f.dataType) for f in fields])
            df.write.mode("overwrite").parquet(str(staging / name))
        ctx.console.print(f"  {name}: {count_rows(staging / name):,} rows")
    for name in OUTPUTS:
        lake.commit_table(name, staging / name)
    shutil.rmtree(staging, ignore_errors=True)


STAGE = Stage(
    name="graph",
    inputs=("bronze/submissions", "bronze/comments"),
    outputs=OUTPUTS,
    section="graph",
    engine="spark",
    run=run,
    summary="bronze -> silver/{users,subreddits,edges,snippets,user_images} with splits",
)

if __name__ == "__main__":
    from jobs.entry import stage_main

    stage_main(STAGE)
