"""Stage `rewrite` (Ray): every benchmark user's base prompts rewritten by each method of
`rewrite.methods` (the registry: generation.methods) and each configured LLM
-> bench/rewrites.

python -m jobs.rewrite -c conf/cluster.yaml [key=value ...]
"""

from generation.rewrite_stage import rewrite
from jobs.runner import Stage

STAGE = Stage(
    name="rewrite",
    run=rewrite,
    engine="ray",
    inputs=("bench/users", "bench/prompts", "gold/personas", "gold/visual_preferences"),
    history=("silver/user_images",),
    outputs=("bench/rewrites",),
    config=("rewrite", "llm", "features.text_model", "bench.seed"),
    summary="persona-conditioned rewriting (none/zero_shot/k_shot) and baselines (viper, history)",
)

if __name__ == "__main__":
    from jobs.entry import stage_main

    stage_main(STAGE)
