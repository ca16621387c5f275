"""`zipp export`: real Parquet, JSONL, Delta and HF `datasets` writers on a small lake;
pseudonymised exports name no user and no rare community, and carry a dataset card."""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from typer.testing import CliRunner

from jobs.cli import app
from storage.lake import Lake

KEY = "test-secret-key-3f9a1c"
AUTHORS = ["alice_film", "bob_garden", "carol"]
LLMS = ["template:template", "openai:tiny"]
SIZE = (24, 16)  # width, height of the rendered PNGs
USERS = 200  # silver/users: the three persona users, then members with no persona
#: subreddit -> its members (user ids). AskAll is everyone's hub (80% of users); the rare
#: ones (fewer than export.min_community_users) are TinyKnitCircle, LonelyPlace and
#: FilmCorner. TinyKnitCircle shares all 3 users with BigFilm and with AskAll (raw shared
#: users tie, and used to name the bigger AskAll); by lift BigFilm is its neighbour.
#: LonelyPlace's one user is in no large subreddit.
SUBREDDITS = {
    "BigFilm": set(range(60)),
    "BigGarden": {1, 2, *range(100, 178)},
    "TinyKnitCircle": {0, 1, 3},
    "LonelyPlace": {190},
    "AskAll": set(range(160)),
    "FilmCorner": set(range(10, 20)),
}
#: how the rare names are written in the rows (every form the scrubber must catch)
RARE_FORMS = ("tinyknitcircle", "tiny knit circle", "tiny-knit-circle", "lonelyplace")
NEAR = "a community near r/BigFilm"

_CALL = {
    "template": True,
    "status": "done",
    "reason": None,
    "raw": None,
    "prompt_version": "v1",
    "prompt_tokens": 10,
    "completion_tokens": 5,
    "attempts": 1,
    "seconds": 0.1,
}


def _hmac_user(author: str) -> str:
    return "u_" + hmac.new(KEY.encode(), author.encode(), hashlib.sha256).hexdigest()[:16]


def _write_subreddits(
    root: Path,
    members: dict[str, set[int]],
    users: int,
    authors: dict[int, str] | None = None,
    snippets: list[tuple[str, int, str]] | None = None,
) -> None:
    """silver/users (`users` of them, named by `authors` or ``user<id>``), silver/subreddits
    and silver/edges from subreddit -> member ids, and silver/snippets from (subreddit,
    user, text[, post id]) rows; sizes and edges agree, as the graph stage writes them."""
    lake = Lake(root)
    ids = {name: i for i, name in enumerate(members)}
    names = [(authors or {}).get(u, f"user{u}") for u in range(users)]
    joined = {u: sum(u in m for m in members.values()) for u in range(users)}
    lake.write_table(
        "silver/users",
        pa.table(
            {
                "user_id": pa.array(range(users), pa.int32()),
                "author": names,
                "posts": [3] * users,
                "comments": [10] * users,
                "subreddits": [joined[u] for u in range(users)],
                "first_utc": [0] * users,
                "last_utc": [1] * users,
                "role": ["train"] * users,
            }
        ),
    )
    n = len(members)
    lake.write_table(
        "silver/subreddits",
        pa.table(
            {
                "subreddit_id": pa.array(range(n), pa.int32()),
                "subreddit": list(members),
                "users": [len(m) for m in members.values()],
                "posts": [5] * n,
                "comments": [9] * n,
                "first_utc": [0] * n,
                "last_utc": [1] * n,
            }
        ),
    )
    edges = sorted((u, ids[name]) for name, m in members.items() for u in m)
    lake.write_table(
        "silver/edges",
        pa.table(
            {
                "user_id": pa.array([u for u, _ in edges], pa.int32()),
                "subreddit_id": pa.array([s for _, s in edges], pa.int32()),
                "posts": pa.array([1] * len(edges), pa.int32()),
                "comments": pa.array([2] * len(edges), pa.int32()),
                "score_sum": [3] * len(edges),
                "first_utc": [0] * len(edges),
                "last_utc": [1] * len(edges),
                "split": ["train"] * len(edges),
            }
        ),
    )
    if snippets:
        rows = [
            {
                "user_id": u,
                "subreddit_id": ids[name],
                "rank": i,
                "source": "comment",
                "record_id": f"c{i}",
                "text": text,
                "score": 1,
                "created_utc": 0,
                "post_id": post[0] if post else f"p{i}",
            }
            for i, (name, u, text, *post) in enumerate(snippets)
        ]
        lake.write_table("silver/snippets", pa.Table.from_pylist(rows))


