"""Monthly refresh: the share of LLM calls and images redone after adding one month's
dumps to a current lake, against a from-scratch run on every month.

A sample world of --users users over --months months (served over http on 127.0.0.1).
Lake A: the DAG on every month but the last, then the last month's two dump files put
back and the DAG run again (the refresh). Lake B: the DAG from scratch on every month.
Each LLM stage's manifest records the calls it sent and the rows it reused
(`details.calls`), the generate stage the images it rendered and reused; the figure is
refresh / from-scratch, per stage. The diffusion model is a fixed tiny random diffusers
pipeline (`diffusion.model=<path>`): the embedded default's smoke model is retrained
when the history images change, and then every image is redone (reported apart with
--smoke).

    .venv/bin/python perf/refresh.py [--users 600 --months 2021-03,2021-04,2021-05
        --bench-users 64 --seed 5 --activity 1.0 --smoke]

Figures go to stdout and perf/out/refresh-activity<A>.json.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUT = Path(__file__).parent / "out"
#: the stages whose redone share is the figure: (stage, manifest table or None)
COUNTED = ("personas", "preferences", "rewrite", "generate")
ARGS = [
    "ray.num_cpus=2",
    "spark.master=local[2]",
    "spark.conf.spark.sql.shuffle.partitions=2",
    "encoder.epochs=2",
    "bench.prompts_per_user=1",
    "diffusion.steps=2",
    "diffusion.seeds=1",
    "diffusion.batch_size=8",
]


def write_world(
    data: Path, users: int, months: list[str], seed: int, url: str, activity: float = 1.0
) -> None:
    """The sample world's dumps, images and ground truth under `data`; `activity` scales
    the monthly post and comment rates (fewer users active in any one month)."""
    from world.planted import SampleSpec
    from world.write import write_sample

    spec = SampleSpec(
        users=users,
        seed=seed,
        months=tuple(months),
        image_base_url=url,
        posts_per_user_month=SampleSpec.posts_per_user_month * activity,
        comments_per_user_month=SampleSpec.comments_per_user_month * activity,
    )
    write_sample(data, spec, Console(file=io.StringIO()))


def last_month_files(data: Path, month: str) -> list[Path]:
    """The month's two dump files (submissions and comments)."""
    return [data / "dumps" / f"{kind}_{month}.zst" for kind in ("RS", "RC")]


def run_dag(root: Path, data: Path, args: list[str], stages: list | None = None) -> dict:
    """One plain run of the DAG (or of `stages`) on lake `root`; returns the manifests."""
    from jobs.config import load_config
    from jobs.dag import STAGES
    from jobs.runner import run_stage
    from storage.lake import Lake

    cfg = load_config(
        str(ROOT / "conf/local.yaml"), [f"lake.root={root}", f"input.dumps={data / 'dumps'}", *args]
    )
    lake = Lake(root, cfg.lake.format)
    quiet = Console(file=io.StringIO())
    ran = {}
    for stage in stages or STAGES:
        before = (
            (lake.manifests / f"{stage.name}.json").stat().st_mtime_ns
            if (lake.manifests / f"{stage.name}.json").exists()
            else None
        )
        m = run_stage(stage, cfg, lake, quiet)
        after = (lake.manifests / f"{stage.name}.json").stat().st_mtime_ns
        ran[stage.name] = {"ran": before != after, "details": m.get("details", {})}
    return ran


def sent(run: dict, stage: str) -> tuple[int, int]:
    """(calls or images made, rows planned) of a stage in one run (0 made when skipped)."""
    d = run[stage]["details"]
    if stage == "generate":
        made, planned = d.get("rendered", 0), d.get("rendered", 0) + d.get("reused", 0)
    else:
        calls = d.get("calls", {})
        made = sum(c["sent"] for c in calls.values())
        planned = sum(c["planned"] for c in calls.values())
    return (made if run[stage]["ran"] else 0), planned


