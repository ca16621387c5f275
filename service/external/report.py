"""An external benchmark's report, in ZIPBench's layout and with its parts
(`evaluation.stages.report.render`, the method table and gains of `evaluation.summary`):
``external/<name>/reports/zipbench/index.html`` with summary.parquet, plus its own
section (what was read and what failed; for rapidata, the scorers' agreement with the
human votes and votes.parquet / agreement.parquet). Users are named by pseudonym only."""

from __future__ import annotations

import html
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from schemas.tables import REPORT
from storage.lake import Lake

VOTE_COLUMNS = {
    "scorer": "scorer",
    "pairs": "decided pairs",
    "agreement": "agrees with the majority",
    "srocc": "SROCC (Δscore vs vote share)",
    "srocc_p": "p",
    "plcc": "PLCC (Δscore vs vote share)",
    "plcc_p": "p",
}
IPF_NOTE = "No IPF re-weighting on external benchmarks: their users carry no demographics here."


def section(name: str, summary: dict, note: str) -> str:
    """The external benchmark's own section: what it read, made and could not have."""
    from evaluation.stages.report import table_html

    counts = pd.DataFrame(
        [{"what": k.replace("_", " "), "value": str(v)} for k, v in summary.items()
         if k not in ("report", "agreement")]
    )  # fmt: skip
    return (
        f"<h2 id='external'>External benchmark: {html.escape(name)}</h2>"
        f"<p class='note'>{html.escape(note)}</p>"
        + table_html(counts, {"what": "what", "value": "value"}, "external")
    )


def _staged(lake: Lake) -> Path:
    out = lake.staging("report", "external")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    return out


def _commit(lake: Lake, out: Path, table: pd.DataFrame) -> Path:
    summary = pa.Table.from_pandas(table.replace({np.nan: None}), preserve_index=False)
    pq.write_table(summary, out / "summary.parquet")
    lake.commit_table(REPORT, out)
    return lake.path(REPORT) / "index.html"


def _methods(scores: pd.DataFrame, refs: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    from evaluation.stages.report import by_method_order
    from evaluation.summary import method_table, persona_gains

    if scores.empty:
        return pd.DataFrame(), pd.DataFrame()
    table = by_method_order(method_table(scores, refs))
    return table, persona_gains(table)


def history_report(
    lake: Lake, cfg: Any, scores: pa.Table, rows: Any, personas: dict, refs: dict, summary: dict
) -> Path:
    """The report of a user-history benchmark (pip, pickapic, movielens)."""
    from evaluation.stages.report import Grid, copy_image, plot_methods, pseudonym, render
    from schemas.methods import method_rank
    from schemas.persona import roleplay

    name = summary["benchmark"]
    out = _staged(lake)
    df = scores.to_pandas()
    table, gains = _methods(df, refs)
    cs = dict(zip(df.get("image_id", []), df.get("clip_ref", []), strict=True))
    pref = dict(zip(df.get("image_id", []), df.get("preference", []), strict=True))
    grids = []
    done = [r for r in rows.images if r["status"] == "done" and r["seed_index"] == 0]
    for uid in sorted({r["user_id"] for r in done})[: cfg.report.grids]:
        first = min(r["prompt_id"] for r in done if r["user_id"] == uid)
        cells = sorted(
            (r for r in done if r["user_id"] == uid and r["prompt_id"] == first),
            key=lambda r: (r["method"] != "base", method_rank(r["method"])),
        )
        persona = personas.get(uid)
        g = Grid(
            user=pseudonym(len(grids) + 1),
            prompt=next((r["prompt"] for r in cells if r["method"] == "base"), cells[0]["prompt"]),
            persona=roleplay(persona) if persona else "(no persona)",
        )
        for r in cells:
            g.cells.append(
                {
                    "method": r["method"],
                    "llm": "" if r["llm"] == "-" else r["llm"],
                    "prompt": r["prompt"],
                    "src": copy_image(lake.root / r["path"], out),
                    "clip_ref": _num(cs.get(r["image_id"])),
                    "preference": _num(pref.get(r["image_id"])),
                }
            )
        grids.append(g)
    note = (
        f"Each {name} user's history (their own items, oldest first) is the persona's only "
        "evidence, through the cold start's history-only path and the configured LLM; the "
        "newest item(s) are held out: their text is the base prompt and their image the "
        "reference. Methods: base (the prompt as is), none, zero_shot, viper. References "
        "that could not be had (expired or refused links) are counted, not fatal. The LLM "
        "judge does not run here. Tables: external/" + name + "/bench/*."
    )
    facts = {k: str(v) for k, v in summary.items() if k in ("users", "prompts", "encoder")}
    facts["LLM"] = cfg.llm.specs()[0].label
    render(
        out, f"External benchmark: {name}", _banners(cfg), table, gains, pd.DataFrame(),
        IPF_NOTE, plot_methods(table, gains, out) if not table.empty else [], grids, facts,
        extra=section(name, summary, note),
    )  # fmt: skip
    return _commit(lake, out, table)


def rapidata_report(
    lake: Lake, cfg: Any, scores: pa.Table, images: list, votes: pd.DataFrame,
    agreement: pd.DataFrame, summary: dict,
) -> Path:  # fmt: skip
    """The RapidData report: the images' scores per model and the scorers' agreement
    with the human votes."""
    from evaluation.stages.report import render, table_html

    out = _staged(lake)
    table, _ = _methods(scores.to_pandas(), {})
    votes.to_parquet(out / "votes.parquet", index=False)
    agreement.to_parquet(out / "agreement.parquet", index=False)
    note = (
        "RapidData pairs: for each prompt two images with human votes. Each scorer says "
        "which image it prefers; 'agrees with the majority' is the share of decided pairs "
        "(unequal votes) where that is the majority's image (a scorer's tie counts half). "
        "SROCC/PLCC: the scorer's score difference (image 1 − image 2) against image 1's "
        "vote share, where at least 3 pairs are scored and neither side is constant. "
        "CLIPScore vs the prompt needs a CLIP feature space (images.model); CLIPScore vs the "
        "crowd's other choices is the mean similarity to the majority-chosen images of the "
        "other pairs. Rows: 'methods' are the models that made the images."
    )
    extra = (
        section("rapidata", summary, note)
        + "<h3>Scorers vs the human votes</h3>"
        + table_html(agreement, VOTE_COLUMNS, "votes")
    )
    facts = {"pairs": str(summary["pairs"]), "feature space": summary["encoder"]}
    render(out, "External benchmark: rapidata", [], table, pd.DataFrame(), pd.DataFrame(),
           IPF_NOTE, [], [], facts, extra=extra)  # fmt: skip
    return _commit(lake, out, table)


def _banners(cfg: Any) -> list[str]:
    out = []
    if any(s.backend == "template" for s in cfg.llm.specs()):
        out.append("Personas and rewrites are template-made (deterministic, no LLM).")
    if cfg.diffusion.model is None:
        out.append("Images: the embedded default's smoke model (a tiny pipeline, no image model).")
    return out


def _num(v: object) -> float:
    return float("nan") if v is None or v != v else float(v)
