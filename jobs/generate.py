"""Stage `generate` (Ray): every benchmark prompt (base and each rewrite, each seed)
rendered by the configured diffusers pipeline -> bench/images + PNGs under media/.

python -m jobs.generate -c conf/cluster.yaml [key=value ...]
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import replace

import pyarrow as pa
import pyarrow.compute as pc
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from jobs.runner import Stage, StageContext
from schemas.lake import RowLog

TINY_MODEL = "models/tiny-diffusion"


def model_path(ctx: StageContext) -> tuple[str, bool]:
    """(pipeline path or id, is the smoke model); builds the tiny pipeline when needed."""
    from generation.tiny_diffusion import build_tiny_pipeline

    if ctx.config.diffusion.model:
        return ctx.config.diffusion.model, False
    with ctx.console.status("generate: building the tiny random pipeline"):
        return str(build_tiny_pipeline(ctx.lake.path(TINY_MODEL))), True


def image_id(*parts: object) -> str:
    """A bench/images row key: the record, the model and the sampling settings."""
    return hashlib.sha1("\0".join(map(str, parts)).encode()).hexdigest()[:20]


def history_images(ctx: StageContext, users: set[int]) -> dict[int, tuple[bytes, ...]]:
    """The Pigeon baseline's conditioning: each user's history images (not their held-out
    references), fetched again with the hostile-URL fetcher."""
    from pipelines.images import FetchError, fetch_image

    c = ctx.config
    refs = {
        r["user_id"]: set(r["references"] or []) for r in ctx.lake.read("bench/users").to_pylist()
    }
    imgs = ctx.lake.read("silver/user_images").sort_by([("created_utc", "descending")])
    out: dict[int, list[bytes]] = {u: [] for u in users}
    for r in imgs.to_pylist():
        u = r["user_id"]
        key = f"{r['post_id']}:{r['position']}"
        if u not in out or key in refs.get(u, ()) or len(out[u]) >= c.diffusion.history_images:
            continue
        try:
            out[u].append(
                fetch_image(
                    r["image_url"],
                    c.images.allow_hosts,
                    timeout=c.images.timeout_s,
                    max_bytes=c.images.max_mb << 20,
                )
            )
        except FetchError:
            continue  # fewer conditioning images; none at all fails the row below
    return {u: tuple(v) for u, v in out.items()}


def plan(ctx: StageContext, model: str, smoke: bool):
    """(jobs to render, their rows' columns by image id, rows made without rendering)."""
    from generation.diffusion import RenderJob, failed_row, record_seed

    d = ctx.config.diffusion
    prompts = ctx.lake.read("bench/prompts").to_pylist()
    rewrites = ctx.lake.read("bench/rewrites").to_pylist()
    records = []
    for p in prompts:
        records.append((p["user_id"], p["prompt_id"], "base", "-", p["prompt"], None, None))
        if d.ip_adapter:
            records.append((p["user_id"], p["prompt_id"], "pigeon", "-", p["prompt"], None, None))
    for r in rewrites:
        why = None if r["status"] == "done" else f"rewrite failed: {r['reason']}"
        records.append(
            (
                r["user_id"],
                r["prompt_id"],
                r["method"],
                r["llm"],
                r["prompt"],
                r["negative_prompt"],
                why,
            )
        )
    history = {}
    if d.ip_adapter:
        with ctx.console.status("generate: fetching history images for IP-Adapter"):
            history = history_images(ctx, {p["user_id"] for p in prompts})
    adapter = (d.ip_adapter, d.ip_adapter_subfolder, d.ip_adapter_weight, d.ip_adapter_scale)
    jobs, meta, direct = [], {}, []
    for user, pid, method, llm, prompt, negative, why in records:
        cond = history.get(user, ()) if method == "pigeon" else ()
        # a pigeon image also depends on the adapter and the exact conditioning images
        conditioning = (
            [image_id(*adapter, *(hashlib.sha256(b).hexdigest() for b in cond))]
            if method == "pigeon"
            else []
        )
        for k in range(d.seeds):
            seed = record_seed(user, pid, k)
            iid = image_id(
                user,
                pid,
                method,
                llm,
                k,
                model,
                prompt,
                negative,
                d.steps,
                d.guidance_scale,
                d.height,
                d.width,
                *conditioning,
            )
            cols = {
                "image_id": iid,
                "user_id": user,
                "prompt_id": pid,
                "method": method,
                "llm": llm,
                "seed_index": k,
                "seed": seed,
                "prompt": prompt or "",
                "negative_prompt": negative,
                "model": model,
                "smoke_model": smoke,
            }
            if method == "pigeon" and not cond and why is None:
                why = "no history image could be fetched for IP-Adapter"
            if why is not None:
                direct.append(cols | failed_row(iid, why))
                continue
            meta[iid] = cols
            jobs.append(RenderJob(iid, prompt, negative, seed, cond))
    return jobs, meta, direct


def run(ctx: StageContext) -> None:
    """bench/prompts + bench/rewrites -> bench/images (resumable per image)."""
    from generation.diffusion import RenderSpec, fan_out_render
    from pipelines.ray_session import ray_session

    lake, cfg = ctx.lake, ctx.config
    d = cfg.diffusion
    model, smoke = model_path(ctx)
    # rows name the smoke model by its place in the lake, so ids do not depend on the root
    jobs, meta, direct = plan(ctx, f"lake:{TINY_MODEL}" if smoke else model, smoke)
    log = RowLog(lake, "generate", "bench/images", key="image_id")
    previous = lake.read("bench/images")
    if ctx.force:
        log.clear()
        previous = previous.schema.empty_table()
    todo = set(log.pending([j.image_id for j in jobs], previous))
    pending = [j for j in jobs if j.image_id in todo]
    if len(pending) < len(jobs):
        ctx.console.print(
            f"  generate: {len(jobs) - len(pending):,} image(s) already made, resuming"
        )
    spec = RenderSpec(
        model=model,
        steps=d.steps,
        guidance_scale=d.guidance_scale,
        height=d.height,
        width=d.width,
        batch_size=d.batch_size,
        num_gpus=d.num_gpus,
        num_cpus=d.num_cpus,
        compile=d.compile,
    )
    status: Counter = Counter()
    if pending:
        with ctx.console.status("generate: starting Ray"):
            ray_session(cfg.ray.address, cfg.ray.num_cpus)
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=ctx.console) as bar:
            task = bar.add_task(
                f"generate {model.rsplit('/', 1)[-1]}", total=len(pending), counts=""
            )

            def on_batch(batch, rows) -> None:
                log.append(pa.Table.from_pylist([meta[r["image_id"]] | r for r in rows]))
                status.update(r["status"] for r in rows)
                bar.update(
                    task, advance=len(rows), counts=" ".join(f"{k}={v}" for k, v in status.items())
                )

            plain = [j for j in pending if not j.history]
            cond = [j for j in pending if j.history]
            fan_out_render(plain, spec, str(lake.root), d.actors, on_batch)
            if cond:
                ip = replace(
                    spec,
                    ip_adapter=d.ip_adapter,
                    ip_adapter_subfolder=d.ip_adapter_subfolder,
                    ip_adapter_weight=d.ip_adapter_weight,
                    ip_adapter_scale=d.ip_adapter_scale,
                )
                fan_out_render(cond, ip, str(lake.root), d.actors, on_batch)
    out = log.merge([j.image_id for j in jobs], previous)
    if direct:
        out = pa.concat_tables([out, pa.Table.from_pylist(direct, schema=out.schema)])
    if out.num_rows != len(jobs) + len(direct):
        raise RuntimeError(
            f"generate: {len(jobs) + len(direct)} images planned, {out.num_rows} made"
        )
    lake.write_table("bench/images", out)
    log.clear()
    counts = Counter(out["status"].to_pylist())
    done = out.filter(pc.equal(out["status"], "done"))
    ctx.details.update(
        images=out.num_rows,
        done=counts.get("done", 0),
        failed=counts.get("failed", 0) - len(direct),  # render failures: a rerun retries them
        failed_for_missing_input=len(direct),
        model=model,
        smoke_model=smoke,
        unique_files=len(set(done["sha256"].to_pylist())),
    )
    ctx.console.print(
        f"  bench/images: {counts.get('done', 0):,} made, {counts.get('failed', 0):,} failed"
        + (" — smoke model: the images are noise" if smoke else "")
    )


STAGE = Stage(
    name="generate",
    inputs=("bench/prompts", "bench/rewrites", "bench/users", "silver/user_images"),
    outputs=("bench/images",),
    section="diffusion",
    engine="ray",
    run=run,
    summary="diffusers text-to-image in Ray actors: base + every rewrite, seeded, resumable",
)

if __name__ == "__main__":
    from jobs.entry import stage_main

    stage_main(STAGE)