def _write_lake(root: Path) -> None:
    lake = Lake(root)
    n = len(AUTHORS)
    _write_subreddits(root, SUBREDDITS, USERS, dict(enumerate(AUTHORS)))
    personas = [
        {
            "user_id": u,
            "source": "llm",
            "demographics": {
                "age": "30s",
                "gender": None,
                "region": "EU",
                "occupation": "moderator of /r/tinyknitcircle",
            },
            "interests": ["film", "tiny knit circle"],
            "affective_traits": ["calm", "a regular of r/LonelyPlace"],
            "visual_interests": ["muted colour", "TINYKNITCIRCLE"],
            "text": f"I am user {u}, persona by {llm}; I hang out in r/TinyKnitCircle.",
            "evidence_mode": "full",
            "evidence_subreddits": [0, 1],
            "evidence_ids": ["c1", "c2"],
            "evidence_tokens": 42,
            "tokenizer": "whitespace",
            "evidence": "some snippets",
            "llm": llm,
            **_CALL,
            "request_id": f"r{u}{llm}",
        }
        for u in range(n)
        for llm in LLMS
    ]
    lake.write_table("gold/personas", pa.Table.from_pylist(personas))
    images = []
    for u in range(n):
        for i, (method, llm) in enumerate([("base", "-"), ("zero_shot", LLMS[1])]):
            png = Image.new("RGB", SIZE, (40 * u, 100 + 50 * i, 90))
            path = root / "tmp.png"
            png.save(path)
            sha = hashlib.sha256(path.read_bytes()).hexdigest()
            rel = f"media/{sha[:2]}/{sha}.png"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            path.rename(root / rel)
            images.append(
                {
                    "image_id": f"img{u}{i}",
                    "user_id": u,
                    "prompt_id": f"p{u}",
                    "method": method,
                    "llm": llm,
                    "seed_index": 0,
                    "seed": 7,
                    "prompt": f"a photo, rewritten by {method} for the tiny-knit-circle crowd",
                    "negative_prompt": None,
                    "model": "smoke",
                    "smoke_model": True,
                    "status": "done",
                    "reason": None,
                    "path": rel,
                    "sha256": sha,
                    "width": SIZE[0],
                    "height": SIZE[1],
                    "seconds": 0.2,
                }
            )
    failed = {**images[0], "image_id": "failed", "status": "failed", "reason": "oom"}
    failed.update(path=None, sha256=None, width=None, height=None)
    lake.write_table("bench/images", pa.Table.from_pylist([*images, failed]))


@pytest.fixture
def lake_root(tmp_path):
    root = tmp_path / "lake"
    _write_lake(root)
    return root


@pytest.fixture
def keyed(monkeypatch):
    monkeypatch.setenv("ZIPP_PSEUDONYM_KEY", KEY)


def _export(root: Path, *args: str):
    return CliRunner().invoke(app, ["export", *args, f"lake.root={root}"])


