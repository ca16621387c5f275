"""The whole DAG at growing world sizes: each stage's wall time, CPU of the whole process
tree, peak resident memory per process kind and output rows, and each stage's growth
exponent between the smallest and the largest world (issue 26; bars: CPU exponent
<= 1.15 per stage, the driver's peak RSS at the largest <= 6 GiB).

Each world is `zipp sample` with subreddits growing with users (`--subs-per-user`,
towards the paper's 40K at 1M users), images rendered and served from a local HTTP
server as `make demo` does (or `--no-images`: URLs only, no server, and
`images.allow_hosts=[]`, so the fetcher refuses every URL by its host policy, at once).
Each stage runs as its own `zipp run STAGE` on the embedded default (template LLM, the
smoke model) with the training budget below, so its process tree is measured alone:

* CPU: user + system seconds of every process of the tree, its own time only, sampled
  every 0.25 s (the last sample of each process counts; a process living < 0.25 s is
  missed, none is counted twice);
* peak RSS per kind: the driver (`zipp run`), the JVM (Spark), Python workers (Spark's
  `pyspark.daemon`), Ray (workers and raylet/GCS), summed per kind at each sample;
* output rows: `Lake.rows` of the stage's outputs.

Results are written after every stage (`--out/scale.json`); a rerun skips measured
stages, so a long run resumes.

    .venv/bin/python perf/scale.py --users 100000,300000,1000000 --out /tmp/scale \
        [--subs-per-user 0.04] [--no-images] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ZIPP = [sys.executable, "-m", "jobs.cli"]  # this checkout's code, wherever it is
GIB = 2**30
#: the training budget of a scale run: train time set by config, not graph size
BUDGET = [
    "encoder.edges_per_epoch=100000",
    "encoder.epochs=3",
    "encoder.val_users=2000",
    "encoder.eval_users=2000",
]


def kind(proc, driver: int) -> str:
    """Which kind of process this is, for the per-kind memory peaks."""
    if proc.pid == driver:
        return "driver"
    try:
        name, cmd = proc.name(), " ".join(proc.cmdline()[:4])
    except Exception:
        return "other"
    if name == "java":
        return "JVM"
    if "pyspark" in cmd:
        return "Spark Python workers"
    if "ray" in cmd or name in ("raylet", "gcs_server") or name.startswith("ray::"):
        return "Ray"
    return "other"


class Monitor(threading.Thread):
    """Samples a process tree: last CPU seconds per process, peak summed RSS per kind."""

    def __init__(self, pid: int, every: float = 0.25):
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.cpu: dict[int, float] = {}
        self.kinds: dict[int, str] = {}
        self.peak: Counter = Counter()
        self.stop = threading.Event()

    def run(self) -> None:
        import psutil

        root = psutil.Process(self.pid)
        while not self.stop.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            rss: Counter = Counter()
            for p in procs:
                try:
                    t = p.cpu_times()
                    mem = p.memory_info().rss
                except psutil.Error:
                    continue
                k = self.kinds[p.pid] = kind(p, self.pid)  # a launcher may exec java
                # its own time only: its children are sampled themselves (a child that
                # lived under one sampling interval is missed, never counted twice)
                self.cpu[p.pid] = t.user + t.system
                rss[k] += mem
            for k, v in rss.items():
                self.peak[k] = max(self.peak[k], v)
            rss_all = sum(rss.values())
            self.peak["tree"] = max(self.peak["tree"], rss_all)
            self.stop.wait(self.every)

    def cpu_by_kind(self) -> Counter:
        out: Counter = Counter()
        for pid, s in self.cpu.items():
            out[self.kinds[pid]] += s
        return out


def measured(cmd: list[str], log: Path) -> dict:
    """Run `cmd` under the monitor; wall, CPU (total and per kind), peak RSS per kind."""
    t0 = time.perf_counter()
    with log.open("w") as f:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT)
        mon = Monitor(proc.pid)
        mon.start()
        rc = proc.wait()
        mon.stop.set()
        mon.join()
    wall = time.perf_counter() - t0
    cpu = mon.cpu_by_kind()
    return {
        "rc": rc,
        "wall_s": round(wall, 1),
        "cpu_s": round(sum(cpu.values()), 1),
        "cpu_s_by_kind": {k: round(v, 1) for k, v in cpu.items()},
        "peak_rss_gib_by_kind": {k: round(v / GIB, 2) for k, v in mon.peak.items()},
    }


def killed(cmd: list[str], log: Path, after: float) -> bool:
    """Run `cmd`; `after` seconds in, SIGKILL its whole process tree (the driver, the JVM,
    Ray's daemons and workers: a node lost mid-stage). False when it ended first."""
    import psutil

    with log.open("w") as f:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT)
        try:
            proc.wait(timeout=after)
            return False
        except subprocess.TimeoutExpired:
            tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
            for p in tree:
                with contextlib.suppress(psutil.Error):
                    p.kill()
            proc.wait()
            psutil.wait_procs(tree, timeout=30)
            return True


