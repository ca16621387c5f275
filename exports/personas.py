"""Exports of persona tables and the benchmark for others: Parquet, JSONL, Delta, HF `datasets`.

Two kinds, each one flat table:

* ``personas``: gold/personas, every row.
* ``bench``: the ``done`` rows of bench/images with the persona that goes with each image
  (`schemas.persona.persona_for`: the same user's persona by the same LLM; for rows
  made without an LLM the user's first done persona by LLM label). ``persona_llm`` says
  which LLM that persona came from (null: none). The images themselves go only into the
  ``hf`` format (an embedded ``image`` column); the other formats carry ``path``, relative
  to the lake root.

User names are pseudonymised unless asked otherwise (``--include-usernames``):

* ``user`` = ``"u_"`` + the first 16 hex characters of HMAC-SHA256(key, author) replaces
  ``user_id``; the key comes from the environment only (``export.key_env``) and is never
  generated, stored, printed or written;
* what leads back to the account goes: quoted comments and their Reddit ids
  (``evidence``, ``evidence_ids``, ``raw``), the ranked subreddit list
  (``evidence_subreddits``), ``user_id`` itself (it is the author's rank in name order, so
  the public dumps rebuild it), and what is computed from it (``request_id`` hashes the
  evidence, ``seed`` is seeded by the user id, and ``image_id`` is replaced by its keyed
  hash);
* rare communities: every subreddit with fewer than ``export.min_community_users`` users
  is replaced, in every text and list column (interests, visual interests, affective
  traits, text, demographics, prompts, personas), by its community label: "a community
  near r/Big" (Big: the subreddit with at least that many users that shares the most
  users with it, from silver/edges) or "a small community" when there is none. Names
  match case-insensitively, with or without ``r/``, and in the readable form the template
  backend writes (``AnalogPhotographyClub`` -> ``analog photography club``).

Every export carries a dataset card (``README.md`` in the export folder, HF dataset-card
style): its fields, the pseudonymisation, the intended use and the source's terms. Every
export is written aside (a hidden sibling folder of the target) and then swapped in, so a
failed export never leaves half a folder.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import shutil
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from storage.lake import Lake, swap_in

KINDS = ("personas", "bench")
FORMATS = ("parquet", "jsonl", "delta", "hf")
DEFAULT_KEY_ENV = "ZIPP_PSEUDONYM_KEY"
DEFAULT_MIN_COMMUNITY_USERS = 50
CARD = "README.md"


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
#: identifier and bookkeeping columns that never hold free text (left as they are when
#: rare communities are replaced; a path must keep pointing at its image)
NOT_TEXT = frozenset(
    {
        "user",
        "author",
        "image_id",
        "prompt_id",
        "path",
        "sha256",
        "llm",
        "persona_llm",
        "method",
        "model",
        "status",
        "source",
        "evidence_mode",
        "tokenizer",
        "prompt_version",
    }
)

#: one line per exported column, for the dataset card
FIELD_DOCS = {
    "user": "pseudonym of the Reddit account: u_ + 16 hex of HMAC-SHA256(key, user name)",
    "author": "the Reddit user name (exports made with --include-usernames only)",
    "user_id": "the lake's user id (the user name's rank: identifying)",
    "source": "how the persona was made: llm, template or override",
    "demographics": "estimated age, gender, region and occupation (null when not stated)",
    "interests": "interests, as short phrases",
    "affective_traits": "affective traits, as short phrases",
    "visual_interests": "visual interests, as short phrases",
    "text": "the persona in the first person, free text",
    "evidence_mode": "what evidence the persona was verbalised from: full or subreddits",
    "evidence_subreddits": "subreddit ids of the evidence, ranked by attention",
    "evidence_ids": "Reddit ids of the quoted snippets",
    "evidence_tokens": "tokens of evidence the LLM saw (within the token budget)",
    "tokenizer": "what counted the evidence budget",
    "evidence": "the evidence text the LLM saw (quoted Reddit comments)",
    "llm": "the model that made the row, backend:model ('-': no LLM involved)",
    "template": "made by the deterministic template backend, not a language model",
    "status": "done or failed",
    "reason": "why the row failed",
    "raw": "the model's last reply when it failed validation",
    "prompt_version": "version of the prompt template the model was asked with",
    "prompt_tokens": "prompt tokens of the model call",
    "completion_tokens": "completion tokens of the model call",
    "attempts": "model calls made, retries included",
    "seconds": "seconds the row took to make",
    "request_id": "hash of the exact request",
    "image_id": "the image's id (keyed hash in pseudonymised exports)",
    "prompt_id": "hash of the base prompt",
    "method": "base (unrewritten prompt), a rewrite method, or pigeon (history images)",
    "seed_index": "which of the prompt's seeds made the image",
    "seed": "the diffusion seed (derived from the user id)",
    "prompt": "the prompt the image was rendered from",
    "negative_prompt": "the negative prompt, if any",
    "model": "the text-to-image pipeline (path or id)",
    "smoke_model": "made by the tiny, randomly initialised smoke pipeline (noise)",
    "path": "the image file, relative to the lake root",
    "sha256": "SHA-256 of the PNG",
    "width": "image width in pixels",
    "height": "image height in pixels",
    "persona": "the persona that goes with the image (same user; same LLM when one was used)",
    "persona_llm": "the LLM that made that persona (null: none)",
    "image": "the generated image (PNG)",
}


def pseudonymise(authors: list[str | None], key: str, prefix: str = "u_") -> list[str | None]:
    """`prefix` + the first 16 hex chars of HMAC-SHA256(key, author); None stays None."""
    k = key.encode()
    return [
        None if a is None else prefix + hmac.new(k, a.encode(), hashlib.sha256).hexdigest()[:16]
        for a in authors
    ]


def _authors(lake: Lake, user_ids: list[int]) -> list[str | None]:
    """silver/users' author of each user id (None where the user is unknown)."""
    users = lake.read("silver/users", ["user_id", "author"])
    names = dict(zip(users["user_id"].to_pylist(), users["author"].to_pylist(), strict=True))
    return [names.get(u) for u in user_ids]


