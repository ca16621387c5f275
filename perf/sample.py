"""Sample-world generation throughput: `write_sample` vs a json.dumps + zstd peer.

Ours: `write_sample` with `--users` users, no images, into perf/out/sample-<users>: wall
seconds, CPU seconds of the process (zstd's worker threads included), peak resident
memory, users/s, records/s and MB/s of dump text (decompressed bytes, counted afterwards).
Peer, measured in the same run: `--peer-records` records read back from our own dumps
(parsed into dicts, untimed), serialised by a plain `json.dumps` loop and streamed into
zstd at the same level, the way a dict-per-record generator writes; that is only the
serialisation such a generator pays on top of drawing its records. Rates are per CPU
second as well as per wall second, since this machine's cores may be shared.

    .venv/bin/python perf/sample.py [--users 100000] [--zstd-level 3] [--peer-records 1000000]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import sys
import time
from pathlib import Path

import zstandard
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from world.lines import zstd_params  # noqa: E402
from world.planted import SampleSpec  # noqa: E402
from world.write import write_sample  # noqa: E402

OUT = Path(__file__).parent / "out"


def cpu_seconds() -> float:
    """User + system CPU of this process (all threads) and its waited-for children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def dump_text_bytes(path: Path) -> int:
    """Decompressed size of one dump file."""
    with open(path, "rb") as f:
        reader = zstandard.ZstdDecompressor(max_window_size=1 << 31).stream_reader(f)
        return sum(len(c) for c in iter(lambda: reader.read(1 << 24), b""))


def first_records(path: Path, n: int) -> list[dict]:
    """The first `n` well-formed records of a dump file."""
    out: list[dict] = []
    with open(path, "rb") as f:
        reader = zstandard.ZstdDecompressor(max_window_size=1 << 31).stream_reader(f)
        for line in io.TextIOWrapper(reader, encoding="utf-8", errors="replace"):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
            if len(out) >= n:
                break
    return out


def peer(records: list[dict], path: Path, level: int) -> dict[str, float]:
    """json.dumps each record (timed), then stream the lines into zstd (timed apart)."""
    t, c = time.perf_counter(), cpu_seconds()
    chunks = []
    for lo in range(0, len(records), 10_000):
        lines = [json.dumps(r, separators=(",", ":")) for r in records[lo : lo + 10_000]]
        chunks.append(("\n".join(lines) + "\n").encode())
    dumps_wall, dumps_cpu = time.perf_counter() - t, cpu_seconds() - c
    cctx = zstandard.ZstdCompressor(compression_params=zstd_params(level))
    t, c = time.perf_counter(), cpu_seconds()
    with open(path, "wb") as f, cctx.stream_writer(f) as w:
        for chunk in chunks:
            w.write(chunk)
    return {
        "dumps_wall": dumps_wall,
        "dumps_cpu": dumps_cpu,
        "zstd_wall": time.perf_counter() - t,
        "zstd_cpu": cpu_seconds() - c,
        "text": sum(len(ch) for ch in chunks),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--zstd-level", type=int, default=3)
    ap.add_argument("--peer-records", type=int, default=1_000_000)
    ap.add_argument("--keep", action="store_true", help="keep the written world")
    args = ap.parse_args()
    out = OUT / f"sample-{args.users}"
    shutil.rmtree(out, ignore_errors=True)
    spec = SampleSpec(users=args.users, images=False, zstd_level=args.zstd_level)
    print(
        f"writing {args.users:,} users, {len(spec.months)} months, zstd level "
        f"{args.zstd_level}, no images -> {out}",
        flush=True,
    )
    t, c = time.perf_counter(), cpu_seconds()
    summary = write_sample(out, spec, console=Console(file=io.StringIO()))
    wall, cpu = time.perf_counter() - t, cpu_seconds() - c
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    records = sum(summary.values())
    files = sorted((out / "dumps").iterdir())
    text = {f.name: dump_text_bytes(f) for f in files}
    total_text = sum(text.values())
    print(f"\n{'file':<18}{'lines':>14}{'text MB':>12}{'zst MB':>10}{'ratio':>8}")
    for f in files:
        z = f.stat().st_size
        print(
            f"{f.name:<18}{summary[f.name]:>14,}{text[f.name] / 1e6:>12,.0f}"
            f"{z / 1e6:>10,.1f}{text[f.name] / z:>8.1f}"
        )
    gt = sum(p.stat().st_size for p in (out / "ground_truth").iterdir())
    print(f"ground truth: {gt / 1e6:,.1f} MB parquet; peak RSS {peak:.2f} GiB")

    rs = next(f for f in files if f.name.startswith("RS"))
    rc = next(f for f in files if f.name.startswith("RC"))
    n_rs = args.peer_records * sum(v for k, v in summary.items() if k.startswith("RS")) // records
    sample = first_records(rc, args.peer_records - n_rs) + first_records(rs, n_rs)
    p = peer(sample, OUT / "peer.zst", args.zstd_level)
    (OUT / "peer.zst").unlink()
    n_peer = len(sample)
    p_wall, p_cpu = p["dumps_wall"] + p["zstd_wall"], p["dumps_cpu"] + p["zstd_cpu"]
    zstd_rate = p["text"] / p["zstd_cpu"]  # bytes per CPU second at this level
    gen_cpu = cpu - total_text / zstd_rate  # ours without compression, estimated

    print(
        f"\n{'':<34}{'records/s':>12}{'rec/CPU-s':>12}{'MB/s':>9}{'users/s':>10}"
        f"{'wall s':>9}{'CPU s':>9}"
    )
    rows = [
        ("ours  write_sample", records, total_text, wall, cpu, args.users),
        ("peer  json.dumps + zstd", n_peer, p["text"], p_wall, p_cpu, None),
        ("ours  without zstd (estimated)", records, total_text, None, gen_cpu, None),
        ("peer  json.dumps alone", n_peer, p["text"], p["dumps_wall"], p["dumps_cpu"], None),
    ]
    for label, n, size, w, c, users in rows:
        per_wall = f"{n / w:>12,.0f}" if w else f"{'':>12}"
        mbs = f"{size / 1e6 / w:>9,.1f}" if w else f"{'':>9}"
        ups = f"{users / w:>10,.0f}" if users else f"{'':>10}"
        w_s = f"{w:>9.1f}" if w else f"{'':>9}"
        print(f"{label:<34}{per_wall}{n / c:>12,.0f}{mbs}{ups}{w_s}{c:>9.1f}")
    print(
        f"ratio ours / peer: {(records / wall) / (n_peer / p_wall):.1f}x per wall second, "
        f"{(records / cpu) / (n_peer / p_cpu):.1f}x per CPU second; without zstd "
        f"{(records / gen_cpu) / (n_peer / p['dumps_cpu']):.1f}x per CPU second "
        f"(zstd level {args.zstd_level}: {zstd_rate / 1e6:.0f} MB per CPU second; "
        f"peer on {n_peer:,} of our records)"
    )
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the end")
    if not args.keep:
        shutil.rmtree(out)


if __name__ == "__main__":
    main()
