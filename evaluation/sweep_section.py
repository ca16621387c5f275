"""The ZIPBench report's "LLM sweep" section: for each swept LLM (`method_llm` of
bench/scores) and each method that LLM rewrote, the paired comparison with the same LLM's
`none` rewrite (same user, prompt and seed): the win rate with its Wilson interval
(`evaluation.stats.win_rate`'s wins over decided pairs) and the mean score gain with a
percentile bootstrap interval that resamples users (a user's pairs move together), on
CLIPScore, the preference judge and the LLM judge. The LLM judge is one model on one
scale for every LLM (`judge.*`, one persona per user: `judge.persona_llm`); a table whose
judge scores came from more than one judge is not compared on them (the section says so)."""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from evaluation.stats import win_rate
from schemas.methods import method_rank

BASELINE = "none"
PAIR = ["user_id", "prompt_id", "seed_index"]
LEVEL = 0.95  # the intervals' confidence level
RESAMPLES = 2000  # bootstrap resamples of the users
SEED = 0
#: score column -> (short name in the table's columns, title)
METRICS = {
    "clip_ref": ("cs", "CS"),
    "preference": ("pref", "pref"),
    "judge_score": ("judge", "LLM judge"),
}


def wilson(wins: int, decided: int, level: float = LEVEL) -> tuple[float, float]:
    """Wilson score interval of a win rate (scipy's binomtest); NaN without decided pairs."""
    from scipy.stats import binomtest

    if decided == 0:
        return float("nan"), float("nan")
    ci = binomtest(wins, decided).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


def user_bootstrap(
    diff: np.ndarray, users: np.ndarray, level: float = LEVEL, resamples: int = RESAMPLES
) -> tuple[float, float, float]:
    """(mean, low, high) of paired differences: the mean over pairs and its percentile
    bootstrap interval, users drawn with replacement (seeded); NaN bounds under 2 users."""
    diff, users = np.asarray(diff, float), np.asarray(users)
    ok = ~np.isnan(diff)
    diff, users = diff[ok], users[ok]
    if not len(diff):
        return float("nan"), float("nan"), float("nan")
    _, inv = np.unique(users, return_inverse=True)
    sums, counts = np.bincount(inv, weights=diff), np.bincount(inv)
    mean = float(diff.mean())
    if len(sums) < 2:
        return mean, float("nan"), float("nan")
    idx = np.random.default_rng(SEED).integers(0, len(sums), size=(resamples, len(sums)))
    means = sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return mean, float(low), float(high)


def judges_of(scores: pd.DataFrame) -> list[str]:
    """The judges (``backend:model`` labels) whose scores bench/scores holds."""
    done = scores[scores["status"] == "done"] if "status" in scores else scores
    return sorted(set(done["llm"]) - {"none"}) if "llm" in done else []


