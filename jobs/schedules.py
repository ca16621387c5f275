"""Schedules rendered from the real DAG (`zipp dag --format shell|airflow|k8s`).

Pure functions: from the declared stages (`jobs.dag.STAGES`) and a loaded config they
render a cron-ready bash script, an Airflow DAG file and Kubernetes manifests (a
``CronJob`` driver, KubeRay ``RayJob`` manifests for the Ray stages, ``spark-submit``
against ``k8s://`` for the Spark stages). Task order and dependencies come from the
tables each stage reads and the stage that produces them (`jobs.runner.producers`), the
command of each stage from its engine and the module that declares it.

Secrets are referenced by the names of the environment variables the config names
(``llm.api_key_env``, ``judge.api_key_env``), never by value.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from types import ModuleType

import yaml

from engines.code import project_root
from jobs.config import ZippConfig
from jobs.runner import Stage, producers

FORMATS = ("shell", "airflow", "k8s")
#: monthly, the day after the month's dumps are published (03:00 UTC on the 2nd)
DEFAULT_SCHEDULE = "0 3 2 * *"
K8S_MASTER = "k8s://https://kubernetes.default.svc:443"
#: where the project lives inside the container image (its WORKDIR)
IMAGE_ROOT = "/app"
_GLOB = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class Task:
    """One stage as a scheduled task: how to start it and what must finish first."""

    name: str
    engine: str
    module: str  # "jobs.personas"
    argv: tuple[str, ...]  # the stage's name when its module declares several stages
    upstream: tuple[str, ...]  # producers of the tables it reads, in DAG order


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


def stage_module(stage: Stage) -> ModuleType:
    """The `jobs.<module>` that declares `stage` (the module `python -m` runs)."""
    import jobs.dag  # noqa: F401  (imports every declaring module)

    found = [
        m
        for name, m in sorted(sys.modules.items())
        if name.startswith("jobs.") and m is not None and any(v is stage for v in vars(m).values())
    ]
    if len(found) != 1:
        names = [m.__name__ for m in found]
        raise ValueError(f"stage {stage.name}: declared in {names or 'no jobs module'}")
    return found[0]


def tasks(stages: list[Stage]) -> list[Task]:
    """Each stage in DAG order with its module, its argument and its upstream stages
    (the producers of the tables it reads, as `zipp dag --json` reports them)."""
    made_by = producers(stages)
    order = {s.name: i for i, s in enumerate(stages)}
    out = []
    for s in stages:
        module = stage_module(s)
        declared = [v for v in vars(module).values() if isinstance(v, Stage)]
        ups = {made_by[t] for t in s.reads if made_by.get(t) and made_by[t] != s.name}
        out.append(
            Task(
                name=s.name,
                engine=s.engine,
                module=module.__name__,
                argv=(s.name,) if len(declared) > 1 else (),
                upstream=tuple(sorted(ups, key=order.__getitem__)),
            )
        )
    return out


def edges(stages: list[Stage]) -> list[tuple[str, str]]:
    """(producer, consumer) pairs of the DAG, in DAG order of the consumer."""
    return [(u, t.name) for t in tasks(stages) for u in t.upstream]


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


# -- commands ---------------------------------------------------------------------------


def stage_args(task: Task, target: Target, *, ray: bool = False) -> list[str]:
    """The stage's own arguments: its name (shared modules), the profile, the overrides
    (``ray.address=auto`` added under Ray Jobs when the profile starts a local Ray)."""
    extra = ["ray.address=auto"] if ray and not target.ray_joins else []
    return [*task.argv, "-c", target.profile, *target.overrides, *extra]


def local_command(task: Task, target: Target, python: str | None = None) -> list[str]:
    """``python -m jobs.<module> ...``: a local stage, in-process."""
    return [python or target.python, "-m", task.module, *stage_args(task, target)]


def spark_command(task: Task, target: Target) -> list[str]:
    """``spark-submit`` of ``jobs/<module>.py`` in client mode. The driver imports the
    project from the tree (PYTHONPATH, PYTHONSAFEPATH keeps ``jobs/`` off sys.path): a
    ``--py-files`` zip would come first on the driver's path and the runner hashes the
    stage's source files (``code_version``), which it cannot read inside a zip;
    `engines.spark` ships the project zip to the executors of a non-local master."""
    master = target.spark_master or "$SPARK_MASTER"
    env = [
        f"PYTHONPATH={target.project_root}",
        "PYTHONSAFEPATH=1",
        f"PYSPARK_DRIVER_PYTHON={target.python}",
    ]
    confs = [a for k, v in target.spark_conf for a in ("--conf", f"{k}={v}")]
    path = task.module.replace(".", "/") + ".py"
    return [
        *env,
        "spark-submit",
        "--master",
        master,
        *confs,
        path,
        *stage_args(task, target),
    ]


def ray_command(task: Task, target: Target) -> list[str]:
    """``ray job submit`` of ``python -m jobs.<module>`` with the project as working dir
    (exits 1 when the job fails)."""
    return [
        "ray",
        "job",
        "submit",
        "--address",
        target.ray_address,
        "--working-dir",
        target.project_root,
        "--",
        "python",
        "-m",
        task.module,
        *stage_args(task, target, ray=True),
    ]


def command(task: Task, target: Target) -> list[str]:
    """The command that runs one stage on its engine."""
    if task.engine == "spark":
        return spark_command(task, target)
    if task.engine == "ray":
        return ray_command(task, target)
    return local_command(task, target)


def _q(arg: str) -> str:
    """One shell word: env assignments and ``$SPARK_MASTER`` left for the shell."""
    if arg == "$SPARK_MASTER":
        return '"$SPARK_MASTER"'
    if re.match(r"^[A-Z_]+=", arg):
        k, v = arg.split("=", 1)
        return f"{k}={shlex.quote(v)}"
    return shlex.quote(arg)


def _sh(argv: list[str]) -> str:
    """A shell line."""
    return " ".join(_q(a) for a in argv)


_BREAK_BEFORE = ("--conf", "--master", "--deploy-mode", "--name", "--address", "--")


def _sh_wrapped(argv: list[str]) -> str:
    """A shell line, broken before each option group and the program (backslashes)."""
    out = ""
    for i, a in enumerate(argv):
        brk = i and (a in _BREAK_BEFORE or a.endswith(".py") and not argv[i - 1].startswith("-"))
        out += (" \\\n  " if brk else " " if i else "") + _q(a)
    return out


def _header(stages: list[Stage], target: Target, what: str) -> list[str]:
    cmd = shlex.join(["zipp", "dag", "--format", what, "-c", target.profile, *target.overrides])
    return [
        f"ZIPP pipeline, {len(stages)} stages in DAG order: generated by `{cmd}`.",
        "Regenerate after changing the DAG or the profile instead of editing by hand.",
    ]


def _secret_checks(target: Target) -> list[str]:
    """Fail fast where the key must be in this process's environment (the k8s driver)."""
    return [
        f': "${{{n}:?{n} must hold the API key (the profile names it; never written here)}}"'
        for n in target.secrets
    ]


