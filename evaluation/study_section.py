"""The human A/B study in numbers: per method pair, how often raters chose each side's
method, with a two-sided exact binomial test against 0.5 ("can't tell" votes counted,
and left out of the test), and the ZIPBench report's "Human A/B study" section read from
`bench/study_votes` (written by `zipp study export --lake`)."""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from schemas.methods import method_rank

COLUMNS = {
    "study": "study",
    "method": "method",
    "vs": "vs",
    "raters": "raters",
    "votes": "votes",
    "wins": "wins",
    "losses": "losses",
    "ties": "can't tell",
    "win_rate": "win rate",
    "p_value": "p (two-sided binomial)",
}
NOTE = (
    "Blind pairwise judgements by people: each rater filled an intake survey, their persona "
    "was built from it by the cold start, and they saw the same prompt rendered by two "
    "methods side by side, sides drawn at random and balanced, method names hidden; one "
    "vote per pair (left, right or can't tell). Win rate = wins / (wins + losses); "
    '"can\'t tell" votes are counted and left out of the two-sided exact binomial test '
    "against 0.5."
)


def win_rates(votes: pd.DataFrame) -> pd.DataFrame:
    """One row per study and method pair (`method` the later of the two in the methods
    registry, e.g. zero_shot vs none): votes, wins, losses, ties, win rate, p."""
    from scipy.stats import binomtest

    cols = list(COLUMNS)
    if votes.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    pair = votes.apply(
        lambda r: tuple(sorted((r["method_left"], r["method_right"]), key=method_rank)), axis=1
    )
    for (study, (vs, method)), group in votes.groupby([votes["study"], pair], sort=True):
        wins = int((group["winner"] == method).sum())
        losses = int((group["winner"] == vs).sum())
        ties = int((group["vote"] == "cant_tell").sum())
        decided = wins + losses
        rows.append(
            {
                "study": study,
                "method": method,
                "vs": vs,
                "raters": int(group["rater"].nunique()),
                "votes": len(group),
                "wins": wins,
                "losses": losses,
                "ties": ties,
                "win_rate": wins / decided if decided else float("nan"),
                "p_value": float(binomtest(wins, decided, 0.5).pvalue) if decided else 1.0,
            }
        )
    return pd.DataFrame(rows, columns=cols)


def plot_win_rates(table: pd.DataFrame, out: Path) -> str:
    """A bar per method pair (win rate, 0.5 marked, p above each bar); the file's name."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [
        f"{m}\nvs {v}" + (f"\n{s}" if table["study"].nunique() > 1 else "")
        for s, m, v in zip(table["study"], table["method"], table["vs"], strict=True)
    ]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.3 * len(labels) + 1.5), 3.6))
    bars = ax.bar(labels, table["win_rate"].fillna(0), color="#4c72b0")
    ax.axhline(0.5, color="black", linewidth=0.8, linestyle="--")
    for bar, p, n in zip(bars, table["p_value"], table["votes"], strict=True):
        ax.annotate(
            f"p={p:.2g}\nn={n}",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=7,
        )
    ax.set_ylim(0, 1.15)
    ax.set_title("human A/B study: win rate (can't tell left out)", fontsize=9)
    ax.tick_params(axis="x", labelsize=7)
    fig.tight_layout()
    fig.savefig(out / "study.png", dpi=110)
    plt.close(fig)
    return "study.png"


def study_section(
    votes: pd.DataFrame, out: Path, table_html: Callable[[pd.DataFrame, dict, str], str]
) -> str:
    """The report's "Human A/B study" section ('' without votes): the win-rate table
    (also study.parquet) and its plot, written under `out`."""
    if votes.empty:
        return ""
    table = win_rates(votes)
    table.to_parquet(out / "study.parquet", index=False)
    plot = plot_win_rates(table, out)
    raters, studies = votes["rater"].nunique(), votes["study"].nunique()
    what = "study" if studies == 1 else "studies"
    facts = f"{len(votes):,} votes by {raters:,} raters in {studies} {what}."
    return (
        f"<h2>Human A/B study</h2><p class='note'>{html.escape(NOTE)} {facts}</p>"
        + table_html(table, COLUMNS, "study")
        + f"<p><img class='plot' src='{plot}' alt='human A/B study win rates'></p>"
    )
