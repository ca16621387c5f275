"""What every LLM backend speaks: chat requests in, completions out."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydantic import ConfigDict, Field

from schemas.config import Section


@dataclass(frozen=True)
class ChatRequest:
    """One chat call. `inputs` carries the same content in structured form for the
    template backend, which reads no prose."""

    id: str
    task: str  # "persona", "preferences" or "rewrite"
    messages: list[dict[str, str]]
    inputs: dict[str, Any] = field(default_factory=dict)
    json: bool = False  # the reply must be a JSON object
    #: the JSON schema the reply must follow (derived from the model that validates it);
    #: endpoints configured for ``json_schema`` constrain decoding to it
    schema: dict | None = field(default=None, compare=False)
    #: images shown with the request, as (mime type, bytes): a multimodal backend sends them
    #: as image parts of the first user message; `request_id` hashes them apart
    images: tuple[tuple[str, bytes], ...] = field(default=(), compare=False, repr=False)


@dataclass
class Completion:
    """A backend's answer to one request: text, or the reason it failed for good."""

    text: str | None
    prompt_tokens: int | None = None  # None: the backend did not say; counted locally
    completion_tokens: int | None = None
    attempts: int = 1
    error: str | None = None
    seconds: float | None = None  # None: the caller splits the batch's time evenly


class Runtime(Section):
    """How a backend calls its model: the runtime fields of an LLM settings section,
    defined once here (`llm.config.LLMSettings` adds ``actors``: the `llm` and `judge`
    sections). A backend instance gets its own copy, `requests_per_s` being its share of
    the section's limit (`LLMSettings.runtime`)."""

    model_config = ConfigDict(frozen=True)

    concurrency: int = Field(8, ge=1, description="requests in flight per actor")
    num_gpus: float = Field(0, ge=0, description="GPUs per actor (hf backend)")
    batch_size: int = Field(16, ge=1, description="requests per actor call (hf: per generate)")
    max_tokens: int = Field(512, ge=1)
    temperature: float = Field(0.0, ge=0)
    seed: int = 0
    repetition_penalty: float = Field(
        1.0, ge=1.0, description="hf/vllm: > 1 discourages repeating tokens (small models loop)"
    )
    json_mode: bool = Field(True, description="ask OpenAI endpoints for response_format json")
    timeout_s: float = Field(60, gt=0, description="per request")
    max_retries: int = Field(5, ge=0, description="on 429, 5xx, timeouts, dropped connections")
    backoff_s: float = Field(0.5, ge=0, description="first retry delay; doubles, with jitter")
    max_backoff_s: float = Field(30, ge=0)
    requests_per_s: float | None = Field(None, gt=0, description="client-side limit, all actors")


class ModelSpec(Protocol):
    """What the LLM code reads of a configured model (`llm.*`, `judge.*`, or an entry of
    `llm.models`), validated by `llm.config.LLMSpec`."""

    backend: str
    model: str
    base_url: str | None
    api_key_env: str | None
    tokenizer: str | None
    images: bool | None

    @property
    def label(self) -> str: ...

    def model_dump(self) -> dict[str, Any]: ...


class Backend(Protocol):
    """An LLM behind one interface; `template` is true for the no-model backend."""

    label: str
    template: bool

    async def complete(self, requests: list[ChatRequest]) -> list[Completion]: ...

    async def aclose(self) -> None: ...


@functools.cache
def template_code() -> str:
    """Digest of the template backend's source (its module, the lexicon and the name
    reader it uses): the template's "weights", so editing it redoes its rows instead of
    reusing old replies."""
    h = hashlib.sha1()
    for name in (
        "llm.template_backend",
        "llm.demographics",
        "llm.colour_words",
        "schemas.subreddit_names",
    ):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin:
            h.update(Path(spec.origin).read_bytes())
    return h.hexdigest()[:12]


def request_id(
    label: str,
    task: str,
    messages: list[dict],
    inputs: dict,
    runtime: Runtime,
    response_format: str = "json_object",
    images: Sequence[tuple[str, bytes]] = (),
) -> str:
    """Stable id of an exact request: a rerun reuses a finished row only when the model
    (for the template backend, its code), the messages, the structured inputs, the
    sampling settings, how the reply's JSON is asked for and the images shown (by their
    bytes' digest) are all unchanged (the default ``json_object`` and no images add
    nothing to the key, so older ids stay valid)."""
    key = {
        "llm": f"{label}@{template_code()}" if label.startswith("template:") else label,
        "task": task,
        "messages": messages,
        "inputs": inputs,
        "sampling": [runtime.max_tokens, runtime.temperature, runtime.seed],
    }
    if response_format != "json_object":
        key["response_format"] = response_format
    if runtime.repetition_penalty != 1.0:
        key["sampling"].append(runtime.repetition_penalty)
    if images:  # by content: other images make another request (none adds nothing)
        key["images"] = [hashlib.sha256(data).hexdigest() for _, data in images]
    return hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:24]


def with_schema(messages: list[dict], schema: dict) -> list[dict]:
    """`messages` with the reply's JSON schema spelt out at the end of the system message
    (or as one, first): how a reply's shape is asked for where decoding is not constrained
    to it (``json_object`` endpoints, free local decoding)."""
    note = (
        "The reply is one JSON object that validates against this JSON schema (the "
        "descriptions say what each field holds; write the person's values, not the "
        "schema):\n" + json.dumps(schema, separators=(",", ":"))
    )
    out = [dict(m) for m in messages]
    if out and out[0].get("role") == "system" and isinstance(out[0].get("content"), str):
        out[0]["content"] = f"{out[0]['content']}\n\n{note}"
    else:
        out.insert(0, {"role": "system", "content": note})
    return out


REDACTED = "[redacted]"
SECRET_PIECE = 8  # the shortest piece of a secret that is still treated as the secret


def scrub_secret(text: str, secret: str | None) -> str:
    """`text` with `secret` and every piece of it of `SECRET_PIECE` or more characters
    (a prefix or a suffix left by someone else's cut, or any other fragment) replaced by
    "[redacted]". Each run of text made of overlapping 8-character pieces of the secret
    becomes one marker; a secret shorter than 8 characters is replaced whole. This is the
    one scrub rule for text that came from outside (bodies, error messages, replies)."""
    if not secret or not text:
        return text
    n = min(SECRET_PIECE, len(secret))
    spans: list[tuple[int, int]] = []
    for piece in {secret[i : i + n] for i in range(len(secret) - n + 1)}:
        at = text.find(piece)
        while at != -1:
            spans.append((at, at + n))
            at = text.find(piece, at + 1)
    if not spans:
        return text
    spans.sort()
    out: list[str] = []
    kept = 0  # end of the text already copied or redacted
    start, end = spans[0]
    for s, e in spans[1:]:
        if s <= end:
            end = max(end, e)
            continue
        out += [text[kept:start], REDACTED]
        kept, start, end = end, s, e
    out += [text[kept:start], REDACTED, text[end:]]
    return "".join(out)


def clip_scrubbed(text: str, limit: int, secret: str | None) -> str:
    """At most `limit` characters of outside text, cut only after the secret is scrubbed
    (a cut through the secret would leave a prefix the whole-secret scrub cannot see),
    and scrubbed again after the cut, so no piece of the secret survives either way."""
    return scrub_secret(scrub_secret(text, secret)[:limit], secret)
