"""The lake's tables: name -> schema and partitioning, in one place."""

from dataclasses import dataclass

import pyarrow as pa

from schemas import bench, gold, reddit, silver, study


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
        TableSpec("bronze/subreddits", reddit.BRONZE_SUBREDDITS, ("month",)),
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
        TableSpec("gold/personas", gold.PERSONAS),
        TableSpec("gold/visual_preferences", gold.VISUAL_PREFERENCES),
        TableSpec("bench/users", bench.BENCH_USERS),
        TableSpec("bench/references", bench.BENCH_REFERENCES),
        TableSpec("bench/prompts", bench.BENCH_PROMPTS),
        TableSpec("bench/rewrites", bench.REWRITES),
        TableSpec("bench/images", bench.BENCH_IMAGES),
        TableSpec("bench/scores", bench.BENCH_SCORES),
        TableSpec("bench/agreement", bench.BENCH_AGREEMENT),
        TableSpec("bench/study_votes", study.STUDY_VOTES),  # `zipp study export --lake`
    ]
}


def table(name: str) -> TableSpec:
    """Look up a table by its lake name, e.g. ``bronze/comments``."""
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown lake table {name!r}; known: {', '.join(TABLES)}") from None


#: the lake's folders that are not tables, each named once (model folders, media files,
#: reports, the frozen benchmark manifest); a stage declares the ones it uses
MEDIA = "media"  # generated images, by benchmark and user
SMOKE_MODEL = "models/smoke-diffusion"  # stage `smoke`: the embedded default's diffusers model
CHECKPOINTS = "models/checkpoints"  # stage `train`: Ray Train checkpoints of the current run
ABLATION = "models/ablation"  # `zipp ablation`: its runs' checkpoints (scratch)
ABLATION_REPORT = "reports/ablation"  # `zipp ablation`: its tables and plots
REPORT = "reports/zipbench"  # stage `report`: the ZIPBench HTML report
BENCH_MANIFEST = "_manifests/zipbench.json"  # `zipp bench freeze`: a frozen benchmark
STUDY = "study"  # `zipp study`: its SQLite store and its raters' images (by default)
#: `zipp bench external NAME`: external/<name>/ holds that benchmark's own bench/* tables,
#: media/ and reports/zipbench/ (a lake of the same layout under this prefix)
EXTERNAL = "external"
FOLDERS = (
    MEDIA,
    SMOKE_MODEL,
    CHECKPOINTS,
    ABLATION,
    ABLATION_REPORT,
    REPORT,
    BENCH_MANIFEST,
    STUDY,
    EXTERNAL,
)
