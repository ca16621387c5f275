"""Agreement of every scorer with the truth (P-MLLM's metrics): SROCC (Spearman) and PLCC
(Pearson) of each scorer's scores on the agreement set (bench/agreement: other benchmark
users' held-out reference images, scored for a user exactly as generated images are)
against the planted per-(user, image) taste distance of the sample world.

Only the report joins the truth (`report.ground_truth`); no stage before it reads it.
The join goes through names only inside `truth_distances` (a reference post's author
leads to the judged user's planted taste); what comes out is one distance per row.
Correlations are reported against the NEGATIVE distance, so a good scorer (higher score
for an image closer to the user's taste) has positive SROCC and PLCC.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

#: the planted taste's layout (sample world): the first two fields are hues on a circle
TASTE_FIELDS = ("hue", "hue2", "saturation", "brightness", "contrast", "grain")
HUES = 2

#: scorer column in bench/agreement -> how the report names it
SCORERS = {
    "clip_ref": "CLIPScore vs references",
    "preference": "preference judge (learned, history)",
    "judge_score": "LLM judge",
}


def taste_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distance between planted tastes, row by row; hues wrap around 1.0."""
    a, b = np.atleast_2d(np.asarray(a, float)), np.atleast_2d(np.asarray(b, float))
    d = np.abs(a - b)
    d[:, :HUES] = np.minimum(d[:, :HUES], 1.0 - d[:, :HUES])
    return np.sqrt((d**2).sum(axis=1))


def truth_distances(
    agreement: pd.DataFrame, references: pd.DataFrame, ground_truth: str | Path
) -> np.ndarray:
    """The planted taste distance per agreement row (NaN where the truth has no answer):
    the judged user's taste (users.parquet, by the author of their reference posts in
    images.parquet) vs the image's own taste (images.parquet by post and position). The
    names stay inside this function."""
    root = Path(ground_truth)
    images = pd.read_parquet(
        root / "images.parquet", columns=["post_id", "position", "author", "taste"]
    )
    users = pd.read_parquet(root / "users.parquet", columns=["author", "taste"])
    post_author = images.drop_duplicates("post_id").set_index("post_id")["author"]
    owner = references[["user_id", "post_id"]].drop_duplicates()
    owner = owner.assign(author=owner["post_id"].map(post_author)).dropna(subset=["author"])
    author_of = owner.groupby("user_id")["author"].agg(lambda s: s.mode().iloc[0])
    taste_of = users.set_index("author")["taste"]
    user_taste = author_of.map(taste_of).dropna()
    image_taste = images.set_index(["post_id", "position"])["taste"]
    keys = list(zip(agreement["post_id"], agreement["position"].astype(int), strict=True))
    out = np.full(len(agreement), np.nan)
    for i, (u, key) in enumerate(zip(agreement["user_id"].astype(int), keys, strict=True)):
        if u in user_taste.index and key in image_taste.index:
            out[i] = taste_distance(user_taste[u], image_taste[key])[0]
    return out


def agreement_table(
    agreement: pd.DataFrame, distance: np.ndarray, scorers: dict[str, str] | None = None
) -> pd.DataFrame:
    """One row per scorer with scores: pairs, SROCC and PLCC against −distance, with
    their two-sided p-values; a scorer with fewer than 3 pairs gets NaN."""
    from scipy.stats import pearsonr, spearmanr

    rows = []
    for col, label in (scorers or SCORERS).items():
        if col not in agreement.columns:
            continue
        s = pd.to_numeric(agreement[col], errors="coerce").to_numpy(float)
        ok = ~(np.isnan(s) | np.isnan(distance))
        n = int(ok.sum())
        if n == 0:
            continue
        row = {"scorer": label, "pairs": n}
        if n >= 3 and np.ptp(s[ok]) > 0 and np.ptp(distance[ok]) > 0:
            sr, plc = spearmanr(s[ok], -distance[ok]), pearsonr(s[ok], -distance[ok])
            row |= {
                "srocc": float(sr.statistic),
                "srocc_p": float(sr.pvalue),
                "plcc": float(plc.statistic),
                "plcc_p": float(plc.pvalue),
            }
        rows.append(row)
    return pd.DataFrame(rows, columns=["scorer", "pairs", "srocc", "srocc_p", "plcc", "plcc_p"])
