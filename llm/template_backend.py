"""The embedded default: a deterministic template verbaliser and rewriter, no model.

It reads each request's structured `inputs` (never the prose), so its output depends only
on the evidence. Every row it makes is labelled ``template`` in the tables and reports.
"""

from __future__ import annotations

import json
import re
from collections import Counter

from llm.base import ChatRequest, Completion
from llm.demographics import infer_demographics
from schemas.subreddit_names import readable

LABEL = "template:template"
_WORD = re.compile(r"[a-z][a-z'-]{3,}")
_STOP = frozenset(
    [
        "about",
        "above",
        "after",
        "again",
        "also",
        "always",
        "anyone",
        "anything",
        "around",
        "because",
        "been",
        "before",
        "being",
        "best",
        "better",
        "between",
        "both",
        "could",
        "does",
        "doing",
        "done",
        "each",
        "else",
        "even",
        "ever",
        "every",
        "first",
        "from",
        "good",
        "great",
        "have",
        "here",
        "into",
        "just",
        "know",
        "like",
        "little",
        "look",
        "love",
        "looks",
        "made",
        "make",
        "many",
        "more",
        "most",
        "much",
        "need",
        "never",
        "nice",
        "only",
        "other",
        "over",
        "people",
        "post",
        "question",
        "really",
        "right",
        "same",
        "share",
        "should",
        "since",
        "some",
        "still",
        "such",
        "than",
        "thank",
        "thanks",
        "that",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "thing",
        "things",
        "think",
        "this",
        "those",
        "through",
        "time",
        "today",
        "very",
        "want",
        "well",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "with",
        "would",
        "years",
        "your",
        "yours",
    ]
)


def keywords(texts: list[str], n: int, weights: list[float] | None = None) -> list[str]:
    """The `n` content words of `texts` with the highest (weighted) counts, ties broken
    alphabetically."""
    counts: Counter = Counter()
    for t, w in zip(texts, weights or [1.0] * len(texts), strict=True):
        for word in _WORD.findall(t.lower()):
            if word not in _STOP:
                counts[word] += w
    return [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


def _by_attention(inputs: dict) -> list[float] | None:
    """Snippet weights 1/rank of their subreddit in the user's attention order."""
    ranks = inputs.get("snippet_ranks")
    return [1.0 / r for r in ranks] if ranks else None


def persona_json(inputs: dict) -> str:
    """A persona from the evidence: interests from the attention-ranked subreddits, visual
    interests from snippet keywords, demographics from self-disclosure and dialect cues in
    the snippets (null where they show none; see llm.demographics)."""
    subs = inputs.get("subreddits", [])
    snippets = inputs.get("snippets", [])
    words = keywords(snippets, 8, _by_attention(inputs))
    top = ", ".join(f"r/{s}" for s in subs[:3]) or "no community in particular"
    themes = ", ".join(words[:5]) or "nothing in particular"
    persona = {
        "demographics": infer_demographics(snippets),
        "interests": [readable(s) for s in subs[:5]],
        "affective_traits": ["engaged"] if len(snippets) >= 3 else [],
        "visual_interests": words[:5],
        "text": f"[template-made, no LLM] I spend most of my time in {top}; "
        f"what I keep talking about: {themes}.",
    }
    return json.dumps(persona)


#: Words of judgement, not attributes: never a dislike themselves.
_NEGATIVE = frozenset(
    [
        "annoying",
        "awful",
        "bland",
        "boring",
        "cannot",
        "cheesy",
        "cringe",
        "cringy",
        "disgusting",
        "dislike",
        "disliked",
        "dreadful",
        "dull",
        "eyesore",
        "garbage",
        "garish",
        "gross",
        "hate",
        "hated",
        "hates",
        "hideous",
        "horrible",
        "lame",
        "mediocre",
        "nope",
        "overdone",
        "overhyped",
        "overrated",
        "pointless",
        "ruined",
        "stand",
        "stupid",
        "sucks",
        "tacky",
        "terrible",
        "tired",
        "trash",
        "ugly",
        "unbearable",
        "worse",
        "worst",
        "yuck",
    ]
)


def preferences_json(inputs: dict) -> str:
    """Likes: keywords of the evidence snippets; dislikes: keywords of the downvoted
    snippets that are neither likes, nor judgement words, nor used in the evidence."""
    snippets = inputs.get("snippets", [])
    liked = keywords(snippets, 6, _by_attention(inputs))
    seen = set(_WORD.findall(" ".join(snippets).lower())) | _NEGATIVE
    disliked = [w for w in keywords(inputs.get("disliked", []), 50) if w not in seen]
    return json.dumps({"likes": liked, "dislikes": disliked[:3]})


def rewrite_text(inputs: dict) -> str:
    """The base prompt plus what the method shows: the persona's visual interests
    (zero_shot, swapped), the user's earlier titles' keywords (history), both (k_shot:
    zero_shot plus the titles), generic quality words (none)."""
    base = inputs["prompt"].strip().rstrip(".")
    method = inputs.get("method", "none")
    if method == "none":
        return f"{base}, detailed, well composed, balanced lighting"
    persona = inputs.get("persona") or {}
    liked = (persona.get("visual_interests") or [])[:4] or (persona.get("interests") or [])[:2]
    if method == "history":
        extra = keywords(inputs.get("examples", []), 4)
    elif method == "k_shot":
        shown = keywords(inputs.get("examples", []), 4)
        extra = liked[:3] + [w for w in shown if w not in liked[:3]][:3]
    else:
        extra = liked
    return f"{base}, {', '.join(extra)}" if extra else base


def judgement_json(inputs: dict) -> str:
    """The transparent default judge: no model looks at the image; the score is its
    similarity to the user's reference images (CLIPScore-style ×100, mapped to 0-10)."""
    sim = inputs.get("reference_similarity")
    if sim is None:
        return json.dumps({"score": None, "reason": "no reference images to compare with"})
    return json.dumps(
        {
            "score": round(float(sim) / 10, 3),
            "reason": f"template judge, not an LLM: similarity to the user's reference images "
            f"in {inputs.get('space', 'the default image-feature space')} = {sim:.1f}/100",
        }
    )


TASKS = {
    "persona": persona_json,
    "preferences": preferences_json,
    "rewrite": rewrite_text,
    "judge": judgement_json,
}


class TemplateBackend:
    """Deterministic outputs from structured inputs; labelled as template-made."""

    label = LABEL
    template = True

    async def complete(self, requests: list[ChatRequest]) -> list[Completion]:
        out = []
        for r in requests:
            make = TASKS.get(r.task)
            if make is None:
                out.append(Completion(None, error=f"template backend: unknown task {r.task!r}"))
            else:
                out.append(Completion(make(r.inputs)))
        return out

    async def aclose(self) -> None:
        return None
