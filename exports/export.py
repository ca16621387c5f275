"""What `zipp export` calls: an export of persona tables or the benchmark for others, in
Parquet, JSONL, Delta or HF `datasets` (`exports.writers`), each one flat table:

* ``personas``: gold/personas, every row (`exports.personas`);
* ``bench``: the ``done`` rows of bench/images with the persona that goes with each image
  (`exports.bench`). The images themselves go only into the ``hf`` format (an embedded
  ``image`` column); the other formats carry ``path``, relative to the lake root.

User names are pseudonymised (`exports.pseudonyms`) and rare communities replaced by their
labels (`exports.communities`, `exports.scrub`) unless asked otherwise
(``--include-usernames``). The lake is read through the stage contract: a `TableAccess`
that declares what each kind reads (`INPUTS`), so reading any other table raises
`ContractError`.

Every export carries a dataset card (`exports.card`). Every export is written aside (a
hidden sibling folder of the target) and then swapped in, so a failed export never leaves
half a folder.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa

from contract.stage_io import TableAccess
from exports import bench, communities, personas, pseudonyms
from exports.card import CARD, dataset_card
from exports.communities import community_labels
from exports.config import ExportConfig
from exports.errors import ExportError
from exports.pseudonyms import authors, with_user
from exports.scrub import CommunityScrubber
from exports.writers import FORMATS, check_out, write
from storage.lake import Lake, swap_in

__all__ = ["FORMATS", "KINDS", "ExportError", "export", "export_table", "export_tables"]

KINDS = ("personas", "bench")
_DEFAULTS = ExportConfig()  # the `export` section's defaults, for callers outside the CLI

#: each kind's rows, and the tables it reads: its own, then the users' names and communities
ROWS: dict[str, Callable[[TableAccess], pa.Table]] = {
    "personas": personas.persona_rows,
    "bench": bench.bench_rows,
}
INPUTS = {
    "personas": (*personas.INPUTS, *pseudonyms.INPUTS, *communities.INPUTS),
    "bench": (*bench.INPUTS, *pseudonyms.INPUTS, *communities.INPUTS),
}


def export_tables(lake: Lake, kind: str) -> TableAccess:
    """Read access to the tables export `kind` declares (`INPUTS`), and no other."""
    if kind not in KINDS:
        raise ExportError(f"unknown export {kind!r}: choose one of {', '.join(KINDS)}")
    return TableAccess(
        stage=f"export {kind}",
        root=str(lake.root),
        format=lake.format,
        inputs=frozenset(INPUTS[kind]),
    )


def export_table(
    kind: str,
    lake: Lake,
    include_usernames: bool = False,
    key: str | None = None,
    min_community_users: int = _DEFAULTS.min_community_users,
) -> pa.Table:
    """The flat table of an export kind ("personas" or "bench"): pseudonymised with `key`
    and rare communities replaced by their labels, unless `include_usernames`."""
    tables = export_tables(lake, kind)
    table = ROWS[kind](tables)
    table = with_user(table, authors(tables, table["user_id"].to_pylist()), include_usernames, key)
    if not include_usernames:
        table = CommunityScrubber(community_labels(tables, min_community_users)).table(table)
    return table


def export(
    kind: str,
    fmt: str,
    out: Path,
    lake: Lake,
    include_usernames: bool = False,
    key: str | None = None,
    overwrite: bool = False,
    min_community_users: int = _DEFAULTS.min_community_users,
    key_env: str = _DEFAULTS.key_env,
) -> int:
    """Build the export table and write it with its dataset card aside, then swap it in
    at `out`; returns rows."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    out = Path(out).absolute()
    check_out(out, overwrite)
    table = export_table(kind, lake, include_usernames, key, min_community_users)
    staged = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        write(table, fmt, staged, kind, images_root=lake.root if kind == "bench" else None)
        card = dataset_card(kind, fmt, table, include_usernames, key_env, min_community_users)
        (staged / CARD).write_text(card, encoding="utf-8")
        swap_in(staged, out)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return table.num_rows
