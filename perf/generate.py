"""Image-generation throughput: the `generate` stage's render path against a bare diffusers
loop, same pipeline, prompts, seeds and batches, in one run.

Pipeline: the project's tiny random Stable Diffusion (`build_tiny_pipeline`) built larger
(--image-size px, default 64) into perf/out/, so that a batch costs real UNet/VAE compute
and per-image overheads do not dominate. Jobs: --images records over a fixed list of
varied prompts (some with negative prompts), seeds from `record_seed`, image ids and row
columns built as `generation.stages.generate.plan` builds them.

Product: `generation.diffusion.fan_out_render` -> Ray actor(s) of `Renderer` (pipeline
loaded in the actor with `load_pipeline`, `render` per batch, PNG encode, sha256, PNG
written under media/ of a temporary lake) -> `on_batch` logs the rows (renderer row +
the stage's columns, BENCH_IMAGES) to a `RowLog`, as the stage does. Reported end to end
(actor start-up and model load included) and in steady state (between the first and the
last finished batch).

Peer in the same run, in this process: `DiffusionPipeline.from_pretrained` of the same
folder, then a plain loop of `pipe(prompt=..., negative_prompt=..., generator=[...],
num_inference_steps, guidance_scale, output_type="pil")` over the same batches and seeds;
images/s over the loop (model load excluded) and in steady state. Its PNGs are encoded
after the clock stops and their sha256 compared with the product's (determinism).
Bar: product steady state >= 0.9x the bare loop's steady state.

torch threads: the bare loop runs with this process's torch default (or --peer-threads);
a render actor gets `actor_resources` (on CPU an even share of Ray's CPUs, that many
torch threads), read back from a probe `Renderer`; both are printed and recorded, and a
mismatch is called out.

    .venv/bin/python perf/generate.py [--images 64 --batch-size 8 --steps 10
        --image-size 64 --actors 1 --guidance-scale 7.5 --peer-threads 0]

Figures go to stdout and perf/out/generate.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUT = Path(__file__).parent / "out"
RATIO_BAR = 0.9

#: (prompt, negative prompt); the ones with a negative prompt stand for rewrites
PROMPTS: list[tuple[str, str | None]] = [
    ("a red fox curled up in fresh snow, morning light", None),
    (
        "an isometric cutaway of a tiny coffee shop, warm lamps, rain on the windows",
        "blurry, low quality, watermark",
    ),
    ("portrait of an old fisherman, deep wrinkles, film grain, 85mm", None),
    ("a neon-lit street market in the rain at night, reflections", "text, logo, oversaturated"),
    ("watercolor map of an imaginary archipelago with sea monsters", None),
    ("a brutalist concrete library interior, shafts of sunlight, dust", "people, clutter"),
    ("macro photo of a dew-covered spider web at dawn", None),
    (
        "a cozy reading nook with a cat, bookshelves to the ceiling, autumn",
        "deformed, extra limbs, jpeg artifacts",
    ),
    ("retro 1970s sci-fi paperback cover, chrome rocket over a desert planet", None),
    ("a bowl of ramen, top-down food photography, steam", "hands, chopsticks"),
    ("alpine lake under the milky way, long exposure", None),
    (
        "a steampunk airship docking at a floating city, golden hour",
        "cropped, out of frame, lowres",
    ),
    ("pixel art of a knight resting by a campfire", None),
    ("minimalist line drawing of a heron standing in reeds", "color, shading"),
    ("a thunderstorm over wheat fields, dramatic clouds, wide angle", None),
    ("a child's crayon drawing of a family of robots", "photorealistic"),
]
SMOKE = True  # the pipeline is the tiny random one: its images are noise


def build_model(image_size: int) -> Path:
    from tests.tiny_diffusion import build_tiny_pipeline

    return build_tiny_pipeline(OUT / f"generate-tiny-sd-{image_size}px", image_size=image_size)


def plan(n: int, model: str, spec) -> tuple[list, dict[str, dict]]:
    """`n` render jobs and their rows' columns by image id, as `generation.stages.generate.plan`
    makes them: prompt i % len(PROMPTS), seed index i // len(PROMPTS)."""
    from generation.diffusion import RenderJob, record_seed
    from generation.stages.generate import image_id

    jobs, meta = [], {}
    for i in range(n):
        p, k = i % len(PROMPTS), i // len(PROMPTS)
        prompt, negative = PROMPTS[p]
        user, pid = 1000 + p % 5, f"perf-{p:02d}"
        method, llm = ("zero_shot", "template:template") if negative else ("base", "-")
        seed = record_seed(str(user), pid, k)
        iid = image_id(
            user,
            pid,
            method,
            llm,
            k,
            model,
            prompt,
            negative,
            spec.steps,
            spec.guidance_scale,
            spec.height,
            spec.width,
        )
        meta[iid] = {
            "image_id": iid,
            "user_id": user,
            "prompt_id": pid,
            "method": method,
            "llm": llm,
            "seed_index": k,
            "seed": seed,
            "prompt": prompt,
            "negative_prompt": negative,
            "model": model,
            "smoke_model": SMOKE,
        }
        jobs.append(RenderJob(iid, prompt, negative, seed))
    return jobs, meta


