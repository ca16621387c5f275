"""Parsing chunks of dump lines into typed Arrow tables plus quarantine rows.

Fast path: polars' NDJSON reader over the whole chunk with the bronze types. Anything it
rejects (type drift between years, corrupt lines, invalid UTF-8), and a NUL in a parsed
string (polars reads a lone surrogate escape as NUL; the per-line path repairs it to
U+FFFD), sends the chunk down a bisection to a per-line path that coerces each field and
quarantines each bad line with its number, the error and the first 1 KB of raw text.
Both paths produce the same typed values.
"""

from __future__ import annotations

import html
import io
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import orjson
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from schemas.reddit import FIELDS, KINDS, META_FIELDS, REQUIRED_FIELDS

#: Earliest / latest plausible created_utc (2005-01-01, 2100-01-01).
MIN_UTC, MAX_UTC = 1104537600, 4102444800
RAW_PREFIX = 1024
_SMALL_CHUNK_LINES = 64
#: Submission fields kept as JSON text by the fast path and unpacked into typed media columns.
MEDIA_FIELDS = ("media_metadata", "gallery_data", "preview")
URL_FIELDS = ("url", "thumbnail")
_HTML_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&#39;", "'"), ("&amp;", "&"))
_POLARS = {pa.string(): pl.String, pa.int64(): pl.Int64, pa.bool_(): pl.Boolean}


class FieldError(ValueError):
    """A record whose field cannot be coerced to its bronze type."""


@dataclass
class ParsedChunk:
    """Typed rows, quarantine rows and counters of one chunk."""

    table: pa.Table
    quarantine: list[dict] = field(default_factory=list)
    blank_lines: int = 0
    blocklisted: int = 0
    utf8_repaired: int = 0


def quarantine_row(
    source_file: str,
    line: int,
    kind: str,
    error_kind: str,
    error: str,
    raw: bytes,
    size: int | None = None,
) -> dict:
    """One `quarantine/records` row; keeps the first 1 KB of the raw line."""
    return {
        "source_file": source_file,
        "source_line": line,
        "kind": kind,
        "error_kind": error_kind,
        "error": error[:2000],
        "raw": raw[:RAW_PREFIX].decode("utf-8", "replace"),
        "raw_bytes": len(raw) if size is None else size,
    }


# ---------------------------------------------------------------- per-field coercion
def _to_str(v):
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    return json.dumps(v, ensure_ascii=False)


def _to_int(v):
    if v is None:
        return None
    if isinstance(v, bool):
        raise FieldError(f"boolean {v!r} is not an integer")
    if isinstance(v, float):
        if not v.is_integer():
            raise FieldError(f"{v!r} is not an integer")
        v = int(v)
    elif isinstance(v, str):
        s = v.strip()
        if s == "":
            return None
        try:
            v = int(s)
        except ValueError:
            try:
                f = float(s)
            except ValueError:
                raise FieldError(f"{v[:40]!r} is not an integer") from None
            if not f.is_integer():
                raise FieldError(f"{v[:40]!r} is not an integer") from None
            v = int(f)
    elif not isinstance(v, int):
        raise FieldError(f"{type(v).__name__} is not an integer")
    if not -(2**63) <= v < 2**63:
        raise FieldError(f"{v} does not fit in 64 bits")
    return v


def _to_bool(v):
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, int) and v in (0, 1):
        return bool(v)
    if isinstance(v, str) and v.strip().lower() in ("true", "false", "0", "1"):
        return v.strip().lower() in ("true", "1")
    raise FieldError(f"{str(v)[:40]!r} is not a boolean")


def _to_edited(v):
    """`edited`: false/None -> None, true -> 0.0 (time unknown), number or numeric string."""
    if v is None or v is False:
        return None
    if v is True:
        return 0.0
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise FieldError(f"{str(v)[:40]!r} is neither a boolean nor a time") from None
    if not math.isfinite(f):
        raise FieldError(f"{v!r} is not a finite time")
    return f


