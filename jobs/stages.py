"""The DAG: every stage in run order."""

from jobs import graph, ingest
from jobs.runner import Stage

STAGES: list[Stage] = [ingest.STAGE, graph.STAGE]


def by_name(name: str) -> Stage:
    for s in STAGES:
        if s.name == name:
            return s
    raise KeyError(name)
