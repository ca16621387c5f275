"""Stage `embed` (local): embeddings of every user (unseen included) and attention.

python -m jobs.embed -c conf/cluster.yaml [key=value ...]
"""

from graph.stages import embed
from graph.train import HISTORY_TABLES, INPUT_TABLES
from jobs.runner import Stage

STAGE = Stage(
    name="embed",
    run=embed,
    engine="local",
    inputs=("models/encoder", *INPUT_TABLES),
    history=HISTORY_TABLES,
    outputs=("gold/user_embeddings", "gold/attention"),
    config=("encoder.inference_chunk",),
    summary="embeddings of every user (unseen included) and per-edge attention",
)

if __name__ == "__main__":
    from jobs.entry import stage_main

    stage_main(STAGE)
