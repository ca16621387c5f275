"""`zipp dag --format shell|airflow|k8s`: each schedule parsed (bash -n, the Python AST,
YAML) and checked against `zipp dag --json`: the same tasks, the producer -> consumer
edges, the DAG order, each stage's command on its engine, and no secret values."""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from jobs import schedules
from jobs.cli import app
from jobs.config import load_config
from jobs.dag import STAGES

ROOT = Path(__file__).resolve().parents[2]
PROFILES = ("conf/cluster.yaml", "conf/local.yaml")
FORMATS = ("table", "json", "shell", "airflow", "k8s")
#: a fake key put in the environment while rendering: it must appear in no output
FAKE_KEY = "sk-fake-0123456789-never-in-output"
#: the local profile names no key; this override makes it name one
KEY_OVERRIDE = "llm.api_key_env=ZIPP_LLM_API_KEY"
STAGE_NAMES = [s.name for s in STAGES]
ENGINE = {s.name: s.engine for s in STAGES}
runner = CliRunner()


def _args(profile: str) -> list[str]:
    return ["-c", profile] + ([KEY_OVERRIDE] if profile == "conf/local.yaml" else [])


@pytest.fixture(scope="module")
def rendered() -> dict[tuple[str, str], str]:
    """Every format for both profiles, through the CLI, with a fake key in the env."""
    cwd = os.getcwd()
    os.chdir(ROOT)
    env = {"ZIPP_LLM_API_KEY": FAKE_KEY, "ZIPP_PSEUDONYM_KEY": FAKE_KEY}
    try:
        out = {}
        for profile in PROFILES:
            for fmt in FORMATS:
                res = runner.invoke(app, ["dag", "--format", fmt, *_args(profile)], env=env)
                assert res.exit_code == 0, res.output
                out[profile, fmt] = res.stdout
        return out
    finally:
        os.chdir(cwd)


def _dag_edges(json_text: str) -> set[tuple[str, str]]:
    """(producer, consumer) pairs from `zipp dag --json`'s `producers`."""
    rows = json.loads(json_text)
    assert [r["stage"] for r in rows] == STAGE_NAMES
    return {(p, r["stage"]) for r in rows for p in r["producers"].values() if p}


def _stage_of(argv: list[str]) -> str:
    """The stage a command runs: `-m jobs.<module> [stage]` or `jobs/<module>.py [stage]`."""
    if "-m" in argv:
        i = argv.index("-m")
        module, rest = argv[i + 1], argv[i + 2 :]
    else:
        script = next(a for a in argv if a.endswith(".py"))
        module = script.split("://")[-1].removeprefix("/app/").removesuffix(".py")
        module, rest = module.replace("/", "."), argv[argv.index(script) + 1 :]
    assert module.startswith("jobs."), argv
    name = module.removeprefix("jobs.")
    return rest[0] if rest and not rest[0].startswith("-") and "=" not in rest[0] else name


def _kind(argv: list[str]) -> str:
    if "spark-submit" in argv:
        return "spark"
    if argv[:3] == ["ray", "job", "submit"]:
        return "ray"
    assert argv[1:3] == ["-m", argv[2]] and "spark-submit" not in argv and "ray" not in argv
    return "local"


def _commands(script: str) -> list[list[str]]:
    """The stage commands of a generated bash script, tokenised (continuations joined)."""
    lines = script.replace("\\\n", " ").splitlines()
    cmds = []
    for line in lines:
        if not re.match(r"^([A-Z_]+=\S+ )*(spark-submit|ray job submit|python) ", line):
            continue
        argv = [a for a in shlex.split(line) if not re.match(r"^[A-Z_]+=", a)]
        if argv and (argv[0] in ("spark-submit", "ray") or argv[1:2] == ["-m"]):
            cmds.append(argv)
    return cmds


