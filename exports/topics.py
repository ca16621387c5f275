"""What a rare subreddit is about in its users' own words, for its export label when no
large subreddit is near enough (`exports.communities`).

A rare subreddit's words are those its snippets (silver/snippets, history only: never a
held-out benchmark post) use most over-proportionately against all rare subreddits'
snippets: the word's lift, (its count here / words here) / (its count in all / words in
all), at least ``min_lift``. So that the words describe the community and single out
neither it nor anyone in it, a word also needs:

* ``min_users`` of the subreddit's users writing it (not one user's habit);
* ``min_subreddits`` rare subreddits using it (not a word peculiar to this community);
* to be no word of the subreddit's own name, no rare subreddit's whole name and no user's
  name (``u/...`` mentions and links are dropped before counting).

Words are lower-cased letters only, three or more; the top ``words`` by lift (ties: the
more frequent, then alphabetical).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from contract.history import REFERENCES, without_held_out
from contract.stage_io import TableAccess
from schemas.subreddit_names import readable

#: what the words are read from (and the held-out posts they leave out)
INPUTS = ("silver/snippets", "silver/users", REFERENCES)

#: defaults of the rule (see the module docstring)
WORDS = 3
MIN_USERS = 2
MIN_SUBREDDITS = 5
MIN_LIFT = 2.0

_WORD = re.compile(r"[^\W\d_]{3,}")
_SKIP = re.compile(r"https?://\S+|www\.\S+|(?<![\w/])/?u/[\w-]+", re.IGNORECASE)


def community_words(tables: TableAccess, rare: dict[int, str]) -> dict[int, list[str]]:
    """Each rare subreddit (id -> name) -> its words (module docstring); rare subreddits
    with none are left out. Reads only the rare subreddits' snippets."""
    if not rare:
        return {}
    ids = pa.array(list(rare), pa.int32())
    snippets = tables.read(
        "silver/snippets",
        ["subreddit_id", "user_id", "text", "record_id", "post_id"],
        filter=ds.field("subreddit_id").isin(ids),
    )
    snippets = without_held_out(snippets, "silver/snippets", tables.read(REFERENCES, ["post_id"]))
    texts = snippets["text"].to_pylist()
    banned = _user_names(tables, {w for t in texts if t for w in _words(t)})
    banned |= {name.lower() for name in rare.values()}
    rows = zip(
        snippets["subreddit_id"].to_pylist(), snippets["user_id"].to_pylist(), texts, strict=True
    )
    return top_words(rows, rare, banned)


def _words(text: str) -> list[str]:
    """The words of `text` as counted here (lower-cased, no links, no user mentions)."""
    return _WORD.findall(_SKIP.sub(" ", text).lower())


def _user_names(tables: TableAccess, words: set[str]) -> set[str]:
    """Those of `words` that are a user's name (case-insensitively), found in Arrow
    without holding every name in Python."""
    if not words:
        return set()
    authors = tables.read("silver/users", ["author"])["author"]
    lower = pc.utf8_lower(authors)
    hits = pc.filter(lower, pc.is_in(lower, value_set=pa.array(sorted(words), pa.string())))
    return set(hits.to_pylist())


def top_words(
    snippets: Iterable[tuple[int, int, str | None]],
    names: dict[int, str],
    banned: set[str] = frozenset(),
    words: int = WORDS,
    min_users: int = MIN_USERS,
    min_subreddits: int = MIN_SUBREDDITS,
    min_lift: float = MIN_LIFT,
) -> dict[int, list[str]]:
    """Each subreddit of `names` -> its top `words` from (subreddit id, user id, text)
    `snippets` by the module docstring's rule; `banned` words are never picked."""
    counts: dict[int, Counter] = defaultdict(Counter)
    writers: dict[tuple[int, str], set[int]] = defaultdict(set)
    for sub, user, text in snippets:
        if sub not in names or not text:
            continue
        for word in _words(text):
            counts[sub][word] += 1
            writers[(sub, word)].add(user)
    overall: Counter = Counter()
    spread: Counter = Counter()
    for c in counts.values():
        overall.update(c)
        spread.update(c.keys())
    total = sum(overall.values())
    out: dict[int, list[str]] = {}
    for sub, c in counts.items():
        here = sum(c.values())
        own = set(readable(names[sub]).split()) | set(_WORD.findall(names[sub].lower()))
        ranked = sorted(
            (-(n / here) / (overall[w] / total), -n, w)
            for w, n in c.items()
            if spread[w] >= min_subreddits
            and len(writers[(sub, w)]) >= min_users
            and w not in own
            and w not in banned
        )
        picked = [w for lift, _, w in ranked[:words] if -lift >= min_lift]
        if picked:
            out[sub] = picked
    return out