def _all_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def test_delta_export_pseudonymises_users_and_never_writes_the_key(lake_root, tmp_path, keyed):
    from deltalake import DeltaTable

    out = tmp_path / "out" / "personas_delta"
    result = _export(lake_root, "personas", "--format", "delta", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "wrote 6 personas rows" in result.output and KEY not in result.output
    table = DeltaTable(str(out)).to_pyarrow_table()
    source = Lake(lake_root).read("gold/personas")
    assert table.num_rows == source.num_rows
    assert "author" not in table.column_names
    # would lead back to the account: user_id is the author's rank in name order
    traceable = {"user_id", "evidence", "evidence_ids", "evidence_subreddits", "raw"}
    traceable |= {"evidence_weights"}  # aligned with the ranked subreddit list
    traceable |= {"request_id"}  # a hash of the evidence
    assert set(table.column_names) == {*source.column_names, "user"} - traceable
    expected = [_hmac_user(AUTHORS[u]) for u in source["user_id"].to_pylist()]
    assert sorted(table["user"].to_pylist()) == sorted(expected)
    data = _all_bytes(out)
    assert KEY.encode() not in data and b"alice_film" not in data
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no staging left


def test_hf_bench_embeds_images_that_outlive_the_lake(lake_root, tmp_path, keyed):
    import datasets

    out = tmp_path / "bench_hf"
    result = _export(lake_root, "bench", "--format", "hf", "--out", str(out))
    assert result.exit_code == 0, result.output
    lake_ids = set(Lake(lake_root).read("bench/images")["image_id"].to_pylist())
    shutil.rmtree(lake_root)
    ds = datasets.load_from_disk(str(out))
    assert ds.num_rows == 6  # the failed image is not exported
    image = ds[0]["image"]
    assert isinstance(image, Image.Image) and image.size == SIZE
    assert not {"user_id", "seed"} & set(ds.column_names)  # both derive from the user's rank
    rows = {(r["user"], r["llm"]): r for r in ds.remove_columns("image")}
    bob, carol = _hmac_user("bob_garden"), _hmac_user("carol")
    first = sorted(LLMS)[0]  # no LLM: the user's done persona whose LLM label sorts first
    assert rows[(bob, "-")]["persona"] == f"I am user 1, persona by {first}; I hang out in {NEAR}."
    assert rows[(bob, "-")]["persona_llm"] == first
    assert (
        rows[(bob, LLMS[1])]["persona"]
        == f"I am user 1, persona by {LLMS[1]}; I hang out in {NEAR}."
    )
    assert (carol, "-") in rows
    ids = ds["image_id"]  # keyed: the lake's ids hash the user id
    assert all(i.startswith("i_") and len(i) == 18 for i in ids) and not set(ids) & lake_ids
    assert KEY.encode() not in _all_bytes(out)


@pytest.mark.parametrize("kind, rows", [("personas", 6), ("bench", 6)])
def test_parquet_and_jsonl_round_trip_row_counts(lake_root, tmp_path, keyed, kind, rows):
    for fmt in ("parquet", "jsonl"):
        out = tmp_path / f"{kind}_{fmt}"
        result = _export(lake_root, kind, "--format", fmt, "--out", str(out))
        assert result.exit_code == 0, result.output
        assert sorted(p.name for p in out.iterdir()) == ["README.md", f"{kind}.{fmt}"]
    table = pq.read_table(tmp_path / f"{kind}_parquet" / f"{kind}.parquet")
    lines = (tmp_path / f"{kind}_jsonl" / f"{kind}.jsonl").read_text().splitlines()
    assert table.num_rows == len(lines) == rows
    first = json.loads(lines[0])
    assert first == table.slice(0, 1).to_pylist()[0]
    if kind == "personas":
        assert first["demographics"]["region"] == "EU"
        assert first["interests"] == ["film", NEAR]


def test_include_usernames_keeps_author_and_needs_no_key(lake_root, tmp_path, monkeypatch):
    monkeypatch.delenv("ZIPP_PSEUDONYM_KEY", raising=False)
    out = tmp_path / "named"
    args = ["personas", "--format", "parquet", "--out", str(out), "--include-usernames"]
    result = _export(lake_root, *args)
    assert result.exit_code == 0, result.output
    table = pq.read_table(out / "personas.parquet")
    assert "user" not in table.column_names
    assert set(table["author"].to_pylist()) == set(AUTHORS)
    assert {"evidence", "evidence_ids"} <= set(table.column_names)


def test_missing_key_is_a_clear_error_naming_the_variable(lake_root, tmp_path, monkeypatch):
    monkeypatch.delenv("MY_EXPORT_KEY", raising=False)
    out = tmp_path / "nokey"
    args = ["personas", "--format", "jsonl", "--out", str(out), "--key-env", "MY_EXPORT_KEY"]
    result = _export(lake_root, *args)
    assert result.exit_code == 2
    assert "MY_EXPORT_KEY" in result.output and "not set" in result.output
    assert not out.exists()
    monkeypatch.setenv("MY_EXPORT_KEY", KEY)
    assert _export(lake_root, *args).exit_code == 0


def test_non_empty_out_needs_overwrite(lake_root, tmp_path, keyed):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    args = ["personas", "--format", "jsonl", "--out", str(out)]
    refused = _export(lake_root, *args)
    assert refused.exit_code == 2 and "--overwrite" in refused.output
    assert (out / "keep.txt").read_text() == "mine"
    replaced = _export(lake_root, *args, "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "personas.jsonl"]


def test_a_failed_export_leaves_nothing_behind(lake_root, tmp_path, keyed):
    rows = Lake(lake_root).read("bench/images").to_pylist()
    (lake_root / rows[0]["path"]).unlink()  # an image the hf export cannot embed
    out = tmp_path / "broken"
    result = _export(lake_root, "bench", "--format", "hf", "--out", str(out))
    assert result.exit_code == 2 and "missing" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lake"]


def _rows(out: Path, kind: str, fmt: str) -> list[dict]:
    """The rows of an export, read back with each format's own reader."""
    if fmt == "parquet":
        return pq.read_table(out / f"{kind}.parquet").to_pylist()
    if fmt == "jsonl":
        return [json.loads(ln) for ln in (out / f"{kind}.jsonl").read_text().splitlines()]
    if fmt == "delta":
        from deltalake import DeltaTable

        return DeltaTable(str(out)).to_pyarrow_table().to_pylist()
    import datasets

    ds = datasets.load_from_disk(str(out))
    return [dict(r) for r in (ds.remove_columns("image") if "image" in ds.column_names else ds)]


def _text(rows: list[dict]) -> str:
    return json.dumps(rows, ensure_ascii=False, default=str).lower()


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "delta", "hf"])
@pytest.mark.parametrize("kind", ["personas", "bench"])
def test_rare_communities_appear_nowhere_in_a_pseudonymised_export(
    lake_root, tmp_path, keyed, kind, fmt
):
    out = tmp_path / f"{kind}_{fmt}"
    result = _export(lake_root, kind, "--format", fmt, "--out", str(out))
    assert result.exit_code == 0, result.output
    text = _text(_rows(out, kind, fmt))
    for form in RARE_FORMS:
        assert form not in text, f"{form!r} left in the {kind} {fmt} export"
    assert NEAR.lower() in text  # TinyKnitCircle: its closest big community
    if kind == "personas":
        assert "a regular of a small community" in text  # LonelyPlace: no big neighbour
        assert "bigfilm" in text and "film" in text  # big communities stay
    everything = _all_bytes(out).lower()  # the card and every file, not only the rows
    for name in (b"tinyknitcircle", b"lonelyplace", b"alice_film", b"bob_garden"):
        assert name not in everything
    card = (out / "README.md").read_text()
    assert card.startswith("---\n") and "\n---\n" in card[4:]
    assert "fewer than 50 users" in card and "HMAC-SHA256" in card and "ZIPP_PSEUDONYM_KEY" in card
    assert "Reddit's User Agreement" in card and "blocklist" in card
    assert "re-identifying" in card
    fields = [ln for ln in card.splitlines() if ln.startswith("- `")]
    columns = set(pq.read_schema(out / f"{kind}.parquet").names) if fmt == "parquet" else None
    if columns is not None:
        assert {ln.split("`")[1] for ln in fields} == columns  # one line per column


