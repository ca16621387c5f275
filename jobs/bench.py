"""Stage `bench` (local): ZIPBench's users and base prompts.

python -m jobs.bench -c conf/cluster.yaml [key=value ...]
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pyarrow.compute as pc

from jobs.runner import Stage, StageContext


def candidates(ctx: StageContext) -> pa.Table:
    """Users with attention rows: community (most attended subreddit), activity (posts +
    comments), posted images and the distinct posts they came in (a gallery is one post)."""
    lake = ctx.lake
    att = lake.read("gold/attention")
    users = lake.read("silver/users").filter(pc.field("user_id").isin(att["user_id"]))
    top = att.filter(pc.equal(att["rank"], 1)).select(["user_id", "subreddit_id"])
    subs = lake.read("silver/subreddits").select(["subreddit_id", "subreddit"])
    images = (
        lake.read("silver/user_images")
        .group_by("user_id")
        .aggregate([("post_id", "count"), ("post_id", "count_distinct")])
    )
    t = (
        users.select(["user_id", "posts", "comments"])
        .join(top, "user_id")
        .join(subs, "subreddit_id")
        .join(images, "user_id", join_type="left outer")
    )
    n_img = pc.fill_null(t["post_id_count"], 0)
    return pa.table(
        {
            "user_id": t["user_id"],
            "community": t["subreddit"],
            "activity": pc.add(t["posts"], t["comments"]),
            "images": n_img,
            "image_posts": pc.fill_null(t["post_id_count_distinct"], 0),
        }
    ).sort_by("user_id")


def run(ctx: StageContext) -> None:
    """gold/personas + silver -> bench/users (stratified) and bench/prompts: base prompts
    from the prompt file, or (bench.base_prompts=captions) one neutral caption per held-out
    reference image; a reference that cannot be fetched or captioned is counted in the
    manifest's details (captions_failed), never dropped silently."""
    from generation.bench import assign_prompts, read_prompts, select_users, split_references

    b = ctx.config.bench
    users = select_users(
        candidates(ctx), b.users, max(b.min_images, b.references_per_user + 1), b.seed
    )
    images = ctx.lake.read("silver/user_images")
    refs = split_references(images, users["user_id"].to_pylist(), b.references_per_user)
    users = users.set_column(
        users.schema.get_field_index("references"),
        "references",
        pa.array([refs[u] for u in users["user_id"].to_pylist()], pa.list_(pa.string())),
    )
    if b.base_prompts == "captions":
        from generation.captions import Captioner, caption_prompts
        from pipelines.images import FetchError, fetch_image

        c = ctx.config.images
        fetch_kw = {"timeout": c.timeout_s, "max_bytes": c.max_mb << 20, "retries": c.retries}
        urls = {
            (r["user_id"], f"{r['post_id']}:{r['position']}"): r["image_url"]
            for r in images.select(["user_id", "post_id", "position", "image_url"]).to_pylist()
        }
        wanted = [(u, ref) for u in users["user_id"].to_pylist() for ref in refs[u]]

        def fetch(key: tuple[int, str]) -> bytes | str:
            """The reference's bytes, or why not."""
            if key not in urls:
                return "no_image_row"
            try:
                return fetch_image(urls[key], c.allow_hosts, **fetch_kw)
            except FetchError as e:
                return f"fetch:{e.reason}" + (f":{e.status}" if e.status else "")

        with (
            ctx.console.status(f"bench: fetching {len(wanted):,} reference images"),
            ThreadPoolExecutor(16) as pool,
        ):
            got = list(pool.map(fetch, wanted))
        failed = [
            {"user_id": u, "reference": ref, "reason": g}
            for (u, ref), g in zip(wanted, got, strict=True)
            if isinstance(g, str)
        ]
        items = [
            (u, ref, g) for (u, ref), g in zip(wanted, got, strict=True) if isinstance(g, bytes)
        ]
        with ctx.console.status(f"bench: captioning {len(items):,} images with {b.captioner}"):
            prompts, no_caption, duplicates = caption_prompts(
                items, Captioner(b.captioner), b.caption_prefix
            )
        failed += no_caption
        reasons = dict(Counter(f["reason"] for f in failed))
        ctx.details.update(
            references=len(wanted),
            captions_failed=len(failed),
            captions_failed_reasons=reasons,
            captions_failed_refs=failed[:100],
            captions_duplicate=len(duplicates),
        )
        why = ", ".join(f"{k} {v:,}" for k, v in sorted(reasons.items()))
        ctx.console.print(
            f"  bench: {len(wanted):,} references -> {prompts.num_rows:,} caption prompts,"
            f" {len(failed):,} failed{f' ({why})' if why else ''},"
            f" {len(duplicates):,} repeated an earlier caption of the same user"
        )
    else:
        prompts = assign_prompts(
            users["user_id"].to_pylist(), read_prompts(b.prompts), b.prompts_per_user, b.seed
        )
    ctx.lake.write_table("bench/users", users)
    ctx.lake.write_table("bench/prompts", prompts)
    strata = len(set(users["stratum"].to_pylist()))
    ctx.details.update(users=users.num_rows, strata=strata, prompts=prompts.num_rows)
    ctx.console.print(
        f"  bench: {users.num_rows:,} users in {strata} strata, {prompts.num_rows:,} base prompts"
    )


