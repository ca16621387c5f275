"""ViPer's guidance on a diffusers pipeline that takes prompt embeddings.

ViPer (Salehi et al., 2024, arXiv:2407.17365) conditions on a user's liked and disliked
visual attributes twice: in the embeddings and in an extra guidance term. Following its
public code (github.com/EPFL-VILAB/ViPer, `pipeline_stable_diffusion_xl.py`, `__call__`:
``prompt_embeds + vp_degree_pos * vp_pos_embeds`` and the guidance line of the denoising
loop, ``vp_degree_pos = vp_degree_neg = 0.85``), with E the pipeline's text encoder:

    c+ = E(prompt) + λ·E(likes)        c− = E(negative) + λ·E(dislikes)    (negative: "")
    ε  = ε(c−) + g·[ε(c+) + λ·ε(E(likes)) − ε(c−) − λ·ε(E(dislikes))]

g is the guidance scale. Without classifier-free guidance (g <= 1, as diffusers decides)
the step uses ε(c+) alone; with λ = 0 the loop is diffusers' own CFG loop.

The loop is the Stable Diffusion pipeline's (diffusers 0.3x-0.4x): the pipeline's own
`encode_prompt`, `prepare_latents` with one seeded `torch.Generator` per image (so a
ViPer image starts from the same noise as a plain image of that seed), its scheduler
(`set_timesteps`, `scale_model_input`, `step`), VAE decode, safety checker and
`image_processor.postprocess`.
"""

from __future__ import annotations

from typing import Any

#: ViPer's default weight of the likes/dislikes (its `vp_degree_pos`, `vp_degree_neg`).
VIPER_LAMBDA = 0.85


def supports_viper_guidance(pipe: Any) -> bool:
    """True for a UNet pipeline with a text encoder, tokenizer, scheduler and VAE whose
    conditioning is the text encoder's hidden states alone (Stable Diffusion 1.x/2.x-like,
    the smoke model's pooled-text time embedding included;
    SDXL's pooled embeddings and time ids are not covered)."""
    parts = ("unet", "text_encoder", "tokenizer", "scheduler", "vae")
    if any(getattr(pipe, p, None) is None for p in parts):
        return False
    if getattr(pipe, "text_encoder_2", None) is not None:
        return False
    unet_config = getattr(pipe.unet, "config", None)
    # "text": the UNet pools the same hidden states into its time embedding (the smoke model)
    return unet_config is not None and getattr(unet_config, "addition_embed_type", None) in (
        None,
        "text",
    )


def _encode(pipe: Any, texts: list[str], negatives: list[str], device) -> tuple:
    """(E(texts), E(negatives)) through the pipeline's own `encode_prompt` (one image each)."""
    if hasattr(pipe, "encode_prompt"):
        pos, neg = pipe.encode_prompt(texts, device, 1, True, negatives)[:2]
        return pos, neg
    return _encode_plain(pipe, texts, device), _encode_plain(pipe, negatives, device)


def _encode_plain(pipe: Any, texts: list[str], device):
    """Text encoder hidden states, padded to the tokenizer's max length (SD's recipe)."""
    tok = pipe.tokenizer(
        texts,
        padding="max_length",
        max_length=pipe.tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    )
    return pipe.text_encoder(tok.input_ids.to(device))[0].to(pipe.text_encoder.dtype)


