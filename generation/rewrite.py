"""Persona-conditioned prompt rewriting and its baselines: the requests, the examples each
method shows, ViPer-style prompts, and validation of a rewritten prompt."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from generation.llm import ChatRequest, Runtime, request_id
from generation.persona import roleplay
from generation.prompts import REWRITE_VERSION, rewrite_messages

LLM_METHODS = ("none", "zero_shot", "k_shot", "history")
_PREFIX = re.compile(r"^(?:here(?:'s| is)[^:\n]*:|rewritten prompt:|prompt:)\s*", re.IGNORECASE)


def clean_rewrite(text: str) -> str:
    """The prompt in a rewriter's reply (quotes, fences and 'Here is…:' lead-ins removed);
    ValueError when nothing usable is left."""
    t = text.strip().strip("`").strip()
    t = _PREFIX.sub("", t).strip().strip('"').strip("“”").strip()
    t = " ".join(t.split())
    if len(t) < 3:
        raise ValueError("the rewritten prompt is empty")
    if len(t) > 2000:
        raise ValueError(f"the rewritten prompt is {len(t)} characters long (limit 2000)")
    return t


@dataclass(frozen=True)
class RewriteJob:
    """One row of bench/rewrites to make: a user's base prompt under one method."""

    user_id: int
    prompt_id: str
    method: str
    base_prompt: str
    examples: tuple[str, ...] = ()


def rewrite_request(
    job: RewriteJob, persona: dict | None, label: str, runtime: Runtime
) -> ChatRequest:
    """The chat request of an LLM method (none, zero_shot, k_shot, history)."""
    text = roleplay(persona) if persona and job.method in ("zero_shot", "k_shot") else None
    examples = list(job.examples)
    messages = rewrite_messages(job.method, job.base_prompt, text, examples)
    inputs = {
        "row": [job.user_id, job.prompt_id, job.method],  # one request per table row
        "method": job.method,
        "prompt": job.base_prompt,
        "examples": examples,
        "persona": persona if job.method in ("zero_shot", "k_shot") else None,
        "version": REWRITE_VERSION,
    }
    return ChatRequest(
        request_id(label, "rewrite", messages, inputs, runtime), "rewrite", messages, inputs
    )


def viper_prompt(base: str, likes: list[str], dislikes: list[str]) -> tuple[str, str | None]:
    """ViPer-style: liked attributes appended to the prompt, disliked ones as the negative
    prompt."""
    prompt = f"{base.strip().rstrip('.')}, {', '.join(likes)}" if likes else base.strip()
    return prompt, (", ".join(dislikes) or None)


def most_similar(query: np.ndarray, candidates: np.ndarray, k: int) -> np.ndarray:
    """Indices of the `k` candidates most cosine-similar to `query` (best first)."""
    if not len(candidates):
        return np.zeros(0, np.int64)
    q = query / (np.linalg.norm(query) or 1.0)
    c = candidates / np.maximum(np.linalg.norm(candidates, axis=1, keepdims=True), 1e-12)
    sims = c @ q
    return np.argsort(-sims, kind="stable")[:k]
