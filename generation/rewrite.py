"""Persona-conditioned prompt rewriting and its baselines: the rewrite methods' functions
(registered in `schemas.methods`), their requests, the examples they show (the user's
earlier titles, most similar first for `history`), ViPer-style prompts, and validation
of a rewritten prompt."""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from generation.prompts import (
    REWRITE_VERSION,
    history_rewrite_messages,
    plain_rewrite_messages,
    roleplay_rewrite_messages,
)
from llm import ChatRequest, Runtime, request_id
from schemas.methods import RewriteCase, get_method
from schemas.persona import roleplay

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


#: the rewrite task's reply parser (`llm.fanout.process`)
REPLY_PARSERS = {"rewrite": clean_rewrite}


@dataclass(frozen=True)
class RewriteJob:
    """One row of bench/rewrites to make: a user's base prompt under one method."""

    user_id: int
    prompt_id: str
    method: str
    base_prompt: str
    examples: tuple[str, ...] = ()
    #: the user's stable key (`generation.diffusion.user_key`): what the request names
    #: the user by, since a refresh shifts dense ids (the id stands in when empty)
    key: str = ""


def rewrite_id(user: int | str, prompt_id: str, method: str, llm: str) -> str:
    """A row's key in bench/rewrites (`user`: the user's stable key)."""
    return hashlib.sha1(f"{user}\0{prompt_id}\0{method}\0{llm}".encode()).hexdigest()[:16]


def rewrite_request(
    job: RewriteJob, persona: dict | None, label: str, runtime: Runtime
) -> ChatRequest:
    """The chat request of an LLM method (`schemas.methods`, `llm=True`): the
    messages its function makes, and the same content in structured form (`inputs`)."""
    m = get_method(job.method)
    if m.persona and not persona:
        raise ValueError(f"method {job.method!r} needs a persona")
    text = roleplay(persona) if m.persona else None
    messages = m.build()(RewriteCase(job.base_prompt, roleplay=text, examples=job.examples))
    examples = list(job.examples)
    inputs = {
        "row": [job.key or job.user_id, job.prompt_id, job.method],  # one request per row
        "method": job.method,
        "prompt": job.base_prompt,
        "examples": examples,
        "persona": persona if m.persona else None,
        "version": REWRITE_VERSION,
    }
    return ChatRequest(
        request_id(label, "rewrite", messages, inputs, runtime), "rewrite", messages, inputs
    )


# -- the rewrite methods' functions (registered in schemas.methods) ------------------


def plain_rewrite(case: RewriteCase) -> list[dict[str, str]]:
    """`none`: a generic rewrite."""
    return plain_rewrite_messages(case.base_prompt)


def roleplay_rewrite(case: RewriteCase) -> list[dict[str, str]]:
    """`zero_shot` / `k_shot` (`k_shot@K`): the persona roleplayed, with the examples when given."""
    return roleplay_rewrite_messages(case.base_prompt, case.roleplay or "", list(case.examples))


def history_rewrite(case: RewriteCase) -> list[dict[str, str]]:
    """`history`: the user's most similar earlier titles, no persona."""
    return history_rewrite_messages(case.base_prompt, list(case.examples))


def viper_rewrite(case: RewriteCase) -> tuple[str, str | None]:
    """`viper`: made without an LLM from the user's liked and disliked attributes."""
    return viper_prompt(case.base_prompt, list(case.likes), list(case.dislikes))


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


def user_titles(images: pa.Table, users: set[int]) -> dict[int, list[tuple[str, str]]]:
    """Each user's image titles (post id, title), newest first, deduplicated, from
    silver/user_images (the caller passes its history: no held-out reference post)."""
    imgs = images.select(["user_id", "post_id", "title", "created_utc"])
    imgs = imgs.filter(pc.is_valid(imgs["title"])).sort_by(
        [("user_id", "ascending"), ("created_utc", "descending")]
    )
    out: dict[int, list[tuple[str, str]]] = defaultdict(list)
    seen: set[tuple[int, str]] = set()
    for u, pid, title in zip(
        *(imgs[c].to_pylist() for c in ("user_id", "post_id", "title")), strict=True
    ):
        title = " ".join(title.split())
        if u in users and title and (u, title) not in seen:
            seen.add((u, title))
            out[u].append((pid, title))
    return dict(out)
