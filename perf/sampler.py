"""Neighbour-sampler throughput and training-graph memory at Reddit scale.

Builds a synthetic user–subreddit graph (default 1,000,000 users, 40,000 subreddits,
20,000,000 unique edges; Zipf-like subreddit popularity, log-normal user degrees; numpy,
seeded) with `graph.data.from_arrays`, then measures sampled seeds/s of the project's
`BipartiteSampler.sample_from_nodes` over random user seed batches (bar: >= 1.0x the
peer). Peer in the same run: PyG's own `NeighborSampler` on a `HeteroData` of the same
edges and fan-outs, sampling through torch-sparse. torch-sparse never enters the product
venv: the reference wheels are installed into perf/out/refwheels and the peer runs in a
subprocess of the same interpreter with PYTHONPATH pointing there (`--peer`), on the same
seed batches (read from perf/out/sampler-graph/). Also reports the graph's resident bytes
per edge (bar: <= 24) and the process RSS growth while building it.

    .venv/bin/python perf/sampler.py [--users 1000000 --edges 20000000 --batch-size 1024
        --fanouts 10,10 [15,10 25,10 ...] --batches 50 --wheels DIR --profile]

Figures go to stdout and perf/out/sampler.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUT = Path(__file__).parent / "out"
GRAPH_DIR = OUT / "sampler-graph"
REFWHEELS = OUT / "refwheels"
DEFAULT_WHEELS = ROOT.parent / "shared" / "reference-wheels"
NUM_SUBS = 40_000
SUB_DIM = 385
BYTES_BAR = 24.0
RATIO_BAR = 1.0


_PEAK_BEFORE_RESET = 0.0


def _status_kib(field: str) -> int | None:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return None


def peak_rss_mib() -> float:
    """This process's peak resident memory in MiB (VmHWM: unlike ru_maxrss, reset by exec,
    so a child's figure is its own), over resets by `reset_peak_rss`."""
    hwm = _status_kib("VmHWM")
    if hwm is None:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return max(hwm / 1024, _PEAK_BEFORE_RESET)


def reset_peak_rss() -> bool:
    """Restart VmHWM from the current RSS (Linux clear_refs 5); False where not possible."""
    global _PEAK_BEFORE_RESET
    _PEAK_BEFORE_RESET = peak_rss_mib()
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def parse_fanouts(text: str) -> list[int]:
    return [int(k) for k in text.split(",") if k.strip()]


# ---------------------------------------------------------------------------- graph


def unique_sorted(a: np.ndarray) -> np.ndarray:
    """np.unique by sort (numpy 2's hash-based unique is far slower on 20M int64)."""
    a = np.sort(a)
    return a[np.concatenate([[True], a[1:] != a[:-1]])]


