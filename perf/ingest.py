"""Ingest efficiency: `zipp ingest` (.zst -> bronze Parquet) per CPU-second, against two
peers measured in the same run, and its scaling from one core to two.

CPU is what the kernel charges to a fresh cpuacct cgroup (v1) holding the command's whole
process tree: driver, JVM, Python workers, threads. Steady state = the run on the big
file minus the run on a 1,000-line file (session start-up, JVM warm-up).

Peers:
* loop: the popular dump scripts' reader -- zstd stream, split lines, `json.loads` each,
  nothing written;
* native: one core, zstd stream -> polars NDJSON with the bronze comment fields as schema
  -> pyarrow ParquetWriter (snappy, as bronze), nothing else (no lineage, no checks).

Scaling: wall time of `zipp ingest` on the big file pinned to one core (`taskset`, Spark
`local[1]`) over its wall time on two (`local[2]`), both minus their start-up runs.

    .venv/bin/python perf/ingest.py [--lines 2000000] [--files 1]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from statistics import median

import zstandard

OUT = Path(__file__).parent / "out"
WORDS = [
    "the",
    "a",
    "photo",
    "film",
    "light",
    "shot",
    "lens",
    "colour",
    "grain",
    "print",
    "scan",
    "this",
    "that",
    "really",
    "love",
    "great",
    "looks",
    "like",
    "would",
    "could",
    "think",
    "people",
    "time",
    "first",
    "year",
    "never",
    "always",
]


def comment_2021(i: int, rng: random.Random, bodies: list[str]) -> dict:
    """A comment with the full 2021 Pushshift field set."""
    return {
        "all_awardings": [],
        "archived": False,
        "associated_award": None,
        "author": f"user_{rng.randrange(200_000)}",
        "author_flair_background_color": None,
        "author_flair_css_class": None,
        "author_flair_richtext": [],
        "author_flair_template_id": None,
        "author_flair_text": None,
        "author_flair_text_color": None,
        "author_flair_type": "text",
        "author_fullname": f"t2_{rng.randrange(36**6):x}",
        "author_patreon_flair": False,
        "author_premium": rng.random() < 0.05,
        "awarders": [],
        "body": bodies[i % len(bodies)],
        "body_sha1": f"{rng.getrandbits(160):040x}",
        "can_gild": True,
        "collapsed": False,
        "collapsed_because_crowd_control": None,
        "collapsed_reason": None,
        "collapsed_reason_code": None,
        "comment_type": None,
        "controversiality": 0,
        "created_utc": 1622505600 + i,
        "distinguished": None,
        "edited": False if rng.random() < 0.95 else float(1622505600 + i + 300),
        "gilded": 0,
        "gildings": {},
        "id": f"h{i:07x}",
        "is_submitter": False,
        "link_id": f"t3_n{rng.randrange(36**5):x}",
        "locked": False,
        "no_follow": True,
        "parent_id": f"t3_n{rng.randrange(36**5):x}",
        "permalink": f"/r/sub{rng.randrange(40000)}/comments/n{i:x}/some_post_title/h{i:07x}/",
        "retrieved_on": 1623000000,
        "score": rng.randrange(-5, 500),
        "score_hidden": False,
        "send_replies": True,
        "stickied": False,
        "subreddit": f"sub{rng.randrange(40000)}",
        "subreddit_id": f"t5_{rng.randrange(36**5):x}",
        "subreddit_name_prefixed": "r/sub",
        "subreddit_type": "public",
        "top_awarded_type": None,
        "total_awards_received": 0,
        "treatment_tags": [],
        "unrepliable_reason": None,
    }


def make_dump(path: Path, lines: int, seed: int = 0) -> None:
    if path.exists():
        return
    rng = random.Random(seed)
    bodies = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 50))) for _ in range(4096)]
    cctx = zstandard.ZstdCompressor(level=3)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f, cctx.stream_writer(f) as w:
        buf = io.BytesIO()
        for i in range(lines):
            buf.write(json.dumps(comment_2021(i, rng, bodies), separators=(",", ":")).encode())
            buf.write(b"\n")
            if buf.tell() > 1 << 24:
                w.write(buf.getvalue())
                buf = io.BytesIO()
        w.write(buf.getvalue())
    tmp.rename(path)


CGROUP = Path("/sys/fs/cgroup/cpuacct")


@dataclass
class Run:
    wall: float
    cpu: float


def measured(cmd: list[str], cores: str | None = None, env: dict | None = None) -> Run:
    """Run `cmd` in a fresh cpuacct cgroup (optionally pinned to `cores`); wall and the
    CPU seconds of its whole process tree."""
    if not os.access(CGROUP, os.W_OK):
        raise SystemExit(f"perf/ingest.py needs a writable cgroup v1 cpuacct at {CGROUP} (root)")
    group = CGROUP / f"zipp-perf-{uuid.uuid4().hex[:8]}"
    group.mkdir()
    pin = ["taskset", "-c", cores] if cores else []
    enter = f'echo $$ > {group}/cgroup.procs && exec "$@"'
    try:
        t = time.perf_counter()
        subprocess.run(
            ["sh", "-c", enter, "sh", *pin, *cmd],
            check=True,
            stdout=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
        )
        wall = time.perf_counter() - t
        return Run(wall, int((group / "cpuacct.usage").read_text()) / 1e9)
    finally:
        for _ in range(100):  # the last processes may take a moment to leave the group
            try:
                group.rmdir()
                break
            except OSError:
                time.sleep(0.05)


def _python(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", code, *args]


LOOP = """
import json, sys, zstandard
n = 0
with open(sys.argv[1], "rb") as f:
    reader = zstandard.ZstdDecompressor(max_window_size=2**31).stream_reader(f)
    buffer = ""
    while chunk := reader.read(2**27):
        lines = (buffer + chunk.decode()).split("\\n")
        for line in lines[:-1]:
            json.loads(line)
            n += 1
        buffer = lines[-1]
