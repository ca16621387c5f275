"""The Ray stages on a real two-node Ray cluster on this machine (`tests.ray_cluster`),
whose workers lack the project unless a job ships it: `zipp run` joining it by address
gives the tables a local run gives, `ray job submit --working-dir` runs a stage as a Ray
job, and a node killed with -9 mid-`generate` costs no row and duplicates none.

The drivers run as subprocesses started outside the repo: Ray adds a driver's working
directory to its workers' ``sys.path`` (``JobConfig.py_driver_sys_path``), so a driver
started in the repo would hand same-machine workers the project without shipping it.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import suppress
from pathlib import Path

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from rich.console import Console

from jobs.config import load_config
from jobs.dag import BY_NAME
from jobs.runner import run_stage
from jobs.schedules import make_target, ray_command, tasks
from storage.lake import Lake, data_files
from tests.daemons import run_ok
from tests.graph.world import write_silver_world
from tests.ray_cluster import RayCluster, ray_cluster

REPO = Path(__file__).resolve().parents[2]
ZIPP = Path(sys.executable).with_name("zipp")
TINY = Path(tempfile.gettempdir()) / f"zipp-test-tiny-sd-{os.getpid()}"
CLUSTER_STAGES = ["train", "embed", "personas", "preferences", "rewrite", "generate"]
ARGS = [
    f"diffusion.model={TINY}",
    f"bench.prompts={REPO / 'conf/prompts.txt'}",
    f"ingest.blocklist={REPO / 'conf/blocklist.txt'}",
    "ray.num_cpus=2",  # the local runs: as many CPUs as the cluster's two nodes
    "bench.users=4",
    "bench.prompts_per_user=1",
    "encoder.hidden=16",
    "encoder.heads=2",
    "encoder.fanouts=[5,5]",
    "encoder.epochs=2",
    "encoder.patience=100",
    "diffusion.steps=3",
    "diffusion.seeds=2",
    "diffusion.batch_size=1",  # an image's pixels do not depend on its batch-mates
    "diffusion.actors=2",  # one CPU each: one actor per node
]
WORDS = {0: ["kodak", "portra", "grain", "darkroom"], 1: ["compost", "tomato", "mulch", "trellis"]}
KEYS = {  # row key and the columns compared exactly between runs
    "bench/rewrites": ("rewrite_id", ("user_id", "prompt_id", "method", "status", "prompt")),
    "bench/images": ("image_id", ("user_id", "prompt_id", "method", "seed", "status", "sha256")),
    "gold/personas": ("user_id", ("status", "text")),
}


def write_world(root: Path) -> None:
    """The encoder's planted silver world (`tests.graph.world`) plus what the generation
    stages read of it: each image post as a titled user image, titles and comments as
    snippets (community words)."""
    truth = write_silver_world(root, users=40, communities=2, subs_per_community=3)
    lake = Lake(root)
    subs = lake.read("silver/subreddits")["subreddit"].to_pylist()
    edges = lake.read("silver/edges").to_pylist()
    rng = np.random.default_rng(1)
    images, snippets = [], []
    for r in lake.read("silver/image_embeddings").to_pylist():
        u = r["user_id"]
        words = WORDS[truth["user_communities"][u][0]]
        own = [e["subreddit_id"] for e in edges if e["user_id"] == u]
        k = int(r["post_id"].rsplit("_", 1)[1])
        title = " ".join(rng.choice(words, size=4))
        created = 1_620_000_000 + 86_400 * k
        images.append(
            {
                **{c: r[c] for c in ("user_id", "post_id", "position", "image_url")},
                "media_id": None,
                "subreddit": subs[own[0]],
                "title": title,
                "created_utc": created,
                "origin": "i.redd.it",
            }
        )
        snippets.append(
            {
                "user_id": u,
                "subreddit_id": own[0],
                "rank": 1,
                "source": "title",
                "record_id": r["post_id"],
                "text": title,
                "score": 1,
                "created_utc": created,
                "post_id": r["post_id"],
            }
        )
    for n, e in enumerate(edges):
        words = WORDS.get(truth["subreddit_community"].get(e["subreddit_id"]), ["meme", "today"])
        snippets.append(
            {
                "user_id": e["user_id"],
                "subreddit_id": e["subreddit_id"],
                "rank": 2,
                "source": "comment",
                "record_id": f"c{n}",
                "text": " ".join(rng.choice(words, size=8)),
                "score": 5,
                "created_utc": int(e["first_utc"]),
                "post_id": None,
            }
        )
    lake.write_table("silver/user_images", pa.Table.from_pylist(images))
    lake.write_table("silver/snippets", pa.Table.from_pylist(snippets))


def driver_env() -> dict[str, str]:
    """A driver's environment: no inherited RAY_ADDRESS, auth as the test cluster has it."""
    return {**os.environ, "RAY_ADDRESS": "", "RAY_AUTH_MODE": "disabled"}


