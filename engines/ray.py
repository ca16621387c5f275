"""Joining a Ray cluster, or starting a local Ray for the embedded default."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: set by Ray Jobs in a submitted driver's environment: the job's config, runtime_env included
JOB_CONFIG_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"
log = logging.getLogger(__name__)


def job_runtime_env() -> dict:
    """The runtime_env Ray Jobs gave this driver (``ray job submit --working-dir`` or
    ``--runtime-env-json``); {} outside a submitted job."""
    raw = os.environ.get(JOB_CONFIG_ENV)
    return (json.loads(raw).get("runtime_env") or {}) if raw else {}


def code_runtime_env() -> dict:
    """What a driver joining a cluster adds to its job's runtime_env so that workers on
    every node import the project: its package folders as ``py_modules``. Nothing when the
    submitted job already ships the code: a ``py_modules`` of its own, or a
    ``working_dir`` that is the project this driver runs from (Ray merges a driver's
    runtime_env into the job's and refuses a key set twice)."""
    from engines.code import package_dirs, project_root

    job = job_runtime_env()
    if job.get("py_modules"):
        return {}
    if job.get("working_dir") and Path.cwd().resolve() == project_root():
        return {}
    return {"py_modules": package_dirs()}


def ray_session(address: str | None = None, num_cpus: int | None = None) -> None:
    """`ray.init` once per process: `address` (e.g. "auto", "127.0.0.1:6379",
    "ray://head:10001") joins a cluster, shipping the code (`code_runtime_env`); none
    starts a local Ray with `num_cpus`."""
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_ACCEPT_CLUSTER_RESOURCES", "1")
    if address:
        kwargs = {"address": address, "runtime_env": code_runtime_env()}
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
    finishes, in completion order. An actor that dies (its node lost, its process killed)
    leaves the pool and its batches in flight go back in the queue for the others: every
    batch is done once by whoever is left (RuntimeError when no actor is)."""
    import ray
    from ray.exceptions import RayActorError

    queue = list(reversed(batches))
    inflight: dict = {}
    live = list(pool)

    def submit(actor) -> None:
        if queue:
            batch = queue.pop()
            inflight[actor.run.remote(batch)] = (actor, batch)

    for actor in live:
        for _ in range(depth):
            submit(actor)
    while inflight:
        ready, _ = ray.wait(list(inflight), num_returns=1)
        actor, batch = inflight.pop(ready[0])
        try:
            result = ray.get(ready[0])
        except RayActorError as e:
            queue.append(batch)  # redone by a live actor (its rows were never handed on)
            if actor in live:
                live.remove(actor)
                log.warning("actor lost (%s); %d left", type(e).__name__, len(live))
            if not live:
                raise RuntimeError(f"every actor was lost; {len(queue)} batch(es) not done") from e
            for other in live:  # refill: the lost actor's share goes to the others
                while queue and sum(a is other for a, _ in inflight.values()) < depth:
                    submit(other)
            continue
        done(batch, result)
        submit(actor)
