"""User-supplied persona overrides (`personas.overrides`): read, validated against the
persona model, and applied to gold/personas."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
from pydantic import ValidationError

from schemas.persona import Persona


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
        "evidence_weights": [],
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
