"""Every table's schema, defined once as Arrow; the Spark form is derived (`schemas.spark`)."""

from schemas.tables import TABLES, TableSpec, table

__all__ = ["TABLES", "TableSpec", "table"]
