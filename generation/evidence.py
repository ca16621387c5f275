"""Evidence per user: subreddits ranked by attention, then each subreddit's best snippets,
filling a token budget counted with the LLM's tokenizer; apart from it, the snippets the
user was downvoted for (score < 0), ViPer's "disliked" side, most negative first."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

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
    disliked: list[str] = field(default_factory=list)  # downvoted snippet texts, not in `text`
    disliked_ids: list[str] = field(default_factory=list)


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
) -> list[Evidence]:
    """Evidence for each of `users` (same order). A subreddit's header goes in only with
    room for it; snippets that do not fit are skipped, so no user exceeds `budget`.

    Snippets with a negative score are no evidence of what a user likes: they stay out of
    `text` and, up to `max_disliked` of any subreddit (most negative first), make up
    `disliked` (in `full` mode)."""
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
                disliked=[t for _, t in disliked.get(u, [])],
                disliked_ids=[r for r, _ in disliked.get(u, [])],
            )
        )
    return out


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
