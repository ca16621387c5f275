"""Configuration: YAML profiles in conf/, loaded with OmegaConf, validated with pydantic.

An unknown key or a wrong type is a one-line `ConfigError` naming the key. Command-line
overrides are ``key=value`` (OmegaConf dotlist).
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path
from typing import Literal

from omegaconf import OmegaConf
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from llm import BACKENDS  # the LLM backends' registry
from schemas.methods import REWRITE_METHODS  # the rewrite methods' registry

DEFAULT_PROFILE = Path("conf/local.yaml")


class ConfigError(ValueError):
    """A configuration problem, with the offending key in the message."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SparkConfig(_Section):
    master: str | None = Field("local[*]", description="Spark master URL; null under spark-submit")
    app_name: str = "zipp"
    conf: dict[str, str] = Field(default_factory=dict, description="extra spark.* settings")

    @field_validator("conf", mode="before")
    @classmethod
    def _flatten(cls, value: object) -> object:
        """`spark.conf.spark.executor.memory=8g` nests on the command line: flatten it back
        to dotted Spark keys; scalar values become strings."""
        if not isinstance(value, dict):
            return value
        flat: dict[str, object] = {}

        def walk(prefix: str, v: object) -> None:
            if isinstance(v, dict):
                for k, sub in v.items():
                    walk(f"{prefix}.{k}" if prefix else str(k), sub)
            else:
                flat[prefix] = (
                    v
                    if isinstance(v, str) or v is None
                    else str(v).lower()
                    if isinstance(v, bool)
                    else str(v)
                )

        walk("", value)
        return flat


class RayConfig(_Section):
    address: str | None = Field(None, description="ray.init address; null starts a local Ray")
    num_cpus: int | None = None


class LakeConfig(_Section):
    root: str = "lake"
    format: Literal["parquet", "delta"] = "parquet"


class InputConfig(_Section):
    dumps: str = Field("data/sample/dumps", description="folder or glob of RS_/RC_ dump files")


class IngestConfig(_Section):
    blocklist: str | None = Field(None, description="file of usernames to drop (one a line)")
    files_per_job: int = Field(4, ge=1)
    chunk_mb: int = Field(16, ge=1)
    max_line_mb: int = Field(64, ge=1)
    workers_per_task: int = Field(
        0, ge=0, description="parsing processes per ingest task; 0 = cores over partitions"
    )
    split_mb: float = Field(256, gt=0, description="compressed MB per task of a .zst_blocks file")

    def usernames(self) -> frozenset[str]:
        """The blocklist's usernames (empty lines and # comments skipped)."""
        return read_names(self.blocklist, "ingest.blocklist")


class GraphConfig(_Section):
    bots: str | None = Field(None, description="file of bot usernames (one a line)")
    min_user_interactions: int = Field(3, ge=1)
    min_subreddit_users: int = Field(3, ge=1)
    start: date | None = Field(None, description="keep records from this day (UTC)")
    end: date | None = Field(None, description="keep records before this day (UTC)")
    val_fraction: float = Field(0.1, ge=0, lt=1)
    test_fraction: float = Field(0.1, ge=0, lt=1)
    inductive_fraction: float = Field(0.1, ge=0, lt=1)
    snippets_per_edge: int = Field(5, ge=1)
    seed: int = 0


class ImagesConfig(_Section):
    model: str | None = Field(None, description="CLIP path or id; null: colour features")
    allow_hosts: list[str] = Field(
        default_factory=list, description="hosts, IPs or CIDRs allowed despite being private"
    )
    fetch_tasks: int = Field(4, ge=1)
    embed_actors: int = Field(1, ge=1)
    num_gpus: float = Field(0, ge=0)
    batch_size: int = Field(64, ge=1)
    timeout_s: float = Field(10.0, gt=0)
    max_mb: int = Field(20, ge=1)
    retries: int = Field(2, ge=0)


class FeaturesConfig(_Section):
    text_model: str | None = Field(
        None, description="sentence-transformers path or id; null: the packaged all-MiniLM-L6-v2"
    )
    texts_per_subreddit: int = Field(32, ge=1)
    actors: int = Field(1, ge=1)
    num_gpus: float = Field(0, ge=0)


