"""LLM backends behind one interface (`Backend.complete`), and their registry.

`BACKENDS` is the one list of backends and what each can do. Config validation
(`llm.config`: `llm.backend`, `judge.backend`), `preflight`, the tokenizer choice
(`llm.tokens.tokenizer_source`), the fan-out (`llm.fanout`: actors or the
driver, GPUs) and the judge check (`check_judge`) all read it. Adding a backend = its
module (a class taking any of ``model``, ``base_url``, ``api_key``, ``runtime``,
``actors`` as keyword arguments, with `complete` and `aclose`) + one line here + tests.

Backend modules import `llm.base`, never this package (no import circle);
they are loaded by name only when a run selects them. `llm.base.Runtime` holds the
runtime fields every LLM settings section shares (`llm.config.LLMSettings`).
"""

from __future__ import annotations

import importlib
import inspect
import os
from dataclasses import dataclass
from typing import Any, Literal

from llm.base import (
    Backend,
    ChatRequest,
    Completion,
    ModelSpec,
    Runtime,
    request_id,
)

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendInfo",
    "ChatRequest",
    "Completion",
    "ModelSpec",
    "Runtime",
    "backend_info",
    "check_judge",
    "make_backend",
    "preflight",
    "read_api_key",
    "request_id",
    "sees_images",
]


@dataclass(frozen=True)
class BackendInfo:
    """One backend and its capabilities."""

    name: str
    impl: str  # "module:Class", built in the process that calls the model
    summary: str
    endpoint: bool = False  # needs llm.base_url; the API key comes from llm.api_key_env
    gpu: Literal["no", "optional", "required"] = "no"  # holds weights: GPUs per actor
    own_tokenizer: bool = False  # the model's tokenizer counts the evidence budget
    runs_in: Literal["actors", "driver"] = "actors"  # Ray actors, or the driver process
    multimodal: bool = False  # can see images in messages (what a judge needs)
    template: bool = False  # no model at all: deterministic, labelled template-made
    check: str | None = None  # "module:function" raising when it cannot run here
    #: "module:function(model) -> bool": whether a model of this backend sees images (a
    #: vision-language model) where only some do
    vision: str | None = None

    def load(self) -> type:
        return _load(self.impl)


_REGISTRY = (
    BackendInfo(
        "template",
        "llm.template_backend:TemplateBackend",
        "deterministic, no model (the embedded default); rows are labelled template-made",
        template=True,
    ),
    BackendInfo(
        "openai",
        "llm.openai_backend:OpenAIBackend",
        "any OpenAI-compatible chat endpoint (vLLM, SGLang, Ollama, hosted APIs)",
        endpoint=True,
        multimodal=True,
    ),
    BackendInfo(
        "hf",
        "llm.hf_backend:HFBackend",
        "a local transformers causal LM in Ray actors (llm.num_gpus GPUs each); a "
        "vision-language model (its config has a vision part) also sees images",
        gpu="optional",
        own_tokenizer=True,
        vision="llm.hf_backend:is_vision_model",
    ),
    BackendInfo(
        "vllm",
        "llm.vllm_driver:VLLMDriver",
        "the vLLM engine through Ray Data, driven from the driver (GPU nodes, an extra)",
        gpu="required",
        own_tokenizer=True,
        runs_in="driver",
        check="llm.vllm_backend:check_vllm",
    ),
)
#: every backend by name, in the order the docs list them
BACKENDS: dict[str, BackendInfo] = {b.name: b for b in _REGISTRY}


def _load(ref: str) -> Any:
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def backend_info(name: str) -> BackendInfo:
    """A backend's registry entry; ValueError naming the known ones."""
    try:
        return BACKENDS[name]
    except KeyError:
        known = ", ".join(BACKENDS)
        raise ValueError(f"llm.backend: unknown backend {name!r} (known: {known})") from None


def read_api_key(api_key_env: str | None) -> str | None:
    """The API key from the environment variable named in config (never from config)."""
    if not api_key_env:
        return None
    key = os.environ.get(api_key_env)
    if not key:
        raise ValueError(f"llm.api_key_env: environment variable {api_key_env} is not set")
    return key


def preflight(specs: list[ModelSpec]) -> None:
    """Fail fast, before any evidence is built, when a configured model cannot be called:
    a missing endpoint or key variable, or a backend that cannot run on this machine
    (its registered check: vLLM without its extra or a GPU)."""
    for spec in specs:
        info = backend_info(spec.backend)
        if info.endpoint:
            if not spec.base_url:
                raise ValueError(f"llm.base_url: required for {spec.label}")
            read_api_key(spec.api_key_env)
        if info.check:
            _load(info.check)()


def sees_images(spec: ModelSpec) -> bool:
    """Whether a configured model is shown images: not where its spec says `images:
    false` (a text-only model behind an OpenAI-compatible server); else a multimodal
    backend, or a model its backend's `vision` check finds to be a vision-language
    model. `images: true` on a model that cannot see them is an error."""
    info = backend_info(spec.backend)
    wanted = getattr(spec, "images", None)
    if wanted is False:
        return False
    can = info.multimodal or bool(info.vision and _load(info.vision)(spec.model))
    if wanted and not can:
        raise ValueError(f"{spec.label}: images: true, but its backend cannot show it images")
    return can


def check_judge(spec: ModelSpec) -> None:
    """A judge must see the image: a multimodal backend, or the template (the transparent
    reference-similarity scorer)."""
    info = backend_info(spec.backend)
    if getattr(spec, "images", None) is False and not info.template:
        raise ValueError("judge.images: false, but the judge must see the image it scores")
    if not (info.multimodal or info.template):
        ok = ", ".join(b.name for b in BACKENDS.values() if b.multimodal or b.template)
        raise ValueError(
            f"judge.backend: {spec.backend} cannot see images; the judge needs a multimodal "
            f"backend or the template ({ok})"
        )


def make_backend(
    backend: str,
    model: str,
    base_url: str | None,
    api_key: str | None,
    runtime: Runtime,
    actors: int = 1,
    response_format: str = "json_object",
) -> Backend:
    """Build the backend a spec names, in the process that will call the model (an actor,
    or the driver for driver-run backends); it gets the arguments its class names."""
    cls = backend_info(backend).load()
    given = {
        "model": model,
        "base_url": base_url or "",
        "api_key": api_key,
        "runtime": runtime,
        "actors": actors,
        "response_format": response_format,
    }
    names = inspect.signature(cls).parameters
    return cls(**{k: v for k, v in given.items() if k in names})
