"""Subreddit documents do not depend on the order their snippets arrive in (the features
stage gets them from a multithreaded join, whose row order is not fixed)."""

from __future__ import annotations

import random

import pyarrow as pa

from pipelines.text_features import subreddit_documents


def test_documents_ignore_the_snippets_row_order():
    subs = pa.table({"subreddit_id": [1, 2], "subreddit": ["cats", "hiking"]})
    rows = [
        {"subreddit_id": s, "text": f"{name} note {i}", "score": i % 3}
        for s, name in ((1, "cat"), (2, "trail"))
        for i in range(12)
    ]
    want = subreddit_documents(subs, pa.Table.from_pylist(rows), per_subreddit=5)
    rng = random.Random(0)
    for _ in range(5):
        rng.shuffle(rows)
        assert subreddit_documents(subs, pa.Table.from_pylist(rows), per_subreddit=5) == want
    ids, docs, counts = want
    assert ids == [1, 2] and counts == [5, 5]
    assert docs[0].startswith("r/cats: cat note 11 | cat note 2 | cat note 5")