def test_include_usernames_keeps_community_names_and_says_so(lake_root, tmp_path, monkeypatch):
    monkeypatch.delenv("ZIPP_PSEUDONYM_KEY", raising=False)
    for kind in ("personas", "bench"):
        out = tmp_path / f"named_{kind}"
        args = [kind, "--format", "jsonl", "--out", str(out), "--include-usernames"]
        result = _export(lake_root, *args)
        assert result.exit_code == 0, result.output
        text = _text(_rows(out, kind, "jsonl"))
        assert "tinyknitcircle" in text and "a community near" not in text
        card = (out / "README.md").read_text()
        assert "Not pseudonymised" in card and "user names" in card
    assert "lonelyplace" in _text(_rows(tmp_path / "named_personas", "personas", "jsonl"))


def test_the_threshold_comes_from_the_config(lake_root, tmp_path, keyed):
    out = tmp_path / "threshold"
    args = ["personas", "--format", "parquet", "--out", str(out), "export.min_community_users=3"]
    result = _export(lake_root, *args)
    assert result.exit_code == 0, result.output
    text = _text(_rows(out, "personas", "parquet"))
    assert "tinyknitcircle" in text  # 3 users: not rare at a threshold of 3
    assert "lonelyplace" not in text and "a small community" in text
    assert "fewer than 3 users" in (out / "README.md").read_text()


