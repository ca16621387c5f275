"""The ``personas`` export's rows: gold/personas, every row."""

from __future__ import annotations

import pyarrow as pa

from contract.stage_io import TableAccess
from exports.errors import ExportError

#: what the rows are read from
INPUTS = ("gold/personas",)


def persona_rows(tables: TableAccess) -> pa.Table:
    """Every row of gold/personas (an ExportError when there is none)."""
    table = tables.read("gold/personas")
    if not table.num_rows:
        raise ExportError(f"no gold/personas in {tables.root}: run 'zipp run personas' first")
    return table
