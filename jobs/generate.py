"""Stage `generate` (Ray): every benchmark prompt (base and each rewrite, each seed)
rendered by the configured diffusers pipeline -> bench/images + PNGs under media/.

python -m jobs.generate -c conf/cluster.yaml [key=value ...]
"""

from generation.render import MEDIA, SMOKE_MODEL, generate
from jobs.runner import Stage

STAGE = Stage(
    name="generate",
    run=generate,
    engine="ray",
    inputs=(
        "bench/prompts",
        "bench/rewrites",
        "bench/users",
        "gold/visual_preferences",
        SMOKE_MODEL,
    ),
    history=("silver/user_images",),
    outputs=("bench/images",),
    folders=(MEDIA,),
    config=("diffusion", "images.allow_hosts", "images.timeout_s", "images.max_mb"),
    summary="diffusers text-to-image in Ray actors: base + every rewrite, seeded, resumable",
)

if __name__ == "__main__":
    from jobs.entry import stage_main

    stage_main(STAGE)