def batches_of(jobs: list, size: int) -> list[list]:
    return [jobs[i : i + size] for i in range(0, len(jobs), size)]


def steady_rate(marks: list[tuple[float, int]]) -> float | None:
    """Images/s between the first and the last finished batch (None with one batch)."""
    (t_first, n_first), (t_last, n_last) = marks[0], marks[-1]
    return (n_last - n_first) / (t_last - t_first) if t_last > t_first else None


def bare_loop(spec, batches: list[list], threads: int) -> dict:
    """The peer: plain diffusers in this process, no Ray, no PNG/hash/IO in the clock."""
    import torch
    from diffusers import DiffusionPipeline

    if threads:
        torch.set_num_threads(threads)
    t_load = time.perf_counter()
    pipe = DiffusionPipeline.from_pretrained(spec.model, torch_dtype=torch.float32).to("cpu")
    pipe.set_progress_bar_config(disable=True)
    load_s = time.perf_counter() - t_load
    images, marks = [], []
    t0 = time.perf_counter()
    for batch in batches:
        out = pipe(
            prompt=[j.prompt for j in batch],
            negative_prompt=[j.negative_prompt or "" for j in batch],
            generator=[torch.Generator(device="cpu").manual_seed(j.seed) for j in batch],
            num_inference_steps=spec.steps,
            guidance_scale=spec.guidance_scale,
            output_type="pil",
        ).images
        images.extend(out)
        marks.append((time.perf_counter(), len(images)))
    seconds = marks[-1][0] - t0
    from generation.diffusion import png_bytes

    jobs = [j for b in batches for j in b]
    digests = {
        j.image_id: hashlib.sha256(png_bytes(im)).hexdigest()
        for j, im in zip(jobs, images, strict=True)
    }
    return {
        "threads": torch.get_num_threads(),
        "load_s": load_s,
        "seconds": seconds,
        "per_s": len(images) / seconds,
        "steady_per_s": steady_rate(marks),
        "first_batch_s": marks[0][0] - t0,
        "sha256": digests,
    }


def actor_threads(spec, actors: int) -> tuple[int, dict]:
    """torch threads in a `Renderer` actor started with `fan_out_render`'s options."""
    import ray

    from generation.diffusion import Renderer, actor_resources

    opts, threads = actor_resources(spec, actors)
    actor = ray.remote(Renderer).options(max_concurrency=1, **opts).remote(spec, "/tmp", threads)
    try:
        return ray.get(actor.threads.remote()), opts
    finally:
        ray.kill(actor)


