"""A small lake for the service tests, built once per session: a 160-user planted world,
the DAG through `personas` (encoder trained, every persona made) and the smoke diffusion
model, on the embedded default (template LLM, local Spark and Ray)."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

ARGS = [
    "ray.num_cpus=2",
    "spark.master=local[2]",
    "spark.conf.spark.sql.shuffle.partitions=2",
    "encoder.epochs=2",
    "bench.users=6",
    "bench.prompts_per_user=1",
    "smoke.steps=20",
    "smoke.vae_steps=10",
    "smoke.batch_size=8",
    "diffusion.steps=2",
]
#: the stages the service reads the outputs of
STAGES = ("ingest", "graph", "split", "images", "features", "train", "embed", "prompts")
LATER = ("personas", "smoke")


@pytest.fixture(scope="session")
def service_lake(tmp_path_factory):
    """{"root", "data", "config": the composed config, "world": ground-truth folder}."""
    from jobs.config import load_config
    from jobs.dag import STAGES as DAG
    from jobs.runner import run_stage
    from storage.lake import Lake
    from tests.static_server import serve_folder
    from world.planted import SampleSpec
    from world.write import write_sample

    base = tmp_path_factory.mktemp("service")
    data, root = base / "data", base / "lake"
    with serve_folder(data) as url:
        write_sample(data, SampleSpec(users=160, seed=5, image_base_url=url))
        args = [f"lake.root={root}", f"input.dumps={data / 'dumps'}", *ARGS]
        cfg = load_config("conf/local.yaml", args)
        lake = Lake(root, cfg.lake.format)
        quiet = Console(file=io.StringIO())
        by_name = {s.name: s for s in DAG}
        for name in (*STAGES, *LATER):
            run_stage(by_name[name], cfg, lake, quiet)
    return {"root": root, "data": data, "config": cfg, "args": args, "world": data / "ground_truth"}
