"""`write_sample`: planted world v2 written under a folder, month by month: the dumps
(`world.dumps`), the PNGs, the ground truth and `world.json`; on request, the subreddit
metadata dump (`world.about`). The world itself
(what is planted) is `world.planted`."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.progress import Progress

from world.about import write_about
from world.dumps import MonthWriter
from world.images import render_png
from world.planted import WORLD_VERSION, Month, SampleSpec, World


def write_images(world: World, month: Month, ids: pa.Array, out: Path) -> None:
    """Render this month's PNGs (one seeded generator per image)."""
    spec = world.spec
    for i, (image_id, taste) in enumerate(zip(ids.to_pylist(), month.image_taste, strict=True)):
        rng = np.random.default_rng([spec.seed, 3, month.index, i])
        (out / f"{image_id}.png").write_bytes(render_png(taste, rng, spec.image_size))


def write_sample(
    out: str | os.PathLike,
    spec: SampleSpec,
    console: Console | None = None,
    subreddit_metadata: bool = False,
) -> dict[str, int]:
    """Write the sample world under `out`; returns lines written per dump file.
    `subreddit_metadata`: also ``dumps/subreddits_<last month>.zst``."""
    out = Path(out)
    for sub in ("dumps", "images", "ground_truth"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    world = World(spec)
    summary: dict[str, int] = {}
    images = []
    with Progress(console=console or Console(), transient=True) as progress:
        task = progress.add_task("sample world", total=len(spec.months))
        posts = comments = 0  # serial numbers so far
        for m in range(len(spec.months)):
            month = world.month(m, posts, comments)
            writer = MonthWriter(world, month)
            summary.update(writer.write(out / "dumps"))
            images.append(writer.images_table())
            if spec.images:
                write_images(world, month, images[-1]["image_id"].combine_chunks(), out / "images")
            posts += len(month.post_serial)
            comments += len(month.comment_serial)
            del month, writer  # one month in memory at a time
            progress.advance(task)
    if subreddit_metadata:
        summary.update(write_about(world, out / "dumps"))
    for name, table in world.ground_truth(pa.concat_tables(images)).items():
        pq.write_table(table, out / "ground_truth" / f"{name}.parquet")
    (out / "world.json").write_text(json.dumps({"world": WORLD_VERSION, **asdict(spec)}, indent=2))
    return summary
