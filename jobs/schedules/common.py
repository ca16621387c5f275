"""What the three schedules share: each stage as a task (its `python -m jobs.<module>`
entry and its upstream stages, from the tables it reads and the stage that produces
them, `jobs.runner.producers`), the command that runs it on its engine (in-process,
``spark-submit``, ``ray job submit``) and the shell quoting of those commands."""

from __future__ import annotations

import importlib
import pkgutil
import re
import shlex
import sys
from dataclasses import dataclass
from types import ModuleType

from jobs.runner import Stage, producers
from jobs.schedules.target import Target


@dataclass(frozen=True)
class Task:
    """One stage as a scheduled task: how to start it and what must finish first."""

    name: str
    engine: str
    module: str  # "jobs.personas"
    argv: tuple[str, ...]  # the stage's name when its module declares several stages
    upstream: tuple[str, ...]  # producers of the tables it reads, in DAG order


def entry_modules() -> None:
    """Import every plain module of `jobs`: the `python -m jobs.<stage>` entries hold the
    stages they run (`jobs.dag` imports the declaring domain modules, not the entries)."""
    import jobs

    for info in pkgutil.iter_modules(jobs.__path__):
        if not info.ispkg:
            importlib.import_module(f"jobs.{info.name}")


def stage_module(stage: Stage) -> ModuleType:
    """The `jobs.<module>` that holds `stage` (the module `python -m` runs)."""
    entry_modules()
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


def quote_arg(arg: str) -> str:
    """One shell word: env assignments and ``$SPARK_MASTER`` left for the shell."""
    if arg == "$SPARK_MASTER":
        return '"$SPARK_MASTER"'
    if re.match(r"^[A-Z_]+=", arg):
        k, v = arg.split("=", 1)
        return f"{k}={shlex.quote(v)}"
    return shlex.quote(arg)


def sh_line(argv: list[str]) -> str:
    """A shell line."""
    return " ".join(quote_arg(a) for a in argv)


BREAK_BEFORE = ("--conf", "--master", "--deploy-mode", "--name", "--address", "--")


def sh_wrapped(argv: list[str]) -> str:
    """A shell line, broken before each option group and the program (backslashes)."""
    out = ""
    for i, a in enumerate(argv):
        brk = i and (a in BREAK_BEFORE or a.endswith(".py") and not argv[i - 1].startswith("-"))
        out += (" \\\n  " if brk else " " if i else "") + quote_arg(a)
    return out


def header(stages: list[Stage], target: Target, what: str) -> list[str]:
    """The lines every schedule starts with: what generated it, and not to edit it."""
    cmd = shlex.join(["zipp", "dag", "--format", what, "-c", target.profile, *target.overrides])
    return [
        f"ZIPP pipeline, {len(stages)} stages in DAG order: generated by `{cmd}`.",
        "Regenerate after changing the DAG or the profile instead of editing by hand.",
    ]
