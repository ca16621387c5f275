"""Load test of the persona service (`zipp serve`), loopback only, bounded in count and
time: requests/s and p50/p99 latency at `--clients` concurrent clients (aiohttp)
against the same engine function called in-process in a loop on the same inputs, for

* cold-start personas (`POST /v1/personas` vs `PersonaEngine.persona` in a loop on one
  worker thread, as the service calls the serial engine), template LLM;
* rewrites (`POST /v1/rewrite` vs `EndpointRewriter.rewrite` awaited by `--clients`
  concurrent tasks on one event loop, as the service awaits it; zero_shot) through a
  local OpenAI-compatible server (`tests/llm_server.py`, started here in a process of its
  own, `--llm-latency` seconds per reply; several latencies comma-separated).

The service runs as `zipp serve` in a subprocess (`--set key=value` overrides it alone).
Both sides use the service's torch threads (`serve.torch_threads`). Rounds alternate
in-process and service on slices of the same inputs, so both see the machine's load
alike. CPU seconds count the whole process tree: this process (clients, or the
in-process peer), the server, the LLM server. Bar (issue 24): service/in-process
throughput >= 0.7 at 16 clients.

    .venv/bin/python perf/serve.py --lake lake [--requests 400] [--clients 16] \
        [--rounds 4] [--cap-s 60] [--llm-latency 0,0.05] [-c conf/local.yaml] [--set k=v]

Figures go to stdout and perf/out/serve.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUT = Path(__file__).parent / "out"
BAR = 0.7
PROMPTS = ("a lighthouse at dawn", "a bowl of ramen", "a city street in rain", "a mountain lake")


def cpu_seconds(pids: dict[str, int]) -> Counter:
    """User + system CPU seconds of each named process and its live children (a named
    process's tree is counted under its own name only, not its parent's)."""
    import psutil

    named = set(pids.values())
    total: Counter = Counter()
    for name, pid in pids.items():
        try:
            tree, todo = [], [psutil.Process(pid)]
            while todo:
                p = todo.pop()
                tree.append(p)
                todo += [c for c in p.children() if c.pid not in named]
            for p in tree:
                t = p.cpu_times()
                total[name] += t.user + t.system
        except psutil.NoSuchProcess:
            continue
    return total


@dataclass
class Run:
    """What a measured run saw (runs add up: rounds alternate in-process and service)."""

    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    cpu: Counter = field(default_factory=Counter)  # process name -> CPU seconds
    statuses: Counter = field(default_factory=Counter)

    def __add__(self, other: Run) -> Run:
        return Run(
            self.latencies + other.latencies,
            self.seconds + other.seconds,
            self.cpu + other.cpu,
            self.statuses + other.statuses,
        )

    def stats(self) -> dict:
        import numpy as np

        lat = np.asarray(self.latencies) * 1000
        n = len(self.latencies)
        return {
            "requests": n,
            "ok": self.statuses.get(200, 0),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "seconds": round(self.seconds, 3),
            "rps": round(n / self.seconds, 1) if self.seconds else 0.0,
            "p50_ms": round(float(np.percentile(lat, 50)), 2) if n else None,
            "p99_ms": round(float(np.percentile(lat, 99)), 2) if n else None,
            "cpu_ms_per_request": round(sum(self.cpu.values()) / n * 1000, 2) if n else None,
            "cpu_ms_per_request_by_process": {
                k: round(v / n * 1000, 2) for k, v in sorted(self.cpu.items()) if n
            },
        }


def in_process(fn, inputs: list, cap_s: float, pids: dict[str, int]) -> Run:
    """`fn(x)` for each input in a loop, at most `cap_s`, in one worker thread as the
    service calls it (torch's OpenMP threads make main-thread calls many times slower on
    a busy machine); CPU of `pids`' process trees."""
    from concurrent.futures import ThreadPoolExecutor

    def loop() -> Run:
        run = Run()
        cpu0, t0 = cpu_seconds(pids), time.perf_counter()
        for x in inputs:
            if time.perf_counter() - t0 > cap_s:
                break
            t = time.perf_counter()
            fn(x)
            run.latencies.append(time.perf_counter() - t)
        run.seconds = time.perf_counter() - t0
        run.cpu = cpu_seconds(pids) - cpu0
        run.statuses[200] = len(run.latencies)
        return run

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(loop).result()


def in_process_async(make, inputs: list, clients: int, cap_s: float, pids: dict[str, int]):
    """`await fn(x)` for each input from `clients` concurrent tasks on one event loop, at
    most `cap_s`: the in-process peer of a service route that awaits (`make()`, called
    in the loop, returns `(fn, aclose)`); CPU of `pids`' process trees."""

    async def go() -> Run:
        fn, aclose = make()
        run, todo = Run(), iter(inputs)
        deadline = time.perf_counter() + cap_s

        async def worker() -> None:
            for x in todo:
                if time.perf_counter() > deadline:
                    return
                t = time.perf_counter()
                await fn(x)
                run.latencies.append(time.perf_counter() - t)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        run.seconds = time.perf_counter() - t0
        await aclose()
        run.statuses[200] = len(run.latencies)
        return run

    cpu0 = cpu_seconds(pids)
    run = asyncio.run(go())
    run.cpu = cpu_seconds(pids) - cpu0
    return run