# -- rare communities -------------------------------------------------------------------


def community_labels(lake: Lake, min_users: int) -> dict[str, str]:
    """Every subreddit with fewer than `min_users` users -> its community label: "a
    community near r/Big", Big being the subreddit with at least `min_users` users that
    shares the most users with it (ties: the bigger, then the name), else "a small
    community". Reads only the rare subreddits' edges and their members' edges."""
    subs = lake.read("silver/subreddits", ["subreddit_id", "subreddit", "users"])
    rare_mask = pc.less(subs["users"], min_users)
    rare = subs.filter(rare_mask)
    if not rare.num_rows:
        return {}
    big = subs.filter(pc.invert(rare_mask))
    near: dict[int, str] = {}
    if big.num_rows:
        rare_ids = pa.array(rare["subreddit_id"].to_pylist(), pa.int32())
        mine = lake.read(
            "silver/edges",
            ["user_id", "subreddit_id"],
            filter=ds.field("subreddit_id").isin(rare_ids),
        )
        members = pc.unique(mine["user_id"])
        theirs = lake.read(
            "silver/edges",
            ["user_id", "subreddit_id"],
            filter=ds.field("user_id").isin(members)
            & ds.field("subreddit_id").isin(pa.array(big["subreddit_id"].to_pylist(), pa.int32())),
        ).rename_columns(["user_id", "big_id"])
        shared = (
            mine.join(theirs, "user_id", join_type="inner")
            .group_by(["subreddit_id", "big_id"])
            .aggregate([("user_id", "count_distinct")])
        )
        sizes = dict(zip(big["subreddit_id"].to_pylist(), big["users"].to_pylist(), strict=True))
        names = dict(
            zip(big["subreddit_id"].to_pylist(), big["subreddit"].to_pylist(), strict=True)
        )
        best: dict[int, tuple] = {}
        for s, b, n in zip(
            shared["subreddit_id"].to_pylist(),
            shared["big_id"].to_pylist(),
            shared["user_id_count_distinct"].to_pylist(),
            strict=True,
        ):
            rank = (-n, -sizes[b], names[b])
            if s not in best or rank < best[s]:
                best[s] = rank
        near = {s: rank[2] for s, rank in best.items()}
    return {
        name: f"a community near r/{near[s]}" if s in near else "a small community"
        for s, name in zip(
            rare["subreddit_id"].to_pylist(), rare["subreddit"].to_pylist(), strict=True
        )
    }


_WORD = re.compile(r"[A-Za-z0-9_]+")
_GAP = re.compile(r"[\s-]+")  # between the words of a readable name
_PREFIX = re.compile(r"(?:(?<=[^A-Za-z0-9_])|^)/?r/$", re.IGNORECASE)


