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

from storage.lake import Lake

BRONZE = ("bronze/submissions", "bronze/comments")
QUARANTINE = "quarantine/records"
APPLIED = "ingest.blocklist.json"


def _applied_path(lake: Lake) -> Path:
    return lake.manifests / APPLIED


def _digests(names: frozenset[str], salt: str) -> set[str]:
    return {hashlib.sha256(f"{salt}\0{n}".encode()).hexdigest()[:32] for n in names}


def _mention(names: frozenset[str]) -> str:
    """RE2 pattern: a name anywhere in text, case-insensitively, not as part of a longer
    username (group 1 and 2 are the characters either side, for a replacement)."""
    alt = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return f"(^|[^A-Za-z0-9_-])(?i:{alt})($|[^A-Za-z0-9_-])"


#: other users' text that may name a deleted user ("thanks u/Name"): redacted in place
TEXT_COLUMNS = ("body", "title", "selftext")


def _redactor(names: frozenset[str]):
    """An `edit` for `Lake.delete_where`: every mention of `names` in other users' text
    columns becomes ``[deleted]`` (RE2, case-insensitive, whole usernames only)."""
    pattern = _mention(names)

    def edit(rows: pa.Table) -> pa.Table | None:
        changed = False
        for col in TEXT_COLUMNS:
            if col not in rows.column_names:
                continue
            hit = pc.fill_null(pc.match_substring_regex(rows[col], pattern), False)
            if pc.any(hit).as_py():
                new = pc.replace_substring_regex(rows[col], pattern, r"\1[deleted]\2")
                rows = rows.set_column(rows.column_names.index(col), col, new)
                changed = True
        return rows if changed else None

    return edit


def _authored(table: pa.Table, names: pa.Array) -> pa.Array:
    return pc.fill_null(pc.is_in(pc.utf8_lower(table["author"]), value_set=names), False)


def prepare(lake: Lake, names: frozenset[str], force: bool = False) -> bool:
    """Before an ingest: when a name was taken *off* the blocklist since the last run (or
    `force`), bronze is dropped so the dumps are ingested afresh (purged records exist only
    there now). Returns whether the blocklist grew (records to purge afterwards)."""
    from pipelines.ingest import write_journal

    state = _state(lake)
    now = _digests(names, state["salt"])
    before = set(state.get("digests", []))
    if force or not before <= now:
        write_journal(lake, [])
        for name in (*BRONZE, QUARANTINE):
            shutil.rmtree(lake.path(name), ignore_errors=True)
        return bool(names)
    return now != before


def purge_blocklisted(lake: Lake, names: frozenset[str], grew: bool) -> int:
    """After an ingest: remove the records of `names` (lower-cased) from bronze (when the
    list grew; new batches were ingested with it) and from the quarantine (always: a
    corrupt line of a blocked user has no author field to drop it by), moving them to
    the ledger's ``blocklisted`` counts; remembers the list applied. Returns records
    removed."""
    removed = _purge(lake, names, bronze=grew) if names else 0
    state = _state(lake)
    state["digests"] = sorted(_digests(names, state["salt"]))
    path = _applied_path(lake)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, path)
    return removed


def _state(lake: Lake) -> dict:
    path = _applied_path(lake)
    state = json.loads(path.read_text()) if path.exists() else {}
    state.setdefault("salt", secrets.token_hex(8))
    return state


def _purge(lake: Lake, names: frozenset[str], bronze: bool = True) -> int:
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
        mask = pc.fill_null(pc.match_substring_regex(t["raw"], pattern), False)
        quarantined.update(t.filter(mask)["source_file"].to_pylist())
        return mask

    redact = _redactor(names)
    removed = (
        sum(lake.delete_where(name, bronze_rows, edit=redact) for name in BRONZE) if bronze else 0
    )
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
