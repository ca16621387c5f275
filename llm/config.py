"""The LLM settings: which model (`LLMSpec`), how it is called (`LLMSettings`: the
runtime fields of `llm.base.Runtime`, defined once, plus ``actors``) and the `llm`
section that combines them (`LLMConfig`, with a sweep of models). The judge's section
(`evaluation.config.JudgeConfig`) is built from the same two parts."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from llm import BACKENDS
from llm.base import Runtime
from schemas.config import Section


class LLMSpec(Section):
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
    response_format: Literal["json_object", "json_schema"] = Field(
        "json_object",
        description="how an OpenAI-compatible endpoint is asked for a JSON reply: "
        "json_schema constrains decoding to the task's reply schema (vLLM, SGLang, Ollama, "
        "OpenAI); json_object asks for any JSON object, the prompt spelling its shape",
    )
    images: bool | None = Field(
        None,
        description="whether this model is shown images (the persona's history images, the "
        "judge's render): null: as its backend says (openai: yes; hf: a vision-language "
        "model; template: colour words); false: a text-only model behind an "
        "OpenAI-compatible server",
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


#: what a sweep entry's `name` may hold (it is written into rows, tables and the report)
_NAME = r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,79}$"


class SweepModel(LLMSpec):
    """One model of a sweep (`llm.models`): an `LLMSpec` with an optional `name`, the label
    its rows carry, and an endpoint backend's `base_url` required up front."""

    name: str | None = Field(
        None,
        pattern=_NAME,
        description="the label rows, tables and the report name this model by (e.g. "
        "Qwen3-8B); null: backend:model",
    )

    @model_validator(mode="after")
    def _endpoint_has_url(self) -> SweepModel:
        if BACKENDS[self.backend].endpoint and not self.base_url:
            raise ValueError(f"{self.label}: backend {self.backend} needs base_url")
        return self

    @property
    def label(self) -> str:
        """How rows name the model: `name`, else ``backend:model``."""
        return self.name or super().label


class LLMSettings(Runtime):
    """How a section's models are called: the backends' runtime fields and the Ray actors
    that call them (the `llm` and `judge` sections)."""

    model_config = ConfigDict(frozen=False)

    actors: int = Field(1, ge=1, description="Ray actors calling the model")

    def runtime(self) -> Runtime:
        """What one backend instance gets: these runtime fields, the client-side rate
        limit split over the actors."""
        fields = {k: getattr(self, k) for k in Runtime.model_fields}
        if self.requests_per_s:
            fields["requests_per_s"] = self.requests_per_s / self.actors
        return Runtime(**fields)


class LLMConfig(LLMSettings, LLMSpec):
    """The `llm` section: the model (or a sweep of models) the LLM stages call, and how."""

    models: list[SweepModel] = Field(
        default_factory=list,
        description="a sweep: run every model listed (empty: this one); the way to compare "
        "LLMs (conf/sweep-paper.yaml: the paper's 14)",
    )

    @field_validator("models")
    @classmethod
    def _distinct(cls, models: list[SweepModel]) -> list[SweepModel]:
        labels = [m.label for m in models]
        if len(set(labels)) != len(labels):
            dup = next(label for label in labels if labels.count(label) > 1)
            raise ValueError(f"the sweep lists {dup} twice (rows are keyed by its label)")
        return models

    def specs(self) -> list[LLMSpec]:
        """The models to run: the sweep list, else the single model configured."""
        return self.models or [LLMSpec(**{k: getattr(self, k) for k in LLMSpec.model_fields})]