class EncoderConfig(_Section):
    conv: Literal["gatv2", "gat", "sage"] = Field("gatv2", description="message-passing layer")
    hidden: int = Field(64, ge=4)
    heads: int = Field(4, ge=1)
    layers: int = Field(2, ge=1)
    dropout: float = Field(0.1, ge=0, lt=1)
    fanouts: list[int] = Field(default_factory=lambda: [10, 10], description="per hop, -1: all")
    sampler: Literal["auto", "own", "pyg"] = Field(
        "auto", description="auto: PyG's native sampler where pyg-lib is installed, else ours"
    )
    batch_size: int = Field(256, ge=2, description="seed edges per batch and worker")
    negatives: int = Field(4, ge=1, description="random subreddits per positive edge")
    loss: Literal["softmax", "bce"] = Field(
        "softmax",
        description="softmax: sampled softmax over in-batch + random negatives with the "
        "logQ correction; bce: binary cross-entropy against the random negatives",
    )
    lr: float = Field(3e-3, gt=0)
    lr_schedule: Literal["cosine", "constant"] = Field(
        "cosine", description="cosine: decay per epoch from lr to lr/10 over `epochs`"
    )
    weight_decay: float = Field(0.0, ge=0)
    epochs: int = Field(20, ge=1)
    select_on: Literal["recall_at_k", "auc", "posting_acc"] = Field(
        "recall_at_k", description="validation metric for the best epoch and early stopping"
    )
    patience: int = Field(
        3, ge=1, description="epochs without a better `select_on` metric before stopping"
    )
    link_weight: float = Field(1.0, ge=0)
    image_weight: float = Field(0.5, ge=0, description="ImageAlign weight; 0 turns it off")
    temperature: float = Field(0.1, gt=0, description="ImageAlign InfoNCE temperature")
    visual_dropout: float = Field(
        0.5, ge=0, le=1, description="share of batch users whose visual profile input is hidden"
    )
    num_workers: int = Field(1, ge=1, description="Ray Train workers (DDP)")
    use_gpu: bool = False
    cpus_per_worker: float = Field(1, gt=0)
    seed: int = 0
    posting_candidates: int = Field(5, ge=2, description="1 true + n-1 random subreddits")
    recall_k: int = Field(10, ge=1)
    eval_users: int = Field(5000, ge=1, description="users sampled for recall@k")
    inference_chunk: int = Field(4096, ge=1, description="nodes per layer-wise inference step")

    @field_validator("heads")
    @classmethod
    def _heads_divide(cls, heads: int, info) -> int:
        hidden = info.data.get("hidden", 64)
        if hidden % heads:
            raise ValueError(f"hidden ({hidden}) must be a multiple of heads ({heads})")
        return heads


class LLMSpec(_Section):
    """One language model: which backend serves it and how to reach it."""

    backend: str = Field(
        "template",
        description="a registered backend (llm.BACKENDS: template, openai, hf, "
        "vllm); template: deterministic, no model (the embedded default)",
    )
    model: str = Field("template", description="model name (openai) or path/id (hf, vllm)")
    base_url: str | None = Field(None, description="OpenAI-compatible endpoint, e.g. .../v1")
    api_key_env: str | None = Field(
        None, description="name of the environment variable that holds the API key"
    )
    tokenizer: str | None = Field(
        None,
        description="tokenizer path/id that counts the evidence budget; null: the model's "
        "own for hf/vllm, else the packaged all-MiniLM-L6-v2 tokenizer",
    )

    @field_validator("backend")
    @classmethod
    def _registered_backend(cls, backend: str) -> str:
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r} (known: {', '.join(BACKENDS)})")
        return backend

    @property
    def label(self) -> str:
        """How rows name the model: ``backend:model``."""
        return f"{self.backend}:{self.model}"


class LLMConfig(LLMSpec):
    models: list[LLMSpec] = Field(
        default_factory=list, description="a sweep: run every model listed (empty: this one)"
    )
    concurrency: int = Field(8, ge=1, description="requests in flight per actor")
    actors: int = Field(1, ge=1, description="Ray actors calling the model")
    num_gpus: float = Field(0, ge=0, description="GPUs per actor (hf backend)")
    batch_size: int = Field(16, ge=1, description="requests per actor call (hf: per generate)")
    max_tokens: int = Field(512, ge=1)
    temperature: float = Field(0.0, ge=0)
    seed: int = 0
    json_mode: bool = Field(True, description="ask OpenAI endpoints for response_format json")
    timeout_s: float = Field(60, gt=0, description="per request")
    max_retries: int = Field(5, ge=0, description="on 429, 5xx, timeouts, dropped connections")
    backoff_s: float = Field(0.5, ge=0, description="first retry delay; doubles, with jitter")
    max_backoff_s: float = Field(30, ge=0)
    requests_per_s: float | None = Field(None, gt=0, description="client-side limit, all actors")

    @field_validator("models")
    @classmethod
    def _distinct(cls, models: list[LLMSpec]) -> list[LLMSpec]:
        labels = [m.label for m in models]
        if len(set(labels)) != len(labels):
            dup = next(label for label in labels if labels.count(label) > 1)
            raise ValueError(f"the sweep lists {dup} twice (rows are keyed by backend:model)")
        return models

    def specs(self) -> list[LLMSpec]:
        """The models to run: the sweep list, else the single model configured."""
        return self.models or [LLMSpec(**{k: getattr(self, k) for k in LLMSpec.model_fields})]


