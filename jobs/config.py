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

    def bot_names(self) -> frozenset[str]:
        """Usernames on the bot list (empty lines and # comments skipped)."""
        return read_names(self.bots, "graph.bots")


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
    lr: float = Field(3e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    epochs: int = Field(20, ge=1)
    patience: int = Field(3, ge=1, description="epochs without a better val AUC before stopping")
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

    def section_hash(self, section: str) -> str:
        """Stable hash of one config section (what a stage's manifest records)."""
        data = getattr(self, section).model_dump(mode="json")
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
