"""Every prompt the pipeline sends to an LLM, versioned (rows keep the version)."""

from __future__ import annotations

from collections.abc import Sequence

PERSONA_VERSION = "persona-v2"
PREFERENCES_VERSION = "preferences-v2"
REWRITE_VERSION = "rewrite-v1"


def _fields_asked() -> str:
    """What each persona field holds, in the words of the model that validates the reply
    (`schemas.persona.Persona`: defined once; a reply that copies them is refused). No
    example object: its placeholder values are what a small model copies instead of
    answering (the JSON schema, where decoding is not constrained to it, is added by the
    backend: `llm.base.with_schema`)."""
    from schemas.persona import Persona

    return "\n".join(f"- {n}: {f.description}" for n, f in Persona.model_fields.items())


def persona_messages(evidence: str) -> list[dict[str, str]]:
    """Evidence -> persona JSON (demographics, interests, affective traits, visual
    interests, free text)."""
    return [
        {
            "role": "system",
            "content": "You read a Reddit user's activity and write a faithful persona of them. "
            "Infer only what the evidence supports. Reply with one JSON object and nothing "
            "else, with these fields:\n" + _fields_asked(),
        },
        {
            "role": "user",
            "content": f"Evidence:\n\n{evidence}\n\nWrite the persona JSON.",
        },
    ]


def preferences_messages(evidence: str, disliked: Sequence[str] = ()) -> list[dict[str, str]]:
    """Evidence and the comments the user was downvoted for -> liked and disliked visual
    attributes (ViPer-style baseline)."""
    negative = (
        "Comments the user was downvoted for, where they said what they dislike:\n"
        + "".join(f"- {t}\n" for t in disliked)
        if disliked
        else "The user has no downvoted comments: infer dislikes only if the evidence shows them.\n"
    )
    return [
        {
            "role": "system",
            "content": "From a Reddit user's comments, extract the visual attributes they like "
            "and dislike: styles, subjects, colours, lighting, moods, techniques. Likes come "
            "from their communities and comments; dislikes from what they criticise. Name "
            "the subjects and styles, not the judgement (not 'ugly', 'boring'). Short "
            'phrases, at most 10 each. Reply with one JSON object: {"likes": [...], '
            '"dislikes": [...]}.',
        },
        {
            "role": "user",
            "content": f"{evidence}\n\n{negative}\nExtract the visual preferences JSON.",
        },
    ]


_REWRITE_ASK = (
    "Rewrite this text-to-image prompt. Keep its subject; add the style, mood, composition "
    "and details that fit. Reply with the rewritten prompt only, at most 60 words."
)


def plain_rewrite_messages(prompt: str) -> list[dict[str, str]]:
    """Base prompt -> a generic rewrite: no persona, no examples (method `none`)."""
    return _rewrite(_EXPERT, _REWRITE_ASK, prompt)


def history_rewrite_messages(prompt: str, examples: list[str]) -> list[dict[str, str]]:
    """No persona; the user's earlier prompts shown as their taste (method `history`)."""
    ask = (
        f"This user wrote these earlier prompts:\n{_listed(examples)}\n\n"
        f"{_REWRITE_ASK} Match the user's taste as their earlier prompts show it."
    )
    return _rewrite(_EXPERT, ask, prompt)


def roleplay_rewrite_messages(
    prompt: str, roleplay: str, examples: list[str] | None = None
) -> list[dict[str, str]]:
    """The persona as a first-person roleplay (`zero_shot`), with the user's own earlier
    prompts when given (`k_shot`)."""
    system = (
        "Roleplay the person below. Speak as them, in the first person, and stay in "
        f"character.\n\n{roleplay}"
    )
    ask = f"{_REWRITE_ASK} Make it an image I, as this person, would love."
    if examples:
        ask = f"Prompts and titles I wrote before:\n{_listed(examples)}\n\n{ask}"
    return _rewrite(system, ask, prompt)


def rewrite_messages(
    method: str, prompt: str, roleplay: str | None = None, examples: list[str] | None = None
) -> list[dict[str, str]]:
    """The messages registered rewrite method `method` sends (`schemas.methods`) for a
    base prompt, a persona's roleplay text and the examples shown."""
    from schemas.methods import RewriteCase, get_method

    m = get_method(method)
    if not m.llm:
        raise ValueError(f"no LLM rewrite for method {method!r}")
    return m.build()(RewriteCase(prompt, roleplay=roleplay, examples=tuple(examples or ())))


_EXPERT = "You are an expert prompt writer for text-to-image models."


def _listed(examples: list[str]) -> str:
    return "\n".join(f"- {e}" for e in examples)


def _rewrite(system: str, ask: str, prompt: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": f"{ask}\n\n{prompt}"},
    ]
