"""The DAG: every stage in run order, each declared beside its function in
`<package>/stages/<stage>.py`. The benchmark split comes right after `graph`,
before anything learns, builds evidence or conditions."""

from contract.stage import Stage
from evaluation.stages import report, score
from generation.stages import generate, personas, prompts, rewrite, smoke, split
from graph.stages import embed, train
from pipelines.stages import features, graph, images, ingest

STAGES: list[Stage] = [
    ingest.STAGE,
    graph.STAGE,
    split.STAGE,
    images.STAGE,
    features.STAGE,
    train.STAGE,
    embed.STAGE,
    prompts.STAGE,
    personas.PERSONAS,
    personas.PREFERENCES,
    rewrite.STAGE,
    smoke.STAGE,
    generate.STAGE,
    score.STAGE,
    report.STAGE,
]
BY_NAME = {s.name: s for s in STAGES}
#: `zipp bench build`: the stages that define a benchmark (the encoder's are upstream:
#: `zipp run` builds them; bench build says when they are not current)
BUILD_STAGES = ("split", "prompts", "personas", "preferences", "rewrite", "smoke", "generate")
SCORE_STAGES = ("score", "report")
