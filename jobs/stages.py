"""The DAG: every stage in run order."""

from jobs import (
    bench,
    encoder,
    features,
    generate,
    graph,
    images,
    ingest,
    personas,
    report,
    rewrite,
    score,
)
from jobs.runner import Stage

STAGES: list[Stage] = [
    ingest.STAGE,
    graph.STAGE,
    images.STAGE,
    features.STAGE,
    encoder.TRAIN,
    encoder.EMBED,
    bench.STAGE,
    personas.PERSONAS,
    personas.PREFERENCES,
    rewrite.STAGE,
    generate.STAGE,
    score.STAGE,
    report.STAGE,
]
