"""The lake's tables: name -> schema and partitioning, in one place."""

from dataclasses import dataclass

import pyarrow as pa

from schemas import generation, gold, reddit, silver


@dataclass(frozen=True)
class TableSpec:
    """A lake table: `layer/name`, its Arrow schema and partition columns."""

    name: str
    schema: pa.Schema
    partition_by: tuple[str, ...] = ()


TABLES: dict[str, TableSpec] = {
    t.name: t
    for t in [
        TableSpec("bronze/submissions", reddit.BRONZE_SUBMISSIONS, ("month",)),
        TableSpec("bronze/comments", reddit.BRONZE_COMMENTS, ("month",)),
        TableSpec("quarantine/records", reddit.QUARANTINE_RECORDS),
        TableSpec("silver/users", silver.USERS),
        TableSpec("silver/subreddits", silver.SUBREDDITS),
        TableSpec("silver/edges", silver.EDGES),
        TableSpec("silver/snippets", silver.SNIPPETS),
        TableSpec("silver/user_images", silver.USER_IMAGES),
        TableSpec("silver/image_embeddings", silver.IMAGE_EMBEDDINGS),
        TableSpec("silver/node_features", silver.NODE_FEATURES),
        TableSpec("models/encoder", gold.TRAIN_METRICS),
        TableSpec("gold/user_embeddings", gold.USER_EMBEDDINGS),
        TableSpec("gold/attention", gold.ATTENTION),
        TableSpec("gold/personas", generation.PERSONAS),
        TableSpec("gold/visual_preferences", generation.VISUAL_PREFERENCES),
        TableSpec("bench/users", generation.BENCH_USERS),
        TableSpec("bench/references", generation.BENCH_REFERENCES),
        TableSpec("bench/prompts", generation.BENCH_PROMPTS),
        TableSpec("bench/rewrites", generation.REWRITES),
        TableSpec("bench/images", generation.BENCH_IMAGES),
        TableSpec("bench/scores", generation.BENCH_SCORES),
        TableSpec("bench/agreement", generation.BENCH_AGREEMENT),
    ]
}


def table(name: str) -> TableSpec:
    """Look up a table by its lake name, e.g. ``bronze/comments``."""
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown lake table {name!r}; known: {', '.join(TABLES)}") from None
