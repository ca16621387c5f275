"""Evidence per user: subreddits ranked by attention, then each subreddit's best snippets,
filling a token budget counted with the LLM's tokenizer; apart from it, the snippets the
user was downvoted for (score < 0), ViPer's "disliked" side, most negative first."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from llm.tokens import TokenCounter


@dataclass
class Evidence:
    """What one user's persona is mined from, and what went into it."""

    user_id: int
    text: str
    subreddits: list[int] = field(default_factory=list)
    snippet_ids: list[str] = field(default_factory=list)
    tokens: int = 0
    subreddit_names: list[str] = field(default_factory=list)
    snippets: list[str] = field(default_factory=list)  # the snippet texts included
    snippet_ranks: list[int] = field(default_factory=list)  # their subreddit's rank (1 = top)
    #: each included subreddit's rarity-weighted attention against an even share (1;
    #: `_relative_attention`): busy subreddits everyone joins fall well below it
    subreddit_weights: list[float] = field(default_factory=list)
    #: words of the included snippets that a quarter or more of all subreddits' snippets
    #: use (`common_words`): everyone's chatter, no one's taste
    common_words: list[str] = field(default_factory=list)
    disliked: list[str] = field(default_factory=list)  # downvoted snippet texts, not in `text`
    disliked_ids: list[str] = field(default_factory=list)

    def request_inputs(self, key: str, version: str) -> dict:
        """The evidence in structured form, as a persona or preferences request carries
        it (`ChatRequest.inputs`: what the template backend reads); `key` names the user."""
        return {
            "user": key,
            "subreddits": self.subreddit_names,
            "snippets": self.snippets,
            "snippet_ranks": self.snippet_ranks,
            "subreddit_weights": self.subreddit_weights,
            "common_words": self.common_words,
            "v": version,
        }


def _header(name: str, posts: int, comments: int) -> str:
    return f"## r/{name} (posts: {posts}, comments: {comments})\n"


def _clip(text: str, max_chars: int) -> str:
    text = " ".join(text.split())
    if len(text) > max_chars:
        text = text[: max_chars - 1].rstrip() + "…"
    return text


def _line(source: str, text: str, max_chars: int) -> str:
    return f"- [{source}] {_clip(text, max_chars)}\n"


def build_evidence(
    users: list[int],
    attention: pa.Table,
    snippets: pa.Table,
    subreddits: pa.Table,
    counter: TokenCounter,
    budget: int = 4096,
    mode: str = "full",
    max_subreddits: int = 50,
    snippets_per_subreddit: int = 3,
    max_snippet_chars: int = 600,
    max_disliked: int = 10,
    common: frozenset[str] | None = None,
    population: int | None = None,
) -> list[Evidence]:
    """Evidence for each of `users` (same order). A subreddit's header goes in only with
    room for it; snippets that do not fit are skipped, so no user exceeds `budget`.

    Snippets with a negative score are no evidence of what a user likes: they stay out of
    `text` and, up to `max_disliked` of any subreddit (most negative first), make up
    `disliked` (in `full` mode). `common` (the lake's `common_words`) and `population`
    (its users, for rarity) default to what `snippets` and `attention` hold: a caller
    passing one new user's tables (`graph.cold_start`) gives the lake's."""
    wanted = pa.array(users, pa.int32())
    att = attention.filter(
        pc.and_(
            pc.is_in(attention["user_id"], wanted), pc.less_equal(attention["rank"], max_subreddits)
        )
    ).sort_by([("user_id", "ascending"), ("rank", "ascending")])
    names = dict(
        zip(
            subreddits["subreddit_id"].to_pylist(), subreddits["subreddit"].to_pylist(), strict=True
        )
    )
    per_edge: dict[tuple[int, int], list[tuple[str, str]]] = defaultdict(list)
    mine = snippets.filter(pc.is_in(snippets["user_id"], wanted))
    negative = pc.fill_null(pc.less(mine["score"], 0), False)
    disliked = (
        _disliked(mine.filter(negative), max_disliked, max_snippet_chars) if mode == "full" else {}
    )
    if mode == "full" and snippets_per_subreddit:
        snip = mine.filter(
            pc.and_(
                pc.invert(negative),
                pc.less_equal(mine["rank"], snippets_per_subreddit),
            )
        ).sort_by([("user_id", "ascending"), ("subreddit_id", "ascending"), ("rank", "ascending")])
        for u, s, rid, src, text in zip(
            *(
                snip[c].to_pylist()
                for c in ("user_id", "subreddit_id", "record_id", "source", "text")
            ),
            strict=True,
        ):
            per_edge[(u, s)].append((rid, _line(src, text, max_snippet_chars)))
    ranked: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for u, s, p, c in zip(
        *(att[k].to_pylist() for k in ("user_id", "subreddit_id", "posts", "comments")), strict=True
    ):
        ranked[u].append((s, _header(names.get(s, str(s)), p, c)))
    relative = _relative_attention(attention, wanted, subreddits, population)
    if common is None:
        common = common_words(snippets)
    # one tokenizer call for every line any user could use
    lines = sorted(
        {h for v in ranked.values() for _, h in v} | {t for v in per_edge.values() for _, t in v}
    )
    cost = dict(zip(lines, counter.count(lines), strict=True))
    out = []
    for u in users:
        parts: list[tuple[str, int | None, str | None]] = []  # (line, subreddit, snippet id)
        used = 0
        for s, header in ranked.get(u, []):
            if used + cost[header] > budget:
                break
            parts.append((header, s, None))
            used += cost[header]
            for rid, line in per_edge.get((u, s), []):
                if used + cost[line] <= budget:
                    parts.append((line, None, rid))
                    used += cost[line]
        text, tokens = _join(parts, counter)
        while tokens > budget and parts:  # merges at line joins can add a token or two
            parts.pop()
            text, tokens = _join(parts, counter)
        subs = [s for _, s, _ in parts if s is not None]
        out.append(
            Evidence(
                user_id=u,
                text=text,
                subreddits=subs,
                snippet_ids=[r for _, _, r in parts if r is not None],
                tokens=tokens,
                subreddit_names=[names.get(s, str(s)) for s in subs],
                snippets=[ln.split("] ", 1)[1].strip() for ln, _, r in parts if r is not None],
                snippet_ranks=_ranks(parts),
                subreddit_weights=[relative[(u, s)] for s in subs],
                common_words=_common_in(parts, common),
                disliked=[t for _, t in disliked.get(u, [])],
                disliked_ids=[r for r, _ in disliked.get(u, [])],
            )
        )
    return out