_COERCE = {pa.string(): _to_str, pa.int64(): _to_int, pa.bool_(): _to_bool}


def _scrub(s):
    """Strings from json.loads may carry lone surrogates; Arrow needs valid UTF-8."""
    if isinstance(s, str):
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates -> U+FFFD, as invalid UTF-8 bytes are
            return s.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return s


def _json_or_none(text: str | None):
    """A nested field the fast path kept as JSON text; a plain string value gives None."""
    if not text:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def _dict_or_none(v):
    return v if isinstance(v, dict) else None


def media_columns(media_metadata, gallery_data, preview) -> tuple[str | None, list[dict] | None]:
    """(preview_url, gallery) of a submission from its nested media fields.

    Gallery items follow ``gallery_data.items`` order (else ``media_metadata`` order);
    items whose media failed (status != valid) are left out; URLs are HTML-unescaped.
    """
    preview_url = None
    preview = _dict_or_none(preview)
    if preview:
        images = preview.get("images")
        if isinstance(images, list) and images and isinstance(images[0], dict):
            source = _dict_or_none(images[0].get("source")) or {}
            url = source.get("url")
            preview_url = _scrub(html.unescape(url)) if isinstance(url, str) else None
    media = _dict_or_none(media_metadata)
    if not media:
        return preview_url, None
    order = []
    gdata = _dict_or_none(gallery_data)
    if gdata and isinstance(gdata.get("items"), list):
        order = [it.get("media_id") for it in gdata["items"] if isinstance(it, dict)]
    order = [m for m in order if m in media] or list(media)
    gallery = []
    for media_id in order:
        item = _dict_or_none(media.get(media_id))
        if not item or item.get("status", "valid") != "valid":
            continue
        s = _dict_or_none(item.get("s")) or {}
        url = s.get("u") or s.get("gif") or s.get("mp4")
        gallery.append(
            {
                "media_id": _scrub(str(media_id)),
                "url": _scrub(html.unescape(url)) if isinstance(url, str) else None,
                "mime": _scrub(_to_str(item.get("m"))),
                "kind": _scrub(_to_str(item.get("e"))),
                "width": s.get("x") if isinstance(s.get("x"), int) else None,
                "height": s.get("y") if isinstance(s.get("y"), int) else None,
            }
        )
    return preview_url, gallery


