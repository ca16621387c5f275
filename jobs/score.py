"""Stage `score` (Ray): every generated image scored against its user — CLIPScore ×100 vs
the user's held-out reference images and vs its prompt, and the persona-conditioned judge
through the LLM backends -> bench/scores.

python -m jobs.score -c conf/cluster.yaml [key=value ...]
"""

from evaluation.scoring import score
from jobs.runner import Stage

STAGE = Stage(
    name="score",
    run=score,
    engine="ray",
    inputs=(
        "bench/images",
        "bench/users",
        "bench/references",
        "silver/image_embeddings",
        "gold/personas",
    ),
    outputs=("bench/scores",),
    folders=("media",),
    config=("judge", "llm"),
    summary="CLIPScore vs references and prompt, persona-conditioned judge -> bench/scores",
)

if __name__ == "__main__":
    from jobs.entry import stage_main

    stage_main(STAGE)
