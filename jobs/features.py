"""Stage `features` (Ray Data): subreddit text vectors and user visual profiles.

python -m jobs.features -c conf/cluster.yaml [key=value ...]
"""

from __future__ import annotations

from jobs.runner import Stage, StageContext


def run(ctx: StageContext) -> None:
    """silver/{subreddits,snippets,image_embeddings} -> silver/node_features."""
    import pyarrow as pa

    from pipelines.ray_session import ray_session
    from pipelines.text_features import (
        default_text_model,
        subreddit_documents,
        text_features,
        visual_profiles,
    )

    cfg = ctx.config
    c = cfg.features
    lake = ctx.lake
    ids, docs, counts = subreddit_documents(
        lake.read("silver/subreddits"), lake.read("silver/snippets"), c.texts_per_subreddit
    )
    with ctx.console.status("features: starting Ray"):
        ray_session(cfg.ray.address, cfg.ray.num_cpus)
    text = text_features(
        ids,
        docs,
        counts,
        c.text_model or default_text_model(),
        actors=c.actors,
        num_gpus=c.num_gpus,
    )
    visual = visual_profiles(lake.read("silver/image_embeddings"))
    out = pa.concat_tables([text, visual])
    lake.write_table("silver/node_features", out)
    ctx.console.print(
        f"  node features: {text.num_rows:,} subreddits (text), {visual.num_rows:,} users (visual)"
    )


STAGE = Stage(
    name="features",
    inputs=("silver/subreddits", "silver/snippets", "silver/image_embeddings"),
    outputs=("silver/node_features",),
    section="features",
    engine="ray",
    run=run,
    summary="subreddit text features (sentence-transformers) and user visual profiles",
)

if __name__ == "__main__":
    from jobs.entry import stage_main

    stage_main(STAGE)
