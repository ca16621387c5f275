"""Pseudonymisation of an export's users (unless user names are included).

``user`` = ``"u_"`` + the first 16 hex characters of HMAC-SHA256(key, author) replaces
``user_id``; the key comes from the environment only (``export.key_env``) and is never
generated, stored, printed or written. What leads back to the account goes: quoted
comments and their Reddit ids (``evidence``, ``evidence_ids``, ``raw``), the ranked
subreddit list (``evidence_subreddits``), ``user_id`` itself (it is the author's rank in
name order, so the public dumps rebuild it), and what is computed from it (``request_id``
hashes the evidence, ``seed`` is seeded by the user id, and ``image_id`` is replaced by its
keyed hash).
"""

from __future__ import annotations

import hashlib
import hmac

import pyarrow as pa

from contract.stage_io import TableAccess
from exports.errors import ExportError

#: what an export reads to name or pseudonymise its users
INPUTS = ("silver/users",)

#: columns that lead back to the account, left out of a pseudonymised export
TRACEABLE = (
    "user_id",
    "evidence",
    "evidence_ids",
    "evidence_subreddits",
    "evidence_weights",
    "raw",
    "request_id",
    "seed",
)


def pseudonymise(authors: list[str | None], key: str, prefix: str = "u_") -> list[str | None]:
    """`prefix` + the first 16 hex chars of HMAC-SHA256(key, author); None stays None."""
    k = key.encode()
    return [
        None if a is None else prefix + hmac.new(k, a.encode(), hashlib.sha256).hexdigest()[:16]
        for a in authors
    ]


def authors(tables: TableAccess, user_ids: list[int]) -> list[str | None]:
    """silver/users' author of each user id (None where the user is unknown)."""
    users = tables.read("silver/users", ["user_id", "author"])
    names = dict(zip(users["user_id"].to_pylist(), users["author"].to_pylist(), strict=True))
    return [names.get(u) for u in user_ids]


def with_user(table: pa.Table, authors: list, include_usernames: bool, key: str | None):
    """Insert ``author`` (include_usernames) or its pseudonym ``user`` after ``user_id``."""
    at = table.column_names.index("user_id") + 1
    if include_usernames:
        return table.add_column(at, pa.field("author", pa.string()), pa.array(authors, pa.string()))
    if not key:
        raise ExportError("a pseudonymisation key is needed unless usernames are included")
    users = pa.array(pseudonymise(authors, key), pa.string())
    table = table.add_column(at, pa.field("user", pa.string()), users)
    if "image_id" in table.column_names:  # a hash over the user id: keyed as well
        ids = pa.array(pseudonymise(table["image_id"].to_pylist(), key, "i_"), pa.string())
        table = table.set_column(table.column_names.index("image_id"), "image_id", ids)
    return table.drop_columns([c for c in TRACEABLE if c in table.column_names])
