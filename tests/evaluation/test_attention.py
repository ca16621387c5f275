"""`check_attention` on hand-built tables: per user, precision@m of their subreddits ranked
by attention and by activity (m = their planted-community subreddits), against a planted
truth written as the sample world writes it."""

from __future__ import annotations

import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from evaluation.attention import AttentionCheck, check_attention
from schemas.gold import ATTENTION

# silver ids -> names; the truth uses names (and Reddit's own subreddit ids)
SUBS = {0: "art_a", 1: "art_b", 2: "cats", 3: "general", 4: "news"}
COMMUNITY = {"art_a": "art", "art_b": "art", "cats": "cats", "general": None, "news": None}
AUTHORS = {0: "alice", 1: "bob", 2: "carol", 3: "dave", 4: "frank", 5: "gina", 6: "hal"}
COMMUNITIES = {  # frank is not in the truth at all
    "alice": ["art"],
    "bob": ["art"],
    "carol": ["cats"],
    "dave": ["art"],
    "gina": ["art", "cats"],
    "hal": ["cats"],
}

# (user, subreddit, attention, posts, comments)
ROWS = [
    # alice, win: attention puts art_a first, activity the general subreddit -> 1 vs 0
    (0, 0, 0.7, 1, 1),
    (0, 3, 0.3, 5, 5),
    # bob, tie: m = 2; attention top-2 {art_a, news}, activity top-2 {art_b, news} -> 1/2 each
    (1, 0, 0.5, 0, 1),
    (1, 4, 0.3, 4, 4),
    (1, 1, 0.2, 6, 4),
    # carol, loss: art_a is another community's, not hers -> attention 0, activity 1
    (2, 0, 0.6, 1, 2),
    (2, 2, 0.3, 4, 5),
    (2, 3, 0.1, 0, 1),
    # dave: planted subreddits only -> skipped
    (3, 0, 0.9, 0, 1),
    (3, 1, 0.1, 9, 9),
    # frank: not in the truth, nothing planted -> skipped
    (4, 0, 0.8, 1, 0),
    (4, 3, 0.2, 3, 3),
    # gina, win: m = 2; attention top-2 {cats, art_a} -> 1, activity {general, art_a} -> 1/2
    (5, 2, 0.4, 0, 1),
    (5, 0, 0.3, 2, 3),
    (5, 4, 0.2, 1, 3),
    (5, 3, 0.1, 4, 6),
    # hal: general subreddits only -> skipped
    (6, 3, 0.6, 1, 1),
    (6, 4, 0.4, 2, 2),
]


def attention_table(rows) -> pa.Table:
    """gold/attention rows; rank 1 = the user's most attended subreddit."""
    out = []
    for u, s, att, posts, comments in rows:
        rank = 1 + sum(r[0] == u and r[2] > att for r in rows)
        out.append(
            {
                "user_id": u,
                "subreddit_id": s,
                "attention": att,
                "rank": rank,
                "posts": posts,
                "comments": comments,
            }
        )
    return pa.Table.from_pylist(out, schema=ATTENTION)


def users_table() -> pa.Table:
    return pa.table(
        {
            "user_id": pa.array(list(AUTHORS), pa.int32()),
            "author": list(AUTHORS.values()),
        }
    )


def subreddits_table() -> pa.Table:
    return pa.table(
        {"subreddit_id": pa.array(list(SUBS), pa.int32()), "subreddit": list(SUBS.values())}
    )


@pytest.fixture
def ground_truth(tmp_path: Path) -> Path:
    gt = tmp_path / "ground_truth"
    gt.mkdir()
    pq.write_table(
        pa.table(
            {
                "author": list(COMMUNITIES),
                "communities": pa.array(list(COMMUNITIES.values()), pa.list_(pa.string())),
            }
        ),
        gt / "users.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "subreddit": list(COMMUNITY),
                "subreddit_id": [f"t5_{i:x}" for i in range(100, 100 + len(COMMUNITY))],
                "community": pa.array(list(COMMUNITY.values()), pa.string()),
            }
        ),
        gt / "subreddits.parquet",
    )
    return gt


def check(rows, ground_truth: Path) -> AttentionCheck:
    return check_attention(attention_table(rows), users_table(), subreddits_table(), ground_truth)


def test_counts_and_precisions(ground_truth):
    got = check(ROWS, ground_truth)
    # alice 1 vs 0, bob 1/2 vs 1/2, carol 0 vs 1, gina 1 vs 1/2
    assert got.users == 4
    assert (got.attention_wins, got.ties, got.counts_win) == (2, 1, 1)
    assert got.attention_precision == pytest.approx((1 + 0.5 + 0 + 1) / 4)
    assert got.counts_precision == pytest.approx((0 + 0.5 + 1 + 0.5) / 4)
    text = got.summary()
    assert "on 4 users" in text
    assert "higher for 2 (50%)" in text
    assert "ties 1" in text
    assert "activity higher for 1" in text
    assert "0.625 (attention) vs 0.500 (activity)" in text


def test_row_order_does_not_matter(ground_truth):
    shuffled = ROWS[1::2] + ROWS[::2]
    assert check(shuffled, ground_truth) == check(ROWS, ground_truth)


def test_single_users(ground_truth):
    alice = check([r for r in ROWS if r[0] == 0], ground_truth)
    assert (alice.users, alice.attention_wins, alice.ties, alice.counts_win) == (1, 1, 0, 0)
    assert (alice.attention_precision, alice.counts_precision) == (1.0, 0.0)
    carol = check([r for r in ROWS if r[0] == 2], ground_truth)
    assert (carol.users, carol.attention_wins, carol.ties, carol.counts_win) == (1, 0, 0, 1)
    assert (carol.attention_precision, carol.counts_precision) == (0.0, 1.0)
    # carol with cats the most attended: both rankings find it, a tie at 1
    flipped = [(2, 0, 0.3, 1, 2), (2, 2, 0.6, 4, 5), (2, 3, 0.1, 0, 1)]
    tie = check(flipped, ground_truth)
    assert (tie.users, tie.attention_wins, tie.ties, tie.counts_win) == (1, 0, 1, 0)
    assert (tie.attention_precision, tie.counts_precision) == (1.0, 1.0)


def test_only_skipped_users(ground_truth):
    got = check([r for r in ROWS if r[0] in (3, 4, 6)], ground_truth)
    assert (got.users, got.attention_wins, got.ties, got.counts_win) == (0, 0, 0, 0)
    assert math.isnan(got.attention_precision) and math.isnan(got.counts_precision)
    assert "on 0 users" in got.summary() and "(0%)" in got.summary()


def test_tfidf_peer(ground_truth):
    # 7 users; subreddit users: art_a 6, art_b 2, cats 2, general 5, news 3, so
    # activity x log(7 / users) ranks: alice general > art_a (0), bob art_b, news (1/2),
    # carol cats (1), gina news, general (0)
    got = check(ROWS, ground_truth)
    assert (got.tfidf_wins, got.tfidf_ties, got.tfidf_losses) == (2, 1, 1)
    assert got.tfidf_precision == pytest.approx((0 + 0.5 + 1 + 0) / 4)
    assert "TF-IDF (activity x idf, precision 0.375)" in got.summary()
    assert "TF-IDF higher for 1" in got.summary()
