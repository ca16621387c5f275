"""ZIPBench aggregates: the method × benchmark table (CLIPScore, judge, CMMD), win rates
against the no-persona baseline, per-LLM persona gains and IPF re-weighted scores."""

from __future__ import annotations

import numpy as np
import pandas as pd

from evaluation.cmmd import cmmd
from evaluation.stats import ipf_weights, weighted_mean, win_rate
from generation.methods import PERSONA_METHODS  # noqa: F401  (the registry's persona methods)

BASELINE = "none"  # the generic rewrite without persona
PAIR = ["user_id", "prompt_id", "seed_index"]


def method_table(scores: pd.DataFrame, refs: dict[int, np.ndarray]) -> pd.DataFrame:
    """One row per (method, method_llm): images, CLIPScore vs references and vs prompt,
    judge, CMMD (mean over users of CMMD(references, that user's images); lower is
    better), and the win rate on CLIPScore against `none` from the same LLM (paired by
    user, prompt and seed) with its binomial p-value."""
    rows = []
    for (method, llm), g in scores.groupby(["method", "method_llm"], sort=True):
        per_user = []
        for u, gu in g.groupby("user_id"):
            ref = refs.get(int(u))
            if ref is not None and len(ref):
                per_user.append(cmmd(ref, np.stack(gu["embedding"].to_numpy())))
        row = {
            "method": method,
            "llm": llm,
            "images": len(g),
            "clip_ref": g["clip_ref"].mean(),
            "clip_prompt": g["clip_prompt"].mean(),
            "judge": g["judge_score"].mean(),
            "cmmd": float(np.mean(per_user)) if per_user else np.nan,
            "win_rate_vs_none": np.nan,
            "p_value": np.nan,
        }
        base = scores[(scores["method"] == BASELINE) & (scores["method_llm"] == llm)]
        if method != BASELINE and len(base):
            pair = g.merge(base, on=PAIR, suffixes=("", "_base")).dropna(
                subset=["clip_ref", "clip_ref_base"]
            )
            if len(pair):
                wr = win_rate(pair["clip_ref"], pair["clip_ref_base"])
                row |= {"win_rate_vs_none": wr["win_rate"], "p_value": wr["p_value"]}
        rows.append(row)
    columns = ["method", "llm", "images", "clip_ref", "clip_prompt", "judge", "cmmd"]
    return pd.DataFrame(rows, columns=[*columns, "win_rate_vs_none", "p_value"])


def persona_gains(table: pd.DataFrame) -> pd.DataFrame:
    """Per LLM: CLIPScore and judge of each persona method minus the `none` rewrite."""
    rows = []
    for llm, g in table.groupby("llm"):
        base = g[g["method"] == BASELINE]
        if base.empty:
            continue
        for m in PERSONA_METHODS:
            hit = g[g["method"] == m]
            if not hit.empty:
                rows.append(
                    {
                        "llm": llm,
                        "method": m,
                        "clip_ref_gain": hit["clip_ref"].iloc[0] - base["clip_ref"].iloc[0],
                        "judge_gain": hit["judge"].iloc[0] - base["judge"].iloc[0],
                    }
                )
    return pd.DataFrame(rows, columns=["llm", "method", "clip_ref_gain", "judge_gain"])


def ipf_table(
    scores: pd.DataFrame, demographics: dict[int, dict], targets: dict[str, dict[str, float]]
) -> tuple[pd.DataFrame, str]:
    """CLIPScore per (method, llm) re-weighted so the demographics of that method's scored
    images match `targets` (raking within each method, so every method is compared on the
    same population); returns (table, note). Unknown demographics are their own category
    ("unknown"); a method whose rows cannot meet the targets gets NaN and a line in the note."""
    if not targets:
        return pd.DataFrame(), "no IPF targets configured (report.ipf_targets)"
    rows, problems = [], []
    for (m, llm), g in scores.groupby(["method", "method_llm"], sort=True):
        ok = g.dropna(subset=["clip_ref"])
        groups = {
            a: [(demographics.get(int(u)) or {}).get(a) for u in ok["user_id"]] for a in targets
        }
        raked = np.nan
        if len(ok):
            try:
                raked = weighted_mean(ok["clip_ref"], ipf_weights(groups, targets))
            except ValueError as e:
                problems.append(f"{m} ({llm}): {e}")
        rows.append(
            {"method": m, "llm": llm, "clip_ref": ok["clip_ref"].mean(), "clip_ref_ipf": raked}
        )
    note = f"raked within each method to {targets}"
    if problems:
        note += "; not applicable for " + "; ".join(problems)
    return pd.DataFrame(rows), note
