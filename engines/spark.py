"""The SparkSession every Spark job uses, with the Reddit dump data source registered."""

from __future__ import annotations

import os
import sys

from pyspark.sql import SparkSession


def spark_session(
    master: str | None = "local[*]", app_name: str = "zipp", conf: dict[str, str] | None = None
) -> SparkSession:
    """Get or create a SparkSession; ``master=None`` leaves it to spark-submit."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
    defaults = {
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.sources.partitionOverwriteMode": "static",
        "spark.sql.parquet.compression.codec": "snappy",
        # write month partitions with concurrent writers instead of sorting each task's rows
        "spark.sql.maxConcurrentOutputFileWriters": "16",
    }
    for key, value in {**defaults, **(conf or {})}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    from pipelines.reddit_source import RedditDumpSource

    spark.dataSource.register(RedditDumpSource)
    return spark
