"""The study's votes out: one row per vote with both sides' methods unblinded (the
`bench/study_votes` schema), as CSV, Parquet or the lake table the ZIPBench report reads;
win rates with a two-sided binomial p per method pair (`evaluation.study_section`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from evaluation.study_section import win_rates
from schemas.study import STUDY_VOTES
from service.study.db import Database

FORMATS = (".csv", ".parquet")


def vote_rows(db: Database, study: str | None = None) -> pa.Table:
    """Every vote (of one study, or all) as a `STUDY_VOTES` table, oldest first."""
    sql = (
        "SELECT r.study, p.id AS pair, pr.text AS prompt, p.left_method AS method_left, "
        "p.right_method AS method_right, v.vote, v.rater, v.created FROM votes v "
        "JOIN pairs p ON p.id = v.pair JOIN raters r ON r.id = v.rater "
        "JOIN prompts pr ON pr.study = r.study AND pr.position = p.position"
    )
    args: tuple = ()
    if study:
        sql += " WHERE r.study = ?"
        args = (study,)
    rows = [dict(r) for r in db.all(sql + " ORDER BY v.created, v.rowid", args)]
    for r in rows:
        side = {"left": r["method_left"], "right": r["method_right"]}
        r["winner"] = side.get(r["vote"])
        r["time"] = pd.Timestamp(r.pop("created"), unit="s", tz="UTC")
    cols = {f.name: [r[f.name] for r in rows] for f in STUDY_VOTES}
    return pa.table(cols, schema=STUDY_VOTES)


def write_votes(table: pa.Table, out: Path) -> Path:
    """The votes as `out` (.csv or .parquet, by its suffix), written aside then moved."""
    if out.suffix not in FORMATS:
        raise ValueError(f"--out must end in {' or '.join(FORMATS)} (got {out.name})")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    if out.suffix == ".csv":
        pacsv.write_csv(table, tmp)
    else:
        pq.write_table(table, tmp)
    tmp.replace(out)
    return out


def results(db: Database, study: str | None = None) -> pd.DataFrame:
    """Win rates and two-sided binomial p per study and method pair."""
    return win_rates(vote_rows(db, study).to_pandas())


def to_lake(table: pa.Table, root: str | Path, fmt: str = "parquet") -> int:
    """Replace the lake's `bench/study_votes` by these votes (the report's input)."""
    from storage.lake import Lake

    Lake(root, fmt).write_table("bench/study_votes", table)
    return table.num_rows
