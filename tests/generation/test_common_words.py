"""Common words: what a quarter or more of all subreddits' snippets use is chatter."""

from __future__ import annotations

import pyarrow as pa

from generation.evidence import common_words


def _table(rows: list[tuple[int, str]]) -> pa.Table:
    return pa.table({"subreddit_id": [r[0] for r in rows], "text": [r[1] for r in rows]})


def test_words_most_subreddits_use_are_common_and_a_communitys_words_are_not():
    rows = [(s, "honestly agree with this tabby") for s in range(5)]  # 5 of 20: a quarter
    rows += [(s, "z" * s) for s in range(5, 20)]  # one word of its own each
    rows += [(6, "merino yarn cables"), (7, "merino skein"), (5, "sunset over dunes")]
    common = common_words(_table(rows))
    assert common == {"honestly", "agree", "with", "this", "tabby"}
    assert common_words(_table(rows), share=0.5) == frozenset()
    assert common_words(_table(rows).slice(0, 0)) == frozenset()


def test_too_few_subreddits_to_judge_make_nothing_common():
    rows = [(s, "honestly agree") for s in range(19)]
    assert common_words(_table(rows)) == frozenset()
    assert common_words(_table([*rows, (19, "tabby")])) == {"honestly", "agree"}
