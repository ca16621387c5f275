"""The encoder ablation's report (`zipp ablation`): which variants to run, one row of table
cells per variant, and the files ``reports/ablation/ablation.{parquet,md}``."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from graph.ablation import VARIANTS, run_ablation
from graph.config import EncoderConfig
from schemas.tables import ABLATION_REPORT

MARKDOWN_HEADER = (
    "| encoder | ImageAlign | posting acc | AUC | recall@k | unseen posting acc"
    " | blind image recall (probe) | paper | note |",
    "|---|---|---|---|---|---|---|---|---|",
)


@dataclass(frozen=True)
class AblationReport:
    """What `zipp ablation` shows and saved: the table's title, columns and cells (one
    tuple per variant), `run_ablation`'s rows, and the two files written."""

    title: str
    columns: tuple[str, ...]
    cells: list[tuple[str, ...]]
    rows: list[dict]
    files: tuple[Path, Path]


def select_variants(wanted: set[str] | None) -> tuple[tuple[str, bool], ...]:
    """The variants of the `wanted` encoders (all when None), in `VARIANTS` order; a
    ValueError naming the unknown encoders, if any."""
    unknown = (wanted or set()) - {conv for conv, _ in VARIANTS} - {""}
    if unknown:
        raise ValueError(", ".join(sorted(unknown)))
    return tuple(v for v in VARIANTS if wanted is None or v[0] in wanted)


def columns(recall_k: int) -> tuple[str, ...]:
    """The table's column names."""
    return (
        "encoder",
        "ImageAlign",
        "posting acc",
        "AUC",
        f"recall@{recall_k}",
        "unseen users' posting acc",
        "blind image recall (probe)",
        "paper",
        "note",
    )


def cells(row: dict) -> tuple[str, ...]:
    """One `run_ablation` row as table cells; a variant that was not run shows its reason
    in place of its metrics."""
    paper = f"{row['paper_posting_acc']:.0%}" if row["paper_posting_acc"] else "—"
    ran = not (row["note"] and math.isnan(row["posting_acc"]))  # not run: the reason shows
    metrics = (
        (
            f"{row['posting_acc']:.1%}",
            f"{row['auc']:.3f}",
            f"{row['recall_at_k']:.3f}",
            f"{row['unseen_posting_acc']:.1%}",
            f"{row['image_probe_recall']:.3f}",
        )
        if ran
        else (row["note"], "—", "—", "—", "—")
    )
    note = (row["note"] or "—") if ran else "—"
    return (row["encoder"], "yes" if row["image_align"] else "no", *metrics, paper, note)


def markdown(table: list[tuple[str, ...]]) -> str:
    """The cells as a Markdown table."""
    lines = [*MARKDOWN_HEADER, *("| " + " | ".join(c) + " |" for c in table)]
    return "\n".join(lines) + "\n"


def write_report(
    lake_root: str, rows: list[dict], table: list[tuple[str, ...]]
) -> tuple[Path, Path]:
    """Write ``ablation.parquet`` (the rows) and ``ablation.md`` (the cells) under
    reports/ablation; returns their paths."""
    out = Path(lake_root) / ABLATION_REPORT
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), out / "ablation.parquet")
    (out / "ablation.md").write_text(markdown(table))
    return out / "ablation.parquet", out / "ablation.md"


def ablation_report(
    lake_root: str,
    encoder: EncoderConfig,
    variants: tuple[tuple[str, bool], ...] = VARIANTS,
    progress: Callable[[str], None] = print,
) -> AblationReport:
    """Run the `variants` (`run_ablation`) with the `encoder` config section and write the
    report; returns what to show."""
    rows = run_ablation(lake_root, encoder, variants, progress)
    table = [cells(r) for r in rows]
    return AblationReport(
        title=f"encoder ablation — test edges (chance {1 / encoder.posting_candidates:.0%})",
        columns=columns(encoder.recall_k),
        cells=table,
        rows=rows,
        files=write_report(lake_root, rows, table),
    )
