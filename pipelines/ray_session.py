"""Joining a Ray cluster, or starting a local Ray for the embedded default."""

from __future__ import annotations

import logging
import os


def ray_session(address: str | None = None, num_cpus: int | None = None) -> None:
    """`ray.init` once per process: `address` (e.g. "auto", "ray://head:10001") or local."""
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_ACCEPT_CLUSTER_RESOURCES", "1")
    kwargs = {"address": address} if address else {"num_cpus": num_cpus or os.cpu_count()}
    ray.init(
        include_dashboard=False,
        ignore_reinit_error=True,
        log_to_driver=False,
        configure_logging=False,
        **kwargs,
    )
    ray.data.DataContext.get_current().enable_progress_bars = True
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # keep the tqdm bars only
