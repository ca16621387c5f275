"""ZIPBench's stages before anything is learned or generated: `split` (benchmark users and
their held-out reference posts, right after `graph`) and `prompts` (base prompts)."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa

from generation.bench import (
    assign_prompts,
    candidates,
    read_prompts,
    reference_keys,
    select_users,
    split_references,
)
from generation.bench_manifest import MANIFEST
from schemas.stage_io import StageIO


def drop_stale_manifest(path, users: pa.Table) -> int:
    """A frozen ZIPBench manifest (`zipp bench build`) that no longer matches the split
    (a deleted user among its users, other references) is removed: it names users and
    their posts. Returns files removed."""
    import json

    if not path.exists():
        return 0
    frozen = json.loads(path.read_text())
    now = dict(
        zip(map(str, users["user_id"].to_pylist()), users["references"].to_pylist(), strict=True)
    )
    if frozen.get("references") == now:
        return 0
    path.unlink()
    return 1


def split(io: StageIO) -> None:
    """The benchmark split, right after `graph`: bench/users (stratified by community and
    activity) and bench/references (their newest image posts, held out whole)."""
    b = io.config.bench
    images = io.read("silver/user_images")
    subreddits = io.read("silver/subreddits")
    pool = candidates(io.read("silver/users"), io.read("silver/edges"), images, subreddits)
    min_posts = max(b.min_images, b.references_per_user + 1)
    users = select_users(pool, b.users, min_posts, b.seed)
    ids = dict(
        zip(
            subreddits["subreddit"].to_pylist(), subreddits["subreddit_id"].to_pylist(), strict=True
        )
    )
    refs = split_references(images, users["user_id"].to_pylist(), b.references_per_user, ids)
    keys = reference_keys(refs)
    users = users.set_column(
        users.schema.get_field_index("references"),
        "references",
        pa.array([keys.get(u, []) for u in users["user_id"].to_pylist()], pa.list_(pa.string())),
    )
    io.write("bench/users", users)
    io.write("bench/references", refs)
    io.removed("files", drop_stale_manifest(io.path(MANIFEST), users))
    strata = len(set(users["stratum"].to_pylist()))
    io.details.update(users=users.num_rows, strata=strata, references=refs.num_rows)
    io.console.print(
        f"  split: {users.num_rows:,} benchmark users in {strata} strata, "
        f"{refs.num_rows:,} held-out reference images"
    )


def prompts(io: StageIO) -> None:
    """bench/prompts: base prompts from the prompt file, or (bench.base_prompts=captions)
    one neutral caption per held-out reference image; a reference that cannot be fetched
    or captioned is counted in the manifest's details (captions_failed), never dropped
    silently."""
    b = io.config.bench
    users = io.read("bench/users")["user_id"].to_pylist()
    if b.base_prompts == "captions":
        table, details = caption_references(io, io.read("bench/references"), b)
        io.details.update(details)
    else:
        from generation.diffusion import user_key

        keys = {
            r["user_id"]: user_key(r["references"])
            for r in io.read("bench/users", ["user_id", "references"]).to_pylist()
        }
        table = assign_prompts(
            users, read_prompts(io.file("bench.prompts")), b.prompts_per_user, b.seed, keys
        )
    io.write("bench/prompts", table)
    io.details.update(prompts=table.num_rows)
    io.console.print(f"  bench: {len(users):,} users, {table.num_rows:,} base prompts")


def caption_references(io: StageIO, refs: pa.Table, b) -> tuple[pa.Table, dict]:
    """One caption prompt per held-out reference image (fetched with the hostile-URL
    fetcher), and what failed, counted by reason."""
    from generation.captions import Captioner, caption_prompts
    from pipelines.images import FetchError, fetch_image

    c = io.config.images
    fetch_kw = {"timeout": c.timeout_s, "max_bytes": c.max_mb << 20, "retries": c.retries}
    wanted = [
        (r["user_id"], f"{r['post_id']}:{r['position']}", r["image_url"]) for r in refs.to_pylist()
    ]

    def fetch(item: tuple[int, str, str]) -> bytes | str:
        """The reference's bytes, or why not."""
        try:
            return fetch_image(item[2], c.allow_hosts, **fetch_kw)
        except FetchError as e:
            return f"fetch:{e.reason}" + (f":{e.status}" if e.status else "")

    with (
        io.console.status(f"bench: fetching {len(wanted):,} reference images"),
        ThreadPoolExecutor(16) as pool,
    ):
        got = list(pool.map(fetch, wanted))
    failed = [
        {"user_id": u, "reference": ref, "reason": g}
        for (u, ref, _), g in zip(wanted, got, strict=True)
        if isinstance(g, str)
    ]
    items = [
        (u, ref, g) for (u, ref, _), g in zip(wanted, got, strict=True) if isinstance(g, bytes)
    ]
    with io.console.status(f"bench: captioning {len(items):,} images with {b.captioner}"):
        prompts, no_caption, duplicates = caption_prompts(
            items, Captioner(b.captioner), b.caption_prefix
        )
    failed += no_caption
    reasons = dict(Counter(f["reason"] for f in failed))
    why = ", ".join(f"{k} {v:,}" for k, v in sorted(reasons.items()))
    io.console.print(
        f"  bench: {len(wanted):,} references -> {prompts.num_rows:,} caption prompts,"
        f" {len(failed):,} failed{f' ({why})' if why else ''},"
        f" {len(duplicates):,} repeated an earlier caption of the same user"
    )
    details = {
        "references": len(wanted),
        "captions_failed": len(failed),
        "captions_failed_reasons": reasons,
        "captions_failed_refs": failed[:100],
        "captions_duplicate": len(duplicates),
    }
    return prompts, details
