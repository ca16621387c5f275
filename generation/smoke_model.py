"""The embedded default's text-to-image model: a tiny Stable Diffusion pipeline (a CLIP
text encoder over a word-level CLIP BPE vocabulary, an AutoencoderKL, a
UNet2DConditionModel, a DDIM scheduler) trained here, seeded, on the lake's history image
posts and their titles, saved as an ordinary diffusers folder and loaded like any other
pipeline (`DiffusionPipeline.from_pretrained`).

It is a smoke model: 32 px, a few CPU minutes of training. What it can learn is what the
lake shows it — which title words go with which colours — so a prompt's words move its
images' colour statistics. `community_check` measures that on held-out words: images of a
prompt made of one subreddit's title words, compared in the lake's image feature space
with every subreddit's posted images.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from generation.sd_pipeline import clip_tokenizer_files, save_sd_pipeline

LABEL = "smoke-sd (a tiny diffusers pipeline trained here on the lake's history image posts)"
MARKER = "zipp_smoke_model.json"
MAX_TOKENS = 40  # titles and benchmark prompts are short; CLIP's 77 is not needed
TEXT_DIM = 64
_WORD = re.compile(r"[a-z0-9]+")


def title_words(text: str) -> list[str]:
    """Lower-case word tokens of a title or prompt."""
    return _WORD.findall(text.lower())


def recaption(title: str, image: bytes) -> str:
    """The title plus the image's own colour and light words (`llm.colour_words` on its
    weight-free colour features), as recaptioned training sets do (DALL-E 3, PixArt): a
    prompt's "cool blue tones" then means to the model what it says, instead of being
    letters outside a vocabulary of title words."""
    from llm.colour_words import colour_words
    from media.image_features import colour_features, named_colours

    words = colour_words([named_colours(colour_features(image))])
    return ", ".join(part for part in (title.strip(), *words) if part)


def vocabulary(titles: list[str], size: int) -> list[str]:
    """The `size` most frequent title words seen at least twice (ties alphabetical)."""
    counts = Counter(w for t in titles for w in title_words(t))
    kept = sorted((w for w, n in counts.items() if n >= 2), key=lambda w: (-counts[w], w))
    return kept[:size]


@dataclass(frozen=True)
class SmokeSpec:
    """How big the model is and how long it trains (the `smoke.*` keys)."""

    size: int = 32
    vocab: int = 3000
    vae_steps: int = 300
    steps: int = 800
    batch_size: int = 32
    lr: float = 1e-3
    uncond_share: float = 0.1
    recaption: bool = True
    seed: int = 0


def build_components(tokenizer, size: int):
    """(text encoder, VAE, UNet, training scheduler) of the smoke pipeline, untrained.
    The VAE halves the side twice (32 px -> 8x8 latents); the UNet pools the prompt into
    its time embedding too (`addition_embed_type="text"`), so a word can move the whole
    image's colours, not only where cross-attention looks."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=TEXT_DIM,
            intermediate_size=2 * TEXT_DIM,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=MAX_TOKENS,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(16, 32, 32),
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=8,
        sample_size=size,
        mid_block_add_attention=False,
    )
    unet = UNet2DConditionModel(
        sample_size=size // 4,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=TEXT_DIM,
        attention_head_dim=8,
        norm_num_groups=8,
        addition_embed_type="text",
        addition_embed_type_num_heads=4,
    )
    # v-prediction on a zero-terminal-SNR schedule sampled with trailing timesteps (Lin et
    # al. 2024): with SD 1.x's schedule the first step never sees pure noise, so an
    # image's overall colour follows its seed's noise more than its prompt
    noise = DDPMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        prediction_type="v_prediction",
        rescale_betas_zero_snr=True,
        timestep_spacing="trailing",
    )
    return text_encoder, vae, unet, noise


def _lr(step: int, total: int, base: float, warmup: int = 50) -> float:
    """Linear warm-up, then cosine to a tenth."""
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return base * (0.1 + 0.45 * (1 + math.cos(math.pi * min(t, 1.0))))


