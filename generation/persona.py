"""Personas: the schema LLM output is validated against, the roleplay text made from a
persona, and user-supplied overrides."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pyarrow as pa
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


def read_overrides(path: str | Path) -> list[dict]:
    """User-supplied personas: JSONL, one object per line with `user_id` or `author` and
    at least `text` (other persona fields optional). Errors name the file and line."""
    rows = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError("not a JSON object")
            if "user_id" not in row and "author" not in row:
                raise ValueError("needs user_id or author")
            fields = Persona.model_validate(row).model_dump()
        except (ValueError, ValidationError) as e:
            msg = e.errors()[0]["msg"] if isinstance(e, ValidationError) else str(e)
            raise ValueError(f"{path}:{n}: persona override: {msg}") from None
        given = {k for k in Persona.model_fields if k in row}
        rows.append(
            {
                "user_id": row.get("user_id"),
                "author": row.get("author"),
                **fields,
                "given": sorted(given),
            }
        )
    return rows


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


def apply_overrides(
    out: pa.Table,
    overrides: list[dict],
    users: pa.Table,
    labels: list[str],
    mode: str,
    path: str | Path,
    blocked: frozenset[str] = frozenset(),
    skipped: dict | None = None,
) -> pa.Table:
    """gold/personas with the fields users supplied (`read_overrides`) put in, for every
    model `labels` names; a user with no persona row gets one. `users` is silver/users
    (user_id, author); authors match case-insensitively, as Reddit's do. An override of a
    `blocked` (deletion-requested, lower-cased) author is skipped and counted in
    `skipped["overrides_skipped_deleted"]`; one naming any other user not there is an
    error."""
    by_author = dict(
        zip(
            (a.lower() for a in users["author"].to_pylist()),
            users["user_id"].to_pylist(),
            strict=True,
        )
    )
    known = set(users["user_id"].to_pylist())
    rows = out.to_pylist()
    index = {(r["user_id"], r["llm"]): r for r in rows}
    for ov in overrides:
        author = (ov["author"] or "").lower() if ov["user_id"] is None else None
        if author in blocked:
            if skipped is not None:
                skipped["overrides_skipped_deleted"] = (
                    skipped.get("overrides_skipped_deleted", 0) + 1
                )
            continue
        uid = ov["user_id"] if ov["user_id"] is not None else by_author.get(author)
        if uid not in known:
            who = ov["user_id"] if ov["user_id"] is not None else ov["author"]
            raise ValueError(f"personas.overrides: {path}: no user {who!r} in silver/users")
        for label in labels:
            row = index.get((uid, label))
            if row is None:
                row = index[(uid, label)] = _blank_row(uid, label, mode)
                rows.append(row)
            for f in ov["given"]:
                row[f] = ov[f]
            row.update(source="override", status="done", reason=None, raw=None)
    return pa.Table.from_pylist(rows, schema=out.schema)


def _blank_row(uid: int, label: str, mode: str) -> dict:
    """A persona row for a user the model made none for (an override fills it)."""
    return {
        "user_id": uid,
        "demographics": None,
        "interests": [],
        "affective_traits": [],
        "visual_interests": [],
        "text": None,
        "evidence_mode": mode,
        "evidence_subreddits": [],
        "evidence_ids": [],
        "evidence_tokens": 0,
        "tokenizer": "none",
        "evidence": "",
        "llm": label,
        "template": False,
        "prompt_version": "override",
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "attempts": 0,
        "seconds": 0.0,
        "request_id": hashlib.sha1(f"override:{uid}:{label}".encode()).hexdigest()[:24],
    }