async def _load(url: str, token: str, path: str, bodies: list, clients: int, cap_s: float):
    """`clients` concurrent clients on keep-alive connections (aiohttp: a load generator
    should cost the machine little, and httpx's client cost 2 ms of CPU per request)."""
    import aiohttp

    run = Run()
    headers = {"Authorization": f"Bearer {token}"}
    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(
        url, headers=headers, connector=connector, timeout=timeout
    ) as client:
        todo = iter(bodies)
        deadline = time.perf_counter() + cap_s

        async def worker() -> None:
            for body in todo:  # one iterator shared by the workers
                if time.perf_counter() > deadline:
                    return
                t = time.perf_counter()
                async with client.post(path, json=body) as r:
                    await r.read()
                run.latencies.append(time.perf_counter() - t)
                run.statuses[r.status] += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        run.seconds = time.perf_counter() - t0
    return run


def over_http(
    server, path: str, bodies: list, clients: int, cap_s: float, pids: dict[str, int]
) -> Run:
    """The bodies posted by `clients` concurrent clients; CPU of `pids`' process trees."""
    cpu0 = cpu_seconds(pids)
    run = asyncio.run(_load(server.url, server.token, path, bodies, clients, cap_s))
    run.cpu = cpu_seconds(pids) - cpu0
    return run


def alternate(local, served, inputs: list, bodies: list, rounds: int) -> tuple[Run, Run]:
    """`rounds` pairs of runs (in-process on a slice of the inputs, then the service on
    the same slice), summed: both sides see the machine's load alike."""
    a, b = Run(), Run()
    step = -(-len(inputs) // rounds)
    for i in range(0, len(inputs), step):
        a = a + local(inputs[i : i + step])
        b = b + served(bodies[i : i + step])
    return a, b


class Server:
    """`zipp serve` in a subprocess on a free loopback port (its log in perf/out/)."""

    def __init__(self, config: str, overrides: list[str], log: Path):
        self.token = secrets.token_urlsafe(24)
        env = os.environ | {"ZIPP_SERVE_TOKENS": self.token}
        args = [
            *overrides,
            "serve.host=127.0.0.1",
            "serve.port=0",
            "serve.rate_per_s=1000000",  # the load test measures the service, not the limit
            "serve.burst=1000000",
            "serve.log_level=warning",
        ]
        self.log = log
        with log.open("w") as f:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jobs.cli", "serve", "-c", config, *args],
                cwd=ROOT,
                env=env,
                stdout=f,
                stderr=subprocess.STDOUT,
            )
        self.url = self._wait()

    def _wait(self, timeout: float = 180) -> str:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(r"serving on (http://127\.0\.0\.1:\d+)", self.log.read_text())
            try:
                if found and httpx.get(found.group(1) + "/healthz").status_code == 200:
                    return found.group(1)
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"zipp serve did not start:\n{self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def persona_inputs(engine, n: int, seed: int = 0) -> list[dict]:
    """`n` new users: 2-6 of the lake's subreddits each, one comment in the first."""
    import numpy as np

    rng = np.random.default_rng(seed)
    names = engine.subreddits["subreddit"].to_pylist()
    out = []
    for i in range(n):
        subs = [names[j] for j in rng.choice(len(names), int(rng.integers(2, 7)), replace=False)]
        text = f"made a thing for r/{subs[0]} today, number {i}, pretty happy with it"
        out.append({"subreddits": subs, "comments": [{"subreddit": subs[0], "text": text}]})
    return out


def rewrite_inputs(lake: str, fmt: str, n: int) -> list[dict]:
    """`n` (persona, prompt) pairs: the lake's done personas, prompts numbered."""
    import pyarrow.compute as pc

    from service.lake_personas import FIELDS
    from storage.lake import Lake

    personas = Lake(lake, fmt).read("gold/personas")
    rows = personas.filter(pc.equal(personas["status"], "done")).slice(0, 64).to_pylist()
    keep = [f for f in FIELDS if f != "llm"]
    return [
        {
            "persona": {k: rows[i % len(rows)][k] for k in keep},
            "prompt": f"{PROMPTS[i % len(PROMPTS)]}, view {i}",
            "method": "zero_shot",
        }
        for i in range(n)
    ]