def synthetic_edges(
    num_users: int, num_subs: int, num_edges: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """`num_edges` unique (user, subreddit) pairs, sorted by user then subreddit.

    Subreddit popularity is Zipf-like, p(rank) ~ (rank + 5)^-1, with popularity ranks
    shuffled over ids; user degrees are log-normal (sigma 1.1, at least 1). Duplicate
    draws are removed and topped up until there are enough, then a random surplus is
    dropped so the count is exact."""
    if num_edges > num_users * num_subs // 2:
        raise SystemExit("--edges too large for --users x subreddits")
    rng = np.random.default_rng(seed)
    weight = (np.arange(num_subs) + 5.0) ** -1.0
    cdf = np.cumsum(weight[rng.permutation(num_subs)])
    cdf /= cdf[-1]

    def draw_subs(n: int) -> np.ndarray:
        return np.minimum(np.searchsorted(cdf, rng.random(n)), num_subs - 1)

    sigma = 1.1
    mean = 1.12 * num_edges / num_users  # ~10% duplicates under this skew
    mu = np.log(mean) - sigma**2 / 2
    deg = np.maximum(1, np.rint(rng.lognormal(mu, sigma, num_users))).astype(np.int64)
    deg = np.minimum(deg, num_subs // 4)
    users = np.repeat(np.arange(num_users, dtype=np.int64), deg)
    keys = unique_sorted(users * num_subs + draw_subs(len(users)))
    while len(keys) < num_edges:  # top up: users in proportion to their degree
        extra = int((num_edges - len(keys)) * 1.3) + 1000
        u = users[rng.integers(0, len(users), extra)]
        keys = unique_sorted(np.concatenate([keys, u * num_subs + draw_subs(extra)]))
    del users
    if len(keys) > num_edges:
        drop = rng.choice(len(keys), len(keys) - num_edges, replace=False)
        keep = np.ones(len(keys), bool)
        keep[drop] = False
        keys = keys[keep]
    return keys // num_subs, keys % num_subs


def build_graph(args: argparse.Namespace) -> tuple[object, dict]:
    """Edges and features, then `from_arrays`; returns the graph and build figures."""
    import psutil

    from graph.data import from_arrays

    proc = psutil.Process()
    rss0 = proc.memory_info().rss
    t0 = time.perf_counter()
    users, subs = synthetic_edges(args.users, NUM_SUBS, args.edges, args.seed)
    rng = np.random.default_rng(args.seed + 1)
    edge_attr = rng.random((len(users), 3), dtype=np.float32) * 4
    user_x = rng.standard_normal((args.users, args.user_dim + 2), dtype=np.float32)
    sub_x = rng.standard_normal((NUM_SUBS, SUB_DIM), dtype=np.float32)
    t_gen = time.perf_counter() - t0
    rss_before = proc.memory_info().rss
    exact_peak = reset_peak_rss()
    t1 = time.perf_counter()
    graph = from_arrays(users, subs, edge_attr, args.users, NUM_SUBS, user_x, sub_x)
    t_build = time.perf_counter() - t1
    peak = (_status_kib("VmHWM") or 0) * 1024 if exact_peak else None
    rss_with_inputs = proc.memory_info().rss
    del users, subs, edge_attr, user_x, sub_x
    rss_after = proc.memory_info().rss
    deg_u = graph.user_csr.degree()
    deg_s = graph.sub_csr.degree()
    resident = graph.resident_bytes()
    info = {
        "users": graph.num_users,
        "subreddits": graph.num_subs,
        "edges": graph.num_edges,
        "user_degree": {
            "mean": float(deg_u.mean()),
            "median": float(np.median(deg_u)),
            "p99": float(np.percentile(deg_u, 99)),
            "max": int(deg_u.max()),
        },
        "sub_degree": {
            "median": float(np.median(deg_s)),
            "p99": float(np.percentile(deg_s, 99)),
            "max": int(deg_s.max()),
            "top1_share": float(deg_s.max() / graph.num_edges),
        },
        "generate_s": t_gen,
        "from_arrays_s": t_build,
        "resident_bytes": resident,
        "bytes_per_edge": resident / graph.num_edges,
        "resident_breakdown_bytes": {
            "user_csr": graph.user_csr.indptr.nbytes + graph.user_csr.indices.nbytes,
            "sub_csr": graph.sub_csr.indptr.nbytes + graph.sub_csr.indices.nbytes,
            "sub_to_user_pos": graph.sub_to_user_pos.nbytes,
            "edge_attr": graph.edge_attr.numel() * graph.edge_attr.element_size(),
            "user_x": graph.user_x.numel() * graph.user_x.element_size(),
            "sub_x": graph.sub_x.numel() * graph.sub_x.element_size(),
        },
        # from_arrays' own growth over its start (inputs alive): peak and when it returns
        "rss_peak_growth_in_from_arrays_bytes": None if peak is None else peak - rss_before,
        "rss_growth_from_arrays_bytes": rss_with_inputs - rss_before,
        # before generating the inputs -> graph built and the inputs freed
        "rss_net_growth_bytes": rss_after - rss0,
    }
    return graph, info


# ---------------------------------------------------------------------------- timing


def time_batches(sample, seeds: np.ndarray, repeats: int) -> dict:
    """Warm up on seeds[0], then time `sample` over all later batches, `repeats` rounds;
    seeds/s is of the fastest round (the machine is shared: the least disturbed round)."""
    import torch

    sample(torch.from_numpy(seeds[0]))
    rounds, times, users, subs, edges = [], [], [], [], []
    for _ in range(repeats):
        times = []
        for batch in seeds[1:]:
            node = torch.from_numpy(batch)
            t = time.perf_counter()
            out = sample(node)
            times.append(time.perf_counter() - t)
            users.append(len(out.node["user"]))
            subs.append(len(out.node["subreddit"]))
            edges.append(sum(len(r) for r in out.row.values()))
        rounds.append(times)
    totals = [float(sum(t)) for t in rounds]
    best = int(np.argmin(totals))
    return {
        "batches": len(seeds) - 1,
        "seconds": totals[best],
        "seeds_per_s": seeds[1:].size / totals[best],
        "seeds_per_s_rounds": [seeds[1:].size / t for t in totals],
        "batch_ms_median": float(np.median(rounds[best]) * 1e3),
        "mean_sampled_users": float(np.mean(users)),
        "mean_sampled_subreddits": float(np.mean(subs)),
        "mean_sampled_edges": float(np.mean(edges)),
    }


def run_ours(
    graph, seeds: np.ndarray, fanouts: list[int], seed: int, repeats: int, profile: bool
) -> dict:
    from torch_geometric.sampler import NodeSamplerInput

    from graph.sampler import BipartiteSampler

    sampler = BipartiteSampler(
        graph.user_csr, graph.sub_csr, graph.sub_to_user_pos, fanouts, seed=seed
    )

    def sample(node):
        return sampler.sample_from_nodes(
            NodeSamplerInput(input_id=None, node=node, input_type="user")
        )

    result = time_batches(sample, seeds, repeats)
    if profile:
        import cProfile
        import io
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        time_batches(sample, seeds, 1)
        prof.disable()
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(18)
        print(f"--- cProfile of BipartiteSampler, fan-outs {fanouts} (by tottime) ---")
        print(buf.getvalue())
    return result


# ---------------------------------------------------------------------------- peer


def install_wheels(wheels: Path) -> None:
    found = sorted(wheels.glob("*.whl")) if wheels.is_dir() else []
    names = {w.name.split("-")[0] for w in found}
    if not {"torch_sparse", "torch_scatter"} <= names:
        raise SystemExit(
            f"reference wheels missing: need torch_sparse and torch_scatter *.whl in {wheels} "
            "(pass --wheels DIR); the peer cannot run without them"
        )
    stamp = REFWHEELS / ".installed"
    want = "\n".join(w.name for w in found)
    if stamp.exists() and stamp.read_text() == want:
        return
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"]
    cmd += ["--upgrade", "--target", str(REFWHEELS), *map(str, found)]
    if subprocess.run(cmd).returncode:
        raise SystemExit(f"could not install the reference wheels from {wheels}")
    stamp.write_text(want)


def run_peer_subprocess(args: argparse.Namespace) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REFWHEELS))
    cmd = [sys.executable, __file__, "--peer", "--fanouts", *args.fanouts]
    cmd += ["--seed", str(args.seed), "--repeats", str(args.repeats)]
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True)
    lines = proc.stdout.splitlines()
    for line in lines:
        if not line.startswith("PEER_RESULT "):
            print(f"  [peer] {line}")
    if proc.returncode:
        raise SystemExit(f"peer subprocess failed (exit {proc.returncode})")
    return json.loads(next(x for x in lines if x.startswith("PEER_RESULT "))[12:])


