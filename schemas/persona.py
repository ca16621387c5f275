"""Personas and visual preferences as the LLM writes them: the pydantic models replies
are validated against (defined once), the reply parsers, the roleplay text made from a
persona, and which persona goes with an image or score row (`persona_for`)."""

from __future__ import annotations

import json
import re

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)


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


#: what a small model copies from a schema or an example instead of an answer
_PLACEHOLDER = re.compile(
    r"^(?:\W*|<[^>]*>|\[[^\]]*\]|\.\.\.|string|str|null|none|n/?a|todo|tbd|placeholder|"
    r"your \w+( \w+)?)$",
    re.IGNORECASE,
)


def is_placeholder(text: str) -> bool:
    """True for a copied placeholder ("...", "<interest>", "string", "your text"), not
    an answer."""
    return bool(_PLACEHOLDER.match(text.strip()))


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def copies(text: str, described: str, run: int = 4) -> bool:
    """True when `text` repeats `run` or more consecutive words of a field's description
    (what the prompt says a field holds), the way a small model copies the question."""
    want, have = _words(described), " ".join(_words(text))
    return (
        any(" ".join(want[i : i + run]) in have for i in range(max(len(want) - run + 1, 0)))
        if len(want) >= run
        else False
    )


def _answers(items: list[str], described: str = "") -> list[str]:
    """Items that answer: placeholders and copies of the field's description out, each
    item once (case and spacing ignored)."""
    seen: set[str] = set()
    out = []
    for i in items:
        key = " ".join(_words(i))
        if is_placeholder(i) or (described and copies(i, described)) or key in seen:
            continue
        seen.add(key)
        out.append(i)
    return out


class Persona(BaseModel):
    """What a persona holds; extra keys from the LLM are ignored; copied placeholders
    ("...", "<interest>") are not answers: dropped from lists, refused as the text."""

    model_config = ConfigDict(extra="ignore")
    demographics: Demographics = Field(
        default_factory=Demographics,
        description="age, gender, region and occupation, each null unless the evidence says",
    )
    interests: list[str] = Field(
        default_factory=list,
        description="the person's communities and topics as the evidence names them",
    )
    affective_traits: list[str] = Field(
        default_factory=list, description="two or three words for their temperament"
    )
    visual_interests: list[str] = Field(
        default_factory=list,
        description="subjects, styles, colours and moods they like to look at",
    )
    text: str = Field(
        min_length=1,
        description="three to five sentences in the first person on who they are",
    )

    @field_validator("interests", "affective_traits", "visual_interests", mode="before")
    @classmethod
    def _lists(cls, v: object) -> object:
        return _phrases(v)

    @field_validator("interests", "affective_traits", "visual_interests")
    @classmethod
    def _no_placeholders(cls, v: list[str], info) -> list[str]:
        return _answers(v, cls.model_fields[info.field_name].description or "")

    @field_validator("text")
    @classmethod
    def _text_answers(cls, v: str) -> str:
        if is_placeholder(v):
            raise ValueError(f"a placeholder copied, not a persona ({v.strip()[:40]!r})")
        if any(copies(v, f.description or "") for f in cls.model_fields.values()):
            raise ValueError(f"the question copied, not a persona ({v.strip()[:40]!r})")
        return v


class Preferences(BaseModel):
    """ViPer-style liked and disliked visual attributes (placeholders dropped; at least
    one like)."""

    model_config = ConfigDict(extra="ignore")
    likes: list[str] = Field(description="visual attributes the person likes")
    dislikes: list[str] = Field(
        default_factory=list, description="visual attributes the person dislikes"
    )

    @field_validator("likes", "dislikes", mode="before")
    @classmethod
    def _lists(cls, v: object) -> object:
        return _phrases(v)

    @field_validator("likes", "dislikes")
    @classmethod
    def _no_placeholders(cls, v: list[str], info) -> list[str]:
        return _answers(v, cls.model_fields[info.field_name].description or "")

    @field_validator("likes")
    @classmethod
    def _some_like(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("names no liked attribute (an empty list)")
        return v


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
    """LLM reply -> persona fields, or ValueError saying what is wrong (a reply that names
    no interest and no visual interest is empty of content, whatever its JSON)."""
    persona = _validated(Persona, text)
    if not persona["interests"] and not persona["visual_interests"]:
        raise ValueError("interests: the reply names no interest and no visual interest")
    return persona


def parse_preferences(text: str) -> dict:
    """LLM reply -> {"likes": [...], "dislikes": [...]}, or ValueError."""
    return _validated(Preferences, text)


#: the reply parsers of the persona and preferences tasks (`llm.fanout.process`)
REPLY_PARSERS = {"persona": parse_persona, "preferences": parse_preferences}


#: bounds the schema puts on what constrained decoding may write (validation stays as
#: lenient as the model: a free reply longer than these is still accepted)
MAX_ITEMS, MAX_PHRASE, MAX_TEXT = 6, 48, 480


def _bounded(node: object, name: str = "") -> object:
    """A JSON schema with no extra keys on objects and lengths bounded (a phrase, or the
    free `text` / `reason`), so a constrained small model cannot invent keys or ramble."""
    if isinstance(node, list):
        return [_bounded(n, name) for n in node]
    if not isinstance(node, dict):
        return node
    out = {
        k: {p: _bounded(v2, p) for p, v2 in v.items()} if k == "properties" else _bounded(v, name)
        for k, v in node.items()
    }
    if out.get("type") == "object":
        out["additionalProperties"] = False
    if out.get("type") == "array":
        out["maxItems"] = MAX_ITEMS
    if out.get("type") == "string" and "maxLength" not in out:
        out["maxLength"] = MAX_TEXT if name in ("text", "reason") else MAX_PHRASE
    return out


def reply_schema(model: type[BaseModel]) -> dict:
    """The JSON schema a reply must follow, derived from the model that validates it
    (sent as ``response_format: json_schema`` where the endpoint constrains decoding,
    used by the hf backend's constrained decoding), bounded by `_bounded`."""
    return _bounded(model.model_json_schema())


#: the reply schemas of the persona and preferences tasks
REPLY_SCHEMAS = {"persona": reply_schema(Persona), "preferences": reply_schema(Preferences)}


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
