"""Stage `smoke` (local): the embedded default's text-to-image model, a tiny diffusers
pipeline trained on the lake's history image posts and their titles -> models/smoke-diffusion.

python -m jobs.smoke -c conf/local.yaml [key=value ...]
"""

from generation.smoke_stage import OUT, smoke
from jobs.runner import Stage

STAGE = Stage(
    name="smoke",
    run=smoke,
    engine="local",
    inputs=("silver/image_embeddings",),
    history=("silver/user_images",),
    outputs=(OUT,),
    config=("smoke", "diffusion.model", "images.allow_hosts", "images.timeout_s", "images.max_mb"),
    summary="train the embedded default's tiny text-to-image model on history image posts",
)

if __name__ == "__main__":
    from jobs.entry import stage_main

    stage_main(STAGE)
