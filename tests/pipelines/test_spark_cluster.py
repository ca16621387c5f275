"""The Spark stages on a real Spark standalone cluster on this machine (`tests.spark_cluster`):
a master and a worker on 127.0.0.1 whose executors' Python lacks the project, so the
`reddit_dumps` source and every UDF import only because the job ships the project as a
zip. `zipp run ingest graph spark.master=spark://...` and `spark-submit jobs/ingest.py`
give the tables a ``local[2]`` run gives, table by table; an executor JVM killed with -9
mid-ingest costs the lake nothing (Spark relaunches it and retries its tasks).

The drivers run as subprocesses (one JVM per process, each with its own master); they
start in the repo (the configs name files relative to it), the executors in the worker's
work folder."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest
from rich.console import Console

from storage.lake import Lake
from tests.daemons import run_ok
from tests.spark_cluster import SPARK_HOME, SparkCluster, spark_standalone

REPO = Path(__file__).resolve().parents[2]
ZIPP = Path(sys.executable).with_name("zipp")
BRONZE = ("bronze/submissions", "bronze/comments", "quarantine/records")
SILVER = ("silver/users", "silver/subreddits", "silver/edges", "silver/snippets")
SETTINGS = [
    "spark.conf.spark.sql.shuffle.partitions=2",
    "spark.conf.spark.driver.memory=1g",
    "spark.conf.spark.executor.memory=1g",
    "spark.conf.spark.executor.cores=1",  # two executors on the worker's two cores
    "graph.min_user_interactions=2",
    "graph.min_subreddit_users=2",
]

PROBE = """
import importlib.util, sys
from pyspark.sql import SparkSession
spark = SparkSession.builder.master(sys.argv[1]).getOrCreate()
found = spark.sparkContext.parallelize([0], 1).map(
    lambda _: importlib.util.find_spec("pipelines") is not None).collect()
print("PROBE", found[0])
spark.stop()
"""


def run(cmd: list[str], env: dict | None = None, timeout: float = 300) -> str:
    """Run `cmd` in the repo; its output (fails the test on a non-zero exit)."""
    return run_ok(cmd, REPO, env or dict(os.environ), timeout).stdout


def zipp_run(lake: Path, dumps: Path, master: str, *stages: str, env=None) -> str:
    args = ["-c", "conf/local.yaml", f"lake.root={lake}", f"input.dumps={dumps}"]
    return run([str(ZIPP), "run", *stages, *args, f"spark.master={master}", *SETTINGS], env)


def table(root: Path, name: str) -> list[tuple]:
    """Every row of `name` as a sorted list of tuples (column order kept)."""
    t = Lake(root).read(name)
    return sorted((tuple(r.values()) for r in t.to_pylist()), key=repr)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """A small sample world's dumps (two months, both kinds; a few corrupt lines)."""
    from world.planted import SampleSpec
    from world.write import write_sample

    folder = tmp_path_factory.mktemp("sparkworld")
    write_sample(folder, SampleSpec(users=60, seed=3, images=False), console=Console(quiet=True))
    return folder / "dumps"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with spark_standalone(tmp_path_factory.mktemp("spark"), cores=2, memory="2g") as c:
        yield c


@pytest.fixture(scope="module")
def local_lake(tmp_path_factory, world) -> Path:
    lake = tmp_path_factory.mktemp("local") / "lake"
    zipp_run(lake, world, "local[2]", "ingest", "graph")
    return lake


def test_executors_lack_the_project_unless_the_job_ships_it(cluster, tmp_path):
    out = run([sys.executable, "-c", PROBE, cluster.url], cluster.env, timeout=120)
    assert "PROBE False" in out, out[-3000:]


def test_zipp_run_on_the_cluster_equals_a_local_run(cluster, world, local_lake, tmp_path):
    lake = tmp_path / "lake"
    zipp_run(lake, world, cluster.url, "ingest", "graph", env=cluster.env)
    state = cluster.state()
    apps = [a["name"] for k in ("activeapps", "completedapps") for a in state.get(k, [])]
    assert "zipp" in apps, state  # it ran on the cluster
    for name in (*BRONZE, *SILVER):
        assert table(lake, name) == table(local_lake, name), name


def _kill_an_executor_mid_task(cluster: SparkCluster, killed: list, stop: threading.Event):
    """Once an executor runs a Python worker (a task reading dumps), kill -9 its JVM."""
    while not stop.is_set():
        for executor in cluster.executors():
            try:
                if executor.children():
                    executor.kill()
                    killed.append(executor.pid)
                    return
            except Exception:  # noqa: BLE001 - it may end on its own first
                continue
        time.sleep(0.05)


def test_spark_submit_survives_a_killed_executor(cluster, world, local_lake, tmp_path):
    lake = tmp_path / "lake"
    env = {**cluster.env, "PYSPARK_DRIVER_PYTHON": sys.executable}
    before = len(cluster.executor_dirs())
    killed: list[int] = []
    stop = threading.Event()
    killer = threading.Thread(target=_kill_an_executor_mid_task, args=(cluster, killed, stop))
    killer.start()
    try:
        args = ["-c", "conf/local.yaml", f"lake.root={lake}", f"input.dumps={world}", *SETTINGS]
        submit = [str(SPARK_HOME / "bin" / "spark-submit"), "--master", cluster.url]
        # no --py-files: the job zips and ships the project itself (engines.spark)
        out = run([*submit, "--conf", "spark.executor.cores=1", "jobs/ingest.py", *args], env)
    finally:
        stop.set()
        killer.join()
    assert killed, "no executor was caught running a task"
    # the worker launched a replacement for the killed executor
    assert len(cluster.executor_dirs()) - before >= 3, (before, cluster.executor_dirs(), out)
    for name in BRONZE:
        assert table(lake, name) == table(local_lake, name), name
