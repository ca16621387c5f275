"""Stage `split` (local), right after `graph`: the benchmark users (stratified by
community and activity) and their held-out reference posts, before anything learns."""

from __future__ import annotations

import pyarrow as pa

from contract.stage import Stage
from contract.stage_io import StageIO
from generation.bench import (
    candidates,
    reference_keys,
    select_users,
    split_references,
)
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
    inputs=("silver/users", "silver/subreddits", "silver/edges", "silver/user_images"),
    outputs=("bench/users", "bench/references"),
    folders=(BENCH_MANIFEST,),  # a frozen manifest of another split is removed
    config=("bench.users", "bench.min_images", "bench.references_per_user", "bench.seed"),
    summary="benchmark users (stratified) and their held-out reference posts",
)
