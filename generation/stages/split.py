"""Stage `split` (local), right after `graph`: the benchmark users (stratified by
community and activity) and their held-out reference posts, before anything learns."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from contract.stage import Stage
from contract.stage_io import StageIO
from generation.bench import (
    candidates,
    draw_by_demographics,
    pool_demographics,
    reference_keys,
    select_users,
    split_references,
)
from llm.demographic_targets import category
from schemas.tables import BENCH_MANIFEST


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


def demographic_draw(
    io: StageIO,
    pool: pa.Table,
    images: pa.Table,
    ids: dict[str, int],
    targets: Path,
    min_posts: int,
) -> pa.Table:
    """`bench.demographic_targets` set: a community/activity-stratified pool of
    `bench.demographic_pool` × `bench.users`, each pool user's demographics inferred from
    their history snippets (their would-be reference posts held out by the same rule), then
    `bench.users` drawn in proportion to the targets where the demographics are known."""
    from contract.history import without_held_out
    from llm.demographic_targets import load_targets

    b = io.config.bench
    wide = select_users(pool, b.users * b.demographic_pool, min_posts, b.seed)
    held = split_references(images, wide["user_id"].to_pylist(), b.references_per_user, ids)
    snippets = io.read("silver/snippets", ["user_id", "record_id", "post_id", "text"])
    snippets = snippets.filter(pc.is_in(snippets["user_id"], wide["user_id"]))
    demo = pool_demographics(without_held_out(snippets, "silver/snippets", held))
    keys = (
        dict(zip(pool["user_id"].to_pylist(), pool["key"].to_pylist(), strict=True))
        if "key" in pool.column_names
        else None
    )
    spec = load_targets(targets)
    users = draw_by_demographics(wide, demo, spec.attributes, b.users, b.seed, keys)
    known = {
        a: sum(category(demo.get(u), a) in s for u in users["user_id"].to_pylist())
        for a, s in spec.attributes.items()
    }
    io.details["demographic_draw"] = {"pool": wide.num_rows, "known": known}
    return users


def split(io: StageIO) -> None:
    """The benchmark split, right after `graph`: bench/users (stratified by community and
    activity) and bench/references (their newest image posts, held out whole)."""
    b = io.config.bench
    images = io.read("silver/user_images")
    subreddits = io.read("silver/subreddits")
    pool = candidates(io.read("silver/users"), io.read("silver/edges"), images, subreddits)
    min_posts = max(b.min_images, b.references_per_user + 1)
    ids = dict(
        zip(
            subreddits["subreddit"].to_pylist(), subreddits["subreddit_id"].to_pylist(), strict=True
        )
    )
    targets = io.file("bench.demographic_targets")
    if targets:
        users = demographic_draw(io, pool, images, ids, targets, min_posts)
    else:
        users = select_users(pool, b.users, min_posts, b.seed)
    refs = split_references(images, users["user_id"].to_pylist(), b.references_per_user, ids)
    keys = reference_keys(refs)
    users = users.set_column(
        users.schema.get_field_index("references"),
        "references",
        pa.array([keys.get(u, []) for u in users["user_id"].to_pylist()], pa.list_(pa.string())),
    )
    io.write("bench/users", users)
    io.write("bench/references", refs)
    io.removed("files", drop_stale_manifest(io.path(BENCH_MANIFEST), users))
    strata = len(set(users["stratum"].to_pylist()))
    io.details.update(users=users.num_rows, strata=strata, references=refs.num_rows)
    io.console.print(
        f"  split: {users.num_rows:,} benchmark users in {strata} strata, "
        f"{refs.num_rows:,} held-out reference images"
    )


STAGE = Stage(
    name="split",
    run=split,
    engine="local",
    inputs=(
        "silver/users",
        "silver/subreddits",
        "silver/edges",
        "silver/user_images",
        "silver/snippets",  # only with bench.demographic_targets: the inferred demographics
    ),
    outputs=("bench/users", "bench/references"),
    files=("bench.demographic_targets",),
    folders=(BENCH_MANIFEST,),  # a frozen manifest of another split is removed
    config=(
        "bench.users",
        "bench.min_images",
        "bench.references_per_user",
        "bench.seed",
        "bench.demographic_pool",
    ),
    summary="benchmark users (stratified) and their held-out reference posts",
)