def sweep_table(scores: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """One row per (LLM, method other than `none`): pairs with that LLM's `none`, users,
    and per metric the win rate vs none with its Wilson interval (``<m>_win``,
    ``_win_low``, ``_win_high``) and the mean gain with its user-bootstrap interval
    (``<m>_gain``, ``_gain_low``, ``_gain_high``)."""
    cols = ["llm", "method", "pairs", "users"]
    for m in metrics:
        s = METRICS[m][0]
        cols += [
            f"{s}_{k}" for k in ("win", "win_low", "win_high", "gain", "gain_low", "gain_high")
        ]
    rows = []
    made = scores[scores["method_llm"] != "-"]
    for llm, g in made.groupby("method_llm", sort=True):
        base = g[g["method"] == BASELINE]
        if base.empty:
            continue
        for method in sorted(set(g["method"]) - {BASELINE}, key=method_rank):
            pair = g[g["method"] == method].merge(base, on=PAIR, suffixes=("", "_base"))
            row = {"llm": llm, "method": method, "pairs": len(pair)}
            row["users"] = int(pair["user_id"].nunique())
            for m in metrics:
                s = METRICS[m][0]
                a = pd.to_numeric(pair[m]).to_numpy(float)
                b = pd.to_numeric(pair[f"{m}_base"]).to_numpy(float)
                wr = win_rate(a, b)
                low, high = wilson(wr["wins"], wr["wins"] + wr["losses"])
                gain = user_bootstrap(a - b, pair["user_id"].to_numpy())
                row |= {f"{s}_win": wr["win_rate"], f"{s}_win_low": low, f"{s}_win_high": high}
                row |= dict(
                    zip((f"{s}_gain", f"{s}_gain_low", f"{s}_gain_high"), gain, strict=True)
                )
            rows.append(row)
    return pd.DataFrame(rows, columns=cols)


def _ci(v: float, low: float, high: float) -> str:
    if v != v:
        return "—"
    bounds = "" if low != low else f" [{low:.3g}, {high:.3g}]"
    return f"{v:.3g}{bounds}"


def display(table: pd.DataFrame, metrics: list[str]) -> tuple[pd.DataFrame, dict[str, str]]:
    """The table as the page shows it (a value and its interval per cell), and its titles."""
    shown = table[["llm", "method", "pairs"]].copy()
    titles = {"llm": "LLM", "method": "method", "pairs": "pairs"}
    pct = f"{LEVEL:.0%}"
    for m in metrics:
        s, title = METRICS[m]
        for kind, what in (("win", "win vs none"), ("gain", "Δ vs none")):
            shown[f"{s}_{kind}"] = [
                _ci(*v)
                for v in zip(
                    table[f"{s}_{kind}"],
                    table[f"{s}_{kind}_low"],
                    table[f"{s}_{kind}_high"],
                    strict=True,
                )
            ]
            titles[f"{s}_{kind}"] = f"{title} {what} [{pct} CI]"
    return shown, titles


def plot_sweep(table: pd.DataFrame, metrics: list[str], out: Path) -> str:
    """A forest plot per metric: each (LLM, method)'s win rate vs none with its Wilson
    interval, 0.5 marked; the file's name."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{llm} · {m}" for llm, m in zip(table["llm"], table["method"], strict=True)]
    y = np.arange(len(labels))[::-1]
    methods = sorted(set(table["method"]), key=method_rank)
    colours = plt.get_cmap("tab10")
    fig, axes = plt.subplots(
        1, len(metrics), figsize=(4.2 * len(metrics) + 2, 0.28 * len(labels) + 1.4), sharey=True
    )
    for ax, m in zip(np.atleast_1d(axes), metrics, strict=True):
        s, title = METRICS[m]
        win = table[f"{s}_win"].to_numpy(float)
        err = np.abs(np.stack([win - table[f"{s}_win_low"], table[f"{s}_win_high"] - win]))
        for k, method in enumerate(methods):
            at = (table["method"] == method).to_numpy()
            ax.errorbar(win[at], y[at], xerr=err[:, at], fmt="o", ms=4, color=colours(k % 10))
        ax.axvline(0.5, color="black", linewidth=0.8, linestyle="--")
        ax.set_xlim(0, 1)
        ax.set_title(f"{title}: win rate vs none ({LEVEL:.0%} Wilson)", fontsize=9)
    ax0 = np.atleast_1d(axes)[0]
    ax0.set_yticks(y, labels, fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "sweep.png", dpi=110)
    plt.close(fig)
    return "sweep.png"


def sweep_section(
    scores: pd.DataFrame,
    judge: str,
    persona_llm: str,
    out: Path,
    table_html: Callable[[pd.DataFrame, dict, str], str],
) -> str:
    """The section's HTML ('' without any LLM's `none` rows), its table also written to
    sweep.parquet and its plot to sweep.png under `out`. `judge`: the configured judge's
    label (``none`` when off); `persona_llm`: whose persona it sees."""
    judges = judges_of(scores)
    metrics = ["clip_ref", "preference"]
    if len(judges) > 1:
        said = (
            f"LLM judge: not compared — bench/scores holds scores by {len(judges)} judges "
            f"({', '.join(judges)}), which are not one scale; rerun the score stage."
        )
    elif judges and scores["judge_score"].notna().any():
        metrics.append("judge_score")
        said = (
            f"LLM judge: {judges[0]}, one model for every LLM, shown each user's persona by "
            f"{persona_llm} whichever LLM rewrote the prompt: one scale."
        )
    else:
        said = f"LLM judge: none scored ({judge})."
    table = sweep_table(scores, metrics)
    if table.empty:
        return ""
    table.to_parquet(out / "sweep.parquet", index=False)
    plot = plot_sweep(table, metrics, out)
    shown, titles = display(table, metrics)
    note = (
        "Each method against the same LLM's none rewrite, paired by user, prompt and seed. "
        f"Win rate = wins / (wins + losses), ties left out, with its {LEVEL:.0%} Wilson "
        f"interval; Δ = mean score difference, with a {LEVEL:.0%} percentile bootstrap "
        f"interval over users ({RESAMPLES} resamples, seed {SEED}). {said}"
    )
    llms = table["llm"].nunique()
    return (
        f"<h2>LLM sweep: persona gains per LLM, with intervals</h2>"
        f"<p class='note'>{html.escape(note)} {llms} LLM(s).</p>"
        + table_html(shown, titles, "sweep")
        + f"<p><img class='plot' src='{plot}' alt='win rates vs none per LLM'></p>"
    )