#: a word is common when at least this share of the subreddits with snippets use it
COMMON_SHARE = 0.25
#: most snippets read to estimate word spread (an even stride over the table beyond it)
COMMON_SAMPLE = 200_000
#: fewer subreddits with snippets than this, and a word's spread says nothing: none common
COMMON_MIN_SUBREDDITS = 20
_SPLIT = r"[^a-z'-]+"


def common_words(snippets: pa.Table, share: float = COMMON_SHARE) -> frozenset[str]:
    """Words (4+ letters) that at least `share` of the subreddits with snippets use: on the
    demo world the filler every text carries sits at ~70% of subreddits, a community's
    words under ~16%. Read from up to `COMMON_SAMPLE` snippets (an even stride)."""
    if not snippets.num_rows:
        return frozenset()
    step = max(1, snippets.num_rows // COMMON_SAMPLE)
    sample = snippets.take(pa.array(range(0, snippets.num_rows, step)))
    words = pc.split_pattern_regex(pc.utf8_lower(sample["text"]), _SPLIT)
    pairs = pa.table(
        {
            "w": pc.list_flatten(words),
            "s": pc.take(sample["subreddit_id"], pc.list_parent_indices(words)),
        }
    )
    pairs = pairs.filter(pc.greater_equal(pc.utf8_length(pairs["w"]), 4))
    spread = pairs.group_by(["w", "s"]).aggregate([]).group_by("w").aggregate([("s", "count")])
    subreddits = len(pc.unique(sample["subreddit_id"]))
    if subreddits < COMMON_MIN_SUBREDDITS:
        return frozenset()
    need = share * subreddits
    return frozenset(spread.filter(pc.greater_equal(spread["s_count"], need))["w"].to_pylist())


def _common_in(parts: list[tuple[str, int | None, str | None]], common: frozenset) -> list[str]:
    """The common words among the included snippet lines, sorted."""
    text = " ".join(ln for ln, _, rid in parts if rid is not None).lower()
    return sorted({w for w in re.split(_SPLIT, text) if w in common})


def _relative_attention(
    attention: pa.Table, users: pa.Array, subreddits: pa.Table, population: int | None = None
) -> dict[tuple[int, int], float]:
    """(user, subreddit) -> how much the user's attention, reweighted by the subreddit's
    rarity, puts on it against an even share (1): attention x idf, idf = log(users /
    the subreddit's users) as in the attention check's TF-IDF peer, normalised over the
    user's attended subreddits, times their number. Busy subreddits everyone joins fall
    well below 1. A user whose subreddits all have idf 0 (everyone joins them all) keeps
    plain attention. Rounded to 3 places so request ids stay stable."""
    total = max(population or len(pc.unique(attention["user_id"])), 1)
    sizes = dict(
        zip(subreddits["subreddit_id"].to_pylist(), subreddits["users"].to_pylist(), strict=True)
    )
    att = attention.filter(pc.is_in(attention["user_id"], users))
    u = att["user_id"].to_numpy()
    subs = att["subreddit_id"].to_pylist()
    idf = np.log(total / np.array([max(sizes.get(s) or 1, 1) for s in subs], float))
    attention_ = att["attention"].to_numpy().astype(float)
    w = attention_ * np.maximum(idf, 0.0)
    _, inverse, counts = np.unique(u, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=w)
    flat = sums[inverse] <= 0  # no rarity to weigh by: plain attention
    w = np.where(flat, attention_, w)
    sums = np.bincount(inverse, weights=w)
    rel = np.round(
        np.divide(w, sums[inverse], out=np.zeros_like(w), where=sums[inverse] > 0)
        * counts[inverse],
        3,
    )
    return dict(zip(zip(u.tolist(), subs, strict=True), rel.tolist(), strict=True))


def _disliked(snip: pa.Table, most: int, max_chars: int) -> dict[int, list[tuple[str, str]]]:
    """user -> up to `most` (record id, text) of their negative-score snippets, lowest
    score first (then newest, then id)."""
    snip = snip.sort_by(
        [
            ("user_id", "ascending"),
            ("score", "ascending"),
            ("created_utc", "descending"),
            ("record_id", "ascending"),
        ]
    )
    out: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for u, rid, text in zip(
        *(snip[c].to_pylist() for c in ("user_id", "record_id", "text")), strict=True
    ):
        if len(out[u]) < most:
            out[u].append((rid, _clip(text, max_chars)))
    return out


def _ranks(parts: list[tuple[str, int | None, str | None]]) -> list[int]:
    ranks, rank = [], 0
    for _, sub, rid in parts:
        if sub is not None:
            rank += 1
        elif rid is not None:
            ranks.append(rank)
    return ranks


def _join(
    parts: list[tuple[str, int | None, str | None]], counter: TokenCounter
) -> tuple[str, int]:
    text = "".join(p[0] for p in parts).strip()
    return text, (counter.count([text])[0] if text else 0)
