"""A stage's declaration: its domain function, engine, inputs, outputs, config and files
(the stage contract, ARCHITECTURE.md). Each stage declares itself beside its function in
``<package>/stages/<stage>.py``; `jobs.dag` lists them and `jobs.runner` runs them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from contract.history import REFERENCES
from contract.stage_io import StageIO

Engine = Literal["spark", "ray", "local"]
RAW_SOURCES = ("input.dumps",)


@dataclass(frozen=True)
class Stage:
    """A step of the DAG, declared beside its function in ``<package>/stages/<stage>.py``."""

    name: str
    run: Callable[[StageIO], None]
    engine: Engine
    outputs: tuple[str, ...]
    inputs: tuple[str, ...] = ()  # lake tables and raw sources ("input.dumps")
    history: tuple[str, ...] = ()  # lake tables read without the held-out reference posts
    files: tuple[str, ...] = ()  # config keys naming input files, fingerprinted by content
    config: tuple[str, ...] = ()  # config sections ("graph") or keys ("bench.seed")
    folders: tuple[str, ...] = ()  # lake folders it uses that are not tables (media/, models)
    version: str = "1"  # bump when outputs change for the same inputs and code hash
    summary: str = ""

    @property
    def reads(self) -> tuple[str, ...]:
        """Every lake table it reads (history tables bring the benchmark split with them)."""
        tables = [t for t in self.inputs if t not in RAW_SOURCES] + list(self.history)
        if self.history and REFERENCES not in tables:
            tables.append(REFERENCES)
        return tuple(dict.fromkeys(tables))
