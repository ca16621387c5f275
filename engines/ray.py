"""Joining a Ray cluster, or starting a local Ray for the embedded default."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any


def ray_session(address: str | None = None, num_cpus: int | None = None) -> None:
    """`ray.init` once per process: `address` (e.g. "auto", "ray://head:10001") or local."""
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_ACCEPT_CLUSTER_RESOURCES", "1")
    if address:  # workers on other nodes get the project's packages through runtime_env
        from engines.code import package_dirs

        kwargs = {"address": address, "runtime_env": {"py_modules": package_dirs()}}
    else:
        kwargs = {"num_cpus": num_cpus or os.cpu_count()}
    ray.init(
        include_dashboard=False,
        ignore_reinit_error=True,
        log_to_driver=False,
        configure_logging=False,
        **kwargs,
    )
    ray.data.DataContext.get_current().enable_progress_bars = True
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # keep the tqdm bars only


def feed_actors(pool: list, batches: list, depth: int, done: Callable[[Any, Any], None]) -> None:
    """Send `batches` to the actors' `run` method, at most `depth` in flight per actor (the
    next one goes to whichever actor finished), and call `done(batch, result)` as each
    finishes, in completion order."""
    import ray

    queue = list(reversed(batches))
    inflight: dict = {}

    def submit(actor) -> None:
        if queue:
            batch = queue.pop()
            inflight[actor.run.remote(batch)] = (actor, batch)

    for actor in pool:
        for _ in range(depth):
            submit(actor)
    while inflight:
        ready, _ = ray.wait(list(inflight), num_returns=1)
        actor, batch = inflight.pop(ready[0])
        done(batch, ray.get(ready[0]))
        submit(actor)
