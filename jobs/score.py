"""Stage `score` (Ray): every generated image scored against its user — CLIPScore ×100 vs
the user's held-out reference images and vs its prompt, the learned preference judge
(fitted here on history images only) and the persona-conditioned LLM judge (when
`judge.backend` is not none) -> bench/scores; the same scorers on the agreement set
(other benchmark users' reference images) -> bench/agreement.

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
    outputs=("bench/scores", "bench/agreement"),
    folders=("media",),
    config=(
        "judge",
        "llm.backend",
        "llm.model",
        "llm.models",
        "images.allow_hosts",
        "images.timeout_s",
        "images.max_mb",
    ),
    summary="CLIPScore vs references and prompt, preference judge, LLM judge -> bench/scores "
    "and the agreement set -> bench/agreement",
)

if __name__ == "__main__":
    from jobs.entry import stage_main

    stage_main(STAGE)
