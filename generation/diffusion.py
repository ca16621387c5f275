"""Diffusion fan-out: any diffusers text-to-image pipeline in Ray actors, batched, one
deterministic seed per record, negative prompts, and an image-conditioned path
(IP-Adapter) for the Pigeon-style history baseline. Images are stored by content hash."""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RenderSpec:
    """How to load and run the pipeline (the `diffusion.*` keys)."""

    model: str
    steps: int = 30
    guidance_scale: float = 7.5
    height: int | None = None
    width: int | None = None
    batch_size: int = 8
    num_gpus: float = 0.0
    num_cpus: int | None = None  # CPU actors: cores each (None: an even share of the cluster)
    compile: bool = False
    ip_adapter: str | None = None  # repo/path; enables the image-conditioned path
    ip_adapter_subfolder: str = "models"
    ip_adapter_weight: str = "ip-adapter_sd15.bin"
    ip_adapter_scale: float = 0.6
    viper_lambda: float = 0.85  # ViPer's weight of likes/dislikes in its guidance


def render_spec(diffusion: Any, model: str, **changes: Any) -> RenderSpec:
    """The `RenderSpec` of the `diffusion` config section for `model` (`changes` replace
    fields: the service renders one image at a time)."""
    spec = RenderSpec(
        model=model,
        steps=diffusion.steps,
        guidance_scale=diffusion.guidance_scale,
        height=diffusion.height,
        width=diffusion.width,
        batch_size=diffusion.batch_size,
        num_gpus=diffusion.num_gpus,
        num_cpus=diffusion.num_cpus,
        compile=diffusion.compile,
        viper_lambda=diffusion.viper_lambda,
    )
    return replace(spec, **changes)


@dataclass(frozen=True)
class RenderJob:
    """One image to make."""

    image_id: str
    prompt: str
    negative_prompt: str | None
    seed: int
    history: tuple[bytes, ...] = field(default=(), repr=False)  # IP-Adapter conditioning
    #: ViPer: (base prompt, likes, dislikes) for its guidance where the pipeline takes
    #: prompt embeddings; elsewhere `prompt` (likes appended) and `negative_prompt` are used
    viper: tuple[str, str, str] | None = None


def user_key(references: list[str]) -> str:
    """A benchmark user's stable key for seeds and row ids: a digest of their held-out
    reference posts (Reddit's own ids). Dense user ids shift when a deletion request
    removes a user; this key does not, so no remaining user inherits a deleted user's
    seeds and no one's images are redone because someone else left."""
    return hashlib.sha256(",".join(sorted(references)).encode()).hexdigest()[:16]


def record_seed(user: str, prompt_id: str, k: int) -> int:
    """The seed of the k-th image of a (user key, base prompt): shared by every method,
    so methods are compared from the same starting noise."""
    return int(hashlib.sha256(f"{user}:{prompt_id}:{k}".encode()).hexdigest()[:8], 16)


def image_path(digest: str) -> str:
    """Where an image lives, relative to the lake root: media/<2 hex>/<sha256>.png."""
    return f"media/{digest[:2]}/{digest}.png"


def load_pipeline(spec: RenderSpec):
    """`DiffusionPipeline.from_pretrained` on the actor's device; fp16 and optional
    `torch.compile` of the UNet/transformer on GPU."""
    import torch
    from diffusers import DiffusionPipeline

    gpu = spec.num_gpus > 0 and torch.cuda.is_available()
    dtype = torch.float16 if gpu else torch.float32
    pipe = DiffusionPipeline.from_pretrained(spec.model, torch_dtype=dtype)
    pipe = pipe.to("cuda" if gpu else "cpu")
    pipe.set_progress_bar_config(disable=True)
    if spec.ip_adapter:
        pipe.load_ip_adapter(
            spec.ip_adapter, subfolder=spec.ip_adapter_subfolder, weight_name=spec.ip_adapter_weight
        )
        pipe.set_ip_adapter_scale(spec.ip_adapter_scale)
    if gpu and spec.compile:
        denoiser = "unet" if hasattr(pipe, "unet") else "transformer"
        setattr(pipe, denoiser, torch.compile(getattr(pipe, denoiser), mode="reduce-overhead"))
    return pipe


def png_bytes(image) -> bytes:
    """A PIL image as PNG bytes (deterministic for the same pixels)."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def render(pipe, spec: RenderSpec, jobs: list[RenderJob]) -> list:
    """One pipeline call for a batch, a generator per image seeded by its record. ViPer
    jobs get ViPer's guidance (`generation.viper_guidance`) where the pipeline takes prompt
    embeddings. With an IP-Adapter, one call per job: diffusers conditions a whole call on
    one image set, and each job brings its own user's history images."""
    from PIL import Image

    from generation.viper_guidance import supports_viper_guidance

    if not spec.ip_adapter:
        guided = [j for j in jobs if j.viper] if supports_viper_guidance(pipe) else []
        plain = [j for j in jobs if j not in guided]
        made = dict(zip(map(id, plain), _call(pipe, spec, plain) if plain else [], strict=True))
        made |= dict(
            zip(map(id, guided), _viper(pipe, spec, guided) if guided else [], strict=True)
        )
        return [made[id(j)] for j in jobs]
    return [
        image
        for j in jobs
        for image in _call(
            pipe,
            spec,
            [j],
            ip_adapter_image=[[Image.open(io.BytesIO(b)).convert("RGB") for b in j.history]],
        )
    ]


