"""The features stage streams silver/snippets: the held-out filter, the semi join with the
training edges and each subreddit's best texts are done piece by piece, and give what the
whole-table read gave, however the table is cut."""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pytest

from contract.errors import ContractError
from contract.history import REFERENCES, without_held_out
from contract.stage_io import TableAccess
from pipelines.stages.features import SNIPPET_COLUMNS
from pipelines.text_features import best_snippets, subreddit_documents, training_snippets
from schemas.tables import table
from storage.lake import Lake

SNIPPETS = "silver/snippets"
PER_SUBREDDIT = 8
SUBREDDITS = pa.table(
    {"subreddit_id": [1, 2, 3, 4], "subreddit": ["cats", "hiking", "empty", "Tiny"]}
)


def old_documents(subreddits, snippets, per_subreddit=32, max_chars=2000, metadata=None):
    """`subreddit_documents` as it was before streaming: every snippet as Python rows."""
    metadata = metadata or {}
    names = dict(
        zip(
            subreddits["subreddit_id"].to_pylist(), subreddits["subreddit"].to_pylist(), strict=True
        )
    )
    texts = defaultdict(list)
    for sid, text, score in zip(
        snippets["subreddit_id"].to_pylist(),
        snippets["text"].to_pylist(),
        snippets["score"].to_pylist(),
        strict=True,
    ):
        texts[sid].append((score or 0, text))
    ids, docs, counts = [], [], []
    for sid in sorted(names):
        best = [t for _, t in sorted(texts[sid], key=lambda x: (-x[0], x[1]))[:per_subreddit]]
        ids.append(sid)
        about = metadata.get(names[sid].lower())
        head = f"r/{names[sid]}: " + (f"{about} | " if about else "")
        docs.append((head + " | ".join(best))[:max_chars])
        counts.append(len(best))
    return ids, docs, counts


def snippet_rows() -> list[dict]:
    """More texts than PER_SUBREDDIT per subreddit, ties by score (broken by text, also
    across code points), null scores (count as 0), a duplicate text, a subreddit with
    fewer texts than PER_SUBREDDIT, one not in SUBREDDITS; posts p0..p9, some held out."""
    texts = ["b", "a", "Z", "é", "ä", "aa", "😀", "a", "c", "d"]
    rows = []
    for sid in (1, 2):
        for i, text in enumerate(texts):
            rows.append({"sid": sid, "text": f"{text}", "score": [5, 5, 5, None, 0, 7][i % 6]})
    rows += [
        {"sid": 4, "text": "lonely", "score": -3},
        {"sid": 4, "text": "alone", "score": None},
        {"sid": 9, "text": "stray", "score": 100},
    ]
    schema = table(SNIPPETS).schema
    return [
        {n: None for n in schema.names}
        | {
            "user_id": 10 + k % 3,
            "subreddit_id": r["sid"],
            "rank": k,
            "source": "comment",
            "record_id": f"c{k}",
            "text": r["text"],
            "score": r["score"],
            "created_utc": 1_600_000_000 + k,
            "post_id": f"p{k % 10}",
        }
        for k, r in enumerate(rows)
    ]


def snippets_table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=table(SNIPPETS).schema)


def pieces(t: pa.Table, rows: int) -> list[pa.Table]:
    return [pa.Table.from_batches([b]) for b in t.to_batches(max_chunksize=rows)]


@pytest.mark.parametrize("rows", [1, 3, 1000])
def test_streamed_documents_equal_the_whole_table_ones(rows):
    rng = random.Random(rows)
    data = snippet_rows()
    want = old_documents(SUBREDDITS, snippets_table(data), PER_SUBREDDIT)
    assert want[2] == [8, 8, 0, 2]  # more than PER_SUBREDDIT texts, none, fewer
    # score 7, the 5s by code point (a duplicate kept), then the best of the 0s and nulls
    assert want[1][0] == "r/cats: aa | Z | a | a | b | c | 😀 | d"
    for _ in range(3):
        got = subreddit_documents(SUBREDDITS, pieces(snippets_table(data), rows), PER_SUBREDDIT)
        assert got == want
        rng.shuffle(data)


@pytest.mark.parametrize("rows", [1, 3, 1000])
def test_running_best_is_each_subreddits_first_texts(rows):
    data = snippets_table(snippet_rows())
    best = best_snippets(pieces(data, rows), PER_SUBREDDIT)
    assert best.num_rows == 8 + 8 + 2 + 1  # stray subreddit 9 kept, ignored by documents
    got = defaultdict(list)
    for r in best.to_pylist():
        got[r["subreddit_id"]].append((r["score"], r["text"]))
    assert got[4] == [(0, "alone"), (-3, "lonely")]  # a null score counts as 0
    for sid, kept in got.items():
        every = [(s["score"] or 0, s["text"]) for s in data.to_pylist() if s["subreddit_id"] == sid]
        assert kept == sorted(every, key=lambda x: (-x[0], x[1]))[:PER_SUBREDDIT]
    assert best_snippets(best, PER_SUBREDDIT).equals(best)  # already the best: unchanged


