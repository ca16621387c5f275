"""Ingest throughput: `zipp ingest` (.zst -> bronze Parquet) vs the popular dump scripts.

Peer, measured in the same run: one process streaming the decompressed file through
`json.loads`, nothing written (the approach of the widely used Pushshift dump scripts).
Ours: the real `zipp ingest` command on the same file; its run on a tiny file is
subtracted to remove session start-up. Both figures are records/s per core: ours divides
by the cores Spark was given (local[*] = every core here), the peer uses one core.

    .venv/bin/python perf/ingest.py [--lines 2000000]
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
from pathlib import Path

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


def peer(path: Path) -> tuple[int, float]:
    """The popular scripts: stream-decompress, split lines, json.loads each."""
    t = time.perf_counter()
    n = 0
    with open(path, "rb") as f:
        reader = zstandard.ZstdDecompressor(max_window_size=2**31).stream_reader(f)
        buffer = ""
        while chunk := reader.read(2**27):
            lines = (buffer + chunk.decode()).split("\n")
            for line in lines[:-1]:
                json.loads(line)
                n += 1
            buffer = lines[-1]
    return n, time.perf_counter() - t


def reader_only(path: Path) -> float:
    """Seconds for the data source's read path alone: decompress, parse, type (no Spark)."""
    from pipelines.reddit_source import read_dump_file

    t = time.perf_counter()
    for _ in read_dump_file(str(path), "comments", frozenset(), None):
        pass
    return time.perf_counter() - t


def ours(path: Path, lake: Path) -> float:
    """Wall seconds of `zipp ingest` on one file into a fresh lake."""
    shutil.rmtree(lake, ignore_errors=True)
    dumps = lake.parent / f"{lake.name}-dumps"
    shutil.rmtree(dumps, ignore_errors=True)
    dumps.mkdir(parents=True)
    os.link(path, dumps / path.name)
    zipp = Path(sys.executable).parent / "zipp"
    t = time.perf_counter()
    subprocess.run(
        [str(zipp), "ingest", "--dumps", str(dumps), "--lake", str(lake), "ingest.blocklist=null"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - t
    return wall


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=2_000_000)
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
    cores = os.cpu_count() or 1
    n, peer_s = peer(big)
    peer_rate = n / peer_s
    print(f"peer  json.loads stream: {peer_rate:,.0f} records/s on 1 core ({peer_s:.1f}s)")
    tiny_wall = ours(tiny, OUT / "lake-tiny")
    big_wall = ours(big, OUT / "lake-big")
    steady = (args.lines - 1000) / (big_wall - tiny_wall)
    per_core = steady / cores
    print(
        f"zipp ingest: {steady:,.0f} records/s steady state on {cores} cores "
        f"({big_wall:.1f}s - {tiny_wall:.1f}s start-up run)"
    )
    reader_s = reader_only(big)
    print(
        f"breakdown: read path alone (zstd + polars + typing, no Spark) "
        f"{args.lines / reader_s:,.0f} records/s in one process ({reader_s:.1f}s)"
    )
    print(
        f"per core (wall x cores):   ours {per_core:,.0f}/s vs peer {peer_rate:,.0f}/s "
        f"-> ratio {per_core / peer_rate:.2f}x (bar 2.0x)"
    )


if __name__ == "__main__":
    main()
