"""Graph build scaling and image fetch+embed throughput.

Graph build: sample worlds of 20k and 200k users (ingested first, not timed) -> the
`graph` stage. Prints wall time, peak resident memory of the job's process tree, bytes
per edge of silver/edges, and the growth exponent of time from 20k to 200k users
(bar: <= 1.1). Peer in the same run: the edge aggregation alone done in one process with
pyarrow's group_by over the same bronze tables.

Image fetch + embed: the `images` stage's Ray Data pipeline against a local HTTP server,
images/s; peer in the same run: a sequential urllib + colour-features loop.

    .venv/bin/python perf/graph.py [--small 20000 --large 200000 --images 2000]
"""

from __future__ import annotations

import argparse
import http.server
import math
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from media.image_features import colour_features  # noqa: E402
from storage.lake import Lake, data_files  # noqa: E402

OUT = Path(__file__).parent / "out"
ZIPP = str(Path(sys.executable).parent / "zipp")


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(stat[1]), []).append(int(d))
            rss[int(d)] = int(stat[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo += children.get(p, [])
    return total


def timed(cmd: list[str]) -> tuple[float, int]:
    """Wall seconds and peak tree RSS of a command."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss(proc.pid))
        time.sleep(0.2)
    if proc.returncode:
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return time.perf_counter() - t, peak


def world(users: int) -> tuple[Path, list[str]]:
    root = OUT / f"graph-{users}"
    dumps = root / "world" / "dumps"
    if not dumps.exists():
        subprocess.run(
            [
                ZIPP,
                "sample",
                "--out",
                str(root / "world"),
                "--users",
                str(users),
                "--no-images",
                "--corrupt-lines",
                "0",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    conf = [f"input.dumps={dumps}", f"lake.root={root / 'lake'}", "ingest.blocklist=null"]
    subprocess.run(
        [ZIPP, "run", "ingest", "-c", "conf/local.yaml", *conf],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return root, conf


def peer_edges(lake: Lake) -> float:
    """Seconds for the edge aggregation alone in one process (pyarrow group_by)."""
    t = time.perf_counter()
    parts = []
    for name in ("bronze/submissions", "bronze/comments"):
        tab = lake.read(name).select(["author", "subreddit", "score", "created_utc"])
        parts.append(tab)
    tab = pa.concat_tables(parts)
    tab = tab.filter(pc.invert(pc.is_in(tab["author"], pa.array(["[deleted]"]))))
    tab.group_by(["author", "subreddit"]).aggregate(
        [("score", "sum"), ("created_utc", "min"), ("created_utc", "max"), ("score", "count")]
    )
    return time.perf_counter() - t


def graph_bench(users: int) -> dict:
    root, conf = world(users)
    seconds, peak = timed([ZIPP, "run", "graph", "--force", "-c", "conf/local.yaml", *conf])
    lake = Lake(root / "lake")
    edges = lake.rows("silver/edges")
    size = sum(f.stat().st_size for f in data_files(lake.path("silver/edges")))
    records = lake.rows("bronze/submissions") + lake.rows("bronze/comments")
    return {
        "users": users,
        "records": records,
        "seconds": seconds,
        "peak": peak,
        "edges": edges,
        "bytes_per_edge": size / max(edges, 1),
        "peer": peer_edges(lake),
    }


def image_bench(n: int) -> None:
    import numpy as np

    from engines.ray import ray_session
    from media.image_embed import fetch_and_embed
    from world.images import render_png

    rng = np.random.default_rng(0)
    pngs = [render_png(rng.uniform(0, 1, 6), rng, 64) for _ in range(64)]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = pngs[int(self.path.strip("/").split(".")[0]) % len(pngs)]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    urls = [f"{base}/{i}.png" for i in range(n)]
    t = time.perf_counter()
    for u in urls[: n // 4]:
        with urllib.request.urlopen(u) as r:
            colour_features(r.read())
    peer = (n // 4) / (time.perf_counter() - t)
    ray_session(num_cpus=os.cpu_count())
    table = pa.table(
        {
            "user_id": pa.array([i % 100 for i in range(n)], pa.int32()),
            "post_id": [str(i) for i in range(n)],
            "position": pa.array([0] * n, pa.int32()),
            "image_url": urls,
        }
    )
    fetch_and_embed(table.slice(0, 64), ("127.0.0.1",), fetch_tasks=2)  # warm up actors
    t = time.perf_counter()
    out = fetch_and_embed(table, ("127.0.0.1",), fetch_tasks=2)
    ours = n / (time.perf_counter() - t)
    ok = pc.sum(pc.equal(out["status"], "ok")).as_py()
    print(
        f"image fetch+embed: {ours:,.0f} images/s ({ok}/{n} ok) vs sequential urllib loop "
        f"{peer:,.0f}/s -> ratio {ours / peer:.2f}x"
    )
    httpd.shutdown()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", type=int, default=20_000)
    ap.add_argument("--large", type=int, default=200_000)
    ap.add_argument("--images", type=int, default=2000)
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    runs = [graph_bench(args.small), graph_bench(args.large)]
    for r in runs:
        print(
            f"graph build {r['users']:>7,} users, {r['records']:>9,} records: "
            f"{r['seconds']:6.1f}s, peak RSS {r['peak'] / 2**30:.2f} GiB, "
            f"{r['edges']:,} edges, {r['bytes_per_edge']:.1f} B/edge on disk; "
            f"peer edge aggregation (pyarrow, 1 process) {r['peer']:.1f}s"
        )
    a, b = runs
    exponent = math.log(b["seconds"] / a["seconds"]) / math.log(b["users"] / a["users"])
    print(
        f"growth exponent of graph-build time, {a['users']:,} -> {b['users']:,} users: "
        f"{exponent:.2f} (bar <= 1.1)"
    )
    print(
        f"ratio vs peer at {b['users']:,} users: {b['peer'] / b['seconds']:.2f}x "
        "(peer does only the edge aggregation)"
    )
    image_bench(args.images)
    shutil.rmtree(OUT / "lake-img", ignore_errors=True)


if __name__ == "__main__":
    main()
