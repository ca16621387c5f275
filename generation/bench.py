"""ZIPBench's users and base prompts (the builder's first half; images come later)."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa

from schemas.generation import BENCH_PROMPTS, BENCH_USERS


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


def select_users(candidates: pa.Table, n: int, min_posts: int = 1, seed: int = 0) -> pa.Table:
    """Up to `n` users with at least `min_posts` image posts, stratified by community
    (their most attended subreddit) and activity tercile, taken round-robin across strata
    so small strata are represented. `candidates` has user_id, community, activity,
    images, image_posts."""
    rows = [r for r in candidates.to_pylist() if r["image_posts"] >= min_posts]
    if not rows:
        return BENCH_USERS.empty_table()
    activity = np.array([r["activity"] for r in rows], float)
    cuts = np.quantile(activity, [1 / 3, 2 / 3])
    strata: dict[str, list[dict]] = defaultdict(list)
    for r, a in zip(rows, activity, strict=True):
        tier = ("low", "mid", "high")[int(np.searchsorted(cuts, a, side="right"))]
        strata[f"{r['community']}/{tier}"].append(r)
    rng = np.random.default_rng(seed)
    queues = {k: [v[i] for i in rng.permutation(len(v))] for k, v in sorted(strata.items())}
    picked: list[dict] = []
    while len(picked) < n and any(queues.values()):
        for key, q in queues.items():
            if q and len(picked) < n:
                picked.append({**q.pop(), "stratum": key})
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


def split_references(images: pa.Table, users: list[int], n: int) -> dict[int, list[str]]:
    """Each user's `n` newest posted images ("post_id:position"), held out as references;
    posts none of them came from are history (persona mining, k-shot, IP-Adapter): a
    gallery sibling of a reference is never shown, so a user needs more than `n` posts."""
    wanted = set(users)
    rows = sorted(
        (
            r
            for r in images.select(["user_id", "post_id", "position", "created_utc"]).to_pylist()
            if r["user_id"] in wanted
        ),
        key=lambda r: (r["user_id"], -r["created_utc"], r["post_id"], r["position"]),
    )
    out: dict[int, list[str]] = {u: [] for u in users}
    for r in rows:
        if len(out[r["user_id"]]) < n:
            out[r["user_id"]].append(f"{r['post_id']}:{r['position']}")
    return out


def assign_prompts(
    user_ids: list[int], prompts: list[str], per_user: int, seed: int = 0
) -> pa.Table:
    """`per_user` distinct base prompts per user, drawn by a seeded generator."""
    rng = np.random.default_rng(seed)
    k = min(per_user, len(prompts))
    rows = []
    for u in sorted(user_ids):
        for i in sorted(rng.choice(len(prompts), size=k, replace=False)):
            text = prompts[int(i)]
            rows.append(
                {"prompt_id": prompt_id(text), "user_id": u, "prompt": text, "source": "file"}
            )
    return pa.Table.from_pylist(rows, schema=BENCH_PROMPTS)
