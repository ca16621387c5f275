"""A rater's pairs: same prompt, two methods, drawn from every (prompt, method pair), in a
random order, each side drawn at random but balanced over the rater's pairs (every method
of a pair is on the left as often as it can be), so a side bias cannot favour a method."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class PlannedPair:
    """One pair to show: its place in the rater's order, the prompt, the two sides."""

    ordinal: int
    position: int  # the prompt's position in the study
    left: str
    right: str


def plan_pairs(
    prompts: int, methods: list[str], votes: int, rng: random.Random | None = None
) -> list[PlannedPair]:
    """`votes` pairs (at most every prompt × method pair once) for one rater."""
    rng = rng or random.SystemRandom()
    combos = [
        (p, a, b) for p in range(prompts) for a, b in itertools.combinations(sorted(methods), 2)
    ]
    rng.shuffle(combos)
    chosen = combos[: max(1, min(votes, len(combos)))]
    groups: dict[tuple[str, str], list[int]] = {}
    for i, (_, a, b) in enumerate(chosen):
        groups.setdefault((a, b), []).append(i)
    side = dict.fromkeys(range(len(chosen)), False)
    for members in groups.values():  # per method pair, half the pairs swap sides ...
        swaps = [k % 2 == 1 for k in range(len(members))]
        if len(members) % 2 and rng.random() < 0.5:  # ... (an odd one out either way)
            swaps = [not f for f in swaps]
        rng.shuffle(swaps)  # ... which ones at random
        side.update(zip(members, swaps, strict=True))
    flips = [side[i] for i in range(len(chosen))]
    return [
        PlannedPair(n, p, *((b, a) if flip else (a, b)))
        for n, ((p, a, b), flip) in enumerate(zip(chosen, flips, strict=True))
    ]


def images_needed(pairs: list[PlannedPair]) -> list[tuple[int, str]]:
    """The (prompt position, method) images the pairs show, each once, in order."""
    seen: dict[tuple[int, str], None] = {}
    for p in sorted(pairs, key=lambda p: p.ordinal):
        seen.setdefault((p.position, p.left))
        seen.setdefault((p.position, p.right))
    return list(seen)
