"""Stage `split` (local): the benchmark split, before anything learns — benchmark users
and their held-out reference posts (bench/users, bench/references).

python -m jobs.split -c conf/cluster.yaml [key=value ...]
"""

from generation.bench_stages import split
from jobs.runner import Stage

STAGE = Stage(
    name="split",
    run=split,
    engine="local",
    inputs=("silver/users", "silver/subreddits", "silver/edges", "silver/user_images"),
    outputs=("bench/users", "bench/references"),
    folders=("_manifests/zipbench.json",),  # a frozen manifest of another split is removed
    config=("bench.users", "bench.min_images", "bench.references_per_user", "bench.seed"),
    summary="benchmark users (stratified) and their held-out reference posts",
)

if __name__ == "__main__":
    from jobs.entry import stage_main

    stage_main(STAGE)
