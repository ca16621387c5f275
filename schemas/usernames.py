"""Usernames files (``ingest.blocklist``, ``graph.bots``): one name a line, blank lines
and ``#`` comments skipped, lower-cased (Reddit matches usernames case-insensitively)."""

from __future__ import annotations

from pathlib import Path

from schemas.config import ConfigError


def read_usernames(path: str | Path | None, key: str) -> frozenset[str]:
    """The lower-cased usernames in a one-a-line file (none when `path` is unset); `key`
    names the config key in the error when the file is missing."""
    if not path:
        return frozenset()
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{key}: file not found: {p}")
    lines = (ln.strip() for ln in p.read_text().splitlines())
    return frozenset(ln.lower() for ln in lines if ln and not ln.startswith("#"))
