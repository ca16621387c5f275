"""Stage `images` (Ray Data): fetch users' posted images safely, embed them.

python -m jobs.images -c conf/cluster.yaml [key=value ...]
"""

from jobs.runner import Stage
from pipelines.stages import images

STAGE = Stage(
    name="images",
    run=images,
    engine="ray",
    inputs=("silver/user_images",),
    outputs=("silver/image_embeddings",),
    config=("images",),
    summary="silver/user_images -> silver/image_embeddings (hostile-URL fetch, embed)",
)

if __name__ == "__main__":
    from jobs.entry import stage_main

    stage_main(STAGE)