def peer_main(args: argparse.Namespace) -> None:
    """In the subprocess: PyG NeighborSampler through torch-sparse on the saved graph."""
    import warnings

    import torch

    try:
        import torch_sparse
    except ImportError as e:
        raise SystemExit(f"peer: torch_sparse did not import ({e}); PYTHONPATH wrong?") from e
    import torch_geometric
    import torch_geometric.typing as pyg_typing
    from torch_geometric.data import HeteroData
    from torch_geometric.sampler import NeighborSampler, NodeSamplerInput

    if not pyg_typing.WITH_TORCH_SPARSE or pyg_typing.WITH_PYG_LIB:
        raise SystemExit(
            f"peer: PyG backend not torch-sparse (WITH_TORCH_SPARSE="
            f"{pyg_typing.WITH_TORCH_SPARSE}, WITH_PYG_LIB={pyg_typing.WITH_PYG_LIB})"
        )
    print(
        f"backend: torch_sparse {torch_sparse.__version__} from "
        f"{Path(torch_sparse.__file__).parent.parent}, torch_geometric "
        f"{torch_geometric.__version__}, WITH_TORCH_SPARSE=True, WITH_PYG_LIB=False"
    )
    indptr = np.load(GRAPH_DIR / "user_indptr.npy")
    subs = torch.from_numpy(np.load(GRAPH_DIR / "user_indices.npy").astype(np.int64))
    users = torch.from_numpy(np.repeat(np.arange(len(indptr) - 1), np.diff(indptr)))
    meta = json.loads((GRAPH_DIR / "meta.json").read_text())
    data = HeteroData()
    data["user"].num_nodes = meta["users"]
    data["subreddit"].num_nodes = meta["subreddits"]
    data["user", "posts_in", "subreddit"].edge_index = torch.stack([users, subs])
    data["subreddit", "rev_posts_in", "user"].edge_index = torch.stack([subs, users])
    del users, subs
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "without pyg-lib is deprecated"
        sampler = NeighborSampler(data, num_neighbors=parse_fanouts(args.fanouts[0]))
    init_s = time.perf_counter() - t
    torch.manual_seed(args.seed)
    # count (and time) the calls PyG makes into torch-sparse's C++ sampler
    namespace, op_calls = torch.ops.torch_sparse, []
    op = namespace.hetero_neighbor_sample

    def counted(*a):
        t = time.perf_counter()
        out = op(*a)
        op_calls.append(time.perf_counter() - t)
        return out

    namespace.hetero_neighbor_sample = counted
    results: dict = {"init_s": init_s, "fanouts": {}}
    for fan in args.fanouts:
        sampler.num_neighbors = parse_fanouts(fan)
        seeds = np.load(GRAPH_DIR / "seeds.npy")

        def sample(node):
            return sampler.sample_from_nodes(
                NodeSamplerInput(input_id=None, node=node, input_type="user")
            )

        op_calls.clear()
        results["fanouts"][fan] = res = time_batches(sample, seeds, args.repeats)
        if len(op_calls) != 1 + args.repeats * (len(seeds) - 1):  # warm-up + timed batches
            raise SystemExit(f"peer: torch_sparse op ran {len(op_calls)}x, not once a batch")
        timed = sum(seeds[1:].size / r for r in res["seeds_per_s_rounds"])
        res["op_share"] = sum(op_calls[1:]) / timed  # of the timed seconds
    print("verified: torch_sparse::hetero_neighbor_sample ran for every fan-out")
    results["peak_rss_mib"] = peak_rss_mib()
    print("PEER_RESULT " + json.dumps(results))


