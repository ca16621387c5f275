"""Stage `generate`: every benchmark prompt (the base prompt under each generate-made
method of `schemas.methods`, and each rewrite, each seed) rendered by the configured
diffusers pipeline in Ray actors -> bench/images + PNGs under the lake's media/.

Resumable per image (`io.resumable`). The image-conditioned methods (Pigeon) are
conditioned on the user's history images, `io.history("silver/user_images")`: no image
of a held-out reference post (gallery siblings included) is ever conditioning. After
bench/images is written, every file under media/ that no row references is removed (a
deleted user's images disappear with their rows).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from contract.stage import Stage
from contract.stage_io import StageIO
from schemas.persona import NO_LLM  # the llm of a row made without an LLM (base, pigeon)
from schemas.tables import MEDIA, SMOKE_MODEL


def model_path(io: StageIO) -> tuple[str, str, bool]:
    """(pipeline path or id, its name in rows, is the smoke model). `diffusion.model:
    null` is the smoke model stage `smoke` trained on this lake, named in rows by its
    place and content key (so no image id depends on the lake root, and a retrained
    model redoes every image)."""
    from generation.smoke_model import marker
    from generation.stages.smoke import PIPELINE

    if io.config.diffusion.model:
        return io.config.diffusion.model, io.config.diffusion.model, False
    path = io.path(SMOKE_MODEL) / PIPELINE
    found = marker(path)
    if found is None:
        raise FileNotFoundError(
            f"no smoke model at {path}: run stage smoke first (diffusion.model is null)"
        )
    return str(path), f"lake:{SMOKE_MODEL}@{found['key']}", True


def image_id(*parts: object) -> str:
    """A bench/images row key: the record, the model and the sampling settings."""
    return hashlib.sha1("\0".join(map(str, parts)).encode()).hexdigest()[:20]


def history_images(io: StageIO, prompts: list[dict]) -> dict[tuple, tuple[bytes, ...]]:
    """Per (user, prompt id), the user's history images (never a held-out reference
    post's) that condition IP-Adapter, up to `diffusion.history_images`, fetched again
    with the hostile-URL fetcher (one that cannot be fetched gives way to the next).
    Pigeon's noisy-history filter (`diffusion.history_filter`): the images whose post
    titles are most similar to the prompt (sentence-transformers, as `history` ranks
    titles); off: the user's newest images, the same for every prompt."""
    from generation.rewrite import most_similar
    from generation.stages.rewrite import embed_texts
    from media.fetch import FetchError, fetch_image

    c, d = io.config.images, io.config.diffusion
    imgs = io.history("silver/user_images", ["user_id", "image_url", "title", "created_utc"])
    imgs = imgs.sort_by([("created_utc", "descending")])
    cand: dict[int, list[tuple[str, str]]] = {p["user_id"]: [] for p in prompts}
    cols = (imgs[k].to_pylist() for k in ("user_id", "image_url", "title"))
    for u, url, t in zip(*cols, strict=True):
        if u in cand:
            cand[u].append((url, " ".join((t or "").split())))
    vecs: dict = {}
    if d.history_filter:
        texts = {t for v in cand.values() for _, t in v} | {p["prompt"] for p in prompts}
        vecs = embed_texts(io, sorted(texts))
    got: dict[str, bytes | None] = {}

    def fetch(url: str) -> bytes | None:
        if url not in got:
            try:
                got[url] = fetch_image(
                    url, c.allow_hosts, timeout=c.timeout_s, max_bytes=c.max_mb << 20
                )
            except FetchError:
                got[url] = None  # fewer conditioning images; none at all fails the row
        return got[url]

    out = {}
    for p in prompts:
        rows = cand[p["user_id"]]
        order = range(len(rows))
        if d.history_filter and rows:
            titles = np.stack([vecs[t] for _, t in rows])
            order = most_similar(vecs[p["prompt"]], titles, len(rows)).tolist()
        picked: list[bytes] = []
        for i in order:
            if len(picked) >= d.history_images:
                break
            if (b := fetch(rows[i][0])) is not None:
                picked.append(b)
        out[(p["user_id"], p["prompt_id"])] = tuple(picked)
    return out