def train_vae(vae, pixels, spec: SmokeSpec, gen, tick: Callable[[float], None]) -> list[float]:
    """Reconstruction (MSE) + a small KL term; returns the loss per step."""
    import torch

    opt = torch.optim.AdamW(vae.parameters(), lr=spec.lr * 2)
    losses = []
    vae.train()
    for step in range(spec.vae_steps):
        for g in opt.param_groups:
            g["lr"] = _lr(step, spec.vae_steps, spec.lr * 2)
        idx = torch.randint(0, len(pixels), (spec.batch_size,), generator=gen)
        x = pixels[idx]
        post = vae.encode(x).latent_dist
        recon = vae.decode(post.sample(generator=gen)).sample
        loss = torch.nn.functional.mse_loss(recon, x) + 1e-6 * post.kl().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
        tick(losses[-1])
    vae.eval()
    return losses


def train_denoiser(
    text_encoder, unet, noise, latents, ids, empty_ids, spec: SmokeSpec, gen, tick
) -> list[float]:
    """UNet + text encoder on v-prediction; `uncond_share` of titles dropped to ''
    so classifier-free guidance has an unconditional branch. `latents` are
    (mean, std) of the VAE posterior, scaled; a fresh latent is drawn each step."""
    import torch

    mean, std = latents
    params = list(unet.parameters()) + list(text_encoder.parameters())
    opt = torch.optim.AdamW(params, lr=spec.lr)
    losses = []
    unet.train()
    text_encoder.train()
    for step in range(spec.steps):
        for g in opt.param_groups:
            g["lr"] = _lr(step, spec.steps, spec.lr)
        idx = torch.randint(0, len(mean), (spec.batch_size,), generator=gen)
        z = mean[idx] + std[idx] * torch.randn(mean[idx].shape, generator=gen)
        if torch.rand((), generator=gen) < 0.5:
            z = z.flip(-1)  # colours do not care which way an image faces
        tok = ids[idx].clone()
        drop = torch.rand(len(idx), generator=gen) < spec.uncond_share
        tok[drop] = empty_ids
        eps = torch.randn(z.shape, generator=gen)
        t = torch.randint(0, noise.config.num_train_timesteps, (len(idx),), generator=gen)
        noisy = noise.add_noise(z, eps, t)
        pred = unet(noisy, t, encoder_hidden_states=text_encoder(tok)[0]).sample
        loss = torch.nn.functional.mse_loss(pred, noise.get_velocity(z, eps, t))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(float(loss))
        tick(losses[-1])
    unet.eval()
    text_encoder.eval()
    return losses


def to_pixels(images: list[bytes], size: int):
    """PNG/JPEG bytes -> a float tensor (N, 3, size, size) in [-1, 1]."""
    import io

    import torch
    from PIL import Image

    arr = np.stack(
        [
            np.asarray(
                Image.open(io.BytesIO(b)).convert("RGB").resize((size, size), Image.BILINEAR),
                dtype=np.float32,
            )
            for b in images
        ]
    )
    return torch.from_numpy(arr / 127.5 - 1.0).permute(0, 3, 1, 2).contiguous()


