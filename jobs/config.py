"""Configuration: YAML profiles in conf/, loaded with OmegaConf, validated with pydantic.

Each package defines the config sections it reads (``engines.config``,
``storage.config``, ``pipelines.config``, ``media.config``, ``graph.config``,
``llm.config``, ``generation.config``, ``evaluation.config``, ``exports.config``,
``service.config``, ``service.study.config``);
`ZippConfig` composes them. An unknown key or a wrong type is a one-line `ConfigError`
naming the key. A profile may name a ``base`` profile and change only some of its keys;
command-line overrides are ``key=value`` (OmegaConf dotlist).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import get_origin

from omegaconf import DictConfig, OmegaConf
from pydantic import Field, ValidationError

from engines.config import RayConfig, SparkConfig
from evaluation.config import JudgeConfig, ReportConfig
from exports.config import ExportConfig
from generation.config import (
    BenchConfig,
    DiffusionConfig,
    PersonasConfig,
    RewriteConfig,
    SmokeConfig,
)
from graph.config import EncoderConfig
from llm.config import LLMConfig
from media.config import ImagesConfig
from pipelines.config import FeaturesConfig, GraphConfig, IngestConfig, InputConfig
from schemas.config import ConfigError, Section
from service.config import ServeConfig
from service.study.config import StudyConfig
from storage.config import LakeConfig

__all__ = ["DEFAULT_PROFILE", "ConfigError", "ZippConfig", "load_config"]

DEFAULT_PROFILE = Path("conf/local.yaml")


class ZippConfig(Section):
    profile: str = "local"
    base: str | None = Field(
        None, description="the profile this one changes, a path relative to it (load_config)"
    )
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
    study: StudyConfig = Field(default_factory=StudyConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)

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


_UNSET = object()


def _free_maps() -> tuple[str, ...]:
    """Keys whose value is a free-form mapping (``spark.conf``, ``report.ipf_targets``):
    a profile that sets one replaces its base's whole, as it does a list."""
    return tuple(
        f"{name}.{key}"
        for name, f in ZippConfig.model_fields.items()
        if isinstance(f.annotation, type) and issubclass(f.annotation, Section)
        for key, sub in f.annotation.model_fields.items()
        if get_origin(sub.annotation) is dict
    )


def _read(p: Path):
    if not p.exists():
        raise ConfigError(f"config error: profile not found: {p}")
    try:
        return OmegaConf.load(p)
    except Exception as e:
        raise ConfigError(f"config error: {p}: {str(e).splitlines()[0]}") from None


def _profile(p: Path, chain: tuple[Path, ...] = ()):
    """A profile merged over its ``base`` (and the base's base...): sections merge key by
    key; lists and free-form mappings are replaced whole. A cycle is a `ConfigError`."""
    if p.resolve() in chain:
        cycle = " -> ".join(str(c) for c in (*chain, p.resolve()))
        raise ConfigError(f"config error: base: profiles name each other in a cycle: {cycle}")
    layer = _read(p)
    base = layer.get("base") if isinstance(layer, DictConfig) else None
    if base is None:
        return layer
    if not isinstance(base, str) or not base:
        raise ConfigError(f"config error: base: a profile path, relative to {p} (got {base!r})")
    under = _profile(p.parent / base, (*chain, p.resolve()))
    try:
        merged = OmegaConf.merge(under, layer)
        for key in _free_maps():
            value = OmegaConf.select(layer, key, default=_UNSET)
            if value is not _UNSET:
                OmegaConf.update(merged, key, value, merge=False)
    except Exception as e:
        raise ConfigError(f"config error: {p}: {str(e).splitlines()[0]}") from None
    return merged


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> ZippConfig:
    """Load a profile (merged over its ``base``, when it names one: a path relative to the
    profile; chains allowed) and apply ``key=value`` overrides.

    No profile: ``conf/local.yaml`` when it exists here (the embedded default), else the
    built-in defaults.
    """
    layers = []
    if path is None and DEFAULT_PROFILE.exists():
        path = DEFAULT_PROFILE
    if path is not None:
        layers.append(_profile(Path(path)))
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