def zipp(cwd: Path, *args: str, timeout: float = 400) -> subprocess.CompletedProcess:
    """`zipp ARGS` as a subprocess run in `cwd` (outside the repo)."""
    return run_ok([str(ZIPP), *args], cwd, driver_env(), timeout)


def rows(root: Path, table: str) -> dict:
    """Key -> the compared columns of every row of `table`."""
    key, cols = KEYS[table]
    t = Lake(root).read(table)
    keys = t[key].to_pylist()
    assert len(set(keys)) == len(keys), f"{table}: duplicate keys"
    values = zip(*(t[c].to_pylist() for c in cols), strict=True)
    return dict(zip(keys, values, strict=True))


def embeddings(root: Path) -> tuple[list, np.ndarray]:
    t = Lake(root).read("gold/user_embeddings").sort_by("user_id")
    return t["user_id"].to_pylist(), np.asarray(t["embedding"].to_pylist(), np.float64)


PROBE = """
import sys, ray
ray.init(address=sys.argv[1], log_to_driver=False, **({} if len(sys.argv) < 3 else
         {"runtime_env": {"py_modules": sys.argv[2:]}}))
@ray.remote(num_cpus=0.1, resources={"node2": 0.01})
def where_is_graph():
    try:
        import graph
        return graph.__file__
    except ImportError as e:
        return repr(e)
print("PROBE", ray.get(where_is_graph.remote()))
"""


def probe(cluster: RayCluster, cwd: Path, *py_modules: str) -> str:
    """What a plain task on the second node makes of ``import graph``, submitted by a
    driver started in `cwd` (with `py_modules` shipped, if any)."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE, cluster.address, *py_modules],
        cwd=cwd,
        env=driver_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("PROBE ")]
    assert line, out.stdout[-3000:] + out.stderr[-3000:]
    return line[0].removeprefix("PROBE ")


@pytest.fixture(scope="module")
def cluster():
    with ray_cluster(jobs_api=True) as c:  # `ray job submit` needs the Jobs API
        yield c


@pytest.fixture(scope="module")
def lakes(tmp_path_factory, cluster):
    """One world up to the benchmark prompts (local stages), then the Ray stages run by
    `zipp run` once locally and once on the cluster, each on its own copy."""
    from tests.tiny_diffusion import build_tiny_pipeline

    build_tiny_pipeline(TINY)
    base = tmp_path_factory.mktemp("raycluster")
    seed = base / "seed"
    write_world(seed)
    cfg = load_config(REPO / "conf/local.yaml", [f"lake.root={seed}", *ARGS])
    for name in ("split", "prompts"):
        run_stage(BY_NAME[name], cfg, Lake(seed), Console(file=io.StringIO()))
    local, remote = base / "local", base / "cluster"
    shutil.copytree(seed, local)
    shutil.copytree(seed, remote)
    conf = ["-c", str(REPO / "conf/local.yaml")]
    t0 = time.perf_counter()
    zipp(base, "run", *conf, *CLUSTER_STAGES, f"lake.root={local}", *ARGS)
    t1 = time.perf_counter()
    out = zipp(
        base,
        "run",
        *conf,
        *CLUSTER_STAGES,
        f"lake.root={remote}",
        f"ray.address={cluster.address}",
        *ARGS,
    )
    t2 = time.perf_counter()
    print(f"local run {t1 - t0:.1f}s, cluster run {t2 - t1:.1f}s")
    return {"base": base, "seed": seed, "local": local, "cluster": remote, "log": out.stdout}


def test_workers_lack_the_project_unless_it_is_shipped(cluster, tmp_path):
    assert len(cluster.alive_nodes()) == 2
    assert "No module named 'graph'" in probe(cluster, tmp_path)
    # Ray puts the driver's working directory on its workers' sys.path: started in the
    # repo, a driver hands same-machine workers the project without shipping anything
    assert probe(cluster, REPO) == str(REPO / "graph/__init__.py")
    shipped = probe(cluster, tmp_path, str(REPO / "graph"))
    assert shipped.endswith("/graph/__init__.py") and not shipped.startswith(str(REPO))


def test_zipp_run_on_the_cluster_equals_a_local_run(lakes):
    local, remote = lakes["local"], lakes["cluster"]
    for table in KEYS:
        a, b = rows(local, table), rows(remote, table)
        assert a.keys() == b.keys(), table
        assert a == b, table
    images, rewrites = Lake(remote).read("bench/images"), Lake(remote).read("bench/rewrites")
    failed = pc.sum(pc.equal(rewrites["status"], "failed")).as_py() * 2  # diffusion.seeds
    assert images.num_rows and pc.sum(pc.equal(images["status"], "done")).as_py() == (
        images.num_rows - failed
    )
    ua, ea = embeddings(local)
    ub, eb = embeddings(remote)
    assert ua == ub
    np.testing.assert_allclose(ea, eb, rtol=0, atol=1e-5)


def test_ray_job_submit_runs_rewrite_on_the_cluster(cluster, lakes):
    """`ray job submit --working-dir <project> -- python -m jobs.rewrite ...` as `zipp dag`
    renders it (`jobs.schedules.ray_command`): the job's driver and its workers on both
    nodes import the project only from the uploaded working dir (the nodes' Python lacks
    it), the driver adds no py_modules of its own (`engines.ray.code_runtime_env`), and
    bench/rewrites equals the local run's."""
    from ray.job_submission import JobSubmissionClient
    from ray.util.state import list_actors

    root = lakes["base"] / "job"
    shutil.copytree(lakes["cluster"], root)  # personas and preferences made on the cluster
    overrides = [f"lake.root={root}", *ARGS, "llm.actors=2", "llm.batch_size=4"]
    cfg = load_config(REPO / "conf/local.yaml", overrides)
    target = make_target(cfg, "conf/local.yaml", overrides, ray_address=cluster.dashboard)
    cmd = ray_command(tasks([BY_NAME["rewrite"]])[0], target)
    assert cmd[:5] == ["ray", "job", "submit", "--address", cluster.dashboard]
    assert cmd[5:7] == ["--working-dir", str(REPO)] and cmd[-1] == "ray.address=auto"
    sid = f"zipp-rewrite-{uuid.uuid4().hex[:8]}"
    out = cluster.submit("--submission-id", sid, *cmd[5:], "--force", timeout=240)
    assert out.returncode == 0, out.stdout[-6000:]
    assert "rewrite (ray) — forced" in out.stdout and "✓ rewrite done" in out.stdout
    assert rows(root, "bench/rewrites") == rows(lakes["local"], "bench/rewrites")
    info = JobSubmissionClient(cluster.dashboard).get_job_info(sid)
    assert list(info.runtime_env) == ["working_dir"], info.runtime_env
    assert info.runtime_env["working_dir"].startswith("gcs://_ray_pkg_")
    workers = list_actors(
        address=cluster.dashboard,
        filters=[("class_name", "=", "LLMWorker"), ("job_id", "=", info.driver_info.id)],
        detail=True,
    )
    # SPREAD (llm.fanout): one LLM actor on each node
    assert {a.node_id for a in workers} == {n["node_id"] for n in cluster.alive_nodes()}


