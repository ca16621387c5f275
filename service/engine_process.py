"""The persona engine in a process of its own: the service's event loop and the engine's
forward passes then hold two interpreter locks, not one (measured: with both in one
process the loop's work for other clients lands inside every engine call).

`EngineProcess` offers what the service calls (`persona`, `rewrite`, `spec`, `close`);
each call is sent to one spawned worker that loaded `PersonaEngine` once, and blocks the
calling thread (not the event loop) until the reply comes back.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Any

_ENGINE: Any = None  # the worker's engine


def _load(cfg: Any) -> None:
    """The worker's start: torch threads as the service sets them, then the engine."""
    global _ENGINE
    if cfg.serve.torch_threads:
        import torch

        torch.set_num_threads(cfg.serve.torch_threads)
    from service.cold_start import PersonaEngine

    _ENGINE = PersonaEngine(cfg)


def _call(method: str, *args):
    return getattr(_ENGINE, method)(*args)


class EngineProcess:
    """A `PersonaEngine` loaded in one spawned worker process, called through a pipe."""

    def __init__(self, cfg: Any):
        self.spec = cfg.llm.specs()[0]
        ctx = multiprocessing.get_context("spawn")  # no forked Ray/torch state
        self.pool = ProcessPoolExecutor(1, mp_context=ctx, initializer=_load, initargs=(cfg,))
        self.pool.submit(_call, "resolve", []).result()  # loaded (or its error raised) now

    def persona(self, *args):
        return self.pool.submit(_call, "persona", *args).result()

    def rewrite(self, *args):
        return self.pool.submit(_call, "rewrite", *args).result()

    def close(self) -> None:
        self.pool.submit(_call, "close").result()
        self.pool.shutdown()