def test_the_scrubber_catches_every_written_form_and_only_whole_names(lake_root):
    from exports.communities import community_labels
    from exports.export import export_tables
    from exports.scrub import CommunityScrubber

    labels = community_labels(export_tables(Lake(lake_root), "personas"), 50)
    small = "a small community"
    assert labels == {"TinyKnitCircle": NEAR, "LonelyPlace": small, "FilmCorner": NEAR}
    scrub = CommunityScrubber(labels).text
    assert scrub("r/TinyKnitCircle's best") == f"{NEAR}'s best"
    assert scrub("see /r/tinyknitcircle, R/TINYKNITCIRCLE") == f"see {NEAR}, {NEAR}"
    assert scrub("Tiny Knit Circle and tiny-knit\ncircle") == f"{NEAR} and {NEAR}"
    assert scrub("lonelyplace.") == "a small community."
    untouched = "TinyKnitCircleFans, tiny knit, BigFilm, xr/LonelyPlaceholder"
    assert scrub(untouched) == untouched


#: a 2,000-user world for the stand-in rule. AskAll is everyone's hub (80% of users),
#: Memes a lesser one (30%); Knitting (10%) and Spinning (2.5%) are topical. The rare
#: subreddits: KnitNook (6 users: all 6 in AskAll, 4 in Knitting), YarnBarn (5 users: 3 in
#: Knitting, 2 in Spinning, all 5 in AskAll), SpindleCorner and PurlParlour (Spinning's and
#: Knitting's regulars), QuietCorner (7 of its 10 users in Memes: lift 2.3 by chance),
#: LooseThreads (5 of its 20 users in Knitting: lift 2.5, as likely as 1 in 23 by chance)
#: and ten fillers whose users fall into the large subreddits as independence predicts.
WORLD_USERS = 2000
FILLERS = {
    f"Filler{k}": {*range(100 + 5 * k, 105 + 5 * k), *range(500 + 3 * k, 503 + 3 * k)}
    | {1700 + k, 1600 + k}
    for k in range(10)
}
WORLD = {
    "AskAll": set(range(1600)),
    "Memes": set(range(500, 1100)),
    "Knitting": {0, 1, 2, 3, 11, 12, 13, *range(1400, 1550), *range(1700, 1743)},
    "Spinning": {10, 14, *range(1550, 1598)},
    "KnitNook": set(range(6)),
    "YarnBarn": set(range(10, 15)),
    "SpindleCorner": set(range(1550, 1554)),
    "PurlParlour": {1400, 1401, 1402, 1700},
    "QuietCorner": {*range(600, 607), 1750, 1751, 1752},
    "LooseThreads": {*range(1410, 1415), *range(530, 536), *range(200, 205), *range(1760, 1764)},
    **FILLERS,
}


