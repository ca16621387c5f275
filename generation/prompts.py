"""Every prompt the pipeline sends to an LLM, versioned (rows keep the version)."""

from __future__ import annotations

import json

PERSONA_VERSION = "persona-v1"
PREFERENCES_VERSION = "preferences-v1"
REWRITE_VERSION = "rewrite-v1"

PERSONA_SCHEMA = {
    "demographics": {
        "age": "age range or null",
        "gender": "or null",
        "region": "or null",
        "occupation": "or null",
    },
    "interests": ["short phrases"],
    "affective_traits": ["e.g. curious, nostalgic, playful"],
    "visual_interests": ["styles, subjects, colours, moods they like to look at"],
    "text": "a short first-person description of the person (3-5 sentences)",
}


def persona_messages(evidence: str) -> list[dict[str, str]]:
    """Evidence -> persona JSON (demographics, interests, affective traits, visual
    interests, free text)."""
    return [
        {
            "role": "system",
            "content": "You read a Reddit user's activity and write a faithful persona of them. "
            "Infer only what the evidence supports; use null for demographics it does not "
            "reveal. Reply with one JSON object of exactly this shape and nothing else:\n"
            + json.dumps(PERSONA_SCHEMA, indent=1),
        },
        {
            "role": "user",
            "content": "Evidence: the user's communities, most telling first, each with the "
            "user's own comments and post titles there.\n\n"
            f"{evidence}\n\nWrite the persona JSON.",
        },
    ]


def preferences_messages(evidence: str) -> list[dict[str, str]]:
    """Evidence -> liked and disliked visual attributes (ViPer-style baseline)."""
    return [
        {
            "role": "system",
            "content": "From a Reddit user's comments, extract the visual attributes they like "
            "and dislike: styles, subjects, colours, lighting, moods, techniques. Short "
            'phrases, at most 10 each. Reply with one JSON object: {"likes": [...], '
            '"dislikes": [...]}.',
        },
        {"role": "user", "content": f"{evidence}\n\nExtract the visual preferences JSON."},
    ]


def repair_message(error: str) -> dict[str, str]:
    """The one repair attempt after a reply fails validation."""
    return {
        "role": "user",
        "content": f"That reply could not be used: {error}. Reply again with only the "
        "corrected output, in the required format.",
    }


_REWRITE_ASK = (
    "Rewrite this text-to-image prompt. Keep its subject; add the style, mood, composition "
    "and details that fit. Reply with the rewritten prompt only, at most 60 words."
)


def rewrite_messages(
    method: str, prompt: str, roleplay: str | None = None, examples: list[str] | None = None
) -> list[dict[str, str]]:
    """Base prompt -> rewritten prompt. `none`: generic rewrite, no persona; `zero_shot`:
    the persona as a first-person roleplay; `k_shot`: that plus the user's own earlier
    prompts; `history`: no persona, the user's most similar earlier prompts."""
    listed = "\n".join(f"- {e}" for e in examples or [])
    if method == "none":
        system = "You are an expert prompt writer for text-to-image models."
        ask = _REWRITE_ASK
    elif method == "history":
        system = "You are an expert prompt writer for text-to-image models."
        ask = (
            f"This user wrote these earlier prompts:\n{listed}\n\n"
            f"{_REWRITE_ASK} Match the user's taste as their earlier prompts show it."
        )
    elif method in ("zero_shot", "k_shot"):
        system = (
            "Roleplay the person below. Speak as them, in the first person, and stay in "
            f"character.\n\n{roleplay}"
        )
        ask = f"{_REWRITE_ASK} Make it an image I, as this person, would love."
        if method == "k_shot":
            ask = f"Prompts and titles I wrote before:\n{listed}\n\n{ask}"
    else:
        raise ValueError(f"no LLM rewrite for method {method!r}")
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": f"{ask}\n\n{prompt}"},
    ]
