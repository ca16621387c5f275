"""Stage `images` (Ray Data): fetch users' posted images safely, embed them.

python -m jobs.images -c conf/cluster.yaml [key=value ...]
"""

from __future__ import annotations

from collections import Counter

from jobs.runner import Stage, StageContext


def run(ctx: StageContext) -> None:
    """silver/user_images -> silver/image_embeddings (one row per image, ok or failed)."""
    from pipelines.image_embed import fetch_and_embed
    from pipelines.ray_session import ray_session

    cfg = ctx.config
    c = cfg.images
    images = ctx.lake.read("silver/user_images")
    with ctx.console.status("images: starting Ray"):
        ray_session(cfg.ray.address, cfg.ray.num_cpus)
    fetch_kw = {"timeout": c.timeout_s, "max_bytes": c.max_mb << 20, "retries": c.retries}
    out = fetch_and_embed(
        images,
        tuple(c.allow_hosts),
        c.model,
        fetch_tasks=c.fetch_tasks,
        embed_actors=c.embed_actors,
        num_gpus=c.num_gpus,
        batch_size=c.batch_size,
        fetch_kw=fetch_kw,
    )
    if out.num_rows != images.num_rows:
        raise RuntimeError(f"images: {images.num_rows} in but {out.num_rows} out")
    ctx.lake.write_table("silver/image_embeddings", out)
    status = Counter(out["status"].to_pylist())
    reasons = Counter(r.split(":", 1)[0] for r in out["reason"].to_pylist() if r)
    ctx.details.update(status=dict(status), failures=dict(reasons))
    ctx.console.print(
        f"  images: {status.get('ok', 0):,} ok, {status.get('failed', 0):,} failed"
        + (f" ({dict(reasons)})" if reasons else "")
    )


STAGE = Stage(
    name="images",
    inputs=("silver/user_images",),
    outputs=("silver/image_embeddings",),
    section="images",
    engine="ray",
    run=run,
    summary="silver/user_images -> silver/image_embeddings (hostile-URL fetch, embed)",
)

if __name__ == "__main__":
    from jobs.entry import stage_main

    stage_main(STAGE)