class PersonasConfig(_Section):
    evidence: Literal["full", "subreddits"] = Field(
        "full", description="full: subreddits and snippets; subreddits: names only (ablation)"
    )
    token_budget: int = Field(4096, ge=16, description="evidence tokens per user")
    max_subreddits: int = Field(50, ge=1)
    snippets_per_subreddit: int = Field(3, ge=0)
    max_snippet_chars: int = Field(600, ge=20)
    users: int | None = Field(None, ge=1, description="cap on users (most active first)")
    overrides: str | None = Field(
        None, description="JSONL of persona text/fields supplied per user_id or author"
    )


class BenchConfig(_Section):
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


class RewriteConfig(_Section):
    methods: list[str] = Field(
        default_factory=lambda: list(REWRITE_METHODS),
        description="registered rewrite methods (schemas.methods: none, zero_shot, "
        "swapped, k_shot, viper, history)",
    )
    k: int = Field(3, ge=1, description="the user's own earlier titles shown in k_shot")
    history_k: int = Field(3, ge=1, description="most similar earlier titles in history")

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


class DiffusionConfig(_Section):
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


class SmokeConfig(_Section):
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
    seed: int = 0

    @field_validator("size")
    @classmethod
    def _multiple_of_8(cls, size: int) -> int:
        if size % 8:
            raise ValueError(f"{size} is not a multiple of 8")
        return size


#: `judge.backend` value that turns the LLM judge off (the learned preference judge of
#: the score stage is the embedded default's personalised judge)
JUDGE_OFF = "none"


class JudgeConfig(LLMSpec):
    """The persona-conditioned LLM judge, configured apart from the rewriting LLMs (its
    own model, runtime and persona choice): a multimodal model behind an
    OpenAI-compatible endpoint, the template (the transparent reference-similarity
    scorer, a duplicate of CLIPScore/10) or ``none`` (off). Also the learned preference
    judge's training settings (``preference_*``) and the agreement set's size."""

    backend: str = Field(
        JUDGE_OFF,
        description="none (off: the learned preference judge scores), a multimodal backend "
        "(openai) or template (CLIPScore vs references / 10, not an LLM)",
    )
    persona_llm: str | None = Field(
        None,
        description="backend:model label of the LLM whose persona the judge sees for every "
        "image of a user (one scale over a sweep); null: the first configured LLM",
    )
    concurrency: int = Field(8, ge=1, description="judge requests in flight per actor")
    actors: int = Field(1, ge=1, description="Ray actors calling the judge")
    num_gpus: float = Field(0, ge=0, description="GPUs per judge actor")
    batch_size: int = Field(16, ge=1, description="judge requests per actor call")
    max_tokens: int = Field(256, ge=1)
    temperature: float = Field(0.0, ge=0)
    seed: int = Field(0, description="judge sampling seed and the preference judge's seed")
    json_mode: bool = True
    timeout_s: float = Field(60, gt=0, description="per judge request")
    max_retries: int = Field(5, ge=0)
    backoff_s: float = Field(0.5, ge=0)
    max_backoff_s: float = Field(30, ge=0)
    requests_per_s: float | None = Field(None, gt=0, description="client-side limit, all actors")
    preference_negatives: int = Field(
        4, ge=1, description="other users' history images per positive in preference training"
    )
    preference_users: int = Field(
        20000, ge=2, description="users (seeded sample) whose history trains the preference judge"
    )
    agreement_images: int = Field(
        32,
        ge=0,
        description="agreement set: other benchmark users' reference images scored per "
        "benchmark user by every scorer (seeded; 0: none)",
    )

    @field_validator("backend")
    @classmethod
    def _registered_backend(cls, backend: str) -> str:
        if backend != JUDGE_OFF and backend not in BACKENDS:
            known = ", ".join([JUDGE_OFF, *BACKENDS])
            raise ValueError(f"unknown backend {backend!r} (known: {known})")
        return backend

    @property
    def off(self) -> bool:
        """True when no LLM judge runs (``judge.backend: none``)."""
        return self.backend == JUDGE_OFF

    @property
    def label(self) -> str:
        """How rows name the judge: ``backend:model``, or ``none`` when off."""
        return JUDGE_OFF if self.off else f"{self.backend}:{self.model}"


