"""LLM backends behind one interface (`Backend.complete`): template, openai, hf, vllm."""

from __future__ import annotations

import os

from generation.llm.base import Backend, ChatRequest, Completion, Runtime, request_id

__all__ = [
    "Backend",
    "ChatRequest",
    "Completion",
    "Runtime",
    "make_backend",
    "read_api_key",
    "request_id",
]


def read_api_key(api_key_env: str | None) -> str | None:
    """The API key from the environment variable named in config (never from config)."""
    if not api_key_env:
        return None
    key = os.environ.get(api_key_env)
    if not key:
        raise ValueError(f"llm.api_key_env: environment variable {api_key_env} is not set")
    return key


def make_backend(
    backend: str, model: str, base_url: str | None, api_key: str | None, runtime: Runtime
) -> Backend:
    """Build the backend a spec names (inside the actor that will use it)."""
    if backend == "template":
        from generation.llm.template_backend import TemplateBackend

        return TemplateBackend()
    if backend == "openai":
        from generation.llm.openai_backend import OpenAIBackend

        return OpenAIBackend(model, base_url or "", api_key, runtime)
    if backend == "hf":
        from generation.llm.hf_backend import HFBackend

        return HFBackend(model, runtime)
    raise ValueError(f"llm.backend: {backend!r} is not served by an actor (vllm runs via Ray Data)")
