"""ZIPBench's users and base prompts (the builder's first half; images come later)."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from schemas.bench import BENCH_PROMPTS, BENCH_REFERENCES, BENCH_USERS


def read_prompts(path: str | Path) -> list[str]:
    """Base prompts, one a line (blank lines and # comments skipped, duplicates dropped)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"bench.prompts: file not found: {p}")
    seen: dict[str, None] = {}
    for line in p.read_text().splitlines():
        line = " ".join(line.split())
        if line and not line.startswith("#"):
            seen.setdefault(line, None)
    if not seen:
        raise ValueError(f"bench.prompts: no prompts in {p}")
    return list(seen)


def prompt_id(text: str) -> str:
    """A base prompt's id: a hash of its text, so the same prompt shares it across users."""
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def name_key(author: str) -> str:
    """A user's content key: a digest of the lower-cased user name (Reddit matches names
    case-insensitively). It stands in for the dense user id wherever a row key, a
    request or a draw must not move when a refresh (a new month, a deletion) shifts the
    dense ids; it only ever goes into hashes and orderings, never into a table."""
    return hashlib.sha256(b"user\0" + author.lower().encode()).hexdigest()[:16]


def _draw(seed: int, key: str) -> str:
    """A user's seeded place in a draw: the same across refreshes for the same user."""
    return hashlib.sha256(f"{seed}\0{key}".encode()).hexdigest()


def select_users(candidates: pa.Table, n: int, min_posts: int = 1, seed: int = 0) -> pa.Table:
    """Up to `n` users with at least `min_posts` image posts, stratified by community
    (their most active subreddit) and activity tercile, taken round-robin across strata
    so small strata are represented. `candidates` has user_id, community, activity,
    images, image_posts and (optionally) key, the user's content key: within a stratum
    users come in the order of a seeded digest of their key, so a refresh that adds
    users or shifts dense ids keeps every still-eligible user of an unchanged stratum
    unless a newcomer outranks them (without keys, the dense id stands in)."""
    rows = [r for r in candidates.to_pylist() if r["image_posts"] >= min_posts]
    if not rows:
        return BENCH_USERS.empty_table()
    activity = np.array([r["activity"] for r in rows], float)
    cuts = np.quantile(activity, [1 / 3, 2 / 3])
    strata: dict[str, list[dict]] = defaultdict(list)
    for r, a in zip(rows, activity, strict=True):
        tier = ("low", "mid", "high")[int(np.searchsorted(cuts, a, side="right"))]
        strata[f"{r['community']}/{tier}"].append(r)

    def place(r: dict) -> str:
        return _draw(seed, r.get("key") or str(r["user_id"]))

    queues = {k: sorted(v, key=place) for k, v in sorted(strata.items())}
    picked: list[dict] = []
    while len(picked) < n and any(queues.values()):
        for key, q in queues.items():
            if q and len(picked) < n:
                picked.append({**q.pop(0), "stratum": key})
    picked.sort(key=lambda r: r["user_id"])
    return pa.Table.from_pylist(
        [
            {
                "user_id": r["user_id"],
                "stratum": r["stratum"],
                "images": r["images"],
                "references": [],
            }
            for r in picked
        ],
        schema=BENCH_USERS,
    )


def pool_demographics(snippets: pa.Table) -> dict[int, dict]:
    """Each user's demographics inferred from their snippets (user_id, text) with the cue
    lexicon the template personas use (`llm.demographics`): no LLM runs before the split.
    The caller passes history only (the would-be references' snippets removed)."""
    from llm.demographics import infer_demographics

    texts: dict[int, list[str]] = defaultdict(list)
    for u, t in zip(snippets["user_id"].to_pylist(), snippets["text"].to_pylist(), strict=True):
        texts[u].append(t)
    return {u: infer_demographics(ts) for u, ts in texts.items()}


def demographic_weights(
    demographics: list[dict | None], targets: dict[str, dict[str, float]]
) -> np.ndarray:
    """Each pool user's draw weight: the product, over the target attributes the user's
    demographics know, of target share / the pool's share of that category among the
    users who know the attribute (one raking round). A value that is unknown, or that
    the targets do not list, leaves the weight as it is; a category with target 0 gets 0."""
    from llm.demographic_targets import category

    w = np.ones(len(demographics))
    for attr, shares in targets.items():
        cats = [category(d, attr) for d in demographics]
        known = [c for c in cats if c in shares]
        if not known:
            continue
        have = {c: known.count(c) / len(known) for c in set(known)}
        w *= [shares[c] / have[c] if c in shares else 1.0 for c in cats]
    return w


def draw_by_demographics(
    pool: pa.Table,
    demographics: dict[int, dict],
    targets: dict[str, dict[str, float]],
    n: int,
    seed: int = 0,
    keys: dict[int, str] | None = None,
) -> pa.Table:
    """`n` of the `pool` (bench/users rows, e.g. a wider community/activity-stratified
    `select_users` draw) drawn without replacement with probability proportional to
    `demographic_weights` (Efraimidis-Spirakis: the largest u ** (1 / w), u a user's seeded
    place from their content key `keys`, else the dense id), so users whose inferred
    demographics are known come in the targets' proportions and the others as they are."""
    ids = pool["user_id"].to_pylist()
    w = demographic_weights([demographics.get(u) for u in ids], targets)
    order = []
    for u, wi in zip(ids, w, strict=True):
        place = int(_draw(seed, "demographic\0" + (keys or {}).get(u, str(u)))[:15], 16)
        uniform = (place + 1) / (16**15 + 1)  # in (0, 1)
        order.append((np.log(uniform) / wi if wi > 0 else -np.inf, u))
    keep = {u for _, u in sorted(order, reverse=True)[:n]}
    mask = pa.array([u in keep for u in ids], pa.bool_())
    return pool.filter(mask)


def split_references(
    images: pa.Table, users: list[int], n: int, subreddit_ids: dict[str, int] | None = None
) -> pa.Table:
    """Each user's `n` newest image posts, held out whole as references (every image of
    a gallery post, so no sibling is ever history): bench/references rows, with the id of
    the post's subreddit (`subreddit_ids`: name -> id)."""
    wanted = set(users)
    cols = ["user_id", "post_id", "position", "image_url", "created_utc", "subreddit"]
    rows = [r for r in images.select(cols).to_pylist() if r["user_id"] in wanted]
    for r in rows:
        r["subreddit_id"] = (subreddit_ids or {}).get(r.pop("subreddit"))
    newest: dict[int, dict[str, int]] = defaultdict(dict)  # user -> post -> time
    for r in rows:
        newest[r["user_id"]][r["post_id"]] = r["created_utc"]
    held = {
        u: {p for p, _ in sorted(posts.items(), key=lambda x: (-x[1], x[0]))[:n]}
        for u, posts in newest.items()
    }
    out = [r for r in rows if r["post_id"] in held.get(r["user_id"], ())]
    out.sort(key=lambda r: (r["user_id"], -r["created_utc"], r["post_id"], r["position"]))
    return pa.Table.from_pylist(out, schema=BENCH_REFERENCES)


def reference_keys(references: pa.Table) -> dict[int, list[str]]:
    """user -> its held-out images as "post_id:position", newest first."""
    out: dict[int, list[str]] = defaultdict(list)
    for u, p, q in zip(
        *(references[c].to_pylist() for c in ("user_id", "post_id", "position")), strict=True
    ):
        out[u].append(f"{p}:{q}")
    return dict(out)


def candidates(users: pa.Table, edges: pa.Table, images: pa.Table, subreddits: pa.Table):
    """Every graph user: community (their most active subreddit, by posts + comments),
    activity, posted images and the distinct posts they came in (a gallery is one post).
    Computed from the graph alone: the split comes before anything is learned."""
    act = pc.add(edges["posts"], edges["comments"])
    e = edges.select(["user_id", "subreddit_id"]).append_column("act", act)
    e = e.sort_by([("user_id", "ascending"), ("act", "descending"), ("subreddit_id", "ascending")])
    first = pc.not_equal(
        e["user_id"],
        pa.concat_arrays([pa.array([-1], pa.int32()), e["user_id"].combine_chunks()[:-1]]),
    )
    top = e.filter(first).select(["user_id", "subreddit_id"])
    subs = subreddits.select(["subreddit_id", "subreddit"])
    per_user = images.group_by("user_id").aggregate(
        [("post_id", "count"), ("post_id", "count_distinct")]
    )
    cols = ["user_id", "posts", "comments"] + (["author"] if "author" in users.column_names else [])
    t = (
        users.select(cols)
        .join(top, "user_id")
        .join(subs, "subreddit_id")
        .join(per_user, "user_id", join_type="left outer")
    )
    out = {
        "user_id": t["user_id"],
        "community": t["subreddit"],
        "activity": pc.add(t["posts"], t["comments"]),
        "images": pc.fill_null(t["post_id_count"], 0),
        "image_posts": pc.fill_null(t["post_id_count_distinct"], 0),
    }
    if "author" in cols:
        out["key"] = pa.array([name_key(a) for a in t["author"].to_pylist()], pa.string())
    return pa.table(out).sort_by("user_id")


def assign_prompts(
    user_ids: list[int],
    prompts: list[str],
    per_user: int,
    seed: int = 0,
    keys: dict[int, str] | None = None,
) -> pa.Table:
    """`per_user` distinct base prompts per user, drawn by a generator seeded by `seed`
    and the user's stable key (`keys`, by user id; the id itself without): a user's
    draw does not depend on who else is in the benchmark or on their dense id."""
    k = min(per_user, len(prompts))
    rows = []
    for u in sorted(user_ids):
        key = (keys or {}).get(u, str(u))
        rng = np.random.default_rng([seed, int(_draw(seed, key)[:15], 16)])
        for i in sorted(rng.choice(len(prompts), size=k, replace=False)):
            text = prompts[int(i)]
            rows.append(
                {"prompt_id": prompt_id(text), "user_id": u, "prompt": text, "source": "file"}
            )
    return pa.Table.from_pylist(rows, schema=BENCH_PROMPTS)
