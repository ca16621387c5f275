"""Stage `train` (Ray Train): the persona-mining encoder (GATv2, link prediction +
ImageAlign on history images only).

python -m jobs.train -c conf/cluster.yaml [key=value ...]
"""

from graph.stages import CHECKPOINTS, train
from graph.train import HISTORY_TABLES, INPUT_TABLES
from jobs.runner import Stage

STAGE = Stage(
    name="train",
    run=train,
    engine="ray",
    inputs=INPUT_TABLES,
    history=HISTORY_TABLES,
    outputs=("models/encoder",),
    folders=(CHECKPOINTS,),
    config=("encoder",),
    summary="Ray Train: GATv2 encoder, link prediction + ImageAlign, checkpoints, early stop",
)

if __name__ == "__main__":
    from jobs.entry import stage_main

    stage_main(STAGE)
