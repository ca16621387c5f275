"""The schedule as Kubernetes manifests (`zipp dag --format k8s`): a ``CronJob`` driver,
KubeRay ``RayJob`` manifests for the Ray stages, ``spark-submit`` against ``k8s://`` for
the Spark stages. API keys come from a Secret, by the names the config gives them."""

from __future__ import annotations

import json
import shlex
from dataclasses import replace

import yaml

from jobs.runner import Stage
from jobs.schedules.common import Task, header, local_command, sh_wrapped, stage_args, tasks
from jobs.schedules.target import Target

K8S_MASTER = "k8s://https://kubernetes.default.svc:443"
#: where the project lives inside the container image (its WORKDIR)
IMAGE_ROOT = "/app"


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


def _secret_checks(target: Target) -> list[str]:
    """Fail fast where the key must be in this process's environment (the k8s driver)."""
    return [
        f': "${{{n}:?{n} must hold the API key (the profile names it; never written here)}}"'
        for n in target.secrets
    ]


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
    lines += [f"# {h}" for h in header(stages, target, "k8s")]
    lines += ["set -euo pipefail", f"cd {shlex.quote(target.project_root)}"]
    lines += [*_secret_checks(target), RAYJOB_WAIT]
    for t in tasks(stages):
        lines += ["", f"# {t.name} ({t.engine}) after {', '.join(t.upstream) or 'raw input'}"]
        if t.engine == "spark":
            lines.append(sh_wrapped(k8s_spark_command(t, target)))
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
    head = "".join(f"# {h}\n" for h in header(stages, target, "k8s"))
    head += (
        f"# Needs: KubeRay (ray.io/v1), the image {target.image} (the project at {IMAGE_ROOT},"
        " its WORKDIR; Spark's k8s entrypoint; kubectl), ReadWriteMany claims"
        f" {target.lake_claim} and {target.dumps_claim}, and the Secret {target.secret_name}"
        f" with keys {', '.join(target.secrets) or '(none)'}.\n"
    )
    docs = [_yaml(d) for d in k8s_objects(stages, target)]
    return head + "---\n" + "---\n".join(docs)
