"""The DAG: every stage in run order."""

from jobs import bench, encoder, features, graph, images, ingest, personas, rewrite
from jobs.runner import Stage

STAGES: list[Stage] = [
    ingest.STAGE,
    graph.STAGE,
    images.STAGE,
    features.STAGE,
    encoder.TRAIN,
    encoder.EMBED,
    personas.PERSONAS,
    personas.PREFERENCES,
    bench.STAGE,
    rewrite.STAGE,
]
