"""The lake's personas by their export pseudonym (`exports.pseudonyms.pseudonymise` of
the author, keyed by the environment variable `export.key_env` names), never by username
or user id. The index is built once: authors are hashed and dropped; what is kept is
pseudonym -> the persona's public fields (and its liked/disliked visual attributes, for
`viper` rewrites)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from contract.stage_io import TableAccess
from exports.pseudonyms import pseudonymise

#: what the index reads
INPUTS = ("silver/users", "gold/personas", "gold/visual_preferences")
#: the persona fields a response shows
FIELDS = ("demographics", "interests", "affective_traits", "visual_interests", "text", "llm")
PSEUDONYM = re.compile(r"^u_[0-9a-f]{16}$")


class KeyMissing(LookupError):
    """No pseudonym key in the environment: lake personas cannot be looked up."""


def _chosen(rows: list[dict], preferred: str) -> dict[int, dict]:
    """Per user, the `done` row of the preferred LLM, else of the first LLM by name."""
    out: dict[int, dict] = {}
    for r in sorted(rows, key=lambda r: (r["llm"] != preferred, r["llm"])):
        out.setdefault(r["user_id"], r)
    return out


@dataclass
class LakePersonas:
    """pseudonym -> persona (None: no key was set when the index was built)."""

    key_env: str
    personas: dict[str, dict] | None = None
    preferences: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)

    @classmethod
    def load(cls, cfg: Any, preferred_llm: str) -> LakePersonas:
        """Read silver/users, gold/personas and gold/visual_preferences once."""
        key_env = cfg.export.key_env
        key = os.environ.get(key_env)
        if not key:
            return cls(key_env)
        tables = TableAccess(
            stage="serve",
            root=str(cfg.lake.root),
            format=cfg.lake.format,
            inputs=frozenset(INPUTS),
        )
        personas = tables.read("gold/personas", ["user_id", "status", *FIELDS])
        done = personas.filter(pc.equal(personas["status"], "done")).drop_columns(["status"])
        chosen = _chosen(done.to_pylist(), preferred_llm)
        ids = pa.array(sorted(chosen), pa.int32())
        users = tables.read("silver/users", ["user_id", "author"])
        users = users.filter(pc.is_in(users["user_id"], ids))
        names = pseudonymise(users["author"].to_pylist(), key)
        by_user = dict(zip(users["user_id"].to_pylist(), names, strict=True))
        index = {
            by_user[u]: {f: r[f] for f in FIELDS}
            for u, r in chosen.items()
            if by_user.get(u) is not None
        }
        prefs = tables.read(
            "gold/visual_preferences", ["user_id", "llm", "status", "likes", "dislikes"]
        )
        liked = {}
        for r in prefs.filter(pc.equal(prefs["status"], "done")).to_pylist():
            u = r["user_id"]
            if u in chosen and by_user.get(u) and r["llm"] == chosen[u]["llm"]:
                liked[by_user[u]] = (r["likes"] or [], r["dislikes"] or [])
        return cls(key_env, index, liked)

    def get(self, pseudonym: str) -> dict | None:
        """The persona's public fields; KeyMissing when no key was set."""
        if self.personas is None:
            raise KeyMissing(
                f"lake personas are looked up by their export pseudonym: set the pseudonym "
                f"key in the environment variable {self.key_env} and restart the service"
            )
        if not PSEUDONYM.match(pseudonym):
            return None
        return self.personas.get(pseudonym)

    def __len__(self) -> int:
        return len(self.personas or {})