def active_share(root: Path, month: str) -> float:
    """The share of the graph's users who posted or commented in `month`: those whose own
    activity the new month touches (their evidence changes only when a new snippet
    outranks the ones it holds, or the retrained encoder's attention reorders it)."""
    import pyarrow.compute as pc

    from storage.lake import Lake
    from world.planted import month_bounds

    lake = Lake(root)
    users = set(lake.read("silver/users", ["author"])["author"].to_pylist())
    start, end = month_bounds(month)
    active: set = set()
    for name in ("bronze/submissions", "bronze/comments"):
        t = lake.read(name, ["author", "created_utc"])
        t = t.filter(
            pc.and_(pc.greater_equal(t["created_utc"], start), pc.less(t["created_utc"], end))
        )
        active |= set(t["author"].to_pylist())
    return round(len(users & active) / max(1, len(users)), 3)


def figure(refresh: dict, scratch: dict) -> dict:
    """Per counted stage: made in the refresh, made from scratch, and the share."""
    out = {}
    for stage in COUNTED:
        r, _ = sent(refresh, stage)
        s, _ = sent(scratch, stage)
        out[stage] = {"refresh": r, "scratch": s, "share": round(r / s, 3) if s else None}
    return out


def main() -> None:
    from tests.static_server import serve_folder
    from tests.tiny_diffusion import build_tiny_pipeline

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=600)
    ap.add_argument("--months", default="2021-03,2021-04,2021-05")
    ap.add_argument("--bench-users", type=int, default=64)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--activity", type=float, default=1.0, help="scales monthly activity")
    ap.add_argument("--smoke", action="store_true", help="also the smoke-model case")
    ap.add_argument("--keep", help="keep the lakes under this folder")
    a = ap.parse_args()
    months = a.months.split(",")
    base = Path(a.keep or tempfile.mkdtemp(prefix="zipp-refresh-"))
    base.mkdir(parents=True, exist_ok=True)
    data = base / "data"
    tiny = base / "tiny-sd"
    build_tiny_pipeline(tiny)
    cases = [("fixed", [f"diffusion.model={tiny}"])]
    if a.smoke:
        cases.append(("smoke", ["smoke.steps=20", "smoke.vae_steps=10", "smoke.batch_size=8"]))
    report: dict = {
        "users": a.users,
        "months": months,
        "bench_users": a.bench_users,
        "activity": a.activity,
    }
    with serve_folder(data) as url:
        t0 = time.perf_counter()
        write_world(data, a.users, months, a.seed, url, a.activity)
        report["world_s"] = round(time.perf_counter() - t0, 1)
        for case, extra in cases:
            args = [*ARGS, f"bench.users={a.bench_users}", *extra]
            aside = base / f"aside-{case}"
            aside.mkdir(exist_ok=True)
            files = last_month_files(data, months[-1])
            for f in files:
                shutil.move(f, aside / f.name)
            t0 = time.perf_counter()
            run_dag(base / f"lake-{case}", data, args)
            first_s = time.perf_counter() - t0
            for f in files:
                shutil.move(aside / f.name, f)
            t0 = time.perf_counter()
            refresh = run_dag(base / f"lake-{case}", data, args)
            refresh_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            scratch = run_dag(base / f"scratch-{case}", data, args)
            scratch_s = time.perf_counter() - t0
            report[case] = {
                "figure": figure(refresh, scratch),
                "users_active_in_new_month": active_share(base / f"lake-{case}", months[-1]),
                "ran": {s: v["ran"] for s, v in refresh.items()},
                "ingest": refresh["ingest"]["details"],
                "seconds": {
                    "first": round(first_s, 1),
                    "refresh": round(refresh_s, 1),
                    "scratch": round(scratch_s, 1),
                },
            }
            print_case(case, report[case])
    OUT.mkdir(exist_ok=True)
    (OUT / f"refresh-activity{a.activity:g}.json").write_text(
        json.dumps(report, indent=2, default=str)
    )


def print_case(case: str, r: dict) -> None:
    print(f"\n== {case} diffusion model ==")
    print(f"{'stage':<12} {'refresh':>8} {'scratch':>8} {'share':>7}")
    for stage, f in r["figure"].items():
        share = "-" if f["share"] is None else f"{f['share']:.1%}"
        print(f"{stage:<12} {f['refresh']:>8} {f['scratch']:>8} {share:>7}")
    print(f"graph users active in the added month: {r['users_active_in_new_month']:.1%}")
    print("stages rerun in the refresh:", ", ".join(s for s, v in r["ran"].items() if v))
    print("seconds:", r["seconds"])


from rich.console import Console  # noqa: E402

if __name__ == "__main__":
    main()
