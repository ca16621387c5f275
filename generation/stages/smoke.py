"""Stage `smoke`: the embedded default's text-to-image model (`diffusion.model: null`)
trained on the lake's history image posts and their titles -> models/smoke-diffusion
(`pipeline/`: a diffusers folder; `training.parquet`: the loss curves; `check.parquet`:
the community check).

History only (`io.history("silver/user_images")`): no image or title of a held-out
reference post is ever trained on, so the benchmark's references stay unseen. Cached by
content: when the fetched images, titles and `smoke.*` settings give the key the saved
model was trained for, the model is kept as it is.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from contract.stage import Stage
from contract.stage_io import StageIO
from schemas.tables import SMOKE_MODEL

OUT = SMOKE_MODEL
PIPELINE = "pipeline"
VERSION = "smoke-v1"  # bump when training changes what the same data gives
CHECK_GROUPS = 16  # subreddits in the community check
CHECK_WORDS = 5  # distinctive title words per check prompt
CHECK_IMAGES = 8  # images per check prompt
CHECK_MIN_IMAGES = 10  # a subreddit needs this many history images to be checked


def fetch_all(io: StageIO, urls: list[str]) -> list[bytes | None]:
    """Every URL through the hostile-URL fetcher (None where it refused or failed)."""
    from media.fetch import FetchError, fetch_image

    c = io.config.images

    def one(url: str) -> bytes | None:
        try:
            return fetch_image(url, c.allow_hosts, timeout=c.timeout_s, max_bytes=c.max_mb << 20)
        except FetchError:
            return None

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, urls))


def content_key(spec, rows: list[dict], payloads: list[bytes]) -> str:
    """What the model is a function of: the images' bytes, their titles, the settings."""
    h = hashlib.sha256(f"{VERSION}\0{json.dumps(spec.__dict__, sort_keys=True)}".encode())
    for r, b in zip(rows, payloads, strict=True):
        h.update(f"{r['post_id']}\0{r['position']}\0{r['title'] or ''}\0".encode())
        h.update(hashlib.sha256(b).digest())
    return h.hexdigest()[:24]


def community_check(pipe_path, rows, payloads, encoder: str, seed: int) -> list[dict]:
    """The measure of a text-responsive model, on the lake's own groups (subreddits, not
    the sample world's truth): for each of the `CHECK_GROUPS` subreddits with the most
    history images, a prompt of its `CHECK_WORDS` most distinctive title words, rendered
    `CHECK_IMAGES` times; its images' rank of that subreddit's posted-image centroid
    among all checked subreddits' (1 = nearest; chance = (groups + 1) / 2)."""
    import torch

    from generation.diffusion import RenderSpec, load_pipeline, png_bytes
    from generation.smoke_model import distinctive_words, nearest_group_ranks
    from media.image_embed import embed_payloads as embed

    by_sub: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_sub.setdefault(r["subreddit"], []).append(i)
    subs = sorted(
        (s for s, v in by_sub.items() if len(v) >= CHECK_MIN_IMAGES),
        key=lambda s: (-len(by_sub[s]), s),
    )[:CHECK_GROUPS]
    if len(subs) < 2:
        return []
    pipe = load_pipeline(RenderSpec(model=str(pipe_path)))
    vocab = set(pipe.tokenizer.get_vocab())
    vocab = {w[: -len("</w>")] for w in vocab if w.endswith("</w>")}
    words = distinctive_words(
        {s: [rows[i]["title"] or "" for i in by_sub[s]] for s in subs}, CHECK_WORDS, vocab
    )
    real = {s: embed(encoder, [payloads[i] for i in by_sub[s]]) for s in subs}
    generated, prompts = {}, {}
    for k, s in enumerate(subs):
        prompts[s] = " ".join(words[s])
        gens = [
            torch.Generator().manual_seed(seed * 1000 + k * 50 + j) for j in range(CHECK_IMAGES)
        ]
        images = pipe(
            [prompts[s]] * CHECK_IMAGES,
            generator=gens,
            num_inference_steps=10,
            guidance_scale=5.0,
            output_type="pil",
        ).images
        generated[s] = embed(encoder, [png_bytes(im) for im in images])
    ranks = nearest_group_ranks(generated, real)
    return [
        {
            "subreddit": s,
            "prompt": prompts[s],
            "posted_images": len(by_sub[s]),
            "generated_images": CHECK_IMAGES,
            "groups": len(subs),
            **ranks[s],
        }
        for s in subs
    ]


