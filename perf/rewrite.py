"""Rewrite fan-out throughput against an OpenAI-compatible server with 200 ms latency.

Starts the local chat-completions server (`tests/llm_server.py`, a separate process,
--latency 0.2 s per call), then sends N rewrite requests through the product path:
`llm.fanout.fan_out` -> Ray actor(s) -> the `openai` backend (aiohttp, bounded
concurrency, retries) -> validation -> rows logged to a RowLog. Bar: >= 80% of the ideal
concurrency / latency = 320 rewrites/s at concurrency 64.

Peer in the same run: a bare asyncio + aiohttp loop with a 64-slot semaphore posting the
same requests to the same server (what any client at that concurrency can reach).

    .venv/bin/python perf/rewrite.py [--requests 9600 --concurrency 64 --latency 0.2
        --actors 1 --batch-size 32]

Figures go to stdout and perf/out/rewrite.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUT = Path(__file__).parent / "out"


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.llm_server", "--latency", str(latency)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    url = proc.stdout.readline().strip()
    if not url.startswith("http"):
        proc.kill()
        raise SystemExit(f"server did not start: {url!r}")
    return proc, url


def requests(n: int, runtime):
    from generation.rewrite import RewriteJob, rewrite_request

    return [
        rewrite_request(
            RewriteJob(i % 1000, f"p{i}", "none", f"a quiet street at dusk, take {i}"),
            None,
            "openai:perf",
            runtime,
        )
        for i in range(n)
    ]


async def bare_loop(url: str, reqs, concurrency: int) -> float:
    """The peer: plain aiohttp with a semaphore, no validation, no Ray, no logging."""
    import aiohttp

    gate = asyncio.Semaphore(concurrency)
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn) as session:

        async def one(r) -> None:
            async with gate:
                body = {"model": "perf", "messages": r.messages, "max_tokens": 64}
                async with session.post(url + "/chat/completions", json=body) as resp:
                    await resp.json()

        t0 = time.perf_counter()
        await asyncio.gather(*(one(r) for r in reqs))
        return time.perf_counter() - t0


def product(url: str, reqs, runtime, actors: int) -> tuple[float, float, dict]:
    """The product path: fan_out over Ray actors into a RowLog. Returns seconds end to
    end (actor start-up included), the steady rate between the first and the last
    finished batch, and rows by status."""
    import pyarrow as pa

    from generation.rewrite import REPLY_PARSERS
    from llm.config import LLMSpec
    from llm.fanout import fan_out
    from llm.llm_stage import call_columns
    from schemas.bench import REWRITES
    from storage.lake import Lake, RowLog

    spec = LLMSpec(backend="openai", model="perf", base_url=url)
    with tempfile.TemporaryDirectory() as tmp:
        log = RowLog(Lake(tmp), "perf", "bench/rewrites")

        def to_row(req, res) -> dict:
            return {
                "rewrite_id": req.id,
                "user_id": 0,
                "prompt_id": "p",
                "method": "none",
                "base_prompt": req.inputs["prompt"],
                "prompt": res["output"],
                "negative_prompt": None,
                "examples": [],
            } | call_columns(spec, "perf", res)

        marks: list[tuple[float, int]] = []  # (time, rows so far) at each finished batch

        def progress(n: int, _status) -> None:
            marks.append((time.perf_counter(), (marks[-1][1] if marks else 0) + n))

        t0 = time.perf_counter()
        status = fan_out(
            reqs,
            spec.model_dump(),
            runtime,
            actors,
            None,
            "all-MiniLM-L6-v2 (packaged)",
            to_row,
            lambda rows: log.append(pa.Table.from_pylist(rows, schema=REWRITES)),
            REPLY_PARSERS,
            progress,
        )
        seconds = time.perf_counter() - t0
        (t_first, n_first), (t_last, n_last) = marks[0], marks[-1]
        steady = (n_last - n_first) / (t_last - t_first)
        rows: pa.Table = log.read()
        assert rows.num_rows == len(reqs), (rows.num_rows, len(reqs))
        assert len(set(rows["request_id"].to_pylist())) == len(reqs)
    return seconds, steady, dict(status)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=9600)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--actors", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()

    from engines.ray import ray_session
    from llm import Runtime

    runtime = Runtime(concurrency=args.concurrency, batch_size=args.batch_size, timeout_s=30)
    reqs = requests(args.requests, runtime)
    ideal = args.concurrency / args.latency
    proc, url = start_server(args.latency)
    try:
        ray_session(None, None)
        peer_s = asyncio.run(bare_loop(url, reqs, args.concurrency))
        ours_s, steady, status = product(url, reqs, runtime, args.actors)
    finally:
        proc.kill()
    ours, peer = args.requests / ours_s, args.requests / peer_s
    result = {
        "requests": args.requests,
        "concurrency": args.concurrency,
        "latency_s": args.latency,
        "actors": args.actors,
        "batch_size": args.batch_size,
        "ideal_per_s": ideal,
        "product_per_s": round(ours, 1),
        "product_steady_per_s": round(steady, 1),
        "bare_aiohttp_per_s": round(peer, 1),
        "product_vs_ideal": round(ours / ideal, 3),
        "product_vs_bare": round(ours / peer, 3),
        "status": status,
    }
    print(
        f"rewrites/s at concurrency {args.concurrency}, {args.latency * 1000:.0f} ms per call: "
        f"product {ours:.0f}/s end to end (actor start-up included) = {ours / ideal:.0%} of "
        f"ideal {ideal:.0f}/s (bar 80%), {steady:.0f}/s = {steady / ideal:.0%} steady state; "
        f"bare aiohttp loop {peer:.0f}/s; product/bare {ours / peer:.2f}x"
    )
    OUT.mkdir(exist_ok=True)
    (OUT / "rewrite.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
