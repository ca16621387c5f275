"""The SparkSession every Spark stage uses: started or joined here, and only here."""

from __future__ import annotations

import os
import sys

from pyspark.sql import SparkSession

from engines.code import is_local_master, project_zip

DEFAULTS = {
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.sources.partitionOverwriteMode": "static",
    "spark.sql.parquet.compression.codec": "snappy",
    # write month partitions with concurrent writers instead of sorting each task's rows
    "spark.sql.maxConcurrentOutputFileWriters": "16",
}


def spark_session(
    master: str | None = "local[*]", app_name: str = "zipp", conf: dict[str, str] | None = None
) -> SparkSession:
    """Get or create a SparkSession. Under spark-submit its ``--master`` wins and
    `master` is ignored (a config's ``local[*]`` must not override the submit); elsewhere
    ``master=None`` means ``local[*]``. On a non-local master the project's code is
    shipped to the executors as a zip (``addPyFile``), so executors need the
    dependencies but not the project."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    if master and not under_spark_submit():
        builder = builder.master(master)
    for key, value in {**DEFAULTS, **(conf or {})}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    if not is_local_master(spark.sparkContext.master):
        spark.sparkContext.addPyFile(str(project_zip()))
    return spark


def under_spark_submit() -> bool:
    """True in a driver that spark-submit launched: its JVM is already up and handed its
    gateway to this Python (``PYSPARK_GATEWAY_PORT``), with spark-submit's master."""
    return "PYSPARK_GATEWAY_PORT" in os.environ