def row_log(lake: Path, stage: str) -> dict:
    """Rows and bytes the stage's row logs hold (what a killed stage resumes from)."""
    import pyarrow.dataset as ds

    files = list((lake / "_staging" / "rows" / stage).rglob("part-*.parquet"))
    rows = ds.dataset([str(f) for f in files], format="parquet").count_rows() if files else 0
    size = sum(f.stat().st_size for f in files)
    return {"rows": rows, "bytes": size, "bytes_per_row": round(size / rows, 1) if rows else None}


def unique_rows(lake: Path, tables: tuple[str, ...]) -> dict:
    """Per output table: rows, and distinct request ids (or user ids): equal when a
    resumed stage wrote no duplicate."""
    from storage.lake import Lake

    out = {}
    for name in tables:
        t = Lake(str(lake)).read(name)
        key = next((k for k in ("request_id", "user_id") if k in t.column_names), None)
        if key:
            out[name] = {"rows": t.num_rows, "distinct": len(t[key].unique())}
    return out


def world(users: int, args, out: Path, results: dict, port: int) -> tuple[Path, dict]:
    """The world of `users` users (sampled once; the sampling measured); its image URLs
    name `port` on 127.0.0.1, where `serve` puts them."""
    folder = out / f"world-{users}"
    subs = max(1200, round(users * args.subs_per_user))
    if "sample" not in results:
        cmd = [*ZIPP, "sample", "--out", str(folder), "--users", str(users), "--seed", "3"]
        cmd += ["--subreddits", str(subs), "--image-base-url", f"http://127.0.0.1:{port}"]
        cmd += [] if args.images else ["--no-images"]
        results["sample"] = measured(cmd, out / f"sample-{users}.log") | {"subreddits": subs}
    return folder, results["sample"]


def serve(folder: Path, port: int) -> subprocess.Popen:
    """The world's images over HTTP on `port` (as `make demo`)."""
    return subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def exponent(small: float, large: float, n_small: int, n_large: int) -> float | None:
    if not small or not large:
        return None
    return round(math.log(large / small) / math.log(n_large / n_small), 3)