def _bash_n(text: str, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    subprocess.run(["bash", "-n", str(path)], check=True, timeout=30)


def test_tasks_and_edges_are_the_dag(rendered):
    """The schedules' tasks and edges are `zipp dag --json`'s, each stage's module
    declares it, and STAGES is a topological order of the edges."""
    dag_edges = _dag_edges(rendered["conf/cluster.yaml", "json"])
    assert dag_edges == _dag_edges(rendered["conf/local.yaml", "json"])
    assert set(schedules.edges(STAGES)) == dag_edges
    ts = schedules.tasks(STAGES)
    assert [t.name for t in ts] == STAGE_NAMES
    by = {t.name: t for t in ts}
    assert by["personas"].module == by["preferences"].module == "jobs.personas"
    assert by["personas"].argv == ("personas",) and by["ingest"].argv == ()
    pos = {n: i for i, n in enumerate(STAGE_NAMES)}
    assert all(pos[u] < pos[v] for u, v in dag_edges)
    assert len(dag_edges) > len(STAGES) - 1  # a real DAG, not a chain


@pytest.mark.parametrize("profile", PROFILES)
def test_shell_script(rendered, profile, tmp_path):
    text = rendered[profile, "shell"]
    _bash_n(text, tmp_path, "zipp.sh")
    assert "set -euo pipefail" in text
    assert re.search(r"^#\s+0 3 2 \* \* .*bash ", text, re.M), "crontab line"
    cmds = _commands(text)
    assert [_stage_of(c) for c in cmds] == STAGE_NAMES
    for argv in cmds:
        stage = _stage_of(argv)
        assert _kind(argv) == ENGINE[stage], argv
        assert argv[argv.index("-c") + 1] == profile
    spark = [c for c in cmds if _kind(c) == "spark"]
    master = load_config(profile).spark.master
    assert all(c[c.index("--master") + 1] == (master or "$SPARK_MASTER") for c in spark)
    if master is None:
        assert ': "${SPARK_MASTER:?' in text
    ray = [c for c in cmds if _kind(c) == "ray"]
    assert all(c[c.index("--working-dir") + 1] == str(ROOT) for c in ray)
    # the local profile starts its own Ray; under Ray Jobs the stage joins the cluster
    assert all(("ray.address=auto" in c) == (profile == "conf/local.yaml") for c in ray)


def _airflow(text: str) -> tuple[dict, dict[str, str], set[tuple[str, str]]]:
    """(DAG kwargs, task_id -> bash_command, edges) read from the DAG file's AST."""
    tree = ast.parse(text)
    dag_kwargs, var_task, commands, edges = {}, {}, {}, set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "DAG":
            dag_kwargs = {k.arg: k.value for k in node.keywords}
        call = node.value if isinstance(node, ast.Assign) else None
        if isinstance(call, ast.Call) and getattr(call.func, "id", "") == "BashOperator":
            kw = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
            var_task[node.targets[0].id] = kw["task_id"]
            commands[kw["task_id"]] = kw["bash_command"]
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.RShift):
            edges.add((node.left.id, node.right.id))
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "set_downstream":
            edges.add((node.func.value.id, node.args[0].id))
    return dag_kwargs, commands, {(var_task[a], var_task[b]) for a, b in edges}


@pytest.mark.parametrize("profile", PROFILES)
def test_airflow_dag_file(rendered, profile):
    text = rendered[profile, "airflow"]
    compile(text, "zipp_dag.py", "exec")
    kwargs, commands, edges = _airflow(text)
    assert ast.literal_eval(kwargs["schedule"]) == "0 3 2 * *"
    assert ast.literal_eval(kwargs["catchup"]) is False
    assert list(commands) == STAGE_NAMES
    assert edges == _dag_edges(rendered[profile, "json"])
    from graphlib import TopologicalSorter

    graph = {n: {u for u, v in edges if v == n} for n in STAGE_NAMES}
    order = list(TopologicalSorter(graph).static_order())  # raises on a cycle
    pos = {n: i for i, n in enumerate(STAGE_NAMES)}
    assert all(pos[u] < pos[v] for u, v in edges) and sorted(order) == sorted(STAGE_NAMES)
    for task_id, cmd in commands.items():
        first, _, run = cmd.rpartition(" && ")
        assert first.startswith(f"cd {ROOT}")
        argv = [a for a in shlex.split(run) if not re.match(r"^[A-Z_]+=", a)]
        assert _stage_of(argv) == task_id and _kind(argv) == ENGINE[task_id], cmd