class ReportConfig(_Section):
    grids: int = Field(6, ge=1, description="image grids (user, prompt) in the report")
    ipf_targets: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="target marginals per persona demographic, e.g. {gender: {female: 0.5}}",
    )
    ground_truth: str | None = Field(
        None,
        description="sample world's ground_truth folder: the report (and no stage before it) "
        "joins the agreement set with the planted tastes; null: no agreement table",
    )


class ExportConfig(_Section):
    min_community_users: int = Field(
        50,
        ge=1,
        description="in pseudonymised exports, subreddits with fewer users are replaced by "
        "their community label",
    )
    key_env: str = Field(
        "ZIPP_PSEUDONYM_KEY", description="environment variable holding the pseudonym key"
    )


def read_names(path: str | None, key: str) -> frozenset[str]:
    """Usernames from a one-a-line file; `key` names the config key in errors."""
    if not path:
        return frozenset()
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{key}: file not found: {p}")
    lines = (ln.strip() for ln in p.read_text().splitlines())
    return frozenset(ln for ln in lines if ln and not ln.startswith("#"))


class ZippConfig(_Section):
    profile: str = "local"
    spark: SparkConfig = Field(default_factory=SparkConfig)
    ray: RayConfig = Field(default_factory=RayConfig)
    lake: LakeConfig = Field(default_factory=LakeConfig)
    input: InputConfig = Field(default_factory=InputConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    graph: GraphConfig = Field(default_factory=GraphConfig)
    images: ImagesConfig = Field(default_factory=ImagesConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    encoder: EncoderConfig = Field(default_factory=EncoderConfig)
    llm: LLMConfig = Field(default_factory=LLMConfig)
    personas: PersonasConfig = Field(default_factory=PersonasConfig)
    bench: BenchConfig = Field(default_factory=BenchConfig)
    rewrite: RewriteConfig = Field(default_factory=RewriteConfig)
    diffusion: DiffusionConfig = Field(default_factory=DiffusionConfig)
    smoke: SmokeConfig = Field(default_factory=SmokeConfig)
    judge: JudgeConfig = Field(default_factory=JudgeConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)

    def section_hash(self, section: str) -> str:
        """Stable hash of config sections (what a stage's manifest records); `section`
        may name several, comma-separated (``personas,llm``)."""
        data = {s: getattr(self, s).model_dump(mode="json") for s in section.split(",")}
        if "," not in section:
            data = data[section]
        return hashlib.sha1(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _explain(err: ValidationError) -> str:
    e = err.errors()[0]
    key = ".".join(str(p) for p in e["loc"])
    if e["type"] == "extra_forbidden":
        return f"config error: {key}: unknown key"
    return f"config error: {key}: {e['msg']} (got {e.get('input')!r})"


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> ZippConfig:
    """Load a profile and apply ``key=value`` overrides.

    No profile: ``conf/local.yaml`` when it exists here (the embedded default), else the
    built-in defaults.
    """
    layers = []
    if path is None and DEFAULT_PROFILE.exists():
        path = DEFAULT_PROFILE
    if path is not None:
        p = Path(path)
        if not p.exists():
            raise ConfigError(f"config error: profile not found: {p}")
        try:
            layers.append(OmegaConf.load(p))
        except Exception as e:
            raise ConfigError(f"config error: {p}: {str(e).splitlines()[0]}") from None
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"config error: override {item!r} is not key=value")
    try:
        if overrides:
            layers.append(OmegaConf.from_dotlist(list(overrides)))
        merged = OmegaConf.to_container(OmegaConf.merge(*layers), resolve=True) if layers else {}
    except Exception as e:
        raise ConfigError(f"config error: {e}".splitlines()[0]) from None
    try:
        return ZippConfig.model_validate(merged or {})
    except ValidationError as e:
        raise ConfigError(_explain(e)) from None