def product(spec, jobs: list, meta: dict[str, dict], actors: int) -> dict:
    """The stage's path: fan_out_render over Ray actors, rows logged to a RowLog."""
    import pyarrow as pa

    from generation.diffusion import fan_out_render
    from storage.lake import Lake, RowLog

    with tempfile.TemporaryDirectory() as tmp:
        log = RowLog(Lake(tmp), "perf", "bench/images", key="image_id")
        marks: list[tuple[float, int]] = []  # (time, images so far) at each finished batch

        def on_batch(batch, rows) -> None:
            log.append(pa.Table.from_pylist([meta[r["image_id"]] | r for r in rows]))
            marks.append((time.perf_counter(), (marks[-1][1] if marks else 0) + len(rows)))

        t0 = time.perf_counter()
        fan_out_render(jobs, spec, tmp, actors, on_batch)
        seconds = time.perf_counter() - t0
        rows = log.read().to_pylist()
        assert len(rows) == len(jobs), (len(rows), len(jobs))
        assert {r["image_id"] for r in rows} == set(meta)
        failed = [r["reason"] for r in rows if r["status"] != "done"]
        if failed:
            raise SystemExit(f"{len(failed)} image(s) failed, first: {failed[0]}")
        for r in rows:
            data = (Path(tmp) / r["path"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == r["sha256"], r["path"]
    return {
        "seconds": seconds,
        "per_s": len(jobs) / seconds,
        "steady_per_s": steady_rate(marks),
        "first_batch_s": marks[0][0] - t0,  # actor start + model load + one batch
        "sha256": {r["image_id"]: r["sha256"] for r in rows},
        "unique_files": len({r["sha256"] for r in rows}),
        "size": sorted({(r["width"], r["height"]) for r in rows}),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--image-size", type=int, default=64, help="px; a multiple of 4")
    ap.add_argument("--guidance-scale", type=float, default=7.5)
    ap.add_argument("--actors", type=int, default=1)
    ap.add_argument(
        "--peer-threads", type=int, default=0, help="torch threads of the bare loop (0: default)"
    )
    args = ap.parse_args()
    if args.image_size % 4:
        raise SystemExit("--image-size must be a multiple of 4")

    from engines.ray import ray_session
    from generation.diffusion import RenderSpec

    folder = build_model(args.image_size)
    spec = RenderSpec(
        model=str(folder),
        steps=args.steps,
        guidance_scale=args.guidance_scale,
        batch_size=args.batch_size,
    )
    jobs, meta = plan(args.images, f"perf:{folder.name}", spec)
    batches = batches_of(jobs, args.batch_size)
    load = {"start": os.getloadavg()[0]}
    ray_session(None, None)
    peer = bare_loop(spec, batches, args.peer_threads)
    load["after_peer"] = os.getloadavg()[0]
    threads, opts = actor_threads(spec, args.actors)
    ours = product(spec, jobs, meta, args.actors)
    load["end"] = os.getloadavg()[0]

    same = sum(ours["sha256"][i] == d for i, d in peer.pop("sha256").items())
    deterministic = same == len(jobs)
    ours.pop("sha256")
    e2e, steady = ours["per_s"] / peer["per_s"], None
    if ours["steady_per_s"] and peer["steady_per_s"]:
        steady = ours["steady_per_s"] / peer["steady_per_s"]
    matched = threads == peer["threads"]
    thread_note = (
        f"torch threads: actor {threads}, bare loop {peer['threads']}"
        if matched
        else f"THREADS DIFFER: actor {threads} ({opts}), bare loop {peer['threads']}"
    )
    result = {
        "images": args.images,
        "batch_size": args.batch_size,
        "steps": args.steps,
        "image_size": args.image_size,
        "guidance_scale": args.guidance_scale,
        "actors": args.actors,
        "model": str(folder.relative_to(ROOT)),
        "cpus": os.cpu_count(),
        "threads": {
            "actor": threads,
            "actor_options": opts,
            "bare_loop": peer["threads"],
            "matched": matched,
        },
        "product_per_s": round(ours["per_s"], 3),
        "product_steady_per_s": ours["steady_per_s"] and round(ours["steady_per_s"], 3),
        "product_seconds": round(ours["seconds"], 2),
        "product_first_batch_s": round(ours["first_batch_s"], 2),
        "bare_per_s": round(peer["per_s"], 3),
        "bare_steady_per_s": peer["steady_per_s"] and round(peer["steady_per_s"], 3),
        "bare_seconds": round(peer["seconds"], 2),
        "bare_load_s": round(peer["load_s"], 2),
        "bare_first_batch_s": round(peer["first_batch_s"], 2),
        "product_vs_bare": round(e2e, 3),
        "product_vs_bare_steady": steady and round(steady, 3),
        "bar": RATIO_BAR,
        "bar_met": bool(steady and steady >= RATIO_BAR),
        "deterministic": deterministic,
        "sha256_matching": same,
        "unique_files": ours["unique_files"],
        "image_px": ours["size"],
        "loadavg_1m": {k: round(v, 2) for k, v in load.items()},
    }
    steady_txt = f"{ours['steady_per_s']:.2f}/s steady" if ours["steady_per_s"] else "steady n/a"
    print(
        f"images/s, {args.image_size}px, {args.steps} steps, batch {args.batch_size}, "
        f"{args.images} images, {args.actors} actor(s): product {ours['per_s']:.2f}/s end to "
        f"end (actor start + load included, first batch at {ours['first_batch_s']:.1f} s), "
        f"{steady_txt}; bare diffusers loop {peer['per_s']:.2f}/s "
        f"({peer['steady_per_s'] or 0:.2f}/s steady, load excluded); product/bare "
        f"{e2e:.2f}x end to end, {steady or 0:.2f}x steady (bar {RATIO_BAR}x: "
        f"{'met' if result['bar_met'] else 'NOT met'}); {thread_note}; PNG sha256 "
        f"{'identical' if deterministic else 'DIFFER'} ({same}/{len(jobs)})"
    )
    OUT.mkdir(exist_ok=True)
    (OUT / "generate.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
