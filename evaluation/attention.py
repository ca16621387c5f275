"""How well attention finds a user's planted communities (sample world only): per user,
precision@m of their subreddits ranked by attention vs ranked by raw activity, where m is
the number of planted-community subreddits among the user's subreddits. A third ranking,
TF-IDF (activity x log(users / the subreddit's users)), is the peer that discounts busy
subreddits without any learning: attention should beat activity, and is compared to it."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


@dataclass
class AttentionCheck:
    users: int  # users with both planted and other subreddits
    attention_wins: int
    ties: int
    counts_win: int
    attention_precision: float
    counts_precision: float
    tfidf_wins: int = 0  # attention vs the TF-IDF ranking: wins, ties, losses
    tfidf_ties: int = 0
    tfidf_losses: int = 0
    tfidf_precision: float = float("nan")

    def summary(self) -> str:
        return (
            f"attention vs raw activity on {self.users} users with planted and other "
            f"subreddits: attention ranks planted communities higher for "
            f"{self.attention_wins} ({self.attention_wins / max(self.users, 1):.0%}), ties "
            f"{self.ties}, activity higher for {self.counts_win}; mean precision@planted "
            f"{self.attention_precision:.3f} (attention) vs {self.counts_precision:.3f} "
            f"(activity). Against TF-IDF (activity x idf, precision "
            f"{self.tfidf_precision:.3f}): attention higher for {self.tfidf_wins}, "
            f"ties {self.tfidf_ties}, TF-IDF higher for {self.tfidf_losses}"
        )


def _precision(order: np.ndarray, planted: np.ndarray, m: int) -> float:
    return float(planted[order[:m]].mean())


def check_attention(
    attention: pa.Table, users: pa.Table, subreddits: pa.Table, ground_truth: Path
) -> AttentionCheck:
    """Compare attention and activity rankings against the sample world's planted truth."""
    gt_users = pq.read_table(ground_truth / "users.parquet").to_pylist()
    gt_subs = pq.read_table(ground_truth / "subreddits.parquet").to_pylist()
    community = {r["subreddit"]: r["community"] for r in gt_subs}
    planted_of = {r["author"]: set(r["communities"]) for r in gt_users}
    author = dict(zip(users["user_id"].to_pylist(), users["author"].to_pylist(), strict=True))
    name = dict(
        zip(
            subreddits["subreddit_id"].to_pylist(), subreddits["subreddit"].to_pylist(), strict=True
        )
    )
    # one fixed order, so activity's ties are not broken by attention's order
    table = attention.sort_by([("user_id", "ascending"), ("subreddit_id", "ascending")]).to_pylist()
    sub_users = Counter(r["subreddit_id"] for r in table)
    n_users = len({r["user_id"] for r in table})
    rows: dict[int, list[tuple[float, int, float, bool]]] = defaultdict(list)
    for r in table:
        comms = planted_of.get(author[r["user_id"]], set())
        planted = community.get(name[r["subreddit_id"]]) in comms
        activity = r["posts"] + r["comments"]
        tfidf = activity * np.log(n_users / sub_users[r["subreddit_id"]])
        rows[r["user_id"]].append((r["attention"], activity, tfidf, planted))
    precisions = []  # per user: (attention, activity, tf-idf)
    for items in rows.values():
        att, cnt, tfidf, planted = (np.asarray(x) for x in zip(*items, strict=True))
        m = int(planted.sum())
        if m == 0 or m == len(planted):
            continue
        precisions.append(
            [_precision(np.argsort(-x, kind="stable"), planted, m) for x in (att, cnt, tfidf)]
        )
    p = np.asarray(precisions, float).reshape(-1, 3)

    def mean(col: int) -> float:
        return float(p[:, col].mean()) if len(p) else float("nan")

    return AttentionCheck(
        users=len(p),
        attention_wins=int((p[:, 0] > p[:, 1]).sum()),
        ties=int((p[:, 0] == p[:, 1]).sum()),
        counts_win=int((p[:, 0] < p[:, 1]).sum()),
        attention_precision=mean(0),
        counts_precision=mean(1),
        tfidf_wins=int((p[:, 0] > p[:, 2]).sum()),
        tfidf_ties=int((p[:, 0] == p[:, 2]).sum()),
        tfidf_losses=int((p[:, 0] < p[:, 2]).sum()),
        tfidf_precision=mean(2),
    )
