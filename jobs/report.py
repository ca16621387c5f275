"""Stage `report` (local): the ZIPBench report -> reports/zipbench/ (index.html, the
summary table as Parquet, plots, image grids; self-contained).

python -m jobs.report -c conf/cluster.yaml [key=value ...]
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from jobs.runner import Stage, StageContext

OUT = "reports/zipbench"


def grids(ctx: StageContext, images: pd.DataFrame, scores: pd.DataFrame, out) -> list:
    """Up to `report.grids` (user, prompt) pairs with the most methods made, seed 0,
    the first LLM: base first, then each method."""
    from evaluation.report import Grid, copy_image
    from generation.persona import roleplay

    lake = ctx.lake
    users = dict(
        zip(*(lake.read("silver/users")[c].to_pylist() for c in ("user_id", "author")), strict=True)
    )
    personas = {}
    for r in lake.read("gold/personas").to_pylist():
        if r["status"] == "done":
            personas.setdefault(r["user_id"], roleplay(r))
    llm = ctx.config.llm.specs()[0].label
    done = images[(images["status"] == "done") & (images["seed_index"] == 0)]
    done = done[done["llm"].isin(["-", llm])]
    cs = dict(zip(scores["image_id"], scores["clip_ref"], strict=True))
    counts = (
        done.groupby(["user_id", "prompt_id"]).size().sort_values(ascending=False, kind="stable")
    )
    picks = counts.reset_index().drop_duplicates("user_id")  # one prompt per user: variety
    order = {
        "base": 0,
        "none": 1,
        "zero_shot": 2,
        "k_shot": 3,
        "history": 4,
        "viper": 5,
        "pigeon": 6,
    }
    out_grids = []
    pairs = picks[["user_id", "prompt_id"]].head(ctx.config.report.grids)
    for u, pid in pairs.itertuples(index=False):
        rows = done[(done["user_id"] == u) & (done["prompt_id"] == pid)]
        rows = rows.sort_values("method", key=lambda s: s.map(lambda m: order.get(m, 9)))
        base = rows[rows["method"] == "base"]["prompt"]
        g = Grid(
            user=f"{users.get(u, u)} (user {u})",
            prompt=base.iloc[0] if len(base) else "",
            persona=personas.get(u, "(no persona)"),
        )
        for r in rows.to_dict("records"):
            g.cells.append(
                {
                    "method": r["method"],
                    "llm": "" if r["llm"] == "-" else r["llm"],
                    "prompt": r["prompt"]
                    + (f" [neg: {r['negative_prompt']}]" if r["negative_prompt"] else ""),
                    "src": copy_image(lake.root, r["path"], out),
                    "clip_ref": cs.get(r["image_id"], float("nan")),
                }
            )
        out_grids.append(g)
    return out_grids


def run(ctx: StageContext) -> None:
    """bench/* -> reports/zipbench/index.html (+ summary.parquet, plots, images)."""
    from evaluation.report import plot_methods, render
    from evaluation.summary import ipf_table, method_table, persona_gains
    from jobs.score import reference_vectors

    lake, cfg = ctx.lake, ctx.config
    scores = lake.read("bench/scores").to_pandas()
    images = lake.read("bench/images").to_pandas()
    # a failed judge call leaves the image's CLIPScore and CMMD standing: only its judge
    # score is missing (dropping the row would bias every method's other columns)
    judge_failed = int((scores["status"] != "done").sum())
    scores.loc[scores["status"] != "done", "judge_score"] = np.nan
    refs, encoder = reference_vectors(ctx)
    out = lake.staging("report", "zipbench")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    table = method_table(scores, refs)
    gains = persona_gains(table)
    demo = {}
    for r in lake.read("gold/personas").to_pylist():
        if r["status"] == "done":
            demo.setdefault(r["user_id"], r["demographics"] or {})
    ipf, ipf_note = ipf_table(scores, demo, cfg.report.ipf_targets)
    plots = plot_methods(table, gains, out)
    grid = grids(ctx, images, scores, out)
    smoke = bool(images["smoke_model"].any()) if len(images) else False
    template_llm = any(s.backend == "template" for s in cfg.llm.specs())
    banners = []
    if smoke:
        banners.append(
            "Smoke model: these images come from a tiny, randomly initialised diffusion "
            "pipeline built locally. They are noise; the scores exercise the pipeline, not a model."
        )
    if template_llm:
        banners.append(
            "Personas and rewrites are template-made (deterministic, no LLM): llm.backend=template."
        )
    if cfg.judge.backend == "template":
        banners.append(
            "Judge: template, not an LLM — the score is the image's similarity to the user's "
            f"reference images in the '{encoder}' feature space (×100 → 0–10)."
        )
    facts = {
        "users": str(scores["user_id"].nunique()),
        "images scored": str(len(scores)),
        "images failed": str(int((images["status"] != "done").sum())),
        "judge calls failed": str(judge_failed),
        "feature space": encoder,
        "judge": cfg.judge.label,
        "diffusion": str(images["model"].iloc[0]) if len(images) else "-",
    }
    render(out, "ZIPBench report", banners, table, gains, ipf, ipf_note, plots, grid, facts)
    summary = pa.Table.from_pandas(table.replace({np.nan: None}), preserve_index=False)
    pq.write_table(summary, out / "summary.parquet")
    lake.commit_table(OUT, out)
    index = lake.path(OUT) / "index.html"
    ctx.details.update(report=str(index), methods=len(table), grids=len(grid))
    ctx.console.print(f"  report: {index}")


STAGE = Stage(
    name="report",
    inputs=(
        "bench/scores",
        "bench/images",
        "gold/personas",
        "bench/users",
        "silver/users",
        "silver/image_embeddings",
    ),
    outputs=(OUT,),
    section="report",
    engine="local",
    run=run,
    summary="ZIPBench HTML report: method x benchmark table, gains, plots, image grids",
)

if __name__ == "__main__":
    from jobs.entry import stage_main

    stage_main(STAGE)