def node2_rendering(cluster: RayCluster) -> bool:
    """Whether a Renderer actor on the second node is running a batch (its process title
    is the method Ray is executing)."""
    for p in cluster.node2_processes():
        with suppress(psutil.Error):  # gone meanwhile
            if p.cmdline()[:1] == ["ray::Renderer.run"]:
                return True
    return False


def test_killing_node2_mid_generate_loses_and_duplicates_nothing(cluster, lakes):
    """Last in the module: it leaves the cluster with one node. `zipp run generate` on the
    cluster, one diffusion actor per node; once both render and rows are in the row log,
    the second node is killed (-9, raylet, agents and workers at once). The lost actor's
    batches go to the head's (`engines.ray.feed_actors`); the run ends 0 with every image
    of the local run once, each file on disk the bytes its row's sha256 names."""
    cluster.wait_nodes(2)
    root = lakes["base"] / "kill"
    shutil.copytree(lakes["cluster"], root)
    row_log = Lake(root).staging("rows", "generate", "bench/images")
    log = lakes["base"] / "kill.log"
    cmd = [str(ZIPP), "run", "-c", str(REPO / "conf/local.yaml"), "generate", "--force"]
    with open(log, "w") as f:
        run = subprocess.Popen(
            [*cmd, f"lake.root={root}", f"ray.address={cluster.address}", *ARGS],
            cwd=lakes["base"],
            env=driver_env(),
            stdout=f,
            stderr=subprocess.STDOUT,
        )
    try:
        end = time.monotonic() + 180
        while not (data_files(row_log) and node2_rendering(cluster)):
            assert run.poll() is None, log.read_text()[-6000:]
            assert time.monotonic() < end, "generate never rendered on both nodes"
            time.sleep(0.1)
        logged = len(data_files(row_log))  # batch_size 1: a part per image
        assert cluster.kill_node2() > 0
        assert run.wait(timeout=240) == 0, log.read_text()[-6000:]
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    text = log.read_text()
    cluster.wait_nodes(1)
    images = Lake(root).read("bench/images")
    done = images.filter(pc.equal(images["status"], "done"))
    assert 0 < logged < done.num_rows  # killed mid-stage
    assert "actor lost" in text, text[-6000:]
    assert rows(root, "bench/images") == rows(lakes["local"], "bench/images")  # no dups
    for path, sha in zip(done["path"].to_pylist(), done["sha256"].to_pylist(), strict=True):
        assert hashlib.sha256((root / path).read_bytes()).hexdigest() == sha
    assert not row_log.exists()  # the table written, its row log cleared