def _labels(root: Path, **kw) -> dict[str, str]:
    """The export's community labels of the lake at `root` (threshold 50 users)."""
    from exports.communities import community_labels
    from exports.export import export_tables

    return community_labels(export_tables(Lake(root), "personas"), 50, **kw)


@pytest.fixture
def world(tmp_path) -> Path:
    root = tmp_path / "world"
    _write_subreddits(root, WORLD, WORLD_USERS)
    return root


def test_lift_not_raw_shared_users_names_a_rare_subreddit_s_neighbour(world):
    assert {n for n, m in WORLD.items() if len(m) >= 50} == {
        "AskAll",
        "Memes",
        "Knitting",
        "Spinning",
    }
    nook = WORLD["KnitNook"]
    shared = {big: len(nook & WORLD[big]) for big in ("AskAll", "Knitting")}
    assert shared == {"AskAll": 6, "Knitting": 4}  # raw shared users name the hub
    labels = _labels(world)
    assert labels["KnitNook"] == "a community near r/Knitting"  # lift 6.7 against 1.25
    # by lift alone too, no hub left out
    assert _labels(world, generic_z=float("-inf"))["KnitNook"] == "a community near r/Knitting"
    assert labels["SpindleCorner"] == "a community near r/Spinning"
    assert labels["PurlParlour"] == "a community near r/Knitting"
    # the fillers' users are in the large subreddits as often as anyone: none is near
    assert {labels[f] for f in FILLERS} == {"a small community"}
    assert not any("AskAll" in label or "Memes" in label for label in labels.values())


def test_the_support_floor_keeps_one_shared_user_from_naming_a_neighbour(world):
    barn = WORLD["YarnBarn"]
    assert len(barn & WORLD["Spinning"]) == 2 and len(barn & WORLD["Knitting"]) == 3
    # by lift Spinning (2 shared: 16.0) beats Knitting (3 shared: 6.0); both beat chance
    assert _labels(world, min_shared=2)["YarnBarn"] == "a community near r/Spinning"
    assert _labels(world)["YarnBarn"] == "a community near r/Knitting"  # floor: 3 users
    # a floor no pair reaches leaves every rare subreddit with the neutral stand-in
    assert set(_labels(world, min_shared=7).values()) == {"a small community"}


def test_a_generic_hub_is_never_a_stand_in_even_at_a_chance_lift(world):
    import pyarrow.compute as pc

    from exports.communities import _names, _overlap
    from exports.export import export_tables
    from exports.neighbours import generic_hubs

    quiet = WORLD["QuietCorner"]
    assert len(quiet & WORLD["Memes"]) == 7  # lift 7 * 2000 / (10 * 600) = 2.3, floor met
    # Memes passes lift, floor and chance (p 0.01); only the hub test keeps it out
    assert _labels(world, generic_z=float("-inf"))["QuietCorner"] == "a community near r/Memes"
    assert _labels(world)["QuietCorner"] == "a small community"
    tables = export_tables(Lake(world), "personas")
    subs = tables.read("silver/subreddits")
    rare = subs.filter(pc.less(subs["users"], 50))
    big = subs.filter(pc.greater_equal(subs["users"], 50))
    generic = {_names(subs)[b] for b in generic_hubs(_overlap(tables, rare, big))}
    assert generic == {"AskAll", "Memes"}


