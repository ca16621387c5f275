"""The stage contract, enforced by the runner: declared tables, config keys and files only;
files fingerprinted by content; staleness flows downstream; the history rule."""

from __future__ import annotations

import io

import pyarrow as pa
import pytest
from rich.console import Console

from contract.errors import ContractError
from contract.history import without_held_out
from jobs.config import load_config
from jobs.runner import Stage, config_hash, dag_states, is_current, run_stage, stage_io
from storage.lake import Lake

QUIET = Console(file=io.StringIO())


def users_table(n: int = 3) -> pa.Table:
    return pa.table(
        {
            "user_id": pa.array(range(n), pa.int32()),
            "stratum": ["s"] * n,
            "images": pa.array([1] * n, pa.int32()),
            "references": [[] for _ in range(n)],
        }
    )


def write_users(io_) -> None:
    """A stage function: reads the blocklist file and writes bench/users."""
    n = 3 + len(io_.names("ingest.blocklist"))
    io_.write("bench/users", users_table(n))


def copy_users(io_) -> None:
    """A downstream stage function: bench/users -> bench/prompts (one row per user)."""
    users = io_.read("bench/users")["user_id"].to_pylist()
    rows = [{"prompt_id": "p", "user_id": u, "prompt": "x", "source": "file"} for u in users]
    io_.write("bench/prompts", pa.Table.from_pylist(rows))


A = Stage(
    "a",
    write_users,
    "local",
    outputs=("bench/users",),
    files=("ingest.blocklist",),
    config=("bench.seed",),
)
B = Stage("b", copy_users, "local", inputs=("bench/users",), outputs=("bench/prompts",))


@pytest.fixture()
def setup(tmp_path):
    blocklist = tmp_path / "blocklist.txt"
    blocklist.write_text("# none\n")
    cfg = load_config(None, [f"lake.root={tmp_path / 'lake'}", f"ingest.blocklist={blocklist}"])
    return cfg, Lake(cfg.lake.root), blocklist


def test_undeclared_tables_keys_and_files_are_errors(setup):
    cfg, lake, _ = setup
    run_stage(A, cfg, lake, QUIET)
    b = stage_io(B, cfg, lake, QUIET)
    assert b.read("bench/users").num_rows == 3
    with pytest.raises(ContractError, match="stage 'b' reads table 'silver/users'"):
        b.read("silver/users")
    with pytest.raises(ContractError, match="stage 'b' writes 'bench/users'"):
        b.write("bench/users", users_table())
    with pytest.raises(ContractError, match="stage 'b' reads file 'ingest.blocklist'"):
        b.file("ingest.blocklist")
    with pytest.raises(ContractError, match="stage 'b' reads the history of"):
        b.history("silver/snippets")
    a = stage_io(A, cfg, lake, QUIET)
    assert a.config.bench.seed == 0
    with pytest.raises(ContractError, match="stage 'a' reads config key 'bench.users'"):
        _ = a.config.bench.users
    with pytest.raises(ContractError, match="stage 'a' reads config key 'images.model'"):
        _ = a.config.images.model


def test_config_hash_covers_only_declared_keys(setup):
    cfg, _, _ = setup
    other = load_config(None, [f"lake.root={cfg.lake.root}", "bench.users=7", "images.retries=9"])
    assert config_hash(A, cfg) == config_hash(A, other)
    seeded = load_config(None, [f"lake.root={cfg.lake.root}", "bench.seed=3"])
    assert config_hash(A, cfg) != config_hash(A, seeded)


def test_a_file_edited_in_place_makes_its_reader_and_what_follows_stale(setup):
    cfg, lake, blocklist = setup
    for s in (A, B):
        run_stage(s, cfg, lake, QUIET)
    assert all(r["current"] for r in dag_states([A, B], cfg, lake))
    blocklist.write_text(blocklist.read_text() + "someone\n")  # same path, new content
    states = {r["stage"].name: r for r in dag_states([A, B], cfg, lake)}
    assert states["a"]["why"] == "file ingest.blocklist changed"
    assert states["b"]["why"] == "upstream a not current"
    assert is_current(B, cfg, lake) == (True, "current")  # B itself has not changed yet
    for s in (A, B):
        run_stage(s, cfg, lake, QUIET)
    assert lake.rows("bench/prompts") == 4
    assert all(r["current"] for r in dag_states([A, B], cfg, lake))


def test_history_drops_every_row_of_a_held_out_post():
    refs = pa.table({"post_id": ["p1"]})
    images = pa.table(
        {"post_id": ["p1", "p1", "p2"], "position": [0, 1, 0]}  # p1 is a gallery
    )
    assert without_held_out(images, "silver/user_images", refs)["post_id"].to_pylist() == ["p2"]
    snippets = pa.table(
        {
            "record_id": ["p1", "c1", "c2", "p2"],  # p1's title, a comment under p1, ...
            "post_id": ["p1", "p1", "p2", "p2"],
        }
    )
    kept = without_held_out(snippets, "silver/snippets", refs)["record_id"].to_pylist()
    assert kept == ["c2", "p2"]
    with pytest.raises(ContractError):
        without_held_out(images, "silver/users", refs)


def test_edges_lose_held_out_posts_and_edges_made_only_by_them():
    edges = pa.table(
        {
            "user_id": pa.array([1, 1, 2], pa.int32()),
            "subreddit_id": pa.array([10, 11, 10], pa.int32()),
            "posts": pa.array([2, 1, 1], pa.int32()),
            "comments": pa.array([0, 0, 3], pa.int32()),
        }
    )
    refs = pa.table(  # user 1 holds out a post in 10 (2 gallery images) and one in 11
        {
            "user_id": pa.array([1, 1, 1], pa.int32()),
            "subreddit_id": pa.array([10, 10, 11], pa.int32()),
            "post_id": ["a", "a", "b"],
        }
    )
    out = without_held_out(edges, "silver/edges", refs).to_pylist()
    assert out == [
        {"user_id": 1, "subreddit_id": 10, "posts": 1, "comments": 0},
        {"user_id": 2, "subreddit_id": 10, "posts": 1, "comments": 3},
    ]
