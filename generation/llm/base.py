"""What every LLM backend speaks: chat requests in, completions out."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class ChatRequest:
    """One chat call. `inputs` carries the same content in structured form for the
    template backend, which reads no prose."""

    id: str
    task: str  # "persona", "preferences" or "rewrite"
    messages: list[dict[str, str]]
    inputs: dict[str, Any] = field(default_factory=dict)
    json: bool = False  # the reply must be a JSON object


@dataclass
class Completion:
    """A backend's answer to one request: text, or the reason it failed for good."""

    text: str | None
    prompt_tokens: int | None = None  # None: the backend did not say; counted locally
    completion_tokens: int | None = None
    attempts: int = 1
    error: str | None = None
    seconds: float | None = None  # None: the caller splits the batch's time evenly


@dataclass(frozen=True)
class Runtime:
    """How a backend calls its model (the `llm.*` keys other than the model itself)."""

    concurrency: int = 8
    batch_size: int = 16
    max_tokens: int = 512
    temperature: float = 0.0
    seed: int = 0
    json_mode: bool = True
    timeout_s: float = 60.0
    max_retries: int = 5
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    requests_per_s: float | None = None  # for this backend instance
    num_gpus: float = 0.0


class Backend(Protocol):
    """An LLM behind one interface; `template` is true for the no-model backend."""

    label: str
    template: bool

    async def complete(self, requests: list[ChatRequest]) -> list[Completion]: ...

    async def aclose(self) -> None: ...


def request_id(label: str, task: str, messages: list[dict], inputs: dict, runtime: Runtime) -> str:
    """Stable id of an exact request: a rerun reuses a finished row only when the model,
    the messages, the structured inputs and the sampling settings are all unchanged."""
    key = {
        "llm": label,
        "task": task,
        "messages": messages,
        "inputs": inputs,
        "sampling": [runtime.max_tokens, runtime.temperature, runtime.seed],
    }
    return hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:24]
