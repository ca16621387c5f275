"""A real Spark standalone cluster on 127.0.0.1 for tests: a master and a worker started
with the `pyspark` distribution's ``spark-class``, executors whose Python lacks the
project (`tests.bare_python`). Only the processes started here are stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import pyspark

from tests.bare_python import bare_python
from tests.daemons import free_port, start_daemon, wait_for

SPARK_HOME = Path(pyspark.__file__).parent
EXECUTOR_MAIN = "CoarseGrainedExecutorBackend"


@dataclass
class SparkCluster:
    """A running master + worker; `env` is what a driver needs (executors' Python)."""

    url: str
    ui: str
    work_dir: Path
    env: dict[str, str]
    procs: list[subprocess.Popen]

    def state(self) -> dict:
        """The master's JSON status (workers, applications)."""
        with urllib.request.urlopen(f"{self.ui}/json/", timeout=5) as r:
            return json.load(r)

    def executors(self) -> list[psutil.Process]:
        """Executor JVMs of this cluster's worker (its children running the backend)."""
        worker = psutil.Process(self.procs[1].pid)
        return [
            p for p in worker.children(recursive=True) if EXECUTOR_MAIN in " ".join(_cmdline(p))
        ]

    def executor_dirs(self) -> list[Path]:
        """Every executor the worker launched (``<work>/<app>/<executor id>``)."""
        return sorted(p for p in self.work_dir.glob("app-*/*") if p.is_dir())


def _cmdline(p: psutil.Process) -> list[str]:
    try:
        return p.cmdline()
    except psutil.Error:
        return []


def _wait(check, timeout: float, what: str, procs: list[subprocess.Popen]) -> None:
    wait_for(check, timeout, what, procs, "Spark daemon", errors=(OSError,))


def _stop(procs: list[subprocess.Popen]) -> None:
    """SIGTERM then SIGKILL each daemon's process group (executors and their Python
    workers are in the worker's group)."""
    for p in reversed(procs):
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                break
            try:
                p.wait(timeout=10)
                break
            except subprocess.TimeoutExpired:
                continue


@contextmanager
def spark_standalone(folder: Path, cores: int = 2, memory: str = "3g") -> Iterator[SparkCluster]:
    """Start a master and one worker (`cores`, `memory`) on 127.0.0.1; yields the cluster
    once the worker has registered; stops both (and their executors) on exit."""
    folder.mkdir(parents=True, exist_ok=True)
    python = bare_python(folder / "executor-python")
    env = {
        **os.environ,
        "SPARK_HOME": str(SPARK_HOME),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOG_DIR": str(folder / "logs"),
        "SPARK_NO_DAEMONIZE": "1",
        "PYSPARK_PYTHON": str(python),
    }
    port, ui = free_port(), free_port()
    work = folder / "work"
    spark_class = str(SPARK_HOME / "bin" / "spark-class")
    commands = [
        [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1"]
        + ["--port", str(port), "--webui-port", str(ui)],
        [spark_class, "org.apache.spark.deploy.worker.Worker", f"spark://127.0.0.1:{port}"]
        + ["--host", "127.0.0.1", "--cores", str(cores), "--memory", memory]
        + ["--work-dir", str(work), "--webui-port", str(free_port())],
    ]
    procs: list[subprocess.Popen] = []
    cluster = SparkCluster(f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{ui}", work, env, procs)
    try:
        for n, cmd in enumerate(commands):
            procs.append(start_daemon(cmd, env, folder, folder / f"daemon-{n}.log"))
            if n == 0:
                _wait(lambda: cluster.state().get("status") == "ALIVE", 90, "master", procs)
        _wait(lambda: cluster.state().get("aliveworkers", 0) >= 1, 90, "worker", procs)
        yield cluster
    finally:
        _stop(procs)
