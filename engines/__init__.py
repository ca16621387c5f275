"""The ground floor beside `schemas`: starting or joining Spark and Ray (one place),
shipping the project's code to executors and workers, and the actor-feeding loop.

Imports only `schemas` and third-party packages, never the packages above it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def starter(engine: str, config: Any) -> Callable[[], Any] | None:
    """How to start or join a stage's engine from the full config (`spark.*`, `ray.*`):
    a function the stage calls on first use, or None for ``local`` stages."""
    if engine == "spark":

        def start_spark():
            from engines.spark import spark_session

            s = config.spark
            return spark_session(s.master, s.app_name, s.conf)

        return start_spark
    if engine == "ray":

        def start_ray():
            from engines.ray import ray_session

            ray_session(config.ray.address, config.ray.num_cpus)

        return start_ray
    return None