def _viper(pipe, spec: RenderSpec, jobs: list[RenderJob]) -> list:
    from generation.viper_guidance import viper_render

    return viper_render(
        pipe,
        [j.viper[0] for j in jobs],
        [j.viper[1] for j in jobs],
        [j.viper[2] for j in jobs],
        [j.seed for j in jobs],
        spec.steps,
        spec.guidance_scale,
        lam=spec.viper_lambda,
        height=spec.height,
        width=spec.width,
    )


def _call(pipe, spec: RenderSpec, jobs: list[RenderJob], **extra) -> list:
    import torch

    device = pipe.device if pipe.device.type != "mps" else "cpu"
    kwargs = {
        "prompt": [j.prompt for j in jobs],
        "negative_prompt": [j.negative_prompt or "" for j in jobs],
        "generator": [torch.Generator(device=device).manual_seed(j.seed) for j in jobs],
        "num_inference_steps": spec.steps,
        "guidance_scale": spec.guidance_scale,
        "output_type": "pil",
        **extra,
    }
    if spec.height and spec.width:
        kwargs |= {"height": spec.height, "width": spec.width}
    return pipe(**kwargs).images


class Renderer:
    """A Ray actor holding one pipeline; `run` renders a batch, stores each PNG under the
    lake by its sha256 and returns one row per job (failed rows carry the reason)."""

    def __init__(self, spec: RenderSpec, lake_root: str, threads: int | None = None):
        if threads:  # Ray sets OMP_NUM_THREADS to the actor's CPUs; torch may read it late
            import torch

            torch.set_num_threads(threads)
        self.spec = spec
        self.root = Path(lake_root)
        self.pipe = load_pipeline(spec)

    def run(self, jobs: list[RenderJob]) -> list[dict]:
        t0 = time.perf_counter()
        try:
            images = render(self.pipe, self.spec, jobs)
        except Exception as e:  # one bad batch must not end the run: rows say why
            if len(jobs) > 1:  # retry one by one to isolate the record that broke it
                return [row for j in jobs for row in self.run([j])]
            return [failed_row(jobs[0].image_id, f"{type(e).__name__}: {e}"[:300])]
        share = (time.perf_counter() - t0) / len(jobs)
        return [self._store(j, im, share) for j, im in zip(jobs, images, strict=True)]

    def threads(self) -> int:
        """torch's intra-op threads in this actor."""
        import torch

        return torch.get_num_threads()

    def _store(self, job: RenderJob, image, seconds: float) -> dict:
        data = png_bytes(image)
        digest = hashlib.sha256(data).hexdigest()
        rel = image_path(digest)
        path = self.root / rel
        if not path.exists():  # content-addressed: a rerun writes nothing twice
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{job.image_id}.tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
        return {
            "image_id": job.image_id,
            "status": "done",
            "reason": None,
            "path": rel,
            "sha256": digest,
            "width": image.width,
            "height": image.height,
            "seconds": seconds,
        }


def failed_row(image_id: str, reason: str) -> dict:
    """A `Renderer` row for an image that was not made, and why."""
    return {
        "image_id": image_id,
        "status": "failed",
        "reason": reason,
        "path": None,
        "sha256": None,
        "width": None,
        "height": None,
        "seconds": 0.0,
    }


def actor_resources(spec: RenderSpec, actors: int) -> tuple[dict, int | None]:
    """Ray options of one render actor and its torch threads (None on GPU)."""
    import ray

    if spec.num_gpus:
        return {"num_gpus": spec.num_gpus}, None
    cpus = spec.num_cpus or max(1, int(ray.cluster_resources().get("CPU", 1)) // actors)
    return {"num_cpus": cpus}, cpus


def fan_out_render(
    jobs: list[RenderJob],
    spec: RenderSpec,
    lake_root: str,
    actors: int,
    on_batch: Callable[[list[RenderJob], list[dict]], None],
) -> None:
    """Render `jobs` over `actors` Ray actors (`num_gpus` each, or on CPU `num_cpus` cores
    each, by default an even share of the cluster's CPUs), two batches queued per actor;
    `on_batch` gets every finished batch (for the resume log and progress)."""
    import ray

    from engines.ray import feed_actors

    if not jobs:
        return
    batches = [jobs[i : i + spec.batch_size] for i in range(0, len(jobs), spec.batch_size)]
    n = min(actors, len(batches))
    opts, threads = actor_resources(spec, n)
    cls = ray.remote(Renderer).options(max_concurrency=1, **opts)
    pool = [cls.remote(spec, lake_root, threads) for _ in range(n)]
    try:
        feed_actors(pool, batches, 2, on_batch)
    finally:
        for a in pool:
            ray.kill(a)
