"""The registry of ZIPBench methods: every way an image of a (user, base prompt) is made,
with what each needs. Read by config validation (`rewrite.methods`), the rewrite stage's
dispatch (`generation.stages.rewrite`), the generate stage (`generation.stages.generate`: base and
the image-conditioned methods), and the report's method order (`METHOD_ORDER`,
`method_rank`).

A method marked ``sweep`` (`k_shot`) has variants: with `rewrite.k` a list, its rows are
named ``k_shot@K``, one per K (`method_variant` parses a name, `get_method` returns the
variant's entry with its `k`); with `rewrite.k` one integer, the rows keep the plain name.

Adding a method = its module (a function from a `RewriteCase` to chat messages, for an
LLM method, or to ``(prompt, negative_prompt)``) + one line in `_REGISTRY` + its tests.
The needs are checked in one place, the rewrite dispatch: a row whose user lacks what its
method needs ends ``failed`` with the reason, without a call.

Nothing is imported here at module level (config validation imports this module): each
method names its function as ``"module:function"``, loaded when a stage runs it.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

#: where the examples a method shows come from (the user's own earlier titles, history
#: only): the `rewrite.k` newest, or the `rewrite.history_k` most similar to the prompt
Examples = Literal["recent", "similar"]


@dataclass(frozen=True)
class RewriteCase:
    """What a method's function gets for one row: the base prompt and what it needs."""

    base_prompt: str
    roleplay: str | None = None  # the persona as first-person text (needs persona)
    examples: tuple[str, ...] = ()  # the user's earlier titles shown (needs examples)
    likes: tuple[str, ...] = ()  # ViPer liked attributes (needs preferences)
    dislikes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Method:
    """One method and what it needs."""

    name: str
    summary: str
    stage: Literal["rewrite", "generate"] = "rewrite"  # which stage makes its rows
    persona: bool = False  # the user's persona (gold/personas, same LLM)
    examples: Examples | None = None  # the user's earlier titles (history only)
    preferences: bool = False  # liked/disliked visual attributes (gold/visual_preferences)
    images: bool = False  # the user's history images (IP-Adapter, diffusion.ip_adapter)
    llm: bool = False  # one rewriter LLM call per row (else made directly)
    control: bool = False  # a control: persona taken from another benchmark user (swapped)
    make: str | None = None  # "module:function": RewriteCase -> messages | (prompt, negative)
    sweep: bool = False  # a `rewrite.k` list makes one variant per K, named ``name@K``
    k: int | None = None  # a variant's examples shown (None: the plain method, `rewrite.k`)

    @property
    def base(self) -> str:
        """The registered name a variant is of (the name itself for a plain method)."""
        return method_variant(self.name)[0]

    def build(self) -> Callable[[RewriteCase], Any]:
        """The method's function (rewrite-stage methods)."""
        if self.make is None:
            raise ValueError(f"method {self.name!r} is made by the {self.stage} stage")
        module, _, attr = self.make.partition(":")
        return getattr(importlib.import_module(module), attr)

    @property
    def needs(self) -> tuple[str, ...]:
        """What it needs, in words (for docs, `zipp` listings and reports)."""
        out = [
            n
            for n, on in (
                ("persona", self.persona),
                (f"examples ({self.examples})", self.examples),
                ("visual preferences", self.preferences),
                ("history images", self.images),
                ("LLM", self.llm),
            )
            if on
        ]
        return tuple(out)


