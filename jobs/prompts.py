"""Stage `prompts` (local): ZIPBench's base prompts (a file, or captions of references).

python -m jobs.prompts -c conf/cluster.yaml [key=value ...]
"""

from generation.bench_stages import prompts
from jobs.runner import Stage

STAGE = Stage(
    name="prompts",
    run=prompts,
    engine="local",
    inputs=("bench/users", "bench/references"),
    files=("bench.prompts",),
    outputs=("bench/prompts",),
    config=(
        "bench.prompts",
        "bench.prompts_per_user",
        "bench.seed",
        "bench.base_prompts",
        "bench.captioner",
        "bench.caption_prefix",
        "images.allow_hosts",
        "images.timeout_s",
        "images.max_mb",
        "images.retries",
    ),
    summary="ZIPBench base prompts: the prompt file, or neutral captions of the references",
)

if __name__ == "__main__":
    from jobs.entry import stage_main

    stage_main(STAGE)
