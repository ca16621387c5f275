"""Exports of persona tables and the benchmark for others: Parquet, JSONL, Delta, HF `datasets`.

Two kinds, each one flat table:

* ``personas``: gold/personas, every row, with the user's name from silver/users.
* ``bench``: the ``done`` rows of bench/images with the user's name from silver/users and
  the persona the image was conditioned on: the persona ``text`` of the same user made by
  the same ``llm``; for rows made without an LLM (``llm == "-"``) the user's first persona
  row that has a text. ``persona_llm`` says which LLM that persona came from (null: none).
  The images themselves go only into the ``hf`` format (an embedded ``image`` column); the
  other formats carry ``path``, relative to the lake root.

User names are pseudonymised unless asked otherwise: ``user`` = ``"u_"`` + the first 16 hex
characters of HMAC-SHA256(key, author) replaces ``user_id``, and everything that leads back
to the account goes: quoted comments and their Reddit ids (``evidence``, ``evidence_ids``,
``raw``), the ranked subreddit list (``evidence_subreddits``), ``user_id`` itself (it is
the author's rank in name order, so the public dumps rebuild it), and what is computed
from it (``request_id`` hashes the evidence, ``seed`` is seeded by the user id, and
``image_id`` is replaced by its keyed hash). The persona's free text may still name
communities: that is the persona. The key comes from the environment only; it is never
generated, stored, printed or written.

Every export is written aside (a hidden sibling folder of the target) and then swapped in,
so a failed export never leaves half a folder.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from schemas.lake import Lake, swap_in

KINDS = ("personas", "bench")
FORMATS = ("parquet", "jsonl", "delta", "hf")
DEFAULT_KEY_ENV = "ZIPP_PSEUDONYM_KEY"


class ExportError(ValueError):
    """An input problem worth a one-line message (missing table, image, bad argument)."""


#: columns that lead back to the account, left out of a pseudonymised export
TRACEABLE = (
    "user_id",
    "evidence",
    "evidence_ids",
    "evidence_subreddits",
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


def _authors(lake: Lake, user_ids: list[int]) -> list[str | None]:
    """silver/users' author of each user id (None where the user is unknown)."""
    users = lake.read("silver/users")
    names = dict(zip(users["user_id"].to_pylist(), users["author"].to_pylist(), strict=True))
    return [names.get(u) for u in user_ids]


def _persona_texts(lake: Lake, keys: list[tuple[int, str]]) -> tuple[list, list]:
    """(persona text, persona llm) for each (user id, llm): the same user's persona by the
    same LLM, else (llm "-" only) the user's first persona row with a text."""
    personas = lake.read("gold/personas").select(["user_id", "llm", "text"]).to_pylist()
    by_llm: dict[tuple[int, str], str] = {}
    first: dict[int, tuple[str, str]] = {}
    for p in personas:
        if p["text"] is None:
            continue
        by_llm.setdefault((p["user_id"], p["llm"]), p["text"])
        first.setdefault(p["user_id"], (p["text"], p["llm"]))
    texts, llms = [], []
    for uid, llm in keys:
        if (uid, llm) in by_llm:
            texts.append(by_llm[(uid, llm)])
            llms.append(llm)
        elif llm == "-" and uid in first:
            texts.append(first[uid][0])
            llms.append(first[uid][1])
        else:
            texts.append(None)
            llms.append(None)
    return texts, llms


def _with_user(table: pa.Table, authors: list, include_usernames: bool, key: str | None):
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


def export_table(
    kind: str, lake: Lake, include_usernames: bool = False, key: str | None = None
) -> pa.Table:
    """The flat table of an export kind ("personas" or "bench"), user names pseudonymised
    with `key` unless `include_usernames`."""
    if kind == "personas":
        table = lake.read("gold/personas")
        if not table.num_rows:
            raise ExportError(f"no gold/personas in {lake.root}: run 'zipp run personas' first")
    elif kind == "bench":
        images = lake.read("bench/images")
        table = images.filter(pc.equal(images["status"], "done"))
        if not table.num_rows:
            raise ExportError(
                f"no done rows in bench/images in {lake.root}: run 'zipp bench build' first"
            )
        keys = list(zip(table["user_id"].to_pylist(), table["llm"].to_pylist(), strict=True))
        texts, llms = _persona_texts(lake, keys)
        table = table.append_column("persona", pa.array(texts, pa.string()))
        table = table.append_column("persona_llm", pa.array(llms, pa.string()))
    else:
        raise ExportError(f"unknown export {kind!r}: choose one of {', '.join(KINDS)}")
    authors = _authors(lake, table["user_id"].to_pylist())
    return _with_user(table, authors, include_usernames, key)


def _jsonl(table: pa.Table, path: Path) -> None:
    """One JSON object per row; lists and structs as JSON arrays and objects."""
    with open(path, "w", encoding="utf-8") as f:
        for batch in table.to_batches(max_chunksize=4096):
            for row in batch.to_pylist():
                f.write(json.dumps(row, ensure_ascii=False) + "\n")


def _hf(table: pa.Table, out: Path, images_root: Path | None) -> None:
    """A `datasets.load_from_disk` folder; with `images_root` and a ``path`` column, an
    ``image`` column (``datasets.Image``) whose PNG bytes are embedded in the dataset."""
    import datasets

    if images_root is not None and "path" in table.column_names:
        files = [None if p is None else str(images_root / p) for p in table["path"].to_pylist()]
        missing = [f for f in files if f is None or not Path(f).is_file()]
        if missing:
            raise ExportError(f"{len(missing)} image file(s) missing, e.g. {missing[0]}")
        table = table.append_column("image", pa.array(files, pa.string()))
    features = datasets.Features.from_arrow_schema(table.schema)
    ds = datasets.Dataset.from_dict({c: table[c] for c in table.column_names}, features=features)
    if "image" in ds.column_names:
        ds = ds.cast_column("image", datasets.Image())
    ds.save_to_disk(str(out))  # embeds local image files into the saved Arrow data


def write(table: pa.Table, fmt: str, out: Path, name: str, images_root: Path | None = None) -> Path:
    """Write `table` in format `fmt` into the new folder `out` (which must not exist).

    parquet / jsonl: ``out/<name>.<fmt>``; delta: `out` is the Delta table; hf: `out` is a
    `datasets` save_to_disk folder, with images from `images_root` (see `_hf`)."""
    if fmt == "parquet":
        out.mkdir(parents=True)
        pq.write_table(table, out / f"{name}.parquet")
    elif fmt == "jsonl":
        out.mkdir(parents=True)
        _jsonl(table, out / f"{name}.jsonl")
    elif fmt == "delta":
        from deltalake import write_deltalake

        write_deltalake(str(out), table, mode="overwrite")
    elif fmt == "hf":
        _hf(table, out, images_root)
    else:
        raise ExportError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    return out


def check_out(out: Path, overwrite: bool) -> None:
    """Refuse a target that is a file, or a non-empty folder unless `overwrite`."""
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ExportError(f"--out {out} is not empty: pass --overwrite to replace it")


def export(
    kind: str,
    fmt: str,
    out: Path,
    lake: Lake,
    include_usernames: bool = False,
    key: str | None = None,
    overwrite: bool = False,
) -> int:
    """Build the export table and write it aside, then swap it in at `out`; returns rows."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    out = Path(out).absolute()
    check_out(out, overwrite)
    table = export_table(kind, lake, include_usernames, key)
    staged = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        write(table, fmt, staged, kind, images_root=lake.root if kind == "bench" else None)
        swap_in(staged, out)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return table.num_rows
