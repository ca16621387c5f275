"""Stage `features` (Ray Data): subreddit text vectors and user visual profiles, from
history only (no held-out reference post).

python -m jobs.features -c conf/cluster.yaml [key=value ...]
"""

from jobs.runner import Stage
from pipelines.stages import features

STAGE = Stage(
    name="features",
    run=features,
    engine="ray",
    inputs=("silver/subreddits",),
    history=("silver/edges", "silver/snippets", "silver/image_embeddings"),
    outputs=("silver/node_features",),
    config=("features",),
    summary="subreddit text features (sentence-transformers) and user visual profiles",
)

if __name__ == "__main__":
    from jobs.entry import stage_main

    stage_main(STAGE)
