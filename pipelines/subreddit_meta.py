"""Subreddit metadata in ``bronze/subreddits``: one row per subreddit id (the newest
version), and what node text features take from it (title, public description).

Ingest appends every version a metadata dump holds (Arctic Shift ``subreddits_YYYY-MM.zst``,
the Pushshift subreddit dump) batch by batch; `keep_newest` then drops the older versions
of each id in place, so each file's ledger reads ``records = kept + superseded``.
"""

from __future__ import annotations

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from storage.lake import Lake

TABLE = "bronze/subreddits"
_KEY_COLUMNS = [
    "id",
    "retrieved_on",
    "meta_retrieved_2nd_on",
    "created_utc",
    "source_file",
    "source_line",
]


def _row_key(t: pa.Table) -> pa.Array:
    line = pc.cast(t["source_line"], pa.string())
    return pc.binary_join_element_wise(pc.cast(t["source_file"], pa.string()), line, "\x00")


def older_versions(rows: pa.Table) -> pa.Array:
    """Row keys (`_row_key`) of every version but the newest of each id: newest by
    retrieval time (the later of ``retrieved_on`` and ``_meta.retrieved_2nd_on``; none
    counts as oldest), then ``created_utc``, then the later file and line."""
    df = pl.from_arrow(rows.select(_KEY_COLUMNS)).with_columns(
        pl.max_horizontal(
            pl.col("retrieved_on").fill_null(-1), pl.col("meta_retrieved_2nd_on").fill_null(-1)
        ).alias("_retrieved"),
        pl.concat_str(
            pl.col("source_file").cast(pl.String),
            pl.col("source_line").cast(pl.String),
            separator="\x00",
        ).alias("_key"),
    )
    ranked = df.sort(
        ["id", "_retrieved", "created_utc", "source_file", "source_line"],
        descending=[False, True, True, True, True],
    )
    older = ranked.filter(pl.col("id").is_first_distinct().not_())
    return older["_key"].to_arrow().cast(pa.string())


def keep_newest(lake: Lake) -> int:
    """Drop the older versions of each subreddit id from ``bronze/subreddits``, in place
    (the files keep their batch's name); returns the rows dropped."""
    if not lake.rows(TABLE):
        return 0
    older = older_versions(lake.read(TABLE, _KEY_COLUMNS))
    if not len(older):
        return 0
    return lake.delete_where(
        TABLE, lambda t: pc.is_in(_row_key(t), value_set=older), ["source_file", "source_line"]
    )


def kept_by_file(lake: Lake) -> dict[str, int]:
    """Rows of ``bronze/subreddits`` by source file."""
    if not lake.rows(TABLE):
        return {}
    vc = pc.value_counts(lake.read(TABLE, ["source_file"])["source_file"])
    return dict(zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True))


def superseded(ledger: list[dict], kept: dict[str, int]) -> list[dict]:
    """`ledger` with ``superseded`` set on the metadata files' rows: records of the file
    that a newer version of the same id (in this file or another) replaced; `kept`: rows
    left in the table by source file (`kept_by_file`)."""
    return [
        {**row, "superseded": row["records"] - kept.get(row["source_file"], 0)}
        if row["kind"] == "subreddits"
        else row
        for row in ledger
    ]


#: What node text features read of ``bronze/subreddits``.
TEXT_COLUMNS = ["display_name", "title", "public_description"]


def metadata_texts(rows: pa.Table, names: list[str] | None = None) -> dict[str, str]:
    """Lower-cased subreddit name -> "title — public description" (blank parts left
    out) from `TEXT_COLUMNS` of ``bronze/subreddits``; only the subreddits `names` (any
    case) when given (a full dump holds millions)."""
    if names is not None:
        wanted = pa.array(sorted({n.lower() for n in names}), pa.string())
        rows = rows.filter(pc.is_in(pc.utf8_lower(rows["display_name"]), value_set=wanted))
    out: dict[str, str] = {}
    for name, title, desc in zip(*(rows[c].to_pylist() for c in TEXT_COLUMNS), strict=True):
        parts = [" ".join(p.split()) for p in (title, desc) if p and p.strip()]
        if name and parts:
            out[name.lower()] = " — ".join(parts)
    return out
