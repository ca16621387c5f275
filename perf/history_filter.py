"""The noisy-history filter's effect (issue 25 item 2): one planted world, the DAG through
`score` with `rewrite.history_filter=true`, then again with `false` (only rewrite,
generate and score rerun), on the embedded default (template LLM, smoke model, colour
space); per method, the means of CLIPScore vs references and Pigeon's history metrics,
and for `history` the paired difference (filter on minus off) with its standard error.

    .venv/bin/python perf/history_filter.py [--out /tmp/history-filter] [--users 160]

Figures go to stdout and perf/out/history_filter.json. Minutes (the smoke model trains).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = Path(__file__).parent / "out"
COLS = ["clip_ref", "clip_history", "dino_ref", "dino_history"]
ARGS = [
    "ray.num_cpus=2",
    "spark.master=local[2]",
    "spark.conf.spark.sql.shuffle.partitions=2",
    "encoder.epochs=2",
    "bench.users=16",
    "bench.prompts_per_user=2",
    "diffusion.seeds=1",
    "diffusion.steps=2",
    "smoke.steps=20",
    "smoke.vae_steps=10",
    "smoke.batch_size=8",
    "rewrite.methods=[none,history]",
    "judge.agreement_images=0",
]
AGAIN = ("rewrite", "generate", "score")  # what the filter's config key makes stale


def measure(out: Path, users: int, seed: int) -> dict:
    """Both runs on one world -> {flag: {"table", "rows", "examples"}}."""
    from rich.console import Console

    from jobs.config import load_config
    from jobs.dag import STAGES
    from jobs.runner import run_stage
    from storage.lake import Lake
    from tests.static_server import serve_folder
    from world.planted import SampleSpec
    from world.write import write_sample

    data, root = out / "data", out / "lake"
    got = {}
    with serve_folder(data) as url:
        write_sample(data, SampleSpec(users=users, seed=seed, image_base_url=url))
        lake = Lake(root)
        for flag in ("true", "false"):
            args = [f"lake.root={root}", f"input.dumps={data / 'dumps'}", *ARGS]
            cfg = load_config(
                str(ROOT / "conf/local.yaml"), [*args, f"rewrite.history_filter={flag}"]
            )
            for s in STAGES[: [s.name for s in STAGES].index("report")]:
                if flag == "true" or s.name in AGAIN:
                    run_stage(s, cfg, lake, Console(file=io.StringIO()))
            sc = lake.read("bench/scores").to_pandas()
            rw = lake.read("bench/rewrites").to_pandas()
            rw = rw[rw["method"] == "history"]
            table = sc.groupby("method")[COLS].mean().round(2)
            table["images"] = sc.groupby("method").size()
            got[flag] = {
                "table": table.reset_index().to_dict("records"),
                "rows": sc[["user_id", "prompt_id", "seed_index", "method", *COLS]].to_dict(
                    "records"
                ),
                "examples": {
                    f"{u}/{p}": [list(e), q]
                    for u, p, e, q in zip(
                        rw["user_id"], rw["prompt_id"], rw["examples"], rw["prompt"], strict=True
                    )
                },
            }
    return got


def paired(got: dict, method: str = "history") -> dict:
    """Filter on minus off per image of `method`: mean, standard error, images changed."""
    rows = {
        f: {
            (r["user_id"], r["prompt_id"], r["seed_index"]): r
            for r in got[f]["rows"]
            if r["method"] == method
        }
        for f in got
    }
    keys = [k for k in rows["true"] if k in rows["false"]]
    out = {}
    for c in COLS:
        d = np.array(
            [
                rows["true"][k][c] - rows["false"][k][c]
                for k in keys
                if rows["true"][k][c] is not None and rows["false"][k][c] is not None
            ]
        )
        se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
        out[c] = {"n": len(d), "mean": round(float(d.mean()), 3), "se": round(se, 3)}
    ex_on, ex_off = got["true"]["examples"], got["false"]["examples"]
    out["titles_changed"] = sum(ex_on[k][0] != ex_off[k][0] for k in ex_on)
    out["prompts_changed"] = sum(ex_on[k][1] != ex_off[k][1] for k in ex_on)
    out["rows"] = len(ex_on)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/history-filter"))
    ap.add_argument("--users", type=int, default=160)
    ap.add_argument("--seed", type=int, default=5)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    got = measure(a.out, a.users, a.seed)
    result = {f: got[f]["table"] for f in got} | {"history_on_minus_off": paired(got)}
    OUT.mkdir(exist_ok=True)
    (OUT / "history_filter.json").write_text(json.dumps(result, indent=1, default=str))
    print(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
