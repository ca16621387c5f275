"""ZIPBench aggregates: the method × benchmark table (CLIPScore, preference judge, LLM
judge, CMMD), paired win rates against the no-persona rewrite and against the swapped-
persona control, per-LLM persona gains over both, the 0/k-shot table (`rewrite.k`
sweeps), and IPF re-weighted scores.

Personalisation is what the user's own persona adds over another user's: a persona
method measured against `swapped` (same LLM, same user, prompt and seed)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from evaluation.cmmd import cmmd
from evaluation.stats import rake_known, weighted_mean, win_rate
from llm.demographic_targets import category
from schemas.methods import CONTROL, PERSONA_METHODS, method_rank, method_variant

BASELINE = "none"  # the generic rewrite without persona
#: the methods every other one is compared with (same LLM), paired by PAIR
COMPARED_WITH = (BASELINE, CONTROL)
PAIR = ["user_id", "prompt_id", "seed_index"]
#: score column -> short name in the win-rate and gain columns
METRICS = {"clip_ref": "cs", "preference": "pref"}
#: Pigeon's history metrics (`evaluation.history_metrics`), means per method
HISTORY = ["clip_history", "dino_ref", "dino_history"]


def win_columns() -> list[str]:
    """The method table's win-rate columns: ``<metric>_win_vs_<baseline>`` and its
    ``<metric>_p_vs_<baseline>`` (two-sided binomial test)."""
    return [
        f"{short}_{kind}_vs_{base}"
        for base in COMPARED_WITH
        for short in METRICS.values()
        for kind in ("win", "p")
    ]


def method_table(scores: pd.DataFrame, refs: dict[int, np.ndarray]) -> pd.DataFrame:
    """One row per (method, method_llm): images, CLIPScore vs references and vs prompt,
    Pigeon's history metrics (`HISTORY`, where the scores have them),
    preference judge, LLM judge, CMMD (mean over users of CMMD(references, that user's
    images); lower is better), and win rates on CLIPScore and on the preference judge
    against `none` and against `swapped` from the same LLM (paired by user, prompt and
    seed) with their binomial p-values."""
    scores = scores.copy()
    if "preference" not in scores.columns:
        scores["preference"] = np.nan
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
            **{c: pd.to_numeric(g[c]).mean() if c in g else np.nan for c in HISTORY},
            "preference": pd.to_numeric(g["preference"]).mean(),
            "judge": g["judge_score"].mean(),
            "cmmd": float(np.mean(per_user)) if per_user else np.nan,
        }
        row |= dict.fromkeys(win_columns(), np.nan)
        for base_method in COMPARED_WITH:
            base = scores[(scores["method"] == base_method) & (scores["method_llm"] == llm)]
            if method == base_method or base.empty:
                continue
            pair = g.merge(base, on=PAIR, suffixes=("", "_base"))
            for col, short in METRICS.items():
                a = pd.to_numeric(pair[col]).to_numpy(float)
                b = pd.to_numeric(pair[f"{col}_base"]).to_numpy(float)
                if len(pair) and not np.all(np.isnan(a) | np.isnan(b)):
                    wr = win_rate(a, b)
                    row[f"{short}_win_vs_{base_method}"] = wr["win_rate"]
                    row[f"{short}_p_vs_{base_method}"] = wr["p_value"]
        rows.append(row)
    columns = ["method", "llm", "images", "clip_ref", "clip_prompt", *HISTORY, "preference"]
    return pd.DataFrame(rows, columns=[*columns, "judge", "cmmd", *win_columns()])


GAINS = ["clip_ref", "preference", "judge"]


def persona_gains(table: pd.DataFrame) -> pd.DataFrame:
    """Per LLM: CLIPScore, preference judge and LLM judge of each persona method (and of
    the swapped control) minus the `none` rewrite, and of each persona method minus
    `swapped` (what the user's own persona adds over another user's)."""
    rows = []
    for llm, g in table.groupby("llm"):
        base = {m: g[g["method"] == m] for m in COMPARED_WITH}
        if all(b.empty for b in base.values()):
            continue
        own = {m for m in g["method"] if _variant(m)[0] in PERSONA_METHODS}  # k_shot@K too
        for m in (*sorted(own, key=method_rank), CONTROL):
            hit = g[g["method"] == m]
            if hit.empty:
                continue
            row = {"llm": llm, "method": m}
            for b, bt in base.items():
                for col in GAINS:
                    gain = np.nan
                    if not bt.empty and m != b:
                        gain = hit[col].iloc[0] - bt[col].iloc[0]
                    row[f"{col}_gain_vs_{b}"] = gain
            rows.append(row)
    cols = [f"{c}_gain_vs_{b}" for b in COMPARED_WITH for c in GAINS]
    return pd.DataFrame(rows, columns=["llm", "method", *cols])


def _variant(method: str) -> tuple[str, int | None]:
    """`method_variant`, a malformed name standing for itself."""
    try:
        return method_variant(method)
    except ValueError:
        return method, None


#: the shots table's methods: 0-shot, then k-shot with the user's own earlier titles
ZERO_SHOT, K_SHOT = "zero_shot", "k_shot"
SHOT_COLUMNS = ["llm", "shots", "method", "images", "clip_ref", "preference"]


def shots_table(table: pd.DataFrame, k: int | list[int]) -> pd.DataFrame:
    """The paper's 0/k-shot table from the method table (`method_table`): per LLM,
    zero_shot as 0 shots and each k_shot row as its K (``k_shot@K``, or `rewrite.k` for
    the plain ``k_shot``), with their scores and win rates vs `none`. Empty without a
    k_shot row of known K."""
    wins = [c for c in win_columns() if c.endswith(f"_vs_{BASELINE}")]
    cols = [*SHOT_COLUMNS, *wins]
    rows = []
    for r in table.to_dict("records"):
        base, variant = _variant(r["method"])
        if r["method"] == ZERO_SHOT:
            shots = 0
        elif base == K_SHOT and (variant is not None or isinstance(k, int)):
            shots = variant if variant is not None else k
        else:
            continue
        rows.append({c: r.get(c, np.nan) for c in cols} | {"shots": shots})
    out = pd.DataFrame(rows, columns=cols)
    if not (out["method"] != ZERO_SHOT).any():
        return out.iloc[0:0]
    return out.sort_values(["llm", "shots"], kind="stable").reset_index(drop=True)


#: the scores IPF re-weights (unweighted and raked columns side by side)
IPF_SCORES = ("clip_ref", "preference")


def ipf_table(
    scores: pd.DataFrame,
    demographics: dict[int, dict],
    targets: dict[str, dict[str, float]],
    source: str = "",
) -> tuple[pd.DataFrame, str]:
    """CLIPScore and the preference judge per (method, llm), unweighted and re-weighted so
    the demographics of that method's scored images match `targets` (raking within each
    method, so every method is compared on the same population), with the share of the
    method's users whose persona knows each attribute (``known <attribute>``); returns
    (table, note). Each attribute is raked on the users who know it (`rake_known`): an
    unknown value, or one the targets do not list, keeps its weight for that attribute.
    An attribute that cannot be raked for a method is named in the note; a method none
    can be raked for, or whose rows cannot meet the targets, gets NaN ("not applicable")."""
    if not targets:
        return pd.DataFrame(), (
            "no IPF targets configured (report.ipf_targets_file or report.ipf_targets)"
        )
    rows: list[dict] = []
    problems: dict[str, list[str]] = {}  # what went wrong -> the methods it did for
    for (m, llm), g in scores.groupby(["method", "method_llm"], sort=True):
        ok = g.dropna(subset=["clip_ref"])
        demo = [demographics.get(int(u)) for u in ok["user_id"]]
        groups = {a: [category(d, a) for d in demo] for a in targets}
        row: dict = {"method": m, "llm": llm, "images": len(ok)}
        present = [c for c in IPF_SCORES if c in ok.columns]
        for c in present:
            row[c] = pd.to_numeric(ok[c]).mean()
            row[f"{c}_ipf"] = np.nan
        users = {int(u): d for u, d in zip(ok["user_id"], demo, strict=True)}
        for a in targets:
            hit = sum(category(d, a) in targets[a] for d in users.values())
            row[f"known {a}"] = hit / len(users) if users else np.nan
        if len(ok):
            try:
                r = rake_known(groups, targets)
            except ValueError as e:
                problems.setdefault(f"not applicable: {e}", []).append(f"{m} ({llm})")
            else:
                for a, why in r.skipped.items():
                    problems.setdefault(f"{a} not raked ({why})", []).append(f"{m} ({llm})")
                if r.raked:
                    for c in present:
                        v = pd.to_numeric(ok[c]).to_numpy(float)
                        keep = ~np.isnan(v)
                        if keep.any():
                            row[f"{c}_ipf"] = weighted_mean(v[keep], r.weights[keep])
                else:
                    problems.setdefault("not applicable (no attribute raked)", []).append(
                        f"{m} ({llm})"
                    )
        rows.append(row)
    users = [int(u) for u in scores["user_id"].unique()]
    note = f"raked within each method to {', '.join(targets)}"
    note += f" (source: {source})" if source else ""
    note += "; coverage over the benchmark's users: " + ", ".join(
        f"{a} known for {sum(category(demographics.get(u), a) in targets[a] for u in users)}"
        f" of {len(users)}"
        for a in targets
    )
    note += (
        ". Each attribute is raked on the users who know it; a user whose persona leaves it "
        "unknown (or gives a value the targets do not list) keeps its weight for it"
    )
    for what, methods in problems.items():
        who = "every method" if len(methods) == len(rows) > 1 else ", ".join(methods)
        note += f"; {what}: {who}"
    return pd.DataFrame(rows), note
