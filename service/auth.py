"""Bearer tokens, hashed at rest: a file of ``name:sha256hex`` lines and/or plain tokens
in an environment variable (hashed on load, the plain text dropped). A presented token is
hashed and compared with every stored hash in constant time; nothing here logs or returns
a token."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from pathlib import Path

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import problem

_HEX = re.compile(r"^[0-9a-f]{64}$")


def token_hash(token: str) -> str:
    """SHA-256 hex of a token (what a tokens file holds)."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class TokenStore:
    """(name, hash) pairs; `name` identifies a token in rate limits, never the token."""

    entries: tuple[tuple[str, str], ...]

    @classmethod
    def load(cls, tokens_file: str | None, tokens_env: str | None) -> TokenStore:
        """The file's hashes and the environment's tokens (hashed); ValueError naming the
        file's bad line (by number: a line may hold a plain token by mistake)."""
        entries: list[tuple[str, str]] = []
        if tokens_file:
            lines = Path(tokens_file).read_text(encoding="utf-8").splitlines()
            for n, line in enumerate(lines, 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                name, sep, digest = line.rpartition(":")
                digest = digest.strip().lower()
                if not sep or not name.strip() or not _HEX.match(digest):
                    raise ValueError(
                        f"{tokens_file}:{n}: expected 'name:sha256hex' (64 hex characters)"
                    )
                entries.append((name.strip(), digest))
        plain = os.environ.get(tokens_env, "") if tokens_env else ""
        tokens = [t.strip() for t in plain.split(",") if t.strip()]
        entries += [(f"env-{i}", token_hash(t)) for i, t in enumerate(tokens, 1)]
        return cls(tuple(entries))

    def __len__(self) -> int:
        return len(self.entries)

    def check(self, token: str) -> str | None:
        """The name of the token, or None; every hash is compared (constant time)."""
        digest = token_hash(token)
        found = None
        for name, stored in self.entries:
            if hmac.compare_digest(digest, stored) and found is None:
                found = name
        return found


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else None."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


class BearerAuth:
    """ASGI middleware: every path but the public ones needs a known bearer token (401
    without one, 403 with a wrong one); the token's name goes to ``scope["zipp.token"]``
    for the rate limit."""

    def __init__(self, app: ASGIApp, store: TokenStore, public: frozenset[str]):
        self.app = app
        self.store = store
        self.public = public

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.public:
            await self.app(scope, receive, send)
            return
        header = Headers(scope=scope).get("authorization")
        token = bearer(header)
        if token is None:
            detail = "a bearer token is required: 'Authorization: Bearer <token>'"
            challenge = {"WWW-Authenticate": "Bearer"}
            await problem(401, detail, headers=challenge)(scope, receive, send)
            return
        name = self.store.check(token)
        if name is None:
            await problem(403, "the bearer token is not valid")(scope, receive, send)
            return
        scope["zipp.token"] = name
        await self.app(scope, receive, send)
