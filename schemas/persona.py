"""Personas and visual preferences as the LLM writes them: the pydantic models replies
are validated against (defined once), the reply parsers, the roleplay text made from a
persona, and which persona goes with an image or score row (`persona_for`)."""

from __future__ import annotations

import json
import re

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class Demographics(BaseModel):
    model_config = ConfigDict(extra="ignore")
    age: str | None = None
    gender: str | None = None
    region: str | None = None
    occupation: str | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _text(cls, v: object) -> object:
        if v is None or (isinstance(v, str) and v.strip().lower() in ("", "null", "unknown")):
            return None
        return str(v) if isinstance(v, int | float) else v


def _phrases(v: object) -> object:
    if isinstance(v, str):
        return [p.strip() for p in v.split(",") if p.strip()]
    return v


class Persona(BaseModel):
    """What a persona holds; extra keys from the LLM are ignored."""

    model_config = ConfigDict(extra="ignore")
    demographics: Demographics = Field(default_factory=Demographics)
    interests: list[str] = Field(default_factory=list)
    affective_traits: list[str] = Field(default_factory=list)
    visual_interests: list[str] = Field(default_factory=list)
    text: str = Field(min_length=1)

    @field_validator("interests", "affective_traits", "visual_interests", mode="before")
    @classmethod
    def _lists(cls, v: object) -> object:
        return _phrases(v)


class Preferences(BaseModel):
    """ViPer-style liked and disliked visual attributes."""

    model_config = ConfigDict(extra="ignore")
    likes: list[str]
    dislikes: list[str] = Field(default_factory=list)

    @field_validator("likes", "dislikes", mode="before")
    @classmethod
    def _lists(cls, v: object) -> object:
        return _phrases(v)


_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.MULTILINE)


def json_object(text: str) -> dict:
    """The JSON object in an LLM reply (code fences and chatter around it tolerated)."""
    text = _FENCE.sub("", text.strip())
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        raise ValueError("no JSON object in the reply")
    try:
        data = json.loads(text[start : end + 1])
    except json.JSONDecodeError as e:
        raise ValueError(f"invalid JSON: {e.msg} at char {e.pos}") from None
    if not isinstance(data, dict):
        raise ValueError("the reply's JSON is not an object")
    return data


def _validated(model: type[BaseModel], text: str) -> dict:
    try:
        return model.model_validate(json_object(text)).model_dump()
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "reply"
        raise ValueError(f"{where}: {err['msg']}") from None


def parse_persona(text: str) -> dict:
    """LLM reply -> persona fields, or ValueError saying what is wrong."""
    return _validated(Persona, text)


def parse_preferences(text: str) -> dict:
    """LLM reply -> {"likes": [...], "dislikes": [...]}, or ValueError."""
    return _validated(Preferences, text)


#: the reply parsers of the persona and preferences tasks (`llm.fanout.process`)
REPLY_PARSERS = {"persona": parse_persona, "preferences": parse_preferences}


def roleplay(persona: dict) -> str:
    """A persona as the first-person instruction the rewriter roleplays."""
    lines = [persona.get("text") or ""]
    demo = {k: v for k, v in (persona.get("demographics") or {}).items() if v}
    if demo:
        lines.append("About me: " + ", ".join(f"{k} {v}" for k, v in demo.items()) + ".")
    for key, intro in (
        ("interests", "I am into"),
        ("affective_traits", "People would call me"),
        ("visual_interests", "Visually I love"),
    ):
        if persona.get(key):
            lines.append(f"{intro} {', '.join(persona[key])}.")
    return "\n".join(ln for ln in lines if ln)


#: the ``llm`` of an image or score row made without an LLM (base, pigeon)
NO_LLM = "-"


def persona_for(keys: list[tuple[int, str]], personas: object) -> list[dict | None]:
    """The persona that goes with each image, one rule for the judge, the report and the
    exports. `keys` are the images' (user_id, llm); `personas` gold/personas (an Arrow
    table or its rows). An image made by an LLM gets the ``done`` persona of the same user
    by the same LLM; one made without an LLM (llm ``"-"``: base, pigeon) the user's
    ``done`` persona whose LLM label sorts first. None when there is no such persona."""
    rows = personas.to_pylist() if hasattr(personas, "to_pylist") else list(personas)
    by_llm: dict[tuple[int, str], dict] = {}
    for r in rows:
        if r.get("status") == "done":
            by_llm.setdefault((r["user_id"], r["llm"]), r)
    first: dict[int, dict] = {}
    for (user, _), r in sorted(by_llm.items(), key=lambda kv: kv[0]):
        first.setdefault(user, r)
    return [first.get(u) if llm == NO_LLM else by_llm.get((u, llm)) for u, llm in keys]
