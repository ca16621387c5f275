"""A real two-node Ray cluster on 127.0.0.1 for tests: a head (GCS, dashboard with the Jobs
API) and a second node, each a ``ray start --block`` process of its own session, both
with a Python that lacks the project (the editable install's finder dropped by a
``sitecustomize``, `tests.bare_python`) and started outside the repo, so a worker imports
the project only when a job ships it (``runtime_env``). Only the processes started here
are stopped: never ``ray stop``, which would end every Ray on the machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from tests.bare_python import SITECUSTOMIZE
from tests.daemons import free_port, start_daemon, wait_for

#: the GCS declares a node dead after ~3 missed 1-s health checks (Ray's default: 5 x 3 s)
FAST_NODE_DEATH = {
    "RAY_health_check_initial_delay_ms": "1000",
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
}


@dataclass
class RayCluster:
    """A running head + second node. `address` is the GCS (``ray.init(address=...)``),
    `dashboard` the Jobs API URL, `env` the environment the nodes run with."""

    address: str
    dashboard: str
    folder: Path
    env: dict[str, str]
    nodes: list[subprocess.Popen] = field(default_factory=list)

    def alive_nodes(self) -> list[dict]:
        """The GCS's alive nodes: {node_id, head, resources}."""
        from ray._private.ray_constants import GCS_SERVER_REQUEST_TIMEOUT_SECONDS as T
        from ray._raylet import GcsClient
        from ray.core.generated.gcs_pb2 import GcsNodeInfo

        infos = GcsClient(address=self.address).get_all_node_info(
            timeout=T, state_filter=GcsNodeInfo.GcsNodeState.ALIVE
        )
        return [
            {
                "node_id": i.node_id.hex(),
                "head": i.is_head_node,
                "resources": dict(i.resources_total),
            }
            for i in infos.values()
        ]

    def wait_nodes(self, n: int, timeout: float = 120) -> None:
        """Until exactly `n` nodes are alive (raises TimeoutError)."""
        _wait(lambda: len(self.alive_nodes()) == n, timeout, f"{n} alive node(s)", [])

    def node2_processes(self) -> list[psutil.Process]:
        """Every live process of the second node: its ``ray start``, raylet, agents, workers."""
        return _group(self.nodes[1].pid)

    def kill_node2(self) -> int:
        """kill -9 the second node: its raylet, agents and workers at once (its process
        group). Returns how many processes were killed."""
        procs = self.node2_processes()
        _kill(procs)
        self.nodes[1].wait(timeout=30)
        return len(procs)

    def submit(self, *args: str, cwd: Path | None = None, timeout: float = 300):
        """`ray job submit --address <dashboard> ARGS` (the Ray CLI of this venv), run
        where `cwd` says; the completed process (stdout and stderr together)."""
        cmd = [sys.executable, "-m", "ray.scripts.scripts", "job", "submit"]
        return subprocess.run(
            [*cmd, "--address", self.dashboard, *args],
            cwd=cwd or self.folder,
            env={**os.environ, "RAY_ADDRESS": ""},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )


def _group(pid: int) -> list[psutil.Process]:
    """Live processes of the process group `pid` leads (a node's ``ray start``, GCS,
    raylet, agents) and their descendants (Ray workers, each in a session of its own)."""
    found: dict[int, psutil.Process] = {}
    for p in psutil.process_iter():
        with suppress(psutil.Error):
            if os.getpgid(p.pid) == pid:
                found[p.pid] = p
                found.update((c.pid, c) for c in p.children(recursive=True))
    return list(found.values())


def _kill(procs: list[psutil.Process]) -> None:
    for p in procs:
        with suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(procs, timeout=30)


def _wait(check, timeout: float, what: str, procs: list[subprocess.Popen]) -> None:
    wait_for(check, timeout, what, procs, "Ray node")