class CommunityScrubber:
    """Replaces named subreddits in text by their labels: the name, case-insensitively,
    with or without ``r/`` (``/r/`` too), and its readable form (the template backend's
    ``readable``: ``AnalogPhotographyClub`` -> ``analog photography club``); whole words
    only, so a name inside a longer word is left alone."""

    def __init__(self, labels: dict[str, str]):
        from llm.template_backend import readable

        self.labels: dict[tuple[str, ...], str] = {}
        for name, label in labels.items():
            for form in (name, readable(name)):
                words = tuple(w.lower() for w in _WORD.findall(form))
                if words:
                    self.labels.setdefault(words, label)
        self.longest = max((len(k) for k in self.labels), default=0)
        self.first_words = {k[0] for k in self.labels}

    def __bool__(self) -> bool:
        return bool(self.labels)

    def text(self, text: str) -> str:
        """`text` with every named subreddit replaced by its label."""
        words = list(_WORD.finditer(text))
        out, pos, i = [], 0, 0
        while i < len(words):
            hit = None
            if words[i].group().lower() in self.first_words:
                for n in range(min(self.longest, len(words) - i), 0, -1):
                    seq = words[i : i + n]
                    gaps = (text[a.end() : b.start()] for a, b in zip(seq, seq[1:], strict=False))
                    if n > 1 and not all(_GAP.fullmatch(g) for g in gaps):
                        continue
                    label = self.labels.get(tuple(w.group().lower() for w in seq))
                    if label is not None:
                        hit = (n, label)
                        break
            if hit is None:
                i += 1
                continue
            n, label = hit
            start, end = words[i].start(), words[i + n - 1].end()
            prefix = _PREFIX.search(text, pos, start)
            if prefix is not None:
                start = prefix.start()
            out += [text[pos:start], label]
            pos, i = end, i + n
        return "".join(out) + text[pos:] if out else text

    def value(self, v: object) -> object:
        """A cell (text, list or struct, nested) with every text in it scrubbed."""
        if isinstance(v, str):
            return self.text(v)
        if isinstance(v, list):
            return [self.value(x) for x in v]
        if isinstance(v, dict):
            return {k: self.value(x) for k, x in v.items()}
        return v

    def table(self, table: pa.Table, skip: frozenset[str] = NOT_TEXT) -> pa.Table:
        """Every text, list and struct column of `table` (but `skip`) scrubbed."""
        if not self:
            return table
        for i, f in enumerate(table.schema):
            if f.name in skip or not _holds_text(f.type):
                continue
            values = [self.value(v) for v in table[f.name].to_pylist()]
            table = table.set_column(i, f, pa.array(values, f.type))
        return table


def _holds_text(t: pa.DataType) -> bool:
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return True
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _holds_text(t.value_type)
    if pa.types.is_struct(t):
        return any(_holds_text(t.field(i).type) for i in range(t.num_fields))
    return False


# -- the export table -------------------------------------------------------------------


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
    kind: str,
    lake: Lake,
    include_usernames: bool = False,
    key: str | None = None,
    min_community_users: int = DEFAULT_MIN_COMMUNITY_USERS,
) -> pa.Table:
    """The flat table of an export kind ("personas" or "bench"): pseudonymised with `key`
    and rare communities replaced by their labels, unless `include_usernames`."""
    from schemas.persona import persona_for

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
        personas = persona_for(keys, lake.read("gold/personas"))
        texts = [p["text"] if p else None for p in personas]
        table = table.append_column("persona", pa.array(texts, pa.string()))
        llms = [p["llm"] if p else None for p in personas]
        table = table.append_column("persona_llm", pa.array(llms, pa.string()))
    else:
        raise ExportError(f"unknown export {kind!r}: choose one of {', '.join(KINDS)}")
    authors = _authors(lake, table["user_id"].to_pylist())
    table = _with_user(table, authors, include_usernames, key)
    if not include_usernames:
        table = CommunityScrubber(community_labels(lake, min_community_users)).table(table)
    return table


# -- the dataset card -------------------------------------------------------------------


def _size_category(n: int) -> str:
    for bound, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")):
        if n < bound:
            return name
    return "100K<n<1M" if n < 1_000_000 else "1M<n<10M" if n < 10_000_000 else "n>10M"


def _type(t: pa.DataType) -> str:
    if pa.types.is_struct(t):
        return "struct<" + ", ".join(t.field(i).name for i in range(t.num_fields)) + ">"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"list<{_type(t.value_type)}>"
    return str(t).replace("large_", "")


