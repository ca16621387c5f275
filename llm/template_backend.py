"""The embedded default: a deterministic template verbaliser and rewriter, no model.

It reads each request's structured `inputs` (never the prose), so its output depends only
on the evidence. Every row it makes is labelled ``template`` in the tables and reports.
"""

from __future__ import annotations

import json
import re
from collections import Counter

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from llm.base import ChatRequest, Completion
from llm.colour_words import with_colour_words
from llm.demographics import infer_demographics
from schemas.persona import MAX_ITEMS
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


#: ours and scikit-learn's English list, joined once
_STOPWORDS = _STOP | ENGLISH_STOP_WORDS


def keywords(
    texts: list[str], n: int, weights: list[float] | None = None, exclude: frozenset = frozenset()
) -> list[str]:
    """The `n` content words of `texts` with the highest (weighted) counts, ties broken
    alphabetically; stop words (ours and scikit-learn's English list) and `exclude` out,
    texts of weight 0 skipped."""
    counts: Counter = Counter()
    for t, w in zip(texts, weights or [1.0] * len(texts), strict=True):
        if not w:
            continue
        for word in _WORD.findall(t.lower()):
            if word not in _STOPWORDS and word not in exclude:
                counts[word] += w
    return [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


def chatter(inputs: dict) -> frozenset:
    """Words that carry no taste: the evidence's `common_words` (a quarter or more of all
    subreddits use them) and the words the user also writes in the subreddits their
    attention passes over (not `_telling`)."""
    ranks = inputs.get("snippet_ranks") or []
    telling = set(_telling(inputs))
    texts = [t for t, r in zip(inputs.get("snippets", []), ranks, strict=False) if r not in telling]
    return frozenset(_WORD.findall(" ".join(texts).lower())) | set(inputs.get("common_words", []))


#: the share of an even split of rarity-weighted attention a subreddit needs to be an
#: interest (chosen on the demo world: busy subreddits fall far below it)
TELLING = 0.75


def _telling(inputs: dict) -> list[int]:
    """Ranks (1 = top) of the subreddits whose rarity-weighted attention
    (`subreddit_weights`, 1 = an even share) reaches `TELLING`, in attention order; the
    top one when none does. A busy subreddit everyone joins (AskReddit, news) carries no
    taste and falls far below, so it is never an interest. Without weights (older
    requests): every subreddit."""
    weights = inputs.get("subreddit_weights")
    subs = inputs.get("subreddits", [])
    if not weights:
        return list(range(1, len(subs) + 1))
    kept = [i + 1 for i, w in enumerate(weights) if w >= TELLING]
    return kept or [1]


def _by_attention(inputs: dict) -> list[float] | None:
    """Snippet weights: 1/rank of their subreddit in the user's attention order, 0 for the
    subreddits attention weighs below an even share (`_telling`): their chatter is not
    what the user cares about."""
    ranks = inputs.get("snippet_ranks")
    if not ranks:
        return None
    telling = set(_telling(inputs))
    return [1.0 / r if r in telling else 0.0 for r in ranks]


def persona_json(inputs: dict) -> str:
    """A persona from the evidence: interests from the attention-ranked subreddits, visual
    interests from snippet keywords and, with the user's images (`image_colours`), their
    colour and light words (llm.colour_words), demographics from self-disclosure and
    dialect cues in the snippets (null where they show none; see llm.demographics)."""
    names = inputs.get("subreddits", [])
    subs = [names[r - 1] for r in _telling(inputs) if r <= len(names)]
    snippets = inputs.get("snippets", [])
    weights = _by_attention(inputs)
    words = keywords(snippets, 8, weights, chatter(inputs)) or keywords(snippets, 8)
    top = ", ".join(f"r/{s}" for s in subs[:3]) or "no community in particular"
    themes = ", ".join(words[:5]) or "nothing in particular"
    persona = {
        "demographics": infer_demographics(snippets),
        "interests": [readable(s) for s in subs[:5]],
        "affective_traits": ["engaged"] if len(snippets) >= 3 else [],
        "visual_interests": with_colour_words(words[:5], inputs.get("image_colours"), MAX_ITEMS),
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
    weights = _by_attention(inputs)
    liked = keywords(snippets, 6, weights, chatter(inputs)) or keywords(snippets, 6)
    seen = set(_WORD.findall(" ".join(snippets).lower())) | _NEGATIVE
    disliked = [w for w in keywords(inputs.get("disliked", []), 50) if w not in seen]
    return json.dumps({"likes": liked, "dislikes": disliked[:3]})


#: the most persona items a template rewrite appends (`viper` appends its 6 likes): a
#: text encoder reads a prompt's first tokens only (CLIP 77, the smoke model 40, where a
#: word outside its vocabulary costs a token a letter), so the rewrite keeps the persona's
#: strongest items whole instead of a tail the encoder cuts mid-word
REWRITE_ITEMS = 6


def roleplay_words(persona: dict) -> list[str]:
    """What the persona's roleplay asks an image to carry (the LLM prompt's "an image I,
    as this person, would love"): its visual interests, then its interests, each once,
    at most `REWRITE_ITEMS`."""
    words = [*(persona.get("visual_interests") or []), *(persona.get("interests") or [])[:3]]
    return list(dict.fromkeys(w.strip() for w in words if w and w.strip()))[:REWRITE_ITEMS]


def rewrite_text(inputs: dict) -> str:
    """The base prompt plus what the method shows: the persona's roleplay words, visual
    interests and interests (zero_shot, swapped), the user's earlier titles' keywords
    (history), both (k_shot: the examples' 3 title words first, then the persona's words),
    generic quality words (none)."""
    base = inputs["prompt"].strip().rstrip(".")
    method = inputs.get("method", "none")
    if method == "none":
        return f"{base}, detailed, well composed, balanced lighting"
    liked = roleplay_words(inputs.get("persona") or {})
    if method == "history":
        extra = keywords(inputs.get("examples", []), 4)
    elif method.partition("@")[0] == "k_shot":  # k_shot@K: the K examples it was shown
        shown = keywords(inputs.get("examples", []), 3)
        extra = shown + [w for w in liked if w not in shown]  # the examples lead
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
