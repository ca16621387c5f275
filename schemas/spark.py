"""Spark forms of the Arrow schemas (derived, never written by hand)."""

import pyarrow as pa
from pyspark.sql.pandas.types import from_arrow_schema
from pyspark.sql.types import StructType


def spark_schema(schema: pa.Schema) -> StructType:
    """The Spark StructType of an Arrow schema."""
    return from_arrow_schema(schema)


def has_delta(spark) -> bool:
    """Whether a SparkSession has the Delta Lake extension (delta-spark jars) configured."""
    return "DeltaSparkSessionExtension" in spark.conf.get("spark.sql.extensions", "")
