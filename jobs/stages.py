"""The DAG: every stage in run order."""

from jobs import features, graph, images, ingest
from jobs.runner import Stage

STAGES: list[Stage] = [ingest.STAGE, graph.STAGE, images.STAGE, features.STAGE]


def by_name(name: str) -> Stage:
    for s in STAGES:
        if s.name == name:
            return s
    raise KeyError(name)