def viper_inputs(io: StageIO, rewrites: list[dict]) -> dict[tuple, tuple[str, str, str]]:
    """(base prompt, likes, dislikes) of each done `viper` rewrite row, keyed by (user,
    prompt id, method, llm), from the same model's gold/visual_preferences: what ViPer's
    guidance needs where the pipeline takes prompt embeddings."""
    rows = [r for r in rewrites if r["method"] == "viper" and r["status"] == "done"]
    if not rows:
        return {}
    prefs = {
        (p["user_id"], p["llm"]): p
        for p in io.read("gold/visual_preferences").to_pylist()
        if p["status"] == "done"
    }
    out = {}
    for r in rows:
        p = prefs.get((r["user_id"], r["llm"]))
        if p is not None:
            likes, dislikes = ", ".join(p["likes"] or []), ", ".join(p["dislikes"] or [])
            out[(r["user_id"], r["prompt_id"], "viper", r["llm"])] = (
                r["base_prompt"],
                likes,
                dislikes,
            )
    return out


def plan(io: StageIO, model: str, smoke: bool):
    """(jobs to render, their rows' columns by image id, rows made without rendering)."""
    from generation.diffusion import RenderJob, failed_row, record_seed, user_key
    from schemas.methods import generate_methods

    d = io.config.diffusion
    prompts = io.read("bench/prompts").to_pylist()
    made = [m for m in generate_methods() if not m.images or d.ip_adapter]
    # (user, prompt id, method, conditioned on images, llm, prompt, negative, why not made)
    records = [
        (p["user_id"], p["prompt_id"], m.name, m.images, NO_LLM, p["prompt"], None, None)
        for p in prompts
        for m in made
    ]
    rewrites = io.read("bench/rewrites").to_pylist()
    viper = viper_inputs(io, rewrites)
    for r in rewrites:
        why = None if r["status"] == "done" else f"rewrite failed: {r['reason']}"
        records.append(
            (r["user_id"], r["prompt_id"], r["method"], False, r["llm"], r["prompt"])
            + (r["negative_prompt"], why)
        )
    history: dict[tuple, tuple[bytes, ...]] = {}
    if any(m.images for m in made):
        with io.console.status("generate: fetching history images for IP-Adapter"):
            history = history_images(io, prompts)
    adapter = (d.ip_adapter, d.ip_adapter_subfolder, d.ip_adapter_weight, d.ip_adapter_scale)
    keys = {r["user_id"]: user_key(r["references"]) for r in io.read("bench/users").to_pylist()}
    jobs, meta, direct = [], {}, []
    for user, pid, name, images, llm, prompt, negative, why in records:
        cond = history.get((user, pid), ()) if images else ()
        # an image-conditioned image also depends on the adapter and the exact images
        conditioning = (
            [image_id(*adapter, *(hashlib.sha256(b).hexdigest() for b in cond))] if images else []
        )
        if images and not cond and why is None:
            why = "no history image could be fetched for IP-Adapter"
        guide = viper.get((user, pid, name, llm))
        # a ViPer image also depends on its guidance weight and the three texts
        guidance = [d.viper_lambda, *guide] if guide else []
        for k in range(d.seeds):
            seed = record_seed(keys[user], pid, k)
            iid = image_id(
                keys[user],
                pid,
                name,
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
                *guidance,
            )
            cols = {
                "image_id": iid,
                "user_id": user,
                "prompt_id": pid,
                "method": name,
                "llm": llm,
                "seed_index": k,
                "seed": seed,
                "prompt": prompt or "",
                "negative_prompt": negative,
                "model": model,
                "smoke_model": smoke,
            }
            if why is not None:
                direct.append(cols | failed_row(iid, why))
                continue
            meta[iid] = cols
            jobs.append(RenderJob(iid, prompt, negative, seed, cond, guide))
    return jobs, meta, direct


