"""Deletion requests at the source: a name added to the blocklist leaves bronze and the
quarantine (its raw text included) on the next ingest, and every later stage rebuilds
from what is left.

Matching is case-insensitive, as Reddit matches usernames. Per-file ledger counts move
the removed records to ``blocklisted``, so records in = bronze + quarantined +
blocklisted still holds. The names themselves are never stored: the lake keeps salted
digests of the names applied so far (``_manifests/ingest.blocklist.json``), enough to see
that a name was taken *off* the list, in which case the bronze it was purged from is
re-ingested from the dumps.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from schemas.lake import Lake

BRONZE = ("bronze/submissions", "bronze/comments")
QUARANTINE = "quarantine/records"
APPLIED = "ingest.blocklist.json"


def _applied_path(lake: Lake) -> Path:
    return lake.manifests / APPLIED


def _digests(names: frozenset[str], salt: str) -> set[str]:
    return {hashlib.sha256(f"{salt}\0{n}".encode()).hexdigest()[:32] for n in names}


def _mention(names: frozenset[str]) -> re.Pattern:
    """A name anywhere in raw text, not as part of a longer username."""
    alt = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return re.compile(rf"(?<![A-Za-z0-9_-])(?:{alt})(?![A-Za-z0-9_-])", re.IGNORECASE)


def _authored(table: pa.Table, names: pa.Array) -> pa.Array:
    return pc.fill_null(pc.is_in(pc.utf8_lower(table["author"]), value_set=names), False)


def purge_blocklisted(lake: Lake, names: frozenset[str], force: bool = False) -> int:
    """Remove the records of `names` (lower-cased) from bronze and the quarantine and move
    them to the ledger's ``blocklisted`` counts; returns records removed. A name taken
    off the list since the last run makes the next ingest start afresh (the records are
    only in the dumps now)."""
    from pipelines.ingest import write_journal

    path = _applied_path(lake)
    state = json.loads(path.read_text()) if path.exists() else {}
    salt = state.get("salt") or secrets.token_hex(8)
    now = _digests(names, salt)
    before = set(state.get("digests", []))
    if force or not before <= now:  # unblocked: bronze must be rebuilt from the dumps
        write_journal(lake, [])
        for name in (*BRONZE, QUARANTINE):
            shutil.rmtree(lake.path(name), ignore_errors=True)
        removed = 0
    elif names and now != before:
        removed = _purge(lake, names)
    else:
        removed = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"salt": salt, "digests": sorted(now)}))
    os.replace(tmp, path)
    return removed


def _purge(lake: Lake, names: frozenset[str]) -> int:
    from pipelines.ingest import read_journal, write_journal

    lowered = pa.array(sorted(names), pa.string())
    pattern = _mention(names)
    per_file: Counter = Counter()
    quarantined: Counter = Counter()

    def bronze_rows(t: pa.Table) -> pa.Array:
        mask = _authored(t, lowered)
        per_file.update(t.filter(mask)["source_file"].to_pylist())
        return mask

    def quarantine_rows(t: pa.Table) -> pa.Array:
        mask = pa.array([bool(r) and bool(pattern.search(r)) for r in t["raw"].to_pylist()])
        quarantined.update(t.filter(mask)["source_file"].to_pylist())
        return mask

    removed = sum(lake.delete_where(name, bronze_rows) for name in BRONZE)
    removed += lake.delete_where(QUARANTINE, quarantine_rows)
    if removed:
        batches = read_journal(lake)
        for b in batches:
            for row in b.get("ledger", []):
                f = row["source_file"]
                row["records"] -= per_file.get(f, 0)
                row["quarantined"] -= quarantined.get(f, 0)
                row["blocklisted"] += per_file.get(f, 0) + quarantined.get(f, 0)
        write_journal(lake, batches)
    return removed