def test_semi_join_by_pieces_equals_the_whole_table_join():
    data = snippets_table(snippet_rows())
    # (11, 2) and (2, 11) differ: the packed keys must not mix users and subreddits up
    train = pa.table(
        {
            "user_id": pa.array([10, 11, 2, 12, 2**31 - 1], pa.int32()),
            "subreddit_id": pa.array([1, 2, 11, 9, 1], pa.int32()),
        }
    )
    want = data.join(train, ["user_id", "subreddit_id"], join_type="left semi")
    assert 0 < want.num_rows < data.num_rows
    for rows in (1, 3, 1000):
        got = pa.concat_tables(training_snippets(pieces(data, rows), train))
        assert sorted_rows(got) == sorted_rows(want)
    none = training_snippets(pieces(data, 5), train.slice(0, 0))
    assert sum(p.num_rows for p in none) == 0


def sorted_rows(t: pa.Table) -> list[tuple]:
    return sorted(tuple(r.values()) for r in t.to_pylist())


@pytest.fixture(params=["parquet", "delta"])
def lake(request, tmp_path: Path) -> Lake:
    """A lake with silver/snippets and references holding out posts p1 and p4."""
    lake = Lake(tmp_path / "lake", request.param)
    lake.write_table(SNIPPETS, snippets_table(snippet_rows()))
    refs = [
        {"user_id": 10, "post_id": p, "position": 0, "image_url": "u", "created_utc": 0}
        for p in ("p1", "p4")
    ]
    lake.write_table(REFERENCES, pa.Table.from_pylist(refs, schema=table(REFERENCES).schema))
    return lake


def access(lake: Lake) -> TableAccess:
    return TableAccess(
        stage="features",
        root=str(lake.root),
        format=lake.format,
        inputs=frozenset(),
        history_inputs=frozenset({SNIPPETS}),
    )


@pytest.mark.parametrize("rows", [1, 3, 1000])
def test_history_batches_hold_out_what_the_whole_history_does(lake, rows):
    tables = access(lake)
    whole = lake.read(SNIPPETS)
    want = without_held_out(whole, SNIPPETS, lake.read(REFERENCES))
    assert 0 < want.num_rows < whole.num_rows
    got = list(tables.history_batches(SNIPPETS, SNIPPET_COLUMNS, rows))
    assert len(got) == -(-whole.num_rows // rows)  # one piece per `rows` rows read
    assert all(p.column_names == SNIPPET_COLUMNS for p in got)  # post ids read, dropped
    assert sorted_rows(pa.concat_tables(got)) == sorted_rows(want.select(SNIPPET_COLUMNS))
    every = pa.concat_tables(tables.history_batches(SNIPPETS, batch_rows=rows))
    assert sorted_rows(every) == sorted_rows(tables.history(SNIPPETS))


def test_history_batches_only_of_declared_history(lake):
    tables = access(lake)
    with pytest.raises(ContractError, match="reads the history of 'silver/image_embeddings'"):
        tables.history_batches("silver/image_embeddings")  # raised before any piece


@pytest.mark.parametrize("rows", [1, 3, 1000])
def test_the_stages_streamed_selection_equals_the_whole_table_one(lake, rows):
    """What `features` now does (history pieces -> semi join -> running best) against
    what it did (whole history, one join, every row in Python)."""
    tables = access(lake)
    train = pa.table(
        {
            "user_id": pa.array([10, 11, 12, 12], pa.int32()),
            "subreddit_id": pa.array([1, 1, 1, 2], pa.int32()),
        }
    )
    keys = ["user_id", "subreddit_id"]
    whole = tables.history(SNIPPETS).join(train, keys, join_type="left semi")
    about = {"cats": "all about cats"}
    want = old_documents(SUBREDDITS, whole, 4, metadata=about)
    assert want[2] == [4, 1, 0, 0]  # 8 left in r/cats, 4 kept
    streamed = tables.history_batches(SNIPPETS, SNIPPET_COLUMNS, rows)
    best = best_snippets(training_snippets(streamed, train), 4)
    assert subreddit_documents(SUBREDDITS, best, 4, metadata=about) == want
    assert subreddit_documents(SUBREDDITS, best, 4) == old_documents(SUBREDDITS, whole, 4)