def _latents(pipe: Any, batch: int, height: int, width: int, dtype, device, generators):
    """The initial noise exactly as the pipeline draws it."""
    channels = pipe.unet.config.in_channels
    if hasattr(pipe, "prepare_latents"):
        return pipe.prepare_latents(batch, channels, height, width, dtype, device, generators)
    from diffusers.utils.torch_utils import randn_tensor

    scale = getattr(pipe, "vae_scale_factor", 8)
    shape = (batch, channels, height // scale, width // scale)
    noise = randn_tensor(shape, generator=generators, device=device, dtype=dtype)
    return noise * pipe.scheduler.init_noise_sigma


def viper_render(
    pipe: Any,
    prompts: list[str],
    likes: list[str],
    dislikes: list[str],
    seeds: list[int],
    steps: int,
    guidance_scale: float,
    lam: float = VIPER_LAMBDA,
    height: int | None = None,
    width: int | None = None,
    negative_prompts: list[str] | None = None,
    eta: float = 0.0,
) -> list:
    """One batch with ViPer's guidance: per image its prompt, comma-joined likes and
    dislikes ("" allowed) and seed; returns PIL images in order."""
    import torch

    n = len(prompts)
    if not (len(likes) == len(dislikes) == len(seeds) == n):
        raise ValueError("prompts, likes, dislikes and seeds must have one entry per image")
    if not supports_viper_guidance(pipe):
        raise ValueError(f"{type(pipe).__name__} takes no prompt embeddings ViPer can guide")
    negatives = list(negative_prompts) if negative_prompts is not None else [""] * n
    device = getattr(pipe, "_execution_device", None) or pipe.device
    gen_device = device if torch.device(device).type != "mps" else "cpu"
    generators = [torch.Generator(device=gen_device).manual_seed(int(s)) for s in seeds]
    scale = getattr(pipe, "vae_scale_factor", 8)
    height = height or pipe.unet.config.sample_size * scale
    width = width or pipe.unet.config.sample_size * scale
    time_cond_dim = getattr(pipe.unet.config, "time_cond_proj_dim", None)
    cfg = guidance_scale > 1 and time_cond_dim is None  # diffusers' own rule
    viper = lam != 0
    with torch.no_grad():
        text, uncond = _encode(pipe, list(prompts), negatives, device)
        if viper:
            liked, disliked = _encode(pipe, list(likes), list(dislikes), device)
            text = text + lam * liked  # c+
            uncond = uncond + lam * disliked  # c−
        cond = torch.cat([uncond, text]) if cfg else text
        if viper and cfg:
            cond = torch.cat([cond, disliked, liked])
        latents = _latents(pipe, n, height, width, text.dtype, device, generators)
        pipe.scheduler.set_timesteps(steps, device=device)
        extra = (
            pipe.prepare_extra_step_kwargs(generators, eta)
            if hasattr(pipe, "prepare_extra_step_kwargs")
            else {}
        )
        timestep_cond = None
        if time_cond_dim is not None:
            g = torch.tensor(guidance_scale - 1).repeat(n)
            timestep_cond = pipe.get_guidance_scale_embedding(g, embedding_dim=time_cond_dim)
            timestep_cond = timestep_cond.to(device=device, dtype=latents.dtype)
        copies = cond.shape[0] // n
        for t in pipe.scheduler.timesteps:
            model_in = torch.cat([latents] * copies) if copies > 1 else latents
            model_in = pipe.scheduler.scale_model_input(model_in, t)
            eps = pipe.unet(
                model_in,
                t,
                encoder_hidden_states=cond,
                timestep_cond=None if timestep_cond is None else timestep_cond.repeat(copies, 1),
                return_dict=False,
            )[0]
            if cfg and viper:
                e_neg, e_pos, e_dis, e_like = eps.chunk(4)
                eps = e_neg + guidance_scale * (e_pos + lam * e_like - e_neg - lam * e_dis)
            elif cfg:
                e_neg, e_pos = eps.chunk(2)
                eps = e_neg + guidance_scale * (e_pos - e_neg)
            latents = pipe.scheduler.step(eps, t, latents, **extra, return_dict=False)[0]
        vae = pipe.vae
        image = vae.decode(latents / vae.config.scaling_factor, return_dict=False)[0]
        nsfw = None
        if hasattr(pipe, "run_safety_checker"):
            image, nsfw = pipe.run_safety_checker(image, device, text.dtype)
        denormalize = [True] * n if nsfw is None else [not x for x in nsfw]
        return pipe.image_processor.postprocess(
            image, output_type="pil", do_denormalize=denormalize
        )