def smoke(io: StageIO) -> None:
    """silver/user_images (history) -> models/smoke-diffusion (cached by content)."""
    import torch

    from generation.smoke_model import SmokeSpec, marker, recaption, train_smoke_pipeline
    from llm.llm_stage import progress_bar

    if io.config.diffusion.model:
        io.details.update(skipped=f"diffusion.model is {io.config.diffusion.model}")
        io.console.print("  smoke: not needed, diffusion.model names a pipeline")
        return
    c = io.config.smoke
    spec = SmokeSpec(
        size=c.size,
        vocab=c.vocab,
        vae_steps=c.vae_steps,
        steps=c.steps,
        batch_size=c.batch_size,
        lr=c.lr,
        uncond_share=c.uncond_share,
        recaption=c.recaption,
        seed=c.seed,
    )
    imgs = io.history(
        "silver/user_images",
        ["post_id", "position", "title", "image_url", "subreddit", "created_utc"],
    )
    imgs = imgs.sort_by(
        [("created_utc", "descending"), ("post_id", "ascending"), ("position", "ascending")]
    )
    rows = imgs.slice(0, c.max_images).to_pylist()
    rows.sort(key=lambda r: (r["post_id"], r["position"]))
    with io.console.status(f"smoke: fetching {len(rows):,} history images"):
        fetched = fetch_all(io, [r["image_url"] for r in rows])
    kept = [(r, b) for r, b in zip(rows, fetched, strict=True) if b is not None]
    rows, payloads = [r for r, _ in kept], [b for _, b in kept]
    io.details.update(
        history_images=len(fetched), trained_on=len(rows), fetch_failed=len(fetched) - len(rows)
    )
    key = content_key(spec, rows, payloads)
    current = marker(io.path(OUT) / PIPELINE)
    if current is not None and current.get("key") == key:
        io.details.update(key=key, cached=True)
        io.console.print(f"  smoke: model {key} is current for these images (cached)")
        return
    emb = io.read("silver/image_embeddings", ["encoder"])
    encoder = emb["encoder"][0].as_py() if emb.num_rows else "colour-v1"
    staged = io.lake.staging("smoke", "smoke-diffusion")
    import shutil

    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir(parents=True)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    with progress_bar(io.console) as bar:
        tasks: dict[str, int] = {}

        def progress(phase: str, total: int, loss: float) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(f"smoke: train {phase}", total=total, counts="")
            bar.update(tasks[phase], advance=1, counts=f"loss {loss:.4f}")

        titles = [r["title"] or "" for r in rows]
        if spec.recaption:
            titles = [recaption(t, b) for t, b in zip(titles, payloads, strict=True)]
        record = train_smoke_pipeline(payloads, titles, spec, staged / PIPELINE, key, progress)
    curve = [("vae", i, v) for i, v in enumerate(record["vae_loss"])]
    curve += [("denoiser", i, v) for i, v in enumerate(record["denoiser_loss"])]
    pq.write_table(
        pa.table(
            {
                "phase": [p for p, _, _ in curve],
                "step": pa.array([s for _, s, _ in curve], pa.int32()),
                "loss": [v for _, _, v in curve],
            }
        ),
        staged / "training.parquet",
    )
    with io.console.status("smoke: community check"):
        check = community_check(staged / PIPELINE, rows, payloads, encoder, spec.seed)
    if check:
        pq.write_table(pa.Table.from_pylist(check), staged / "check.parquet")
    io.commit(OUT, staged)
    tail = record["denoiser_loss"][-100:]
    summary = {
        "key": key,
        "cached": False,
        "vocabulary": record["vocabulary"],
        "denoiser_loss_last100": round(float(np.mean(tail)), 4) if tail else None,
        "encoder": encoder,
    }
    if check:
        groups = check[0]["groups"]
        summary |= {
            "check_groups": groups,
            "check_mean_rank": round(float(np.mean([r["rank"] for r in check])), 2),
            "check_chance_rank": (groups + 1) / 2,
            "check_nearest_share": round(float(np.mean([r["nearest_share"] for r in check])), 3),
            "check_own_distance": round(float(np.mean([r["own_distance"] for r in check])), 3),
            "check_other_distance": round(float(np.mean([r["other_distance"] for r in check])), 3),
        }
    io.details.update(summary)
    io.console.print(
        f"  smoke: trained on {len(rows):,} images"
        + (
            f"; community check: own subreddit's images rank {summary['check_mean_rank']} "
            f"of {summary['check_groups']} (chance {summary['check_chance_rank']}), nearest "
            f"for {summary['check_nearest_share']:.0%}"
            if check
            else ""
        )
    )


STAGE = Stage(
    name="smoke",
    run=smoke,
    engine="local",
    inputs=("silver/image_embeddings",),
    history=("silver/user_images",),
    outputs=(OUT,),
    config=("smoke", "diffusion.model", "images.allow_hosts", "images.timeout_s", "images.max_mb"),
    summary="train the embedded default's tiny text-to-image model on history image posts",
)