def _stop(procs: list[subprocess.Popen], folder: Path) -> None:
    """kill -9 every process of each node (`_group`), then any process still naming this
    cluster's temp folder in its command line (none expected)."""
    for p in reversed(procs):
        _kill(_group(p.pid))
        with suppress(subprocess.TimeoutExpired):
            p.wait(timeout=30)
    stray = []
    for p in psutil.process_iter(["cmdline"]):
        with suppress(psutil.Error):
            if str(folder) in " ".join(p.info["cmdline"] or ()):
                stray.append(p)
    _kill(stray)


def _node_command(temp: Path, *args: str) -> list[str]:
    """``ray start --block`` with every port this node opens chosen free here (two
    raylets on one IP must not meet on Ray's fixed defaults) and a small object store."""
    ports = {
        "--node-manager-port": free_port(),
        "--object-manager-port": free_port(),
        "--dashboard-agent-listen-port": free_port(),
        "--dashboard-agent-grpc-port": free_port(),
        "--runtime-env-agent-port": free_port(),
        "--metrics-export-port": free_port(),
    }
    return [
        sys.executable,
        "-m",
        "ray.scripts.scripts",
        "start",
        "--block",
        f"--temp-dir={temp}",
        "--object-store-memory=200000000",
        "--min-worker-port=0",  # workers take ports the OS gives them
        "--max-worker-port=0",
        "--disable-usage-stats",
        *(f"{k}={v}" for k, v in ports.items()),
        *args,
    ]


@contextmanager
def ray_cluster(
    head_cpus: int = 1, node2_cpus: int = 1, jobs_api: bool = True, timeout: float = 180
) -> Iterator[RayCluster]:
    """Start a head (`head_cpus`; with `jobs_api` the dashboard and its Jobs API, from
    ``ray[default]``; off, a few seconds less to start) and a second node (`node2_cpus`,
    custom resource ``node2``) on 127.0.0.1 under a fresh temp folder (short: Ray's unix
    socket paths are limited to ~107 characters); yield once both are alive; kill every
    process of both nodes on exit, whatever happened. The nodes' ``PATH`` starts with
    this venv's ``bin``: a Ray job's ``python`` entrypoint is the Python that has Ray, as
    on a cluster's image."""
    folder = Path(tempfile.mkdtemp(prefix="zray-"))
    site = folder / "site"
    site.mkdir()
    from engines.code import project_root

    (site / "sitecustomize.py").write_text(SITECUSTOMIZE.format(root=str(project_root())))
    extra = os.environ.get("PYTHONPATH")
    env = {
        **os.environ,
        **FAST_NODE_DEATH,
        "PYTHONPATH": os.pathsep.join([str(site), *([extra] if extra else [])]),
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "RAY_ADDRESS": "",
        "RAY_AUTH_MODE": "disabled",  # loopback only; not whatever ~/.ray/auth_token says
    }
    port, dash = free_port(), free_port()
    head = _node_command(
        folder / "h",
        "--head",
        f"--port={port}",
        f"--num-cpus={head_cpus}",
        f"--include-dashboard={str(jobs_api).lower()}",  # the Jobs API needs ray[default]
        "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dash}",
        f"--ray-client-server-port={free_port()}",
    )
    node2 = _node_command(
        folder / "n",
        f"--address=127.0.0.1:{port}",
        f"--num-cpus={node2_cpus}",
        f"--resources={json.dumps({'node2': 1})}",
    )
    cluster = RayCluster(f"127.0.0.1:{port}", f"http://127.0.0.1:{dash}", folder, env)
    procs = cluster.nodes
    try:
        for n, cmd in enumerate((head, node2)):
            procs.append(start_daemon(cmd, env, folder, folder / f"node-{n}.log"))
            _wait(lambda n=n: len(cluster.alive_nodes()) == n + 1, timeout, "node", procs)
        if jobs_api:
            _wait(lambda: _jobs_api_up(cluster.dashboard), timeout, "Jobs API", procs)
        yield cluster
    finally:
        _stop(procs, folder)


def _jobs_api_up(url: str) -> bool:
    import urllib.request

    with urllib.request.urlopen(f"{url}/api/version", timeout=5) as r:
        return r.status == 200