def compare(name: str, local: Run, served: Run, clients: int) -> dict:
    mine, theirs = local.stats(), served.stats()
    ratio = theirs["rps"] / mine["rps"] if mine["rps"] else 0.0
    ok = ratio >= BAR and theirs["ok"] == theirs["requests"]
    print(
        f"{name:<26} in-process {mine['rps']:>6.1f} req/s (p50 {mine['p50_ms']} ms, p99 "
        f"{mine['p99_ms']} ms) | service, {clients} clients: {theirs['rps']:>6.1f} req/s (p50 "
        f"{theirs['p50_ms']} ms, p99 {theirs['p99_ms']} ms, {theirs['ok']}/"
        f"{theirs['requests']} ok) | ratio {ratio:.2f} ({'meets' if ok else 'BELOW'} {BAR}) | "
        f"CPU ms/request {mine['cpu_ms_per_request']} vs {theirs['cpu_ms_per_request']} "
        f"({theirs['cpu_ms_per_request_by_process']})"
    )
    return {
        "in_process": mine,
        "service": theirs,
        "ratio": round(ratio, 3),
        "bar": BAR,
        "meets_bar": ok,
    }


class LLMServer:
    """tests/llm_server.py in its own process (its replies do not wait for the GIL of
    the load generator)."""

    def __init__(self, latency: float):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.llm_server", "--port", "0", "--latency", str(latency)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http://127.0.0.1:"):
            self.stop()
            raise RuntimeError("the local LLM server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def measure(name, args, overrides: list[str], local, inputs, path: str, bodies, pids) -> dict:
    """Warm both sides up, then alternate in-process and service rounds; `local(xs, cap,
    pids)` is the in-process peer."""
    warm = 2 * args.clients
    server = Server(
        args.config, [*overrides, *args.set], OUT / f"serve-{path.strip('/').replace('/', '-')}.log"
    )
    try:
        pids = pids | {"server": server.proc.pid}
        local(inputs[:warm], args.cap_s, pids)
        over_http(server, path, bodies[:warm], args.clients, args.cap_s, pids)
        cap = args.cap_s / args.rounds

        def mine(xs):
            return local(xs, cap, pids)

        def served(bs):
            return over_http(server, path, bs, args.clients, cap, pids)

        a, b = alternate(mine, served, inputs[warm:], bodies[warm:], args.rounds)
    finally:
        server.stop()
    return compare(name, a, b, args.clients)


def main() -> None:
    from jobs.config import load_config
    from service.cold_start import NewUser, PersonaEngine
    from service.rewriter import EndpointRewriter

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lake", required=True, help="a lake with models/encoder, gold/personas")
    ap.add_argument("--requests", type=int, default=400, help="measured, per side")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=4, help="alternating in-process/service")
    ap.add_argument("--cap-s", type=float, default=60.0, help="time cap of each side")
    ap.add_argument("--llm-latency", default="0,0.05", help="seconds per reply, comma-separated")
    ap.add_argument("-c", "--config", default="conf/local.yaml")
    ap.add_argument("--set", nargs="*", default=[], help="key=value overrides of the server only")
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    base = [f"lake.root={args.lake}"]
    n = args.requests + 2 * args.clients
    report: dict = {
        "lake": args.lake,
        "clients": args.clients,
        "requests": args.requests,
        "rounds": args.rounds,
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "runs": {},
    }
    me = {"this": os.getpid()}  # the clients, or the in-process loop

    cfg = load_config(args.config, base)
    if cfg.serve.torch_threads:  # as `zipp serve` sets it: the same on both sides
        import torch

        torch.set_num_threads(cfg.serve.torch_threads)
    report["torch_threads"] = cfg.serve.torch_threads
    engine = PersonaEngine(cfg)
    bodies = persona_inputs(engine, n)
    users = [
        NewUser(tuple(b["subreddits"]), tuple((c["subreddit"], c["text"]) for c in b["comments"]))
        for b in bodies
    ]
    name = "persona (template)"

    def serial(xs, cap, pids):
        return in_process(engine.persona, xs, cap, pids)

    report["runs"][name] = measure(name, args, base, serial, users, "/v1/personas", bodies, me)
    engine.close()

    for latency in [float(x) for x in args.llm_latency.split(",")]:
        llm = LLMServer(latency)
        try:
            over = [*base, "llm.backend=openai", "llm.model=perf", f"llm.base_url={llm.url}"]
            cfg = load_config(args.config, over)
            bodies = rewrite_inputs(args.lake, cfg.lake.format, n)

            def make(cfg=cfg):
                rewriter = EndpointRewriter(cfg)

                async def call(b):
                    return await rewriter.rewrite(b["persona"], b["prompt"], b["method"])

                return call, rewriter.aclose

            def concurrent(xs, cap, pids, make=make):
                return in_process_async(make, xs, args.clients, cap, pids)

            name = f"rewrite (openai, {latency * 1000:g} ms)"
            report["runs"][name] = measure(
                name,
                args,
                over,
                concurrent,
                bodies,
                "/v1/rewrite",
                bodies,
                me | {"llm server": llm.proc.pid},
            )
        finally:
            llm.stop()
    report["load_average_after"] = os.getloadavg()
    (OUT / "serve.json").write_text(json.dumps(report, indent=2))
    print(f"written: {OUT / 'serve.json'}")


if __name__ == "__main__":
    main()