def markdown(report: dict) -> str:
    """The README's table from a scale.json: per stage and world, wall / CPU seconds, the
    driver's and the whole tree's peak RSS, and the growth exponents."""
    sizes = sorted(report["worlds"], key=int)
    names = list(dict.fromkeys(n for w in sizes for n in report["worlds"][w]))
    head = ["stage"] + [f"{int(w):,} users: wall / CPU s, driver / tree GiB" for w in sizes]
    head += ["CPU exponent", "wall exponent"] if report.get("growth") else []
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in names:
        cells = [name]
        for w in sizes:
            r = report["worlds"][w].get(name)
            if not r:
                cells.append("not run")
                continue
            peak = r["peak_rss_gib_by_kind"]
            cells.append(
                f"{r['wall_s']:,} / {r['cpu_s']:,}, {peak.get('driver', 0)} / {peak.get('tree', 0)}"
                + ("" if not r["rc"] else f" (rc {r['rc']})")
            )
        if report.get("growth"):
            g = report["growth"].get(name, {})
            cells += [str(g.get("cpu", "")), str(g.get("wall", ""))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    from jobs.dag import STAGES
    from storage.lake import Lake

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", default="100000,300000,1000000")
    ap.add_argument("--out", required=True, help="worlds, lakes, logs and scale.json")
    ap.add_argument("--subs-per-user", type=float, default=0.04)
    ap.add_argument("--images", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--stages", default="", help="comma-separated (default: the whole DAG)")
    ap.add_argument("--set", nargs="*", default=[], help="extra key=value overrides")
    ap.add_argument("--port", type=int, default=18765, help="image server port of world 1")
    ap.add_argument(
        "--kill",
        nargs="*",
        default=[],
        metavar="STAGE:SECONDS",
        help="kill -9 the stage's whole process tree SECONDS in, then run it again (measured) "
        "and count its output's rows against distinct ids",
    )
    ap.add_argument("--table", action="store_true", help="print the README table and exit")
    args = ap.parse_args()
    out = Path(args.out)
    if args.table:
        print(markdown(json.loads((out / "scale.json").read_text())))
        return
    out.mkdir(parents=True, exist_ok=True)
    report_file = out / "scale.json"
    report = json.loads(report_file.read_text()) if report_file.exists() else {"worlds": {}}
    names = [s for s in args.stages.split(",") if s] or [s.name for s in STAGES]
    sizes = [int(u) for u in args.users.split(",")]
    kills = {k.split(":")[0]: float(k.split(":")[1]) for k in args.kill}
    for users in sizes:
        results = report["worlds"].setdefault(str(users), {})
        port = args.port + sizes.index(users)
        folder, sample = world(users, args, out, results, port)
        report_file.write_text(json.dumps(report, indent=2))
        print(f"{users:,} users: sample {sample['wall_s']} s", flush=True)
        server = serve(folder, port) if args.images else None
        lake = out / f"lake-{users}"
        over = [
            *([] if args.images else ["images.allow_hosts=[]"]),
            f"lake.root={lake}",
            f"input.dumps={folder / 'dumps'}",
            f"report.ground_truth={folder / 'ground_truth'}",
            *BUDGET,
            *args.set,
        ]
        try:
            for name in names:
                if name in results and not results[name]["rc"]:
                    continue  # measured (a failed stage is run again)
                cmd = [*ZIPP, "run", name, "-c", "conf/local.yaml", *over]
                stage = next(s for s in STAGES if s.name == name)
                resume = None
                if name in kills:
                    log = out / f"{name}-{users}-killed.log"
                    if killed(cmd, log, kills[name]):
                        resume = {"killed_after_s": kills[name], "row_log": row_log(lake, name)}
                got = measured(cmd, out / f"{name}-{users}.log")
                got["rows"] = {t: Lake(str(lake)).rows(t) for t in stage.outputs}
                if resume:
                    got["resumed"] = resume | {"outputs": unique_rows(lake, stage.outputs)}
                results[name] = got
                report_file.write_text(json.dumps(report, indent=2))
                print(
                    f"  {name:<12} rc {got['rc']} wall {got['wall_s']:>8} s  CPU "
                    f"{got['cpu_s']:>8} s  peak RSS {got['peak_rss_gib_by_kind']}  rows "
                    f"{got['rows']}",
                    flush=True,
                )
                if resume:
                    print(f"  {name:<12} killed, then resumed: {got['resumed']}", flush=True)
                if got["rc"]:
                    print(f"  {name} failed: see {out / f'{name}-{users}.log'}", flush=True)
                    break
        finally:
            if server:
                server.terminate()
    if len(sizes) >= 2:
        lo, hi = str(sizes[0]), str(sizes[-1])
        growth = {}
        for name in names:
            a, b = report["worlds"][lo].get(name), report["worlds"][hi].get(name)
            if a and b and not a["rc"] and not b["rc"]:
                growth[name] = {
                    "cpu": exponent(a["cpu_s"], b["cpu_s"], sizes[0], sizes[-1]),
                    "wall": exponent(a["wall_s"], b["wall_s"], sizes[0], sizes[-1]),
                }
        report["growth"] = growth
        report_file.write_text(json.dumps(report, indent=2))
        for name, g in growth.items():
            flag = "" if g["cpu"] is None or g["cpu"] <= 1.15 else "  ABOVE 1.15"
            print(
                f"growth {sizes[0]:,} -> {sizes[-1]:,}: {name:<12} CPU {g['cpu']} wall "
                f"{g['wall']}{flag}"
            )


if __name__ == "__main__":
    main()
