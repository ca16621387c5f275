"""Where and how a schedule runs: the `Target` settings, from the CLI options, then the
config, then defaults. Secrets are named by the environment variables the config names
(``llm.api_key_env``, ``judge.api_key_env``), never by value."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from engines.code import project_root
from jobs.config import ZippConfig

#: monthly, the day after the month's dumps are published (03:00 UTC on the 2nd)
DEFAULT_SCHEDULE = "0 3 2 * *"
_GLOB = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class Target:
    """Where and how the schedule runs (CLI options, else derived from the config)."""

    profile: str  # the -c path the commands pass (relative to the project root)
    overrides: tuple[str, ...] = ()
    schedule: str = DEFAULT_SCHEDULE
    project_root: str = field(default_factory=lambda: str(project_root()))
    python: str = "python"
    bin_dir: str | None = field(default_factory=lambda: str(Path(sys.executable).parent))
    spark_master: str | None = None  # None: "$SPARK_MASTER" at run time
    spark_conf: tuple[tuple[str, str], ...] = ()
    ray_address: str = "http://127.0.0.1:8265"  # the Ray dashboard (Jobs API)
    ray_joins: bool = True  # the profile's ray.address joins a cluster (else add auto)
    secrets: tuple[str, ...] = ()  # environment variable names holding keys
    image: str = "zipp-pipeline:latest"
    namespace: str = "zipp"
    secret_name: str = "zipp-secrets"
    lake_root: str = "lake"
    lake_claim: str = "zipp-lake"
    dumps_dir: str = "data"
    dumps_claim: str = "reddit-dumps"
    ray_version: str = "2.60.0"
    ray_workers: int = 2
    worker_gpus: int = 0
    dag_id: str = "zipp"


def secret_envs(cfg: ZippConfig) -> tuple[str, ...]:
    """Names of the environment variables holding API keys that the stages read."""
    names = [cfg.llm.api_key_env, *(m.api_key_env for m in cfg.llm.models), cfg.judge.api_key_env]
    return tuple(dict.fromkeys(n for n in names if n))


def _static_dir(pattern: str) -> str:
    """The folder part of a dumps path or glob before its first wildcard."""
    parts = PurePosixPath(pattern).parts
    keep = []
    for p in parts:
        if _GLOB.search(p):
            break
        keep.append(p)
    path = PurePosixPath(*keep) if keep else PurePosixPath(".")
    return str(path.parent if path.suffix and len(keep) == len(parts) else path)


def _wants_gpus(cfg: ZippConfig) -> bool:
    return bool(
        cfg.images.num_gpus
        or cfg.features.num_gpus
        or cfg.encoder.use_gpu
        or cfg.llm.num_gpus
        or cfg.diffusion.num_gpus
        or cfg.judge.num_gpus
    )


def make_target(
    cfg: ZippConfig,
    profile: str,
    overrides: list[str] | None = None,
    *,
    schedule: str | None = None,
    spark_master: str | None = None,
    ray_address: str | None = None,
    project_root_dir: str | None = None,
    image: str | None = None,
    namespace: str | None = None,
) -> Target:
    """The target settings: CLI options first, then the config, then defaults. The Ray
    dashboard address defaults to the host of a ``ray://host:port`` ray.address, port
    8265; a Spark master the profile names wins (a different `spark_master` is an error,
    the stage itself would use the profile's)."""
    master = cfg.spark.master
    if spark_master and master and spark_master != master:
        raise ValueError(
            f"the profile sets spark.master={master}; drop --spark-master or pass the "
            f"override spark.master={spark_master}"
        )
    address = ray_address
    if not address:
        m = re.match(r"^ray://([^:/]+)", cfg.ray.address or "")
        address = f"http://{m.group(1) if m else '127.0.0.1'}:8265"
    try:
        from importlib.metadata import version

        ray_version = version("ray")
    except Exception:  # noqa: BLE001  (ray not installed where the schedule is rendered)
        ray_version = Target.ray_version
    return Target(
        profile=profile,
        overrides=tuple(overrides or ()),
        schedule=schedule or DEFAULT_SCHEDULE,
        project_root=project_root_dir or str(project_root()),
        spark_master=spark_master or master,
        spark_conf=tuple(sorted(cfg.spark.conf.items())),
        ray_address=address,
        ray_joins=bool(cfg.ray.address),
        secrets=secret_envs(cfg),
        image=image or Target.image,
        namespace=namespace or Target.namespace,
        lake_root=cfg.lake.root,
        dumps_dir=_static_dir(cfg.input.dumps),
        ray_version=ray_version,
        worker_gpus=1 if _wants_gpus(cfg) else 0,
    )
