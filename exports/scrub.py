"""Scrubbing rare communities out of an export: every named subreddit that has a
community label (`exports.communities`) is replaced by it, in every text and list column
(interests, visual interests, affective traits, text, demographics, prompts, personas).
Names match case-insensitively, with or without ``r/``, and in the readable form the
template backend writes (``AnalogPhotographyClub`` -> ``analog photography club``).
"""

from __future__ import annotations

import re

import pyarrow as pa

from schemas.subreddit_names import readable

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


_WORD = re.compile(r"[A-Za-z0-9_]+")
_GAP = re.compile(r"[\s-]+")  # between the words of a readable name
_PREFIX = re.compile(r"(?:(?<=[^A-Za-z0-9_])|^)/?r/$", re.IGNORECASE)


class CommunityScrubber:
    """Replaces named subreddits in text by their labels: the name, case-insensitively,
    with or without ``r/`` (``/r/`` too), and its readable form (`readable`, as the template
    backend writes it: ``AnalogPhotographyClub`` -> ``analog photography club``); whole
    words only, so a name inside a longer word is left alone."""

    def __init__(self, labels: dict[str, str]):
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