# ---------------------------------------------------------------------------- main


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=1_000_000)
    p.add_argument("--edges", type=int, default=20_000_000)
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument(
        "--fanouts", nargs="+", default=["10,10"], help="one or more, e.g. 10,10 15,10 25,10"
    )
    p.add_argument("--batches", type=int, default=50)
    p.add_argument("--user-dim", type=int, default=32, help="visual dims (+2 columns)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=3, help="timed rounds; the fastest counts")
    p.add_argument("--wheels", type=Path, default=DEFAULT_WHEELS)
    p.add_argument("--profile", action="store_true", help="cProfile our sampler too")
    p.add_argument("--peer", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.peer:
        peer_main(args)
        return

    t_start = time.perf_counter()
    load = {"start": os.getloadavg()[0]}
    OUT.mkdir(exist_ok=True)
    GRAPH_DIR.mkdir(exist_ok=True)
    install_wheels(args.wheels)  # fail early when the peer cannot run

    print(f"building graph: {args.users:,} users, {NUM_SUBS:,} subreddits, {args.edges:,} edges")
    graph, info = build_graph(args)
    print(
        f"  generated in {info['generate_s']:.1f}s, from_arrays {info['from_arrays_s']:.1f}s; "
        f"user degree mean {info['user_degree']['mean']:.1f} median "
        f"{info['user_degree']['median']:.0f} max {info['user_degree']['max']}; "
        f"subreddit degree median {info['sub_degree']['median']:.0f} max "
        f"{info['sub_degree']['max']:,} ({info['sub_degree']['top1_share']:.1%} of edges)"
    )
    rng = np.random.default_rng(args.seed + 2)
    n_seeds = (args.batches + 1) * args.batch_size
    if n_seeds > args.users:
        raise SystemExit("--batches x --batch-size exceeds --users")
    seeds = rng.permutation(args.users)[:n_seeds].reshape(args.batches + 1, args.batch_size)
    np.save(GRAPH_DIR / "seeds.npy", seeds.astype(np.int64))
    np.save(GRAPH_DIR / "user_indptr.npy", graph.user_csr.indptr)
    np.save(GRAPH_DIR / "user_indices.npy", graph.user_csr.indices)
    (GRAPH_DIR / "meta.json").write_text(
        json.dumps({"users": graph.num_users, "subreddits": graph.num_subs})
    )

    ours = {}
    for fan in args.fanouts:
        fanouts = parse_fanouts(fan)
        ours[fan] = run_ours(graph, seeds, fanouts, args.seed, args.repeats, args.profile)
        print(
            f"  ours {fan}: {ours[fan]['seeds_per_s']:,.0f} seeds/s, "
            f"{ours[fan]['batch_ms_median']:.1f} ms/batch median"
        )
    print("running peer (PyG NeighborSampler + torch-sparse) in a subprocess ...")
    peer = run_peer_subprocess(args)
    print(f"  peer CSC build {peer['init_s']:.1f}s")
    load["end"] = os.getloadavg()[0]

    print("\n=== results ===")
    print(
        f"graph: {info['users']:,} users, {info['subreddits']:,} subreddits, "
        f"{info['edges']:,} edges; batch {args.batch_size}, {args.batches} batches, "
        f"best of {args.repeats} rounds; fan-outs {' '.join(args.fanouts)}; "
        f"load average {load['start']:.2f} -> {load['end']:.2f} on {os.cpu_count()} CPUs"
    )
    for i, fan in enumerate(args.fanouts):
        o, m = ours[fan], peer["fanouts"][fan]
        ratio = o["seeds_per_s"] / m["seeds_per_s"]
        ours[fan]["ratio_vs_peer"] = ratio
        print(
            f"sampler{'' if i == 0 else f' [{fan}]'}: ours {o['seeds_per_s']:,.0f} seeds/s, "
            f"PyG+torch-sparse {m['seeds_per_s']:,.0f} seeds/s, ratio {ratio:.2f}x "
            f"(bar >= {RATIO_BAR:.1f}x)"
        )
        print(
            f"  fan-outs {fan}: ms/batch median ours {o['batch_ms_median']:.1f}, peer "
            f"{m['batch_ms_median']:.1f} ({m['op_share']:.0%} in torch_sparse's C++ op); "
            f"rounds ours {', '.join(f'{x:,.0f}' for x in o['seeds_per_s_rounds'])}, peer "
            f"{', '.join(f'{x:,.0f}' for x in m['seeds_per_s_rounds'])} seeds/s"
        )
        print(
            f"  sampled per batch: ours {o['mean_sampled_users']:,.0f} users / "
            f"{o['mean_sampled_subreddits']:,.0f} subs / {o['mean_sampled_edges']:,.0f} edges;"
            f" peer {m['mean_sampled_users']:,.0f} / {m['mean_sampled_subreddits']:,.0f} / "
            f"{m['mean_sampled_edges']:,.0f}"
        )
    bpe = info["bytes_per_edge"]
    print(f"graph memory: {bpe:.2f} bytes/edge (bar <= {BYTES_BAR:.0f})")
    parts = ", ".join(
        f"{k} {v / info['edges']:.2f}" for k, v in info["resident_breakdown_bytes"].items()
    )
    print(f"  per edge: {parts}")
    peak_growth = info["rss_peak_growth_in_from_arrays_bytes"]
    print(
        f"  RSS growth in from_arrays (inputs alive): peak "
        f"{'n/a' if peak_growth is None else f'{peak_growth / 2**20:,.0f} MiB'}, "
        f"{info['rss_growth_from_arrays_bytes'] / 2**20:,.0f} MiB on return; net growth "
        f"{info['rss_net_growth_bytes'] / 2**20:,.0f} MiB once the inputs are freed; "
        f"graph arrays {info['resident_bytes'] / 2**20:,.0f} MiB"
    )
    wall = time.perf_counter() - t_start
    peaks = {"main": peak_rss_mib(), "peer": peer["peak_rss_mib"]}
    print(f"wall {wall:.0f}s; peak RSS main {peaks['main']:,.0f} MiB, peer {peaks['peer']:,.0f}")
    first = args.fanouts[0]
    report = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "graph": info,
        "ours": ours,
        "peer": peer,
        "ratio": ours[first]["ratio_vs_peer"],
        "ratio_bar": RATIO_BAR,
        "bytes_per_edge": bpe,
        "bytes_per_edge_bar": BYTES_BAR,
        "wall_s": wall,
        "peak_rss_mib": peaks,
        "load_average": load,
    }
    (OUT / "sampler.json").write_text(json.dumps(report, indent=2))
    print(f"wrote {OUT / 'sampler.json'}")


if __name__ == "__main__":
    main()