def test_a_pair_as_likely_by_chance_names_no_neighbour(world):
    loose = WORLD["LooseThreads"]
    assert len(loose & WORLD["Knitting"]) == 5  # lift 5 * 2000 / (20 * 200) = 2.5, floor met
    # P(5 or more of 20 in a 10% subreddit) = 0.04: above 0.05 / 2 large ones compared
    assert _labels(world)["LooseThreads"] == "a small community"
    assert _labels(world, max_p=1.0)["LooseThreads"] == "a community near r/Knitting"


def test_a_rare_subreddit_with_no_neighbour_is_named_by_its_users_words(tmp_path):
    """QuietCorner has no large neighbour: its label is in the words its users write over-
    proportionately, never its name, a rare subreddit's name, a user's name, one user's
    word, a mention or link, or a word of a held-out benchmark post."""
    from schemas.bench import BENCH_REFERENCES

    shared = "teapot kettle oolong teapot kettle oolong brew brew quiet corner"
    tail = " u/teaperson https://x.io/teaware"  # every word but a mention's or a link's counts
    snippets = [("QuietCorner", 600, f"{shared} solitude solitude{tail}{tail}")]
    snippets += [("QuietCorner", 601, f"{shared}{tail}{tail}")]
    snippets += [("QuietCorner", u, "teacosy teacosy teacosy", "held") for u in (600, 601)]
    five = list(FILLERS.items())[:5]  # the words are written elsewhere too (5 subreddits)
    snippets += [(f, min(m), f"teapot kettle oolong teacosy brew solitude{tail}") for f, m in five]
    snippets += [
        (f, max(m), "chatter daily news weather sports music games") for f, m in FILLERS.items()
    ]
    members = {**WORLD, "Oolong": {1800, 1801}}  # a rare subreddit named like a word
    root = tmp_path / "words"
    _write_subreddits(root, members, WORLD_USERS, {601: "Kettle"}, snippets)
    held = {"user_id": 600, "post_id": "held", "position": 0, "created_utc": 0}
    held |= {
        "image_url": "https://i.example/x.png",
        "subreddit_id": list(members).index("QuietCorner"),
    }
    Lake(root).write_table("bench/references", pa.Table.from_pylist([held], BENCH_REFERENCES))
    labels = _labels(root)
    # kettle: a user's name; oolong: a rare subreddit's; quiet, corner: its own name's;
    # solitude: one user's; teaperson, teaware: a mention, a link; teacosy: held out
    assert labels["QuietCorner"] == "a small community about brew, teapot"
    assert labels["KnitNook"] == "a community near r/Knitting"  # a neighbour comes first
    # the fillers' words are everyone's ("chatter" and the rest: no lift) or one user's
    assert {labels[f] for f in FILLERS} == {"a small community"}


def test_a_label_that_would_still_hold_a_rare_name_falls_back(tmp_path):
    from exports.scrub import CommunityScrubber

    root = tmp_path / "nearr"
    _write_subreddits(root, {**WORLD, "NearR": {1900, 1901}}, WORLD_USERS)
    labels = _labels(root)  # "a community near r/Knitting" holds "near r", NearR's words
    assert labels["KnitNook"] == labels["NearR"] == "a small community"
    scrub = CommunityScrubber(labels).text
    assert all(scrub(label) == label for label in labels.values())


def test_top_words_rule():
    from exports.topics import top_words

    names = {1: "KnitNook", 2: "Other", 3: "Third"}
    rows = [(1, u, "knit purl purl yarn cosy") for u in (10, 11)]
    rows += [(1, 12, "alone solo")]  # one user's words
    rows += [(s, u, "yarn plain plain words") for s in (2, 3) for u in (20, 21)]
    picked = top_words(rows, names, {"cosy"}, words=3, min_users=2, min_subreddits=1)
    # knit: its own name; cosy: banned; alone, solo: one user; yarn: everyone's (lift < 2)
    assert picked[1] == ["purl"]
    assert top_words(rows, names, min_subreddits=2, min_users=2).get(1) is None  # purl: 1 sub
    assert top_words(rows, names, words=1, min_users=1, min_subreddits=1)[1] == ["purl"]
