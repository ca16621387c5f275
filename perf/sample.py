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

from pipelines.sample.lines import zstd_params  # noqa: E402
from pipelines.sample.world import SampleSpec, write_sample  # noqa: E402

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


def peer(records: list[dict], path: Path, level: int) -> tuple[float, float, int]:
    """json.dumps each record and stream the lines into zstd; (wall s, CPU s, text bytes)."""
    cctx = zstandard.ZstdCompressor(compression_params=zstd_params(level))
    size = 0
    t, c = time.perf_counter(), cpu_seconds()
    with open(path, "wb") as f, cctx.stream_writer(f) as w:
        lines: list[bytes] = []
        for r in records:
            lines.append(json.dumps(r, separators=(",", ":")).encode())
            if len(lines) == 10_000:
                chunk = b"\n".join(lines) + b"\n"
                size += len(chunk)
                w.write(chunk)
                lines = []
        chunk = b"\n".join(lines) + b"\n"
        size += len(chunk)
        w.write(chunk)
    return time.perf_counter() - t, cpu_seconds() - c, size


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
    p_wall, p_cpu, p_text = peer(sample, OUT / "peer.zst", args.zstd_level)
    (OUT / "peer.zst").unlink()
    n_peer = len(sample)

    print(
        f"\n{'':<26}{'records/s':>12}{'rec/CPU-s':>12}{'MB/s':>9}{'users/s':>10}"
        f"{'wall s':>9}{'CPU s':>9}"
    )
    print(
        f"{'ours  write_sample':<26}{records / wall:>12,.0f}{records / cpu:>12,.0f}"
        f"{total_text / 1e6 / wall:>9,.1f}{args.users / wall:>10,.0f}{wall:>9.1f}{cpu:>9.1f}"
    )
    print(
        f"{'peer  json.dumps + zstd':<26}{n_peer / p_wall:>12,.0f}{n_peer / p_cpu:>12,.0f}"
        f"{p_text / 1e6 / p_wall:>9,.1f}{'':>10}{p_wall:>9.1f}{p_cpu:>9.1f}"
    )
    print(
        f"ratio ours / peer: {(records / wall) / (n_peer / p_wall):.1f}x per wall second, "
        f"{(records / cpu) / (n_peer / p_cpu):.1f}x per CPU second "
        f"(peer on {n_peer:,} of our records, serialisation only)"
    )
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the end")
    if not args.keep:
        shutil.rmtree(out)


if __name__ == "__main__":
    main()