_REGISTRY = (
    Method("base", "the base prompt as it is, no rewrite", stage="generate"),
    Method(
        "none",
        "generic LLM rewrite, no persona (what rewriting alone adds)",
        llm=True,
        make="generation.rewrite:plain_rewrite",
    ),
    Method(
        "zero_shot",
        "the LLM roleplays the persona and rewrites",
        persona=True,
        llm=True,
        make="generation.rewrite:roleplay_rewrite",
    ),
    Method(
        "swapped",
        "control: zero_shot with another benchmark user's persona (a user of other "
        "communities, fixed by seed): what any persona rewrite adds",
        persona=True,
        llm=True,
        control=True,
        make="generation.rewrite:roleplay_rewrite",
    ),
    Method(
        "k_shot",
        "zero_shot plus the user's own earlier titles",
        persona=True,
        examples="recent",
        llm=True,
        make="generation.rewrite:roleplay_rewrite",
        sweep=True,
    ),
    Method(
        "viper",
        "ViPer-style: liked attributes appended, disliked ones as the negative prompt",
        preferences=True,
        make="generation.rewrite:viper_rewrite",
    ),
    Method(
        "history",
        "Tailored-Visions-style: the user's most similar earlier titles, no persona",
        examples="similar",
        llm=True,
        make="generation.rewrite:history_rewrite",
    ),
    Method(
        "pigeon",
        "Pigeon-style: the base prompt conditioned on the user's history images",
        stage="generate",
        images=True,
    ),
)
#: every method by name, in registry order
METHODS: dict[str, Method] = {m.name: m for m in _REGISTRY}
#: the order reports and tables list methods in
METHOD_ORDER: tuple[str, ...] = tuple(METHODS)
#: the methods `rewrite.methods` may list (made by the rewrite stage), the default list
REWRITE_METHODS: tuple[str, ...] = tuple(m.name for m in _REGISTRY if m.stage == "rewrite")
#: the methods conditioned on the user's own persona (what the persona's gain is measured on)
PERSONA_METHODS: tuple[str, ...] = tuple(m.name for m in _REGISTRY if m.persona and not m.control)
#: the control method: personalisation is what a method adds over it
CONTROL = "swapped"


#: what separates a method's name from its variant's K (``k_shot@5``)
VARIANT = "@"
_K = re.compile(r"[1-9][0-9]*")


def method_variant(name: str) -> tuple[str, int | None]:
    """(registered name, K) of a row's method: ``k_shot@5`` -> ("k_shot", 5), ``k_shot``
    -> ("k_shot", None); ValueError for a K that is not a positive integer as written."""
    base, sep, k = name.partition(VARIANT)
    if not sep:
        return name, None
    if not _K.fullmatch(k):
        raise ValueError(f"method {name!r}: K after {VARIANT!r} must be a positive integer")
    return base, int(k)


def variant_names(name: str, k: int | list[int]) -> list[str]:
    """The row methods registered method `name` makes under `rewrite.k`: one ``name@K``
    per K of a list for a ``sweep`` method, else the plain name (one integer keeps it)."""
    if isinstance(k, list) and get_method(name).sweep:
        return [f"{name}{VARIANT}{x}" for x in k]
    return [name]


def get_method(name: str) -> Method:
    """A method's registry entry, or its variant's (``k_shot@5``: `k` 5); ValueError
    naming the known ones, or saying the method has no variants."""
    base, k = method_variant(name)
    try:
        m = METHODS[base]
    except KeyError:
        raise ValueError(f"unknown method {base!r} (known: {', '.join(METHODS)})") from None
    if k is None:
        return m
    if not m.sweep:
        sweeps = ", ".join(n for n, x in METHODS.items() if x.sweep)
        raise ValueError(f"method {base!r} has no {VARIANT}K variants (those that have: {sweeps})")
    return replace(m, name=name, k=k)


def method_rank(name: str) -> tuple[int, int, str]:
    """Where a row's method sorts in reports: registry order (`METHOD_ORDER`), a method's
    variants in its place by K; unknown names last, by name."""
    try:
        base, k = method_variant(name)
    except ValueError:
        return len(METHOD_ORDER), 0, name
    order = METHOD_ORDER.index(base) if base in METHOD_ORDER else len(METHOD_ORDER)
    return order, k or 0, name


def generate_methods() -> list[Method]:
    """The methods the generate stage makes from base prompts (base, pigeon)."""
    return [m for m in _REGISTRY if m.stage == "generate"]
