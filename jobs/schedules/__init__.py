"""Schedules rendered from the real DAG (`zipp dag --format shell|airflow|k8s`).

Pure functions: from the declared stages (`jobs.dag.STAGES`) and a loaded config they
render a cron-ready bash script (`shell`), an Airflow DAG file (`airflow`) and Kubernetes
manifests (`k8s`: a ``CronJob`` driver, KubeRay ``RayJob`` manifests for the Ray stages,
``spark-submit`` against ``k8s://`` for the Spark stages). What they share, the tasks in
DAG order and each stage's command on its engine, is in `common`; where and how the
schedule runs (`Target`) in `target`.

Secrets are referenced by the names of the environment variables the config names
(``llm.api_key_env``, ``judge.api_key_env``), never by value.
"""

from __future__ import annotations

from jobs.runner import Stage
from jobs.schedules.airflow import render_airflow
from jobs.schedules.common import (
    Task,
    command,
    edges,
    local_command,
    ray_command,
    spark_command,
    stage_args,
    stage_module,
    tasks,
)
from jobs.schedules.k8s import (
    IMAGE_ROOT,
    K8S_MASTER,
    RAYJOB_WAIT,
    driver_script,
    k8s_objects,
    k8s_spark_command,
    rayjob,
    render_k8s,
)
from jobs.schedules.shell import render_shell
from jobs.schedules.target import DEFAULT_SCHEDULE, Target, make_target, secret_envs

FORMATS = ("shell", "airflow", "k8s")

__all__ = [
    "DEFAULT_SCHEDULE",
    "FORMATS",
    "IMAGE_ROOT",
    "K8S_MASTER",
    "RAYJOB_WAIT",
    "Target",
    "Task",
    "command",
    "driver_script",
    "edges",
    "k8s_objects",
    "k8s_spark_command",
    "local_command",
    "make_target",
    "ray_command",
    "rayjob",
    "render",
    "render_airflow",
    "render_k8s",
    "render_shell",
    "secret_envs",
    "spark_command",
    "stage_args",
    "stage_module",
    "tasks",
]


def render(fmt: str, stages: list[Stage], target: Target, script: str | None = None) -> str:
    """The schedule in `fmt` (shell, airflow, k8s)."""
    if fmt == "shell":
        return render_shell(stages, target, script or "zipp-monthly.sh")
    if fmt == "airflow":
        return render_airflow(stages, target)
    if fmt == "k8s":
        return render_k8s(stages, target)
    raise ValueError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
