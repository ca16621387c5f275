"""The rewrite methods' ordering on several planted worlds (issue 23 item 7): for each
world seed, a fresh world (`zipp sample`), its images served from loopback, the whole DAG
on the embedded default (template LLM, smoke model), and the report's method table read
back: CLIPScore vs references and the preference judge, win rates vs `none` and vs the
`swapped` control with their p. An experiment, not a hot path: its peer is the paper's
ordering (ZIPP 5-shot > TV 3-shot > ViPer on ZIPBench), printed beside the measured one.

    .venv/bin/python perf/method_order.py --users 400 --seeds 1,2,3 [--out /tmp/method-order]

Each world takes minutes (the smoke model trains once per world). Figures go to stdout
and perf/out/method_order_<users>.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(__file__).parent / "out"
ZIPP = [sys.executable, "-m", "jobs.cli"]
METHODS = ("zero_shot", "k_shot")  # the persona methods the bar is about
CONTROLS = ("none", "swapped")
PAPER = "ZIPP 5-shot > TV 3-shot (history) > ViPer on ZIPBench (the paper)"


def run_world(users: int, seed: int, out: Path, port: int, extra: list[str]) -> dict:
    """Sample a world, run the DAG on it, return the report's method table as records."""
    world, lake = out / f"world-{users}-{seed}", out / f"lake-{users}-{seed}"
    subprocess.run(
        [*ZIPP, "sample", "--out", str(world), "--users", str(users), "--seed", str(seed),
         "--image-base-url", f"http://127.0.0.1:{port}"],
        check=True, cwd=ROOT, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
         "--directory", str(world)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        t0 = time.perf_counter()
        subprocess.run(
            [*ZIPP, "run", "-c", "conf/local.yaml", f"input.dumps={world}/dumps",
             f"lake.root={lake}", f"report.ground_truth={world}/ground_truth", *extra],
            check=True, cwd=ROOT, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        seconds = time.perf_counter() - t0
    finally:
        server.terminate()
    import pandas as pd

    table = pd.read_parquet(lake / "reports/zipbench/summary.parquet")
    return {"seconds": round(seconds, 1), "methods": table.to_dict("records")}


def verdict(methods: list[dict]) -> dict:
    """Per persona method: wins vs none and swapped on both scorers with p < 0.01; and
    the methods ordered by CLIPScore vs references and by the preference judge."""
    rows = {r["method"]: r for r in methods}
    out = {}
    for m in METHODS:
        r = rows.get(m, {})
        out[m] = all(
            (r.get(f"{s}_win_vs_{c}") or 0) > 0.5 and (r.get(f"{s}_p_vs_{c}") or 1) < 0.01
            for s in ("cs", "pref")
            for c in CONTROLS
        )
    scored = [r for r in methods if r["method"] != "base"]
    out["order_cs"] = [r["method"] for r in sorted(scored, key=lambda r: -r["clip_ref"])]
    out["order_pref"] = [r["method"] for r in sorted(scored, key=lambda r: -r["preference"])]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=400)
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--out", default="/tmp/method-order")
    ap.add_argument("--port", type=int, default=8790)
    ap.add_argument("overrides", nargs="*", help="key=value config overrides")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for i, seed in enumerate(int(s) for s in args.seeds.split(",")):
        res = run_world(args.users, seed, out, args.port + i, args.overrides)
        res["verdict"] = verdict(res["methods"])
        results[seed] = res
        v = res["verdict"]
        print(f"world seed {seed} ({args.users} users, {res['seconds']:.0f} s):")
        for r in res["methods"]:
            if r["method"] in (*METHODS, "viper", "history", "swapped"):
                print(
                    f"  {r['method']:>9}: CS {r['clip_ref']:.2f} win vs none "
                    f"{r['cs_win_vs_none']:.2f} (p {r['cs_p_vs_none']:.1g}), pref win vs none "
                    f"{r['pref_win_vs_none']:.2f} (p {r['pref_p_vs_none']:.1g}); vs swapped "
                    f"CS {r['cs_win_vs_swapped'] or float('nan'):.2f} "
                    f"(p {r['cs_p_vs_swapped'] or float('nan'):.1g}), pref "
                    f"{r['pref_win_vs_swapped'] or float('nan'):.2f} "
                    f"(p {r['pref_p_vs_swapped'] or float('nan'):.1g})"
                )
        print(f"  bar (beats none and swapped, p < 0.01, both scorers): "
              f"{', '.join(f'{m} {v[m]}' for m in METHODS)}")  # fmt: skip
        print(f"  order by CS: {' > '.join(v['order_cs'])}")
        print(f"  order by pref: {' > '.join(v['order_pref'])}")
    print(f"paper: {PAPER}")
    OUT.mkdir(exist_ok=True)
    (OUT / f"method_order_{args.users}.json").write_text(
        json.dumps(results, indent=2, default=float)
    )


if __name__ == "__main__":
    main()