def _secret_notes(target: Target) -> list[str]:
    """Warn (not fail) where Ray stages read the keys on the cluster's nodes instead."""
    return [
        f'[ -n "${{{n}:-}}" ] || echo "zipp: {n} is not set here; the stages that call the'
        " LLM need it where they run (Ray: on the cluster's nodes)\" >&2"
        for n in target.secrets
    ]


# -- shell ------------------------------------------------------------------------------


def render_shell(stages: list[Stage], target: Target, script: str = "zipp-monthly.sh") -> str:
    """A cron-ready bash script: one command per stage in DAG order, stopping at the
    first failure (each stage skips itself when current, so a rerun resumes)."""
    lines = ["#!/usr/bin/env bash"]
    lines += [f"# {h}" for h in _header(stages, target, "shell")]
    lines += [
        "# Monthly (crontab -e), one run at a time:",
        f"#   {target.schedule} flock -n /tmp/zipp-monthly.lock bash {script}"
        " >> /tmp/zipp-monthly.log 2>&1",
        "# API keys come from the environment: " + (", ".join(target.secrets) or "none needed"),
        "set -euo pipefail",
        f"cd {shlex.quote(target.project_root)}",
        *([f'export PATH={shlex.quote(target.bin_dir)}:"$PATH"'] if target.bin_dir else []),
        *_secret_notes(target),
    ]
    if not target.spark_master and any(s.engine == "spark" for s in stages):
        lines.append(': "${SPARK_MASTER:?set SPARK_MASTER (the profile leaves spark.master null)}"')
    for t in tasks(stages):
        after = ", ".join(t.upstream) or "raw input"
        lines += ["", f"# {t.name} ({t.engine}) after {after}", _sh_wrapped(command(t, target))]
    lines += ["", 'echo "zipp: all stages done"']
    return "\n".join(lines) + "\n"