def dataset_card(
    kind: str,
    fmt: str,
    table: pa.Table,
    include_usernames: bool,
    key_env: str,
    min_community_users: int,
) -> str:
    """The export's README.md: HF dataset-card front matter, then its fields (one line
    each, from the table's schema), the pseudonymisation, intended use and terms."""
    title = {"personas": "ZIPP personas", "bench": "ZIPBench images"}[kind]
    q = json.dumps
    front = [
        "---",
        f"pretty_name: {q(title + (' (with user names)' if include_usernames else ''))}",
        "language:",
        "- en",
        "license: other",
        f"license_name: {q('reddit-user-agreement')}",
        "tags:",
        *(f"- {t}" for t in ("reddit", "personas", "personalized-generation", "text-to-image")),
        "size_categories:",
        f"- {q(_size_category(table.num_rows))}",
        "source_datasets:",
        f"- {q('Reddit submissions and comments via Pushshift / Arctic Shift dumps')}",
    ]
    if fmt in ("parquet", "jsonl"):
        front += [
            "configs:",
            "- config_name: default",
            f"  data_files: {q(f'{kind}.{fmt}')}",
        ]
    front.append("---")
    fields = [
        f"- `{f.name}` ({_type(f.type)}): {FIELD_DOCS.get(f.name, f.name)}" for f in table.schema
    ]
    if fmt == "hf" and kind == "bench":
        fields.append(f"- `image` (datasets.Image): {FIELD_DOCS['image']}")
    if include_usernames:
        privacy = [
            "**Not pseudonymised**: this export was made with `--include-usernames` and holds "
            "Reddit user names (`author`), the lake's user ids, the quoted evidence and the "
            "names of every community. Keep it private; do not publish it.",
        ]
    else:
        privacy = [
            f"- Users: `user` = `u_` + the first 16 hex characters of HMAC-SHA256 over the "
            f"Reddit user name, keyed with a secret read from the environment (`{key_env}`); "
            "the key is never stored or written, so pseudonyms cannot be reversed or "
            "recomputed without it.",
            "- Dropped: the user names, the lake's `user_id` (the name's rank: rebuildable "
            "from the public dumps), the quoted comments and their Reddit ids (`evidence`, "
            "`evidence_ids`, `raw`), the ranked subreddit list (`evidence_subreddits`), "
            "`request_id` (a hash of the evidence) and `seed` (derived from the user id); "
            "`image_id` is replaced by its keyed hash.",
            f"- Rare communities: every subreddit with fewer than {min_community_users} users "
            "(`export.min_community_users`) is replaced, in every text and list field, by a "
            'community label: "a community near r/X", X being the subreddit with at least '
            f"{min_community_users} users that shares the most users with it, or "
            '"a small community" when there is none. Names are matched case-insensitively, '
            "with or without `r/`, and in their readable form.",
        ]
    body = [
        f"# {title}",
        "",
        f"Exported by ZIPP (`zipp export {kind} --format {fmt}`): {table.num_rows:,} rows.",
        "",
        "## Fields",
        "",
        *fields,
        "",
        "## Pseudonymisation",
        "",
        *privacy,
        "",
        "## Intended use",
        "",
        "Research on personalised text-to-image generation and its evaluation (ZIPBench). "
        "Not for profiling, targeting or re-identifying people, nor for linking the rows back "
        "to Reddit accounts.",
        "",
        "## Source and terms",
        "",
        "Derived from Reddit content (submissions and comments) distributed as the "
        "Pushshift / Arctic Shift dumps. Reddit's User Agreement and its Data API terms apply "
        "to that content and to anything derived from it. Deletion requests are honoured "
        "through the pipeline's blocklist (`ingest.blocklist`): a listed user is removed from "
        "every table of the lake at the next `zipp run` and from every export made after it; "
        "re-export and replace earlier copies.",
        "",
    ]
    return "\n".join(front + [""] + body)


# -- writing ----------------------------------------------------------------------------


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
    ds_ = datasets.Dataset.from_dict({c: table[c] for c in table.column_names}, features=features)
    if "image" in ds_.column_names:
        ds_ = ds_.cast_column("image", datasets.Image())
    ds_.save_to_disk(str(out))  # embeds local image files into the saved Arrow data


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
    min_community_users: int = DEFAULT_MIN_COMMUNITY_USERS,
    key_env: str = DEFAULT_KEY_ENV,
) -> int:
    """Build the export table and write it with its dataset card aside, then swap it in
    at `out`; returns rows."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    out = Path(out).absolute()
    check_out(out, overwrite)
    table = export_table(kind, lake, include_usernames, key, min_community_users)
    staged = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        write(table, fmt, staged, kind, images_root=lake.root if kind == "bench" else None)
        card = dataset_card(kind, fmt, table, include_usernames, key_env, min_community_users)
        (staged / CARD).write_text(card, encoding="utf-8")
        swap_in(staged, out)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return table.num_rows
