"""Shared fixtures: a real local SparkSession and helpers that write real dump files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import zstandard


def zst(path: Path, data: bytes, frames: int = 1, level: int = 3) -> Path:
    """Write `data` as a zstd file of `frames` frames (split on line boundaries)."""
    lines = data.splitlines(keepends=True)
    step = max(1, -(-len(lines) // frames))
    cctx = zstandard.ZstdCompressor(level=level)
    with open(path, "wb") as f:
        for i in range(0, len(lines), step):
            f.write(cctx.compress(b"".join(lines[i : i + step])))
    return path


def jl(records: list) -> bytes:
    """NDJSON bytes from dicts (bytes items are written as they are)."""
    return b"".join(
        (r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in records
    )


@pytest.fixture(scope="session")
def spark():
    from engines.spark import spark_session
    from pipelines.reddit_source import RedditDumpSource

    s = spark_session(
        "local[2]", "zipp-tests", {"spark.sql.shuffle.partitions": "2", "spark.driver.memory": "2g"}
    )
    s.dataSource.register(RedditDumpSource)
    yield s
    s.stop()


@pytest.fixture(autouse=True, scope="module")
def _fresh_ray_per_module():
    """Each test module gets a Ray of its own: one left running by an earlier module
    (actors, placement groups, Ray Data state) must not starve the next one's stages."""
    yield
    import sys

    if "ray" in sys.modules:
        import ray

        if ray.is_initialized():
            ray.shutdown()
