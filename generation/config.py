"""The benchmark generation's config sections: `personas`, `bench`, `rewrite`,
`diffusion` and `smoke` (the embedded default's text-to-image model)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from schemas.config import Section
from schemas.methods import REWRITE_METHODS, variant_names  # the rewrite methods' registry


class PersonasConfig(Section):
    evidence: Literal["full", "subreddits"] = Field(
        "full", description="full: subreddits and snippets; subreddits: names only (ablation)"
    )
    token_budget: int = Field(4096, ge=16, description="evidence tokens per user")
    max_subreddits: int = Field(50, ge=1)
    snippets_per_subreddit: int = Field(3, ge=0)
    max_snippet_chars: int = Field(600, ge=20)
    users: int | None = Field(None, ge=1, description="cap on users (most active first)")
    chunk_users: int = Field(
        20_000,
        ge=1,
        description="users whose evidence and requests the driver holds at once (personas, "
        "preferences): evidence is built, sent and logged a chunk at a time",
    )
    overrides: str | None = Field(
        None, description="JSONL of persona text/fields supplied per user_id or author"
    )
    images: int = Field(
        0,
        ge=0,
        le=16,
        description="the user's newest history images shown to the verbaliser (multimodal: "
        "image parts; template: colour words); 0: none",
    )


class BenchConfig(Section):
    prompts: str | None = Field(
        "conf/prompts.txt", description="base prompts, one a line (null with captions)"
    )
    prompts_per_user: int = Field(4, ge=1)
    users: int = Field(1500, ge=1, description="benchmark users (paper: 1.5K)")
    min_images: int = Field(
        2, ge=1, description="image posts a benchmark user needs (at least references_per_user + 1)"
    )
    references_per_user: int = Field(
        1, ge=1, description="newest images held out as the user's references (scoring)"
    )
    seed: int = 0
    demographic_targets: str | None = Field(
        None,
        description="target file (conf/ipf/*.yaml): draw the users in proportion to its "
        "marginals where their inferred demographics are known; null: the draw as before",
    )
    demographic_pool: int = Field(
        4,
        ge=1,
        description="with demographic_targets: the stratified pool is this many times "
        "bench.users, the weighted draw takes bench.users of it",
    )
    base_prompts: Literal["file", "captions"] = Field(
        "file",
        description="base prompts from `prompts` (file) or captions of each user's references",
    )
    captioner: str | None = Field(
        None,
        validate_default=True,
        description="transformers image-captioning model path or id (base_prompts=captions)",
    )
    caption_prefix: str = Field("", description="text put before every caption")

    @field_validator("base_prompts")
    @classmethod
    def _prompt_file_needed(cls, mode: str, info) -> str:
        if mode == "file" and not info.data.get("prompts"):
            raise ValueError("'file' needs bench.prompts (a file of base prompts, one a line)")
        return mode

    @field_validator("captioner")
    @classmethod
    def _captioner_needed(cls, captioner: str | None, info) -> str | None:
        if info.data.get("base_prompts") == "captions" and not captioner:
            raise ValueError("required when bench.base_prompts is 'captions'")
        return captioner


class RewriteConfig(Section):
    methods: list[str] = Field(
        default_factory=lambda: list(REWRITE_METHODS),
        description="registered rewrite methods (schemas.methods: none, zero_shot, "
        "swapped, k_shot, viper, history)",
    )
    k: int | list[int] = Field(
        3,
        description="the user's own earlier titles shown in k_shot; a list of distinct K "
        "sweeps it in one run (rows k_shot@K each, e.g. [3, 5])",
    )
    history_k: int = Field(3, ge=1, description="most similar earlier titles in history")
    history_filter: bool = Field(
        True,
        description="the noisy-history filter of `history`: its history_k titles most similar "
        "to the prompt (false: the user's newest history_k)",
    )

    @field_validator("k", mode="before")
    @classmethod
    def _shots(cls, k: object) -> object:
        def positive(x: object) -> bool:
            return isinstance(x, int) and not isinstance(x, bool) and x >= 1

        if isinstance(k, list | tuple):
            if not k or not all(positive(x) for x in k):
                raise ValueError("a list of K must hold positive integers, at least one")
            if len(set(k)) != len(k):
                raise ValueError("a K is listed twice")
            return list(k)
        if not positive(k):
            raise ValueError("must be a positive integer or a list of distinct ones")
        return k

    def row_methods(self) -> list[str]:
        """The method of each row the rewrite stage makes: `methods`, with a sweeping one
        (`k_shot`) as ``k_shot@K`` per K when `k` is a list (`schemas.methods`)."""
        return [v for m in self.methods for v in variant_names(m, self.k)]

    @property
    def most_k(self) -> int:
        """The most examples any k_shot row shows."""
        return max(self.k) if isinstance(self.k, list) else self.k

    @field_validator("methods")
    @classmethod
    def _registered_methods(cls, methods: list[str]) -> list[str]:
        for m in methods:
            if m not in REWRITE_METHODS:
                known = ", ".join(REWRITE_METHODS)
                raise ValueError(f"unknown rewrite method {m!r} (known: {known})")
        if len(set(methods)) != len(methods):
            raise ValueError("a method is listed twice")
        return methods


class DiffusionConfig(Section):
    model: str | None = Field(
        None, description="diffusers pipeline path or id; null: the tiny random smoke model"
    )
    steps: int = Field(30, ge=1)
    guidance_scale: float = Field(7.5, ge=0)
    height: int | None = Field(None, ge=8)
    width: int | None = Field(None, ge=8)
    seeds: int = Field(1, ge=1, description="images per (user, prompt, method, llm)")
    batch_size: int = Field(8, ge=1)
    actors: int = Field(1, ge=1)
    num_gpus: float = Field(0, ge=0)
    num_cpus: int | None = Field(
        None, ge=1, description="CPU actors: cores (torch threads) each; null: an even share"
    )
    compile: bool = Field(False, description="torch.compile the denoiser (GPU only)")
    ip_adapter: str | None = Field(
        None, description="IP-Adapter repo/path: adds the image-conditioned 'pigeon' baseline"
    )
    ip_adapter_subfolder: str = "models"
    ip_adapter_weight: str = "ip-adapter_sd15.bin"
    ip_adapter_scale: float = Field(0.6, ge=0)
    viper_lambda: float = Field(
        0.85, ge=0, description="ViPer's weight of likes/dislikes in its guidance (0: off)"
    )
    history_images: int = Field(4, ge=1, description="history images given to IP-Adapter")
    history_filter: bool = Field(
        True,
        description="Pigeon's noisy-history filter: the history images whose titles are most "
        "similar to the prompt condition IP-Adapter (false: the user's newest)",
    )


class SmokeConfig(Section):
    """The embedded default's text-to-image model (`diffusion.model: null`): a tiny
    diffusers pipeline trained by stage `smoke` on the lake's history image posts and
    their titles, seeded, cached by content under models/."""

    size: int = Field(32, ge=16, le=64, description="image side in pixels (multiple of 8)")
    vocab: int = Field(3000, ge=64, description="title words kept as whole tokens")
    vae_steps: int = Field(300, ge=0, description="autoencoder training steps")
    steps: int = Field(800, ge=1, description="denoiser + text encoder training steps")
    batch_size: int = Field(32, ge=1)
    lr: float = Field(1e-3, gt=0)
    uncond_share: float = Field(
        0.1, ge=0, lt=1, description="titles dropped to '' (classifier-free guidance)"
    )
    max_images: int = Field(20000, ge=1, description="most history images trained on")
    recaption: bool = Field(
        True, description="train on the title plus the image's own colour and light words"
    )
    seed: int = 0

    @field_validator("size")
    @classmethod
    def _multiple_of_8(cls, size: int) -> int:
        if size % 8:
            raise ValueError(f"{size} is not a multiple of 8")
        return size
