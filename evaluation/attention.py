"""How well attention finds a user's planted communities (sample world only): per user,
precision@m of their subreddits ranked by attention vs ranked by raw activity, where m is
the number of planted-community subreddits among the user's subreddits."""

from __future__ import annotations

from collections import defaultdict
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

    def summary(self) -> str:
        return (
            f"attention vs raw activity on {self.users} users with planted and other "
            f"subreddits: attention ranks planted communities higher for "
            f"{self.attention_wins} ({self.attention_wins / max(self.users, 1):.0%}), ties "
            f"{self.ties}, activity higher for {self.counts_win}; mean precision@planted "
            f"{self.attention_precision:.3f} (attention) vs {self.counts_precision:.3f} (activity)"
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
    rows: dict[int, list[tuple[float, int, bool]]] = defaultdict(list)
    for r in attention.to_pylist():
        comms = planted_of.get(author[r["user_id"]], set())
        planted = community.get(name[r["subreddit_id"]]) in comms
        rows[r["user_id"]].append((r["attention"], r["posts"] + r["comments"], planted))
    wins = ties = losses = 0
    pa_att, pa_cnt = [], []
    for items in rows.values():
        att, cnt, planted = (np.asarray(x) for x in zip(*items, strict=True))
        m = int(planted.sum())
        if m == 0 or m == len(planted):
            continue
        p_att = _precision(np.argsort(-att, kind="stable"), planted, m)
        p_cnt = _precision(np.argsort(-cnt, kind="stable"), planted, m)
        pa_att.append(p_att)
        pa_cnt.append(p_cnt)
        wins += p_att > p_cnt
        ties += p_att == p_cnt
        losses += p_att < p_cnt
    return AttentionCheck(
        users=len(pa_att),
        attention_wins=wins,
        ties=ties,
        counts_win=losses,
        attention_precision=float(np.mean(pa_att)) if pa_att else float("nan"),
        counts_precision=float(np.mean(pa_cnt)) if pa_cnt else float("nan"),
    )