# -- Airflow ----------------------------------------------------------------------------


_TAKEN = {"dag", "DAG", "BashOperator", "datetime", "timedelta", "timezone"}


def render_airflow(stages: list[Stage], target: Target) -> str:
    """An Airflow DAG file: one `BashOperator` per stage (task_id = stage name), the
    producer -> consumer edges as ``a >> b``, monthly, no catch-up, one run at a time."""
    ts = tasks(stages)
    for t in ts:
        if not t.name.isidentifier() or t.name in _TAKEN:
            raise ValueError(f"stage name {t.name!r} cannot name a variable of the DAG file")
    doc = "\n".join(_header(stages, target, "airflow"))
    secrets = ", ".join(target.secrets) or "none"
    out = [
        f'"""{doc}\n\nAPI keys are read from the worker\'s environment ({secrets}); set them',
        'there (or as Airflow connections/secrets backends), never in this file."""',
        "",
        "from datetime import datetime, timedelta, timezone",
        "",
        "try:  # Airflow 3",
        "    from airflow.providers.standard.operators.bash import BashOperator",
        "    from airflow.sdk import DAG",
        "except ImportError:  # Airflow 2",
        "    from airflow import DAG",
        "    from airflow.operators.bash import BashOperator",
        "",
        "with DAG(",
        f"    dag_id={json.dumps(target.dag_id)},",
        f"    schedule={json.dumps(target.schedule)},",
        "    start_date=datetime(2024, 1, 1, tzinfo=timezone.utc),",
        "    catchup=False,",
        "    max_active_runs=1,",
        '    default_args={"retries": 1, "retry_delay": timedelta(minutes=10)},',
        '    tags=["zipp"],',
        ") as dag:",
    ]
    for t in ts:
        path = f'export PATH={shlex.quote(target.bin_dir)}:"$PATH" && ' if target.bin_dir else ""
        cmd = f"cd {shlex.quote(target.project_root)} && {path}{_sh(command(t, target))}"
        out += [
            f"    {t.name} = BashOperator(",
            f"        task_id={json.dumps(t.name)},",
            f"        bash_command={json.dumps(cmd)},",
            "    )",
        ]
    out.append("")
    out += [f"    {u} >> {t.name}" for t in ts for u in t.upstream]
    return "\n".join(out) + "\n"


# -- Kubernetes -------------------------------------------------------------------------


def _secret_env(target: Target) -> list[dict]:
    return [
        {"name": n, "valueFrom": {"secretKeyRef": {"name": target.secret_name, "key": n}}}
        for n in target.secrets
    ]


def _volumes(target: Target) -> tuple[list[dict], list[dict]]:
    """(volumes, volumeMounts): the lake and the dumps, ReadWriteMany claims."""
    vols = [
        {"name": "lake", "persistentVolumeClaim": {"claimName": target.lake_claim}},
        {
            "name": "dumps",
            "persistentVolumeClaim": {"claimName": target.dumps_claim, "readOnly": True},
        },
    ]
    mounts = [
        {"name": "lake", "mountPath": target.lake_root},
        {"name": "dumps", "mountPath": target.dumps_dir, "readOnly": True},
    ]
    return vols, mounts


def _k8s_target(target: Target) -> Target:
    master = target.spark_master
    if not (master or "").startswith("k8s://"):
        master = K8S_MASTER
    lake, dumps = (
        p if p.startswith("/") else f"{IMAGE_ROOT}/{p}"
        for p in (target.lake_root, target.dumps_dir)
    )
    return replace(
        target,
        spark_master=master,
        project_root=IMAGE_ROOT,
        python="python",
        bin_dir=None,
        lake_root=lake,
        dumps_dir=dumps,
    )


