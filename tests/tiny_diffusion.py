"""A tiny, randomly initialised Stable Diffusion pipeline the tests (and perf scripts) build
and save locally: a test fixture (its images are noise) that exercises the real diffusers
path (`DiffusionPipeline.from_pretrained`), and the tiny IP-Adapter beside it. The embedded
default's model is the trained one of `generation.smoke_model`."""

from __future__ import annotations

from pathlib import Path

from generation.sd_pipeline import clip_tokenizer_files, save_sd_pipeline

LABEL = "tiny-random-sd (smoke model, images are noise)"
MARKER = "zipp_tiny_model.json"


def build_tiny_pipeline(out: str | Path, image_size: int = 32, seed: int = 0) -> Path:
    """Build and save the tiny pipeline under `out` (idempotent); returns the folder."""
    out = Path(out)
    if (out / MARKER).exists():
        return out
    import torch
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(seed)
    tmp = out.with_name(out.name + ".tmp")
    clip_tokenizer_files(tmp / "tok")
    tokenizer = CLIPTokenizer(
        str(tmp / "tok" / "vocab.json"), str(tmp / "tok" / "merges.txt"), model_max_length=77
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    unet = UNet2DConditionModel(
        sample_size=image_size // 2,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=8,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(16, 32),
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        norm_num_groups=8,
        sample_size=image_size,
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        steps_offset=1,
    )
    parts = {"vae": vae, "text_encoder": text_encoder, "tokenizer": tokenizer, "unet": unet}
    save_sd_pipeline(
        parts | {"scheduler": scheduler},
        tmp,
        out,
        MARKER,
        {"label": LABEL, "image_size": image_size},
    )
    return out


def is_tiny(path: str | Path) -> bool:
    """True for a pipeline folder made by `build_tiny_pipeline`."""
    return (Path(path) / MARKER).exists()


def build_tiny_ip_adapter(
    folder: str | Path,
    cross_attention_dim: int = 32,
    hidden_sizes: tuple[int, ...] = (64, 64, 64, 64),
    weight_name: str = "ip-adapter_sd15.bin",
    image_size: int = 32,
    seed: int = 0,
) -> Path:
    """A tiny random IP-Adapter (plain SD 1.5 kind) in the h94/IP-Adapter layout that
    `pipe.load_ip_adapter(folder, subfolder="models", weight_name=...)` reads:
    `models/image_encoder/` (a `CLIPVisionModelWithProjection`; diffusers builds the
    `CLIPImageProcessor` itself from its `image_size` when the pipeline has no feature
    extractor) and `models/<weight_name>` (`.bin`: {"image_proj": ..., "ip_adapter": ...};
    `.safetensors`: the same keys flattened with those prefixes). `hidden_sizes` is one width
    per cross-attention layer of the UNet, in `unet.attn_processors` order (the tiny UNet of
    `build_tiny_pipeline`: 4 layers of 64); the weights are keyed 1, 3, 5, ... as diffusers'
    `_convert_ip_adapter_attn_to_diffusers` expects. Returns `folder`."""
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    folder, clip_dim = Path(folder), 32
    models = folder / "models"
    torch.manual_seed(seed)
    CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=32,
            intermediate_size=64,
            projection_dim=clip_dim,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=image_size,
            patch_size=8,
        )
    ).save_pretrained(models / "image_encoder")
    tokens = 4  # ImageProjection: proj is Linear(clip_dim, 4 * cross_attention_dim)
    image_proj = {
        "proj.weight": torch.randn(tokens * cross_attention_dim, clip_dim) * 0.1,
        "proj.bias": torch.zeros(tokens * cross_attention_dim),
        "norm.weight": torch.ones(cross_attention_dim),
        "norm.bias": torch.zeros(cross_attention_dim),
    }
    ip_adapter = {}
    for i, hidden in enumerate(hidden_sizes):  # to_k_ip / to_v_ip: Linear(cross, hidden)
        for name in ("to_k_ip", "to_v_ip"):
            w = torch.randn(hidden, cross_attention_dim) / cross_attention_dim**0.5
            ip_adapter[f"{2 * i + 1}.{name}.weight"] = w
    state = {"image_proj": image_proj, "ip_adapter": ip_adapter}
    if weight_name.endswith(".safetensors"):
        from safetensors.torch import save_file

        flat = {f"{k}.{n}": t for k, d in state.items() for n, t in d.items()}
        save_file(flat, models / weight_name)
    else:
        torch.save(state, models / weight_name)
    return folder
