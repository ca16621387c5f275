"""The study's secrets: invite codes, session tokens, random ids, each stored only as a
digest and compared in constant time; the admin token from the environment."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets


def new_secret() -> str:
    """An unguessable token (256 bits, URL-safe): an invite code or a session."""
    return secrets.token_urlsafe(32)


def new_id(prefix: str, nbytes: int = 8) -> str:
    """A random id (study, rater pseudonym, pair, image): nothing it is derived from."""
    return f"{prefix}{secrets.token_hex(nbytes)}"


def digest(token: str) -> str:
    """What the store keeps of a token: its SHA-256 (tokens are random, so no salt)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def same(a: str, b: str) -> bool:
    """Constant-time equality of two digests."""
    return hmac.compare_digest(a.encode(), b.encode())


def csrf_token(key: bytes, session_digest: str) -> str:
    """The form token of a session: an HMAC of its digest under the store's key."""
    return hmac.new(key, session_digest.encode(), hashlib.sha256).hexdigest()[:32]


class AdminToken:
    """The admin token, read once from its environment variable, kept as a digest."""

    def __init__(self, env: str):
        self.env = env
        value = os.environ.get(env) or ""
        self._digest = digest(value) if len(value) >= 16 else None
        self.too_short = bool(value) and self._digest is None

    @property
    def configured(self) -> bool:
        return self._digest is not None

    def check(self, given: str | None) -> bool:
        """Whether `given` is the admin token (digests compared in constant time)."""
        if self._digest is None or not given:
            return False
        return same(digest(given), self._digest)