def k8s_spark_command(task: Task, target: Target) -> list[str]:
    """``spark-submit --deploy-mode cluster`` against ``k8s://``: driver and executors
    are pods of the image, the lake and dumps claims mounted at the profile's paths."""
    conf = {
        "spark.kubernetes.namespace": target.namespace,
        "spark.kubernetes.container.image": target.image,
        "spark.kubernetes.authenticate.driver.serviceAccountName": "zipp-driver",
        "spark.kubernetes.driverEnv.PYTHONPATH": target.project_root,
        "spark.kubernetes.driverEnv.PYTHONSAFEPATH": "1",
        "spark.kubernetes.submission.waitAppCompletion": "true",
    }
    for role in ("driver", "executor"):
        for name, claim, path, ro in (
            ("lake", target.lake_claim, target.lake_root, "false"),
            ("dumps", target.dumps_claim, target.dumps_dir, "true"),
        ):
            key = f"spark.kubernetes.{role}.volumes.persistentVolumeClaim.{name}"
            conf[f"{key}.options.claimName"] = claim
            conf[f"{key}.mount.path"] = path
            conf[f"{key}.mount.readOnly"] = ro
    conf |= dict(target.spark_conf)
    path = task.module.replace(".", "/") + ".py"
    return [
        "spark-submit",
        "--master",
        target.spark_master or K8S_MASTER,
        "--deploy-mode",
        "cluster",
        "--name",
        f"zipp-{task.name}",
        *[a for k, v in conf.items() for a in ("--conf", f"{k}={v}")],
        f"local://{target.project_root}/{path}",
        *stage_args(task, target),
    ]


def rayjob(task: Task, target: Target) -> dict:
    """A KubeRay RayJob (ray.io/v1) running one Ray stage on its own cluster of the image
    (created for the job, deleted after it)."""
    vols, mounts = _volumes(target)
    env = _secret_env(target)

    def pod(name: str, cpu: str, memory: str, gpus: int) -> dict:
        limits = {"cpu": cpu, "memory": memory} | ({"nvidia.com/gpu": gpus} if gpus else {})
        return {
            "spec": {
                "containers": [
                    {
                        "name": name,
                        "image": target.image,
                        "workingDir": target.project_root,
                        "env": env,
                        "resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": limits},
                        "volumeMounts": mounts,
                    }
                ],
                "volumes": vols,
            }
        }

    entry = shlex.join(["python", "-m", task.module, *stage_args(task, target, ray=True)])
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayJob",
        "metadata": {
            "generateName": f"zipp-{task.name}-",
            "namespace": target.namespace,
            "labels": {"app.kubernetes.io/name": "zipp", "zipp/stage": task.name},
        },
        "spec": {
            "entrypoint": entry,
            "runtimeEnvYAML": f"working_dir: {json.dumps(target.project_root)}\n",
            "shutdownAfterJobFinishes": True,
            "ttlSecondsAfterFinished": 3600,
            "submissionMode": "K8sJobMode",
            "rayClusterSpec": {
                "rayVersion": target.ray_version,
                "headGroupSpec": {
                    "rayStartParams": {"dashboard-host": "0.0.0.0"},
                    "template": pod("ray-head", "4", "16Gi", 0),
                },
                "workerGroupSpecs": [
                    {
                        "groupName": "workers",
                        "replicas": target.ray_workers,
                        "minReplicas": target.ray_workers,
                        "maxReplicas": target.ray_workers,
                        "rayStartParams": {},
                        "template": pod("ray-worker", "16", "64Gi", target.worker_gpus),
                    }
                ],
            },
        },
    }


RAYJOB_WAIT = """\
run_rayjob() {  # create the stage's RayJob and wait for its Ray job to end
  local name status
  name=$(kubectl create -f "/etc/zipp/rayjob-$1.yaml" -o name)
  echo "$1: $name"
  while true; do
    status=$(kubectl get "$name" -o jsonpath='{.status.jobStatus}')
    case "$status" in
      SUCCEEDED) return 0 ;;
      FAILED | STOPPED) echo "$1: Ray job $status" >&2; return 1 ;;
    esac
    if [ "$(kubectl get "$name" -o jsonpath='{.status.jobDeploymentStatus}')" = Failed ]; then
      echo "$1: RayJob deployment failed" >&2; return 1
    fi
    sleep 30
  done
}"""