def remove_orphans(io: StageIO, images: pa.Table) -> int:
    """Delete every file under media/ that no row of `images` (bench/images) references:
    images of rows that are gone (a deleted user's, an old model's) and partial files of
    a killed run. Returns the files removed."""
    media = io.path(MEDIA)
    if not media.exists():
        return 0
    root = media.parent
    kept = {p for p in images["path"].to_pylist() if p}
    removed = 0
    for f in sorted(media.rglob("*")):
        if (f.is_file() or f.is_symlink()) and f.relative_to(root).as_posix() not in kept:
            f.unlink()
            removed += 1
    for d in sorted((p for p in media.rglob("*") if p.is_dir()), reverse=True):
        if not any(d.iterdir()):
            d.rmdir()
    return removed


def generate(io: StageIO) -> None:
    """bench/prompts + bench/rewrites -> bench/images (resumable per image), then media/
    holds exactly the files bench/images references."""
    from generation.diffusion import fan_out_render, render_spec
    from llm.llm_stage import progress_bar
    from schemas.bench import BENCH_IMAGES

    d = io.config.diffusion
    model, name, smoke = model_path(io)
    jobs, meta, direct = plan(io, name, smoke)
    resume = io.resumable("bench/images", "image_id", [j.image_id for j in jobs])
    todo = set(resume.pending)
    pending = [j for j in jobs if j.image_id in todo]
    spec = render_spec(io.config.diffusion, model)
    status: Counter = Counter()
    if pending:
        with io.console.status("generate: starting Ray"):
            io.ray()
        lake_root = str(Path(io.path(MEDIA)).parent)
        with progress_bar(io.console) as bar:
            task = bar.add_task(
                f"generate {model.rsplit('/', 1)[-1]}", total=len(pending), counts=""
            )

            def on_batch(batch, rows) -> None:
                resume.log(
                    pa.Table.from_pylist([meta[r["image_id"]] | r for r in rows], BENCH_IMAGES)
                )
                status.update(r["status"] for r in rows)
                bar.update(
                    task, advance=len(rows), counts=" ".join(f"{k}={v}" for k, v in status.items())
                )

            plain = [j for j in pending if not j.history]
            cond = [j for j in pending if j.history]
            fan_out_render(plain, spec, lake_root, d.actors, on_batch)
            if cond:
                ip = replace(
                    spec,
                    ip_adapter=d.ip_adapter,
                    ip_adapter_subfolder=d.ip_adapter_subfolder,
                    ip_adapter_weight=d.ip_adapter_weight,
                    ip_adapter_scale=d.ip_adapter_scale,
                )
                fan_out_render(cond, ip, lake_root, d.actors, on_batch)
    out = resume.result(direct, plan=meta)  # a reused image gets this run's dense ids
    io.write("bench/images", out)
    io.removed("media files", remove_orphans(io, out))
    counts = Counter(out["status"].to_pylist())
    done = out.filter(pc.equal(out["status"], "done"))
    io.details.update(
        images=out.num_rows,
        done=counts.get("done", 0),
        failed=counts.get("failed", 0) - len(direct),  # render failures: a rerun retries them
        failed_for_missing_input=len(direct),
        model=model,
        smoke_model=smoke,
        rendered=len(pending),  # images made this run; the rest reused by image id
        reused=resume.resumed,
        unique_files=len(set(done["sha256"].to_pylist())),
    )
    io.console.print(
        f"  bench/images: {counts.get('done', 0):,} made, {counts.get('failed', 0):,} failed"
        + (" — smoke model (trained here, 32 px)" if smoke else "")
    )


STAGE = Stage(
    name="generate",
    run=generate,
    engine="ray",
    inputs=(
        "bench/prompts",
        "bench/rewrites",
        "bench/users",
        "gold/visual_preferences",
        SMOKE_MODEL,
    ),
    history=("silver/user_images",),
    outputs=("bench/images",),
    folders=(MEDIA,),
    config=(
        "diffusion",
        "features.text_model",
        "images.allow_hosts",
        "images.timeout_s",
        "images.max_mb",
    ),
    summary="diffusers text-to-image in Ray actors: base + every rewrite, seeded, resumable",
)
