"""Stage `prompts` (local): ZIPBench base prompts, from the prompt file or as neutral
captions of each benchmark user's held-out references."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa

from contract.stage import Stage
from contract.stage_io import StageIO
from generation.bench import (
    assign_prompts,
    read_prompts,
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
    from media.fetch import FetchError, fetch_image

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


STAGE = Stage(
    name="prompts",
    run=prompts,
    engine="local",
    inputs=("bench/users", "bench/references"),
    files=("bench.prompts",),
    outputs=("bench/prompts",),
    config=(
        "bench.prompts",
        "bench.prompts_per_user",
        "bench.seed",
        "bench.base_prompts",
        "bench.captioner",
        "bench.caption_prefix",
        "images.allow_hosts",
        "images.timeout_s",
        "images.max_mb",
        "images.retries",
    ),
    summary="ZIPBench base prompts: the prompt file, or neutral captions of the references",
)