def driver_script(stages: list[Stage], target: Target) -> str:
    """The CronJob's bash driver: stages in DAG order, Spark ones as spark-submit to
    k8s://, Ray ones as their RayJob, local ones in the driver's container."""
    lines = ["#!/usr/bin/env bash"]
    lines += [f"# {h}" for h in _header(stages, target, "k8s")]
    lines += ["set -euo pipefail", f"cd {shlex.quote(target.project_root)}"]
    lines += [*_secret_checks(target), RAYJOB_WAIT]
    for t in tasks(stages):
        lines += ["", f"# {t.name} ({t.engine}) after {', '.join(t.upstream) or 'raw input'}"]
        if t.engine == "spark":
            lines.append(_sh_wrapped(k8s_spark_command(t, target)))
        elif t.engine == "ray":
            lines.append(f"run_rayjob {shlex.quote(t.name)}")
        else:
            lines.append(shlex.join(local_command(t, target)))
    lines += ["", 'echo "zipp: all stages done"']
    return "\n".join(lines) + "\n"


def k8s_objects(stages: list[Stage], target: Target) -> list[dict]:
    """ServiceAccount + Role + RoleBinding for the driver (Spark pods, RayJobs), a
    ConfigMap with the driver script and one RayJob per Ray stage, and the CronJob."""
    t = _k8s_target(target)
    ns, labels = t.namespace, {"app.kubernetes.io/name": "zipp"}

    def meta(name: str) -> dict:
        return {"name": name, "namespace": ns, "labels": labels}

    ray_tasks = [x for x in tasks(stages) if x.engine == "ray"]
    data = {"driver.sh": driver_script(stages, t)}
    for x in ray_tasks:
        data[f"rayjob-{x.name}.yaml"] = _yaml(rayjob(x, t))
    vols, mounts = _volumes(t)
    vols.append({"name": "zipp-driver", "configMap": {"name": "zipp-driver"}})
    mounts.append({"name": "zipp-driver", "mountPath": "/etc/zipp", "readOnly": True})
    rules = [
        {
            "apiGroups": [""],
            "resources": ["pods", "services", "configmaps", "persistentvolumeclaims"],
            "verbs": ["create", "get", "list", "watch", "delete", "deletecollection"],
        },
        {"apiGroups": ["ray.io"], "resources": ["rayjobs"], "verbs": ["create", "get", "list"]},
    ]
    container = {
        "name": "driver",
        "image": t.image,
        "workingDir": t.project_root,
        "command": ["bash", "/etc/zipp/driver.sh"],
        "env": _secret_env(t),
        "volumeMounts": mounts,
    }
    cron = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": meta("zipp-monthly"),
        "spec": {
            "schedule": t.schedule,
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 86400,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "spec": {
                    "backoffLimit": 0,
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "serviceAccountName": "zipp-driver",
                            "restartPolicy": "Never",
                            "containers": [container],
                            "volumes": vols,
                        },
                    },
                }
            },
        },
    }
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta("zipp-driver")},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta("zipp-driver"),
            "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta("zipp-driver"),
            "subjects": [{"kind": "ServiceAccount", "name": "zipp-driver", "namespace": ns}],
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "zipp-driver",
            },
        },
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("zipp-driver"), "data": data},
        cron,
    ]


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks, no anchors for repeated pod parts."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _yaml(obj: dict) -> str:
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=False, width=100)


def render_k8s(stages: list[Stage], target: Target) -> str:
    """The Kubernetes objects as one multi-document YAML (`kubectl apply -f`)."""
    head = "".join(f"# {h}\n" for h in _header(stages, target, "k8s"))
    head += (
        f"# Needs: KubeRay (ray.io/v1), the image {target.image} (the project at {IMAGE_ROOT},"
        " its WORKDIR; Spark's k8s entrypoint; kubectl), ReadWriteMany claims"
        f" {target.lake_claim} and {target.dumps_claim}, and the Secret {target.secret_name}"
        f" with keys {', '.join(target.secrets) or '(none)'}.\n"
    )
    docs = [_yaml(d) for d in k8s_objects(stages, target)]
    return head + "---\n" + "---\n".join(docs)


def render(fmt: str, stages: list[Stage], target: Target, script: str | None = None) -> str:
    """The schedule in `fmt` (shell, airflow, k8s)."""
    if fmt == "shell":
        return render_shell(stages, target, script or "zipp-monthly.sh")
    if fmt == "airflow":
        return render_airflow(stages, target)
    if fmt == "k8s":
        return render_k8s(stages, target)
    raise ValueError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