"""

NATIVE = """
import io, sys, zstandard, polars as pl, pyarrow.parquet as pq
from pipelines.records import _POLARS
from schemas.reddit import COMMENT_FIELDS
schema = {n: _POLARS[t] for n, t in COMMENT_FIELDS.items()}
schema["edited"] = pl.String
writer, pending = None, b""
with open(sys.argv[1], "rb") as f:
    reader = zstandard.ZstdDecompressor(max_window_size=2**31).stream_reader(f)
    while data := reader.read(16 << 20):
        buf = pending + data
        cut = buf.rfind(b"\\n") + 1
        pending = buf[cut:]
        table = pl.read_ndjson(io.BytesIO(buf[:cut]), schema=schema).to_arrow()
        writer = writer or pq.ParquetWriter(sys.argv[2], table.schema, compression="snappy")
        writer.write_table(table)
writer.close()
"""


def peer(code: str, big: Path, tiny: Path) -> float:
    """Steady-state CPU-seconds of a one-core peer script (big file minus tiny file)."""
    out = OUT / "peer.parquet"
    env = {"POLARS_MAX_THREADS": "1", "PYTHONPATH": str(Path(__file__).parent.parent)}
    runs = [measured(_python(code, str(p), str(out)), "0", env) for p in (big, tiny)]
    return round(runs[0].cpu - runs[1].cpu, 2)


def ours(files: list[Path], lake: Path, cores: int) -> Run:
    """`zipp ingest` of `files` into a fresh lake on `cores` cores (pinned, local[cores])."""
    shutil.rmtree(lake, ignore_errors=True)
    dumps = lake.parent / f"{lake.name}-dumps"
    shutil.rmtree(dumps, ignore_errors=True)
    dumps.mkdir(parents=True)
    for i, path in enumerate(files):
        name = path.name if len(files) == 1 else path.name.replace("2021-06", f"2021-{i + 1:02d}")
        os.link(path, dumps / name)
    zipp = Path(sys.executable).parent / "zipp"
    cmd = [str(zipp), "ingest", "--dumps", str(dumps), "--lake", str(lake)]
    cmd += ["ingest.blocklist=null", f"spark.master=local[{cores}]"]
    run = measured(cmd, ",".join(str(c) for c in range(cores)))
    shutil.rmtree(dumps, ignore_errors=True)
    return run


def peak_rss(lake: Path) -> int:
    """The largest peak RSS a task reported (the ingest journal's ledger rows)."""
    journal = lake / "_manifests" / "ingest.journal.jsonl"
    rows = [r for line in journal.read_text().splitlines() for r in json.loads(line)["ledger"]]
    return max(r["peak_rss_bytes"] for r in rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=2_000_000)
    ap.add_argument("--files", type=int, default=1, help="copies of the big file ingested")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved rounds (medians)")
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    big = OUT / f"RC_2021-06_{args.lines}_v2.zst"
    tiny = OUT / "RC_2021-06_tiny.zst"
    print(f"building dumps ({args.lines:,} lines) ...", flush=True)
    make_dump(big, args.lines)
    make_dump(tiny, 1000, seed=1)
    with open(big, "rb") as f:
        reader = zstandard.ZstdDecompressor(max_window_size=2**31).stream_reader(f)
        raw = sum(len(c) for c in iter(lambda: reader.read(1 << 24), b""))
    print(
        f"dump: {big.stat().st_size / 1e6:.0f} MB compressed, {raw / 1e9:.2f} GB raw, "
        f"{raw / args.lines:.0f} bytes/line",
        flush=True,
    )
    cores = min(2, os.cpu_count() or 1)
    steady = args.lines - 1000
    n = steady * args.files
    # repeated and interleaved, medians: this machine's speed drifts by 20% between runs
    loop_cpu, native_cpu, starts, runs = [], [], [], []
    for rep in range(args.repeats):
        print(f"round {rep + 1}/{args.repeats} ...", flush=True)
        loop_cpu.append(peer(LOOP, big, tiny))
        native_cpu.append(peer(NATIVE, big, tiny))
        starts.append(ours([tiny], OUT / "lake-tiny", cores))
        runs.append(ours([big] * args.files, OUT / "lake-big", cores))
    rss = peak_rss(OUT / "lake-big")
    # the start-up run (a JVM booting: ~15 CPU-s) varies by seconds: medians of each
    ours_cpu = median(r.cpu for r in runs) - median(r.cpu for r in starts)
    ours_wall = median(r.wall for r in runs) - median(r.wall for r in starts)
    start_1 = ours([tiny], OUT / "lake-tiny", 1)
    run_1 = ours([big] * args.files, OUT / "lake-big", 1)
    loop, native = steady / median(loop_cpu), steady / median(native_cpu)
    rate = n / ours_cpu
    print(f"loop   (zstd + json.loads, 1 core):         {loop:9,.0f} records per CPU-second")
    print(f"native (zstd + polars + pyarrow, 1 core):   {native:9,.0f} records per CPU-second")
    print(
        f"zipp ingest on {cores} cores:                  {rate:9,.0f} records per CPU-second "
        f"(whole process tree, start-up run subtracted)"
    )
    # ratios within a round (the peers ran minutes before ours) cancel the drift best
    steadies = [r.cpu - s.cpu for r, s in zip(runs, starts, strict=True)]
    by_loop = [lc / o * args.files for lc, o in zip(loop_cpu, steadies, strict=True)]
    by_native = [nc / o * args.files for nc, o in zip(native_cpu, steadies, strict=True)]
    print(
        f"ratio vs loop:   {rate / loop:.2f}x of the medians, {median(by_loop):.2f}x median of "
        f"rounds {[round(x, 2) for x in by_loop]} (bar 1.0x)"
    )
    print(
        f"ratio vs native: {rate / native:.2f}x of the medians, {median(by_native):.2f}x median "
        f"of rounds {[round(x, 2) for x in by_native]} (bar 0.8x)"
    )
    wall_1, wall_n = run_1.wall - start_1.wall, ours_wall
    print(
        f"scaling, {args.files} file(s): 1 core {wall_1:.1f}s, {cores} cores {wall_n:.1f}s "
        f"(start-up runs subtracted) -> {wall_1 / wall_n:.2f}x (bar 1.6x)"
    )
    print(
        f"peak RSS per task (task process + its parsing workers): {rss / 2**30:.2f} GiB (bar 2 GiB)"
    )
    print(f"steady state: {n / wall_n:,.0f} records/s wall on {cores} cores")
    print(
        f"CPU-s per round: loop {loop_cpu}, native {native_cpu}, ours big "
        f"{[round(r.cpu, 1) for r in runs]} start-up {[round(r.cpu, 1) for r in starts]}"
    )


if __name__ == "__main__":
    main()