@pytest.mark.parametrize("profile", PROFILES)
def test_k8s_manifests(rendered, profile, tmp_path):
    docs = list(yaml.safe_load_all(rendered[profile, "k8s"]))
    kinds = [(d["apiVersion"], d["kind"]) for d in docs]
    assert kinds == [
        ("v1", "ServiceAccount"),
        ("rbac.authorization.k8s.io/v1", "Role"),
        ("rbac.authorization.k8s.io/v1", "RoleBinding"),
        ("v1", "ConfigMap"),
        ("batch/v1", "CronJob"),
    ]
    cron, data = docs[4], docs[3]["data"]
    assert cron["spec"]["schedule"] == "0 3 2 * *"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["containers"][0]["command"] == ["bash", "/etc/zipp/driver.sh"]
    driver = data["driver.sh"]
    _bash_n(driver, tmp_path, "driver.sh")
    ray_stages = [s.name for s in STAGES if s.engine == "ray"]
    assert re.findall(r"^run_rayjob (\w+)$", driver, re.M) == ray_stages
    rayjobs = {k: yaml.safe_load(v) for k, v in data.items() if k.startswith("rayjob-")}
    assert list(rayjobs) == [f"rayjob-{n}.yaml" for n in ray_stages]
    for name, job in zip(ray_stages, rayjobs.values(), strict=True):
        assert (job["apiVersion"], job["kind"]) == ("ray.io/v1", "RayJob")
        entry = shlex.split(job["spec"]["entrypoint"])
        assert entry[:2] == ["python", "-m"] and _stage_of(entry) == name
        assert yaml.safe_load(job["spec"]["runtimeEnvYAML"]) == {"working_dir": "/app"}
        spec = job["spec"]["rayClusterSpec"]
        assert spec["headGroupSpec"]["template"]["spec"]["containers"]
        assert spec["workerGroupSpecs"][0]["replicas"] >= 1
    spark = [c for c in _commands(driver) if _kind(c) == "spark"]
    assert [_stage_of(c) for c in spark] == [s.name for s in STAGES if s.engine == "spark"]
    for c in spark:
        assert c[c.index("--master") + 1].startswith("k8s://")
        assert c[c.index("--deploy-mode") + 1] == "cluster"
    local = [c for c in _commands(driver) if _kind(c) == "local"]
    assert [_stage_of(c) for c in local] == [s.name for s in STAGES if s.engine == "local"]
    # the key by reference only: secretKeyRef in the driver and in every Ray pod
    envs = [pod["containers"][0]["env"]] + [
        g["template"]["spec"]["containers"][0]["env"]
        for j in rayjobs.values()
        for g in [j["spec"]["rayClusterSpec"]["headGroupSpec"]]
        + j["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    ]
    for env in envs:
        assert env == [
            {
                "name": "ZIPP_LLM_API_KEY",
                "valueFrom": {"secretKeyRef": {"name": "zipp-secrets", "key": "ZIPP_LLM_API_KEY"}},
            }
        ]


def test_no_secret_values_anywhere(rendered):
    assert len(rendered) == len(PROFILES) * len(FORMATS)
    for key, text in rendered.items():
        assert text.strip(), key
        assert FAKE_KEY not in text, key
    assert "ZIPP_LLM_API_KEY" in rendered["conf/cluster.yaml", "shell"]  # named, not valued


def test_options_out_and_errors(tmp_path):
    """--json is --format json; --out writes the file; options reach the output; a
    --spark-master that contradicts the profile and an unknown format exit 2."""
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        a = runner.invoke(app, ["dag", "--json", "-c", "conf/cluster.yaml"])
        b = runner.invoke(app, ["dag", "--format", "json", "-c", "conf/cluster.yaml"])
        assert a.exit_code == b.exit_code == 0 and json.loads(a.stdout) == json.loads(b.stdout)
        out = tmp_path / "zipp.yaml"
        opts = ["--schedule", "@monthly", "--image", "reg.example/zipp:7", "--namespace", "ml"]
        res = runner.invoke(
            app, ["dag", "--format", "k8s", "-c", "conf/cluster.yaml", "--out", str(out), *opts]
        )
        assert res.exit_code == 0, res.output
        docs = list(yaml.safe_load_all(out.read_text()))
        assert docs[-1]["spec"]["schedule"] == "@monthly"
        assert {d["metadata"]["namespace"] for d in docs} == {"ml"}
        assert "reg.example/zipp:7" in docs[3]["data"]["rayjob-images.yaml"]
        res = runner.invoke(
            app,
            ["dag", "--format", "shell", "-c", "conf/cluster.yaml"]
            + ["--spark-master", "spark://m:7077", "--ray-address", "http://head:8265"],
        )
        cmds = _commands(res.stdout)
        assert {c[c.index("--master") + 1] for c in cmds if _kind(c) == "spark"} == {
            "spark://m:7077"
        }
        assert {c[c.index("--address") + 1] for c in cmds if _kind(c) == "ray"} == {
            "http://head:8265"
        }
        assert "SPARK_MASTER:?" not in res.stdout
        res = runner.invoke(
            app,
            ["dag", "--format", "shell", "-c", "conf/local.yaml", "--spark-master", "spark://x:1"],
        )
        assert res.exit_code == 2 and "spark.master" in res.output
        res = runner.invoke(app, ["dag", "--format", "xml"])
        assert res.exit_code == 2 and "unknown --format" in res.output
    finally:
        os.chdir(cwd)


def test_ray_dashboard_from_ray_url():
    cfg = load_config(ROOT / "conf/local.yaml", ["ray.address=ray://head.svc:10001"])
    assert schedules.make_target(cfg, "p.yaml").ray_address == "http://head.svc:8265"
    assert schedules.make_target(cfg, "p.yaml").ray_joins


def test_spark_submit_command_runs_the_stage_entry_point(rendered):
    """The shell script's spark-submit line for ingest really starts the stage's entry
    point under spark-submit (the driver imports the project from the tree)."""
    argv = next(c for c in _commands(rendered["conf/local.yaml", "shell"]) if _kind(c) == "spark")
    line = next(
        ln
        for ln in rendered["conf/local.yaml", "shell"].replace("\\\n", " ").splitlines()
        if "spark-submit" in ln and "jobs/ingest.py" in ln
    )
    assert _stage_of(argv) == "ingest"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    res = subprocess.run(
        ["bash", "-c", f"set -euo pipefail; cd {shlex.quote(str(ROOT))}; {line} --help"],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "Engine: spark" in res.stdout