def train_smoke_pipeline(
    images: list[bytes],
    titles: list[str],
    spec: SmokeSpec,
    out: str | Path,
    key: str,
    progress: Callable[[str, int, float], None] = lambda phase, total, loss: None,
) -> dict:
    """Train the smoke pipeline on (image, title) pairs and save it under `out` (a
    diffusers folder with `MARKER`); returns the training record (losses, sizes).
    Seeded by `spec.seed`: the same data and spec give the same weights."""
    import torch
    from diffusers import DDIMScheduler
    from transformers import CLIPTokenizer

    if not images:
        raise ValueError("smoke model: no history images to train on")
    out = Path(out)
    torch.manual_seed(spec.seed)
    gen = torch.Generator().manual_seed(spec.seed)
    words = vocabulary(titles, spec.vocab)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    clip_tokenizer_files(tmp / "tok", words)
    tokenizer = CLIPTokenizer(
        str(tmp / "tok" / "vocab.json"),
        str(tmp / "tok" / "merges.txt"),
        model_max_length=MAX_TOKENS,
    )
    text_encoder, vae, unet, noise = build_components(tokenizer, spec.size)
    pixels = to_pixels(images, spec.size)

    def ids_of(texts: list[str]):
        return tokenizer(
            texts, padding="max_length", max_length=MAX_TOKENS, truncation=True, return_tensors="pt"
        ).input_ids

    vae_losses = train_vae(
        vae, pixels, spec, gen, lambda loss: progress("vae", spec.vae_steps, loss)
    )
    with torch.no_grad():
        post = [vae.encode(pixels[i : i + 256]).latent_dist for i in range(0, len(pixels), 256)]
        mean = torch.cat([p.mean for p in post])
        std = torch.cat([p.std for p in post])
    scale = float(1.0 / mean.std())
    vae.register_to_config(scaling_factor=scale)
    latents = (mean * scale, std * scale)
    losses = train_denoiser(
        text_encoder,
        unet,
        noise,
        latents,
        ids_of([t.lower() for t in titles]),
        ids_of([""])[0],
        spec,
        gen,
        lambda loss: progress("denoiser", spec.steps, loss),
    )
    scheduler = DDIMScheduler.from_config(
        noise.config, clip_sample=False, set_alpha_to_one=False, steps_offset=1
    )
    record = {
        "label": LABEL,
        "key": key,
        "image_size": spec.size,
        "images": len(images),
        "vocabulary": len(words),
        "vae_loss": vae_losses,
        "denoiser_loss": losses,
        "latent_scale": scale,
    }
    parts = {"vae": vae, "text_encoder": text_encoder, "tokenizer": tokenizer, "unet": unet}
    info = {k: v for k, v in record.items() if "loss" not in k}
    save_sd_pipeline(parts | {"scheduler": scheduler}, tmp, out, MARKER, info)
    return record


def marker(path: str | Path) -> dict | None:
    """The smoke model's marker (label, content key, sizes), None for any other folder."""
    f = Path(path) / MARKER
    return json.loads(f.read_text()) if f.exists() else None


def distinctive_words(titles_by_group: dict[str, list[str]], n: int, vocab: set[str]) -> dict:
    """Each group's `n` title words by tf-idf over groups (words in the model's
    vocabulary only), strongest first."""
    counts = {
        g: Counter(w for t in ts for w in title_words(t) if w in vocab)
        for g, ts in titles_by_group.items()
    }
    df = Counter(w for c in counts.values() for w in c)
    groups = len(counts)
    out = {}
    for g, c in counts.items():
        score = {w: k * math.log(groups / df[w]) for w, k in c.items()}
        out[g] = sorted((w for w in score if score[w] > 0), key=lambda w: (-score[w], w))[:n]
    return out


def nearest_group_ranks(generated: dict[str, np.ndarray], real: dict[str, np.ndarray]) -> dict:
    """For each group's generated images: the rank (1 = nearest) of its own group's
    posted-image centroid among all groups' centroids, in z-scored feature space, and the
    mean distance to its own centroid and to the others'."""
    names = sorted(real)
    allreal = np.concatenate([real[g] for g in names])
    mu, sd = allreal.mean(0), allreal.std(0) + 1e-6
    cent = np.stack([((real[g] - mu) / sd).mean(0) for g in names])
    out = {}
    for g, vecs in generated.items():
        z = (vecs - mu) / sd
        d = np.linalg.norm(z[:, None, :] - cent[None, :, :], axis=-1)  # (images, groups)
        own = names.index(g)
        ranks = 1 + (d < d[:, [own]]).sum(1)
        others = np.delete(d, own, axis=1)
        out[g] = {
            "rank": float(ranks.mean()),
            "nearest_share": float((ranks == 1).mean()),
            "own_distance": float(d[:, own].mean()),
            "other_distance": float(others.mean()),
        }
    return out
