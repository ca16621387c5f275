"""Stage `images` (Ray Data): silver/user_images -> silver/image_embeddings, every URL
fetched as hostile and embedded in the lake's image feature space."""

from __future__ import annotations

from collections import Counter

from contract.stage import Stage
from contract.stage_io import StageIO
from media.config import ImagesConfig


def images(io: StageIO) -> None:
    """silver/user_images -> silver/image_embeddings (one row per image, ok or failed)."""
    from media.image_embed import fetch_and_embed

    c: ImagesConfig = io.config.images
    table = io.read("silver/user_images")
    with io.console.status("images: starting Ray"):
        io.ray()
    fetch_kw = {"timeout": c.timeout_s, "max_bytes": c.max_mb << 20, "retries": c.retries}
    out = fetch_and_embed(
        table,
        tuple(c.allow_hosts),
        c.model,
        fetch_tasks=c.fetch_tasks,
        embed_actors=c.embed_actors,
        num_gpus=c.num_gpus,
        batch_size=c.batch_size,
        fetch_kw=fetch_kw,
    )
    if out.num_rows != table.num_rows:
        raise RuntimeError(f"images: {table.num_rows} in but {out.num_rows} out")
    io.write("silver/image_embeddings", out)
    status = Counter(out["status"].to_pylist())
    reasons = Counter(r.split(":", 1)[0] for r in out["reason"].to_pylist() if r)
    io.details.update(status=dict(status), failures=dict(reasons))
    io.console.print(
        f"  images: {status.get('ok', 0):,} ok, {status.get('failed', 0):,} failed"
        + (f" ({dict(reasons)})" if reasons else "")
    )


STAGE = Stage(
    name="images",
    run=images,
    engine="ray",
    inputs=("silver/user_images",),
    outputs=("silver/image_embeddings",),
    config=("images",),
    summary="silver/user_images -> silver/image_embeddings (hostile-URL fetch, embed)",
)
