"""The DAG: every stage in run order."""

from jobs import encoder, features, graph, images, ingest
from jobs.runner import Stage

STAGES: list[Stage] = [
    ingest.STAGE,
    graph.STAGE,
    images.STAGE,
    features.STAGE,
    encoder.TRAIN,
    encoder.EMBED,
]
