"""The ``bench`` export's rows: the ``done`` rows of bench/images with the persona that goes
with each image (`schemas.persona.persona_for`: the same user's persona by the same LLM;
for rows made without an LLM the user's first done persona by LLM label). ``persona_llm``
says which LLM that persona came from (null: none)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from contract.stage_io import TableAccess
from exports.errors import ExportError
from schemas.persona import persona_for

#: what the rows are read from
INPUTS = ("bench/images", "gold/personas")


def bench_rows(tables: TableAccess) -> pa.Table:
    """The done rows of bench/images, each with its ``persona`` and ``persona_llm`` (an
    ExportError when there is none)."""
    images = tables.read("bench/images")
    table = images.filter(pc.equal(images["status"], "done"))
    if not table.num_rows:
        raise ExportError(
            f"no done rows in bench/images in {tables.root}: run 'zipp bench build' first"
        )
    keys = list(zip(table["user_id"].to_pylist(), table["llm"].to_pylist(), strict=True))
    personas = persona_for(keys, tables.read("gold/personas"))
    texts = [p["text"] if p else None for p in personas]
    table = table.append_column("persona", pa.array(texts, pa.string()))
    llms = [p["llm"] if p else None for p in personas]
    return table.append_column("persona_llm", pa.array(llms, pa.string()))