class ChunkParser:
    """Parses chunks of one dump file of one kind into bronze rows and quarantine rows."""

    def __init__(
        self,
        kind: str,
        source_file: str,
        blocklist: frozenset[str] = frozenset(),
        dictionary_lineage: bool = False,
    ):
        """`dictionary_lineage`: keep ``source_file`` and ``month`` dictionary-encoded
        (for a Parquet writer: hashing a long path per row costs more than the rest of
        the write)."""
        self.kind = kind
        self.source_file = source_file
        self.fields = FIELDS[kind]
        self.schema = KINDS[kind]
        self.dictionary_lineage = dictionary_lineage
        self.out_schema = self.schema
        if dictionary_lineage:
            for name in ("source_file", "month"):
                i = self.out_schema.get_field_index(name)
                typ = pa.dictionary(pa.int32(), pa.string())
                self.out_schema = self.out_schema.set(i, self.schema.field(name).with_type(typ))
        # Reddit matches usernames case-insensitively, and so does the blocklist
        self.blocklist = pa.array(sorted({n.lower() for n in blocklist}), pa.string())
        self.media = kind == "submissions"
        pl_schema = {n: _POLARS[t] for n, t in self.fields.items()}
        pl_schema["edited"] = pl.String  # false | true | epoch float: typed below
        pl_schema["_meta"] = pl.Struct({n: _POLARS[t] for n, t in META_FIELDS.items()})
        if self.media:
            pl_schema.update({m: pl.String for m in MEDIA_FIELDS})
        self.pl_schema = pl_schema
        self.strings = [n for n, t in self.fields.items() if t == pa.string()]
        meta = [f"meta_{n}" for n in META_FIELDS]
        names = [*self.fields, "edited_utc", *meta] + (
            ["preview_url", "gallery"] if self.media else []
        )
        self.parsed_schema = pa.schema(
            [self.schema.field(n) for n in names] + [pa.field("source_line", pa.int64())]
        )

    # -------------------------------------------------------------- public
    def parse(
        self,
        chunk: bytes | str,
        first_line: int,
        lines: int | None = None,
        line_numbers: np.ndarray | None = None,
    ) -> ParsedChunk:
        """Parse a chunk of whole lines (bytes, or the path of a file holding them) whose
        first line is `first_line` (1-based), or whose lines are numbered `line_numbers`;
        `lines` saves counting them."""
        if line_numbers is None:
            out = self._parse_any(chunk, first_line, lines)
        else:
            out = self._parse_any(chunk, 1, lines)
            local = out.table["source_line"].to_numpy() - 1
            out.table = out.table.set_column(
                out.table.schema.get_field_index("source_line"),
                "source_line",
                pa.array(line_numbers[local]),
            )
            for q in out.quarantine:
                q["source_line"] = int(line_numbers[q["source_line"] - 1])
        table = out.table
        if len(self.blocklist) and table.num_rows and "author" in table.column_names:
            authors = pc.utf8_lower(table["author"])
            blocked = pc.fill_null(pc.is_in(authors, value_set=self.blocklist), False)
            out.blocklisted = pc.sum(blocked).as_py() or 0
            if out.blocklisted:
                table = table.filter(pc.invert(blocked))
        out.table = self._finish(table)
        return out

    # -------------------------------------------------------------- fast path
    def _parse_any(
        self, chunk: bytes | str, first_line: int, lines: int | None = None
    ) -> ParsedChunk:
        if lines is None and isinstance(chunk, bytes):
            lines = chunk.count(b"\n") + (0 if chunk.endswith(b"\n") else 1)
        try:
            return self._fast(chunk, first_line, lines)
        except (pl.exceptions.PolarsError, _Fallback):
            pass
        if isinstance(chunk, str):  # a file the fast path could not vouch for: its bytes
            with open(chunk, "rb") as f:
                return self._parse_any(f.read(), first_line, lines)
        if lines <= _SMALL_CHUNK_LINES:
            return self._slow(chunk, first_line)
        mid = chunk.find(b"\n", len(chunk) // 2)
        if mid < 0 or mid == len(chunk) - 1:
            mid = chunk.rfind(b"\n", 0, len(chunk) - 1)
        if mid < 0:
            return self._slow(chunk, first_line)
        head, tail = chunk[: mid + 1], chunk[mid + 1 :]
        a = self._parse_any(head, first_line)
        b = self._parse_any(tail, first_line + head.count(b"\n"))
        return ParsedChunk(
            table=pa.concat_tables([a.table, b.table]),
            quarantine=a.quarantine + b.quarantine,
            blank_lines=a.blank_lines + b.blank_lines,
            utf8_repaired=a.utf8_repaired + b.utf8_repaired,
        )

    def _fast(self, chunk: bytes | str, first_line: int, lines: int | None = None) -> ParsedChunk:
        """`chunk`: the lines, or a file holding them (polars maps it: no copy)."""
        if isinstance(chunk, str):
            df = pl.read_ndjson(chunk, schema=self.pl_schema)
            if lines is None or df.height != lines:
                raise _Fallback  # blank lines: numbered from the bytes
        else:
            if lines is None:
                lines = chunk.count(b"\n") + (0 if chunk.endswith(b"\n") else 1)
            df = pl.read_ndjson(io.BytesIO(chunk), schema=self.pl_schema)
        blank = 0
        if df.height == lines:
            line_no = pa.array(np.arange(first_line, first_line + lines, dtype=np.int64))
        else:
            nonblank = [i for i, ln in enumerate(chunk.split(b"\n")[:lines]) if ln.strip()]
            if len(nonblank) != df.height:
                raise _Fallback
            blank = lines - df.height
            line_no = pa.array(np.asarray(nonblank, dtype=np.int64) + first_line)
        raw_edited = pl.col("edited")
        edited = (
            pl.when(raw_edited == "false")
            .then(None)
            .when(raw_edited == "true")
            .then(0.0)
            .otherwise(raw_edited.cast(pl.Float64, strict=False))
        )
        checks = df.select(
            bad_required=pl.any_horizontal(pl.col(list(REQUIRED_FIELDS)).is_null()).any()
            | (pl.col("id") == "").any(),
            bad_edited=(
                raw_edited.is_not_null() & (raw_edited != "false") & edited.is_null()
            ).any(),
            lo=pl.col("created_utc").min(),
            hi=pl.col("created_utc").max(),
            nul=pl.any_horizontal(
                [c.str.contains("\x00", literal=True) for c in self._string_columns()]
            ).any(),
        ).row(0, named=True)
        if checks["bad_required"] or checks["bad_edited"] or checks["nul"]:
            raise _Fallback
        if df.height and (checks["lo"] < MIN_UTC or checks["hi"] >= MAX_UTC):
            raise _Fallback
        meta = pl.col("_meta").struct
        df = df.with_columns(
            edited.alias("edited"), *(meta.field(n).alias(f"meta_{n}") for n in META_FIELDS)
        ).drop("_meta")
        table = df.to_arrow(compat_level=pl.CompatLevel.oldest())
        table = table.rename_columns(
            ["edited_utc" if c == "edited" else c for c in table.column_names]
        )
        if self.media:
            table = self._media_from_json(table)
        table = table.append_column("source_line", line_no)
        return ParsedChunk(
            table=table.select(self.parsed_schema.names).cast(self.parsed_schema), blank_lines=blank
        )

    def _string_columns(self) -> list[pl.Expr]:
        meta = pl.col("_meta").struct
        return [pl.col(n) for n in self.strings] + [
            meta.field(n) for n, t in META_FIELDS.items() if t == pa.string()
        ]

    def _media_from_json(self, table: pa.Table) -> pa.Table:
        cols = {m: table[m].to_pylist() for m in MEDIA_FIELDS}
        preview_urls, galleries = [], []
        for mm, gd, pv in zip(*(cols[m] for m in MEDIA_FIELDS), strict=True):
            p, g = media_columns(*(_json_or_none(x) for x in (mm, gd, pv)))
            preview_urls.append(p)
            galleries.append(g)
        table = table.drop_columns(list(MEDIA_FIELDS))
        table = table.append_column("preview_url", pa.array(preview_urls, pa.string()))
        return table.append_column(
            "gallery", pa.array(galleries, self.schema.field("gallery").type)
        )

    # -------------------------------------------------------------- slow path
    def _slow(self, chunk: bytes, first_line: int) -> ParsedChunk:
        out = ParsedChunk(table=None)  # type: ignore[arg-type]
        rows: list[dict] = []
        lines = chunk.split(b"\n")
        if chunk.endswith(b"\n"):
            lines.pop()
        for i, raw in enumerate(lines):
            line = first_line + i
            body = raw[:-1] if raw.endswith(b"\r") else raw
            if not body.strip():
                out.blank_lines += 1
                continue
            try:
                row = self._record(body, out)
            except FieldError as e:
                out.quarantine.append(self._q(line, "type", str(e), body))
                continue
            except ValueError as e:
                out.quarantine.append(self._q(line, "json", f"invalid JSON: {e}", body))
                continue
            row["source_line"] = line
            rows.append(row)
        out.table = pa.Table.from_pylist(rows, schema=self.parsed_schema)
        return out

    def _record(self, body: bytes, out: ParsedChunk) -> dict:
        try:
            obj = orjson.loads(body)
        except orjson.JSONDecodeError:
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                text = body.decode("utf-8", "replace")
                out.utf8_repaired += 1
            obj = json.loads(text)  # accepts lone surrogates; raises ValueError on bad JSON
        if not isinstance(obj, dict):
            raise ValueError(f"line is a JSON {type(obj).__name__}, not an object")
        row = {}
        for name, typ in self.fields.items():
            try:
                row[name] = _scrub(_COERCE[typ](obj.get(name)))
            except FieldError as e:
                raise FieldError(f"field {name!r}: {e}") from None
        try:
            row["edited_utc"] = _to_edited(obj.get("edited"))
        except FieldError as e:
            raise FieldError(f"field 'edited': {e}") from None
        meta = obj.get("_meta")
        if meta is not None and not isinstance(meta, dict):
            raise FieldError(f"field '_meta': a JSON {type(meta).__name__}, not an object")
        for name, typ in META_FIELDS.items():
            try:
                row[f"meta_{name}"] = _scrub(_COERCE[typ](meta.get(name))) if meta else None
            except FieldError as e:
                raise FieldError(f"field '_meta.{name}': {e}") from None
        for name in REQUIRED_FIELDS:
            if row[name] is None or row[name] == "":
                raise FieldError(f"required field {name!r} is missing")
        if not MIN_UTC <= row["created_utc"] < MAX_UTC:
            raise FieldError(f"field 'created_utc': {row['created_utc']} is outside 2005..2100")
        if self.media:
            row["preview_url"], row["gallery"] = media_columns(*(obj.get(m) for m in MEDIA_FIELDS))
        return row

    def _q(self, line: int, error_kind: str, error: str, raw: bytes) -> dict:
        return quarantine_row(self.source_file, line, self.kind, error_kind, error, raw)

    # -------------------------------------------------------------- shared tail
    def _finish(self, table: pa.Table) -> pa.Table:
        """Unescape URLs, add lineage and month, order and type columns as the schema says."""
        for name in URL_FIELDS:
            if name in table.column_names:
                col = table[name]
                for entity, char in _HTML_ENTITIES:
                    col = pc.replace_substring(col, entity, char)
                table = table.set_column(table.column_names.index(name), name, col)
        n = table.num_rows
        source = pa.DictionaryArray.from_arrays(
            pa.array(np.zeros(n, np.int32)), pa.array([self.source_file], pa.string())
        )
        keep = self.dictionary_lineage
        table = table.append_column("source_file", source if keep else source.cast(pa.string()))
        table = table.append_column("month", month_labels(table["created_utc"], keep))
        return table.select(self.schema.names).cast(self.out_schema)


def month_labels(created_utc: pa.ChunkedArray, dictionary: bool = False) -> pa.Array:
    """``YYYY-MM`` of each epoch second, vectorised (a chunk spans few months)."""
    secs = created_utc.to_numpy()
    if len(secs) == 0:
        return pa.array([], pa.dictionary(pa.int32(), pa.string()) if dictionary else pa.string())
    lo = datetime.fromtimestamp(int(secs.min()), UTC)
    hi = datetime.fromtimestamp(int(secs.max()), UTC)
    starts, labels = [], []
    y, m = lo.year, lo.month
    while (y, m) <= (hi.year, hi.month):
        starts.append(int(datetime(y, m, 1, tzinfo=UTC).timestamp()))
        labels.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    idx = np.searchsorted(np.asarray(starts), secs, side="right") - 1
    arr = pa.DictionaryArray.from_arrays(pa.array(idx.astype(np.int32)), pa.array(labels))
    return arr if dictionary else arr.cast(pa.string())


class _Fallback(Exception):
    """The fast path cannot vouch for this chunk; parse it line by line."""