STAGE = Stage(
    name="bench",
    inputs=(
        "gold/attention",
        "silver/users",
        "silver/user_images",
        "file:bench.prompts",
    ),
    outputs=("bench/users", "bench/prompts"),
    section="bench",
    engine="local",
    run=run,
    summary="ZIPBench users (stratified by community and activity) and base prompts",
)

if __name__ == "__main__":
    from jobs.entry import stage_main

    stage_main(STAGE)


BUILD_STAGES = ("bench", "personas", "preferences", "rewrite", "generate")
SCORE_STAGES = ("score", "report")
FROZEN_SECTIONS = ("bench", "personas", "llm", "rewrite", "diffusion")
MANIFEST = "_manifests/zipbench.json"


def freeze(cfg, lake) -> dict:
    """The frozen manifest of a built ZIPBench: the config sections that define it, the
    selected users and prompt ids, seeds, models and every bench table's rows and
    fingerprint. `zipp bench build --manifest FILE` rebuilds from its config and checks
    the selection comes out the same."""
    import json

    from schemas.lake import table_fingerprint

    users = lake.read("bench/users")
    prompts = lake.read("bench/prompts")
    images = lake.read("bench/images")
    manifest = {
        "config": {s: getattr(cfg, s).model_dump(mode="json") for s in FROZEN_SECTIONS},
        "users": users["user_id"].to_pylist(),
        "references": dict(
            zip(
                map(str, users["user_id"].to_pylist()), users["references"].to_pylist(), strict=True
            )
        ),
        "prompts": sorted(
            set(zip(prompts["user_id"].to_pylist(), prompts["prompt_id"].to_pylist(), strict=True))
        ),
        "models": sorted(set(images["model"].to_pylist())),
        "llms": [s.label for s in cfg.llm.specs()],
        "tables": {
            name: {"rows": lake.rows(name), "fingerprint": table_fingerprint(lake.path(name))}
            for name in ("bench/users", "bench/prompts", "bench/rewrites", "bench/images")
        },
    }
    path = lake.path(MANIFEST)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, default=str))
    tmp.replace(path)
    return manifest


def manifest_overrides(path: str) -> list[str]:
    """`key=value` overrides that restore a frozen manifest's config sections."""
    import json
    from pathlib import Path

    data = json.loads(Path(path).read_text())
    out = []
    for section, values in data["config"].items():
        for key, value in values.items():
            out.append(f"{section}.{key}={json.dumps(value)}")
    return out


def compare(frozen: dict, rebuilt: dict) -> list[str]:
    """What differs between a frozen manifest and a rebuild (empty: reproduced)."""
    diffs = []
    for key in ("users", "references", "prompts", "models", "llms"):
        a, b = frozen.get(key), rebuilt.get(key)
        if json_norm(a) != json_norm(b):
            diffs.append(key)
    return diffs


def json_norm(v):
    import json

    return json.loads(json.dumps(v, default=str))
