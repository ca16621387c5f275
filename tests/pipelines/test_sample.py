"""The sample world: published dump format, dirt, planted communities and image taste."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from PIL import Image
from rich.console import Console

from pipelines.dumps import DumpReader, dump_kind, find_dumps
from pipelines.records import ChunkParser
from pipelines.sample.images import TASTE_FIELDS
from pipelines.sample.world import SampleSpec, write_sample

BASE_URL = "http://img.sample.test:9999"
SPEC = SampleSpec(users=60, months=("2021-05",), image_size=16, image_base_url=BASE_URL)
MAY_START, JUNE_START = 1619827200, 1622505600  # 2021-05-01, 2021-06-01 (UTC)
SUBMISSION_KEYS = {
    "id",
    "author",
    "author_fullname",
    "subreddit",
    "subreddit_id",
    "created_utc",
    "title",
    "selftext",
    "url",
    "domain",
    "permalink",
    "is_self",
    "score",
    "num_comments",
    "over_18",
    "edited",
    "retrieved_on",
    "thumbnail",
    "name",
}
COMMENT_KEYS = {
    "id",
    "author",
    "author_fullname",
    "subreddit",
    "subreddit_id",
    "created_utc",
    "body",
    "link_id",
    "parent_id",
    "score",
    "edited",
    "stickied",
    "retrieved_on",
    "controversiality",
    "distinguished",
    "permalink",
    "is_submitter",
}
BOT_NAMES = {"AutoModerator", "RemindMeBot", "sneakpeekbot", "WikiSummarizerBot"}


def write(root: Path, spec: SampleSpec = SPEC) -> Path:
    write_sample(root, spec, console=Console(file=io.StringIO()))
    return root


def dump_text(root: Path, name: str) -> bytes:
    dctx = zstandard.ZstdDecompressor(max_window_size=1 << 31)
    with open(root / "dumps" / name, "rb") as f:
        return dctx.stream_reader(f).read()


def parse_lines(data: bytes) -> tuple[list[dict], list[bytes]]:
    good, bad = [], []
    for line in data.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            good.append(obj)
        else:
            bad.append(line)
    return good, bad


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = write(tmp_path_factory.mktemp("sample"))
    subs, bad_subs = parse_lines(dump_text(root, "RS_2021-05.zst"))
    comments, bad_comments = parse_lines(dump_text(root, "RC_2021-05.zst"))
    return {
        "root": root,
        "subs": subs,
        "comments": comments,
        "bad_subs": bad_subs,
        "bad_comments": bad_comments,
        "gt": ground_truth(root),
    }


def ground_truth(root: Path) -> dict[str, pa.Table]:
    return {
        n: pq.read_table(root / "ground_truth" / f"{n}.parquet")
        for n in ("users", "communities", "subreddits")
    }


# ---------------------------------------------------------------- determinism
def test_same_seed_same_world(world: dict, tmp_path: Path) -> None:
    a, b = world["root"], write(tmp_path / "again")
    for name in ("RS_2021-05.zst", "RC_2021-05.zst"):
        assert dump_text(a, name) == dump_text(b, name)
    ga, gb = ground_truth(a), ground_truth(b)
    for name in ga:
        assert ga[name].equals(gb[name]), name
    images_a = sorted(p.name for p in (a / "images").iterdir())
    assert images_a == sorted(p.name for p in (b / "images").iterdir())
    for name in images_a[:10]:
        assert (a / "images" / name).read_bytes() == (b / "images" / name).read_bytes()


def test_other_seed_other_world(world: dict, tmp_path: Path) -> None:
    other = write(
        tmp_path / "other",
        SampleSpec(users=60, months=("2021-05",), image_size=16, image_base_url=BASE_URL, seed=8),
    )
    a = world["root"]
    assert dump_text(a, "RS_2021-05.zst") != dump_text(other, "RS_2021-05.zst")
    assert dump_text(a, "RC_2021-05.zst") != dump_text(other, "RC_2021-05.zst")
    assert not ground_truth(a)["users"].equals(ground_truth(other)["users"])


# ---------------------------------------------------------------- format
def test_dump_files_are_published_zst(world: dict) -> None:
    root = world["root"]
    files = find_dumps(str(root / "dumps"))
    assert [Path(f).name for f in files] == ["RC_2021-05.zst", "RS_2021-05.zst"]
    assert [dump_kind(f) for f in files] == ["comments", "submissions"]
    for f in files:
        reader = DumpReader(f)
        lines = sum(chunk.count(b"\n") for chunk, _ in reader)
        assert not reader.stats.truncated
        assert reader.stats.frames == 1
        assert lines == reader.stats.lines == len(dump_text(root, Path(f).name).splitlines())


def test_published_field_names_and_types(world: dict) -> None:
    subs, comments = world["subs"], world["comments"]
    assert len(subs) > 30 and len(comments) > 100
    for s in subs:
        assert set(s) >= SUBMISSION_KEYS, SUBMISSION_KEYS - set(s)
        assert not any(k.startswith("_") for k in s)
        assert isinstance(s["created_utc"], int) and MAY_START <= s["created_utc"] < JUNE_START
        assert s["name"] == f"t3_{s['id']}"
        assert s["permalink"].startswith(f"/r/{s['subreddit']}/comments/{s['id']}/")
        assert s["edited"] is False or s["edited"] > s["created_utc"]
    post_ids = {s["id"]: s for s in subs}
    comment_ids = {c["id"] for c in comments}
    assert len(post_ids) == len(subs) and len(comment_ids) == len(comments)
    for c in comments:
        assert set(c) >= COMMENT_KEYS, COMMENT_KEYS - set(c)
        assert isinstance(c["created_utc"], int)
        post = post_ids[c["link_id"].removeprefix("t3_")]
        assert c["link_id"].startswith("t3_")
        assert c["subreddit"] == post["subreddit"]
        assert c["created_utc"] >= post["created_utc"]
        parent = c["parent_id"]
        assert parent == c["link_id"] or (
            parent.startswith("t1_") and parent.removeprefix("t1_") in comment_ids
        )
    per_post: dict[str, int] = {}
    for c in comments:
        per_post[c["link_id"]] = per_post.get(c["link_id"], 0) + 1
    for s in subs:
        assert s["num_comments"] == per_post.get(f"t3_{s['id']}", 0)


def test_image_posts_point_at_served_pngs(world: dict) -> None:
    root, subs = world["root"], world["subs"]
    images = [s for s in subs if s.get("domain") == "i.redd.it"]
    assert len(images) >= 5
    for s in images:
        assert s["post_hint"] == "image"
        assert s["url"].startswith(BASE_URL + "/images/")
        rel = s["url"].removeprefix(BASE_URL + "/")
        png = root / rel
        assert png.is_file()
        with Image.open(png) as im:
            assert im.format == "PNG" and im.size == (SPEC.image_size, SPEC.image_size)
        src = s["preview"]["images"][0]["source"]["url"]
        assert src.startswith(s["url"]) and "&amp;" in src


def test_galleries_have_escaped_media_metadata(world: dict) -> None:
    root, subs = world["root"], world["subs"]
    galleries = [s for s in subs if s.get("is_gallery")]
    assert len(galleries) >= 3
    for s in galleries:
        items = s["gallery_data"]["items"]
        media = s["media_metadata"]
        assert len(items) >= 2
        for item in items:
            m = media[item["media_id"]]
            assert m["status"] == "valid"
            assert "&amp;" in m["s"]["u"]
            assert m["s"]["u"].startswith(BASE_URL + "/images/")
            assert (root / "images" / f"{item['media_id']}.png").is_file()
    # Parsed through the real parser: unescaped URLs, items in gallery_data order.
    raw = b"".join(json.dumps(s, separators=(",", ":")).encode() + b"\n" for s in galleries)
    out = ChunkParser("submissions", "RS_2021-05.zst").parse(raw, 1)
    assert out.quarantine == []
    for s, row in zip(galleries, out.table.to_pylist(), strict=True):
        assert [g["media_id"] for g in row["gallery"]] == [
            it["media_id"] for it in s["gallery_data"]["items"]
        ]
        assert all("&amp;" not in g["url"] and "&" in g["url"] for g in row["gallery"])


# ---------------------------------------------------------------- dirt
def test_dirt_is_present(world: dict) -> None:
    subs, comments = world["subs"], world["comments"]
    records = subs + comments
    assert any(r["author"] == "[deleted]" and r["author_fullname"] is None for r in records)
    bodies = {c["body"] for c in comments}
    assert "[removed]" in bodies and "[deleted]" in bodies
    authors = {c["author"] for c in comments}
    assert "AutoModerator" in authors
    assert len(authors & BOT_NAMES) >= 2
    automod = [c for c in comments if c["author"] == "AutoModerator"]
    assert all(c["stickied"] and c["distinguished"] == "moderator" for c in automod)
    assert len(world["bad_subs"]) == SPEC.corrupt_lines
    assert len(world["bad_comments"]) == SPEC.corrupt_lines


def test_corrupt_lines_are_quarantined_by_the_parser(world: dict) -> None:
    root = world["root"]
    for name, kind in (("RS_2021-05.zst", "submissions"), ("RC_2021-05.zst", "comments")):
        data = dump_text(root, name)
        out = ChunkParser(kind, name).parse(data, 1)
        assert len(out.quarantine) == SPEC.corrupt_lines
        assert out.table.num_rows + len(out.quarantine) == len(data.splitlines())


# ---------------------------------------------------------------- planted structure
def test_ground_truth_users(world: dict) -> None:
    users = world["gt"]["users"]
    comms = {c["community"] for c in world["gt"]["communities"].to_pylist()}
    assert users.num_rows == SPEC.users
    assert users.schema.metadata[b"taste_fields"].decode().split(",") == list(TASTE_FIELDS)
    sizes = set()
    for u in users.to_pylist():
        assert 1 <= len(u["communities"]) <= 3
        assert len(set(u["communities"])) == len(u["communities"])
        assert set(u["communities"]) <= comms
        assert len(u["mixture"]) == len(u["communities"])
        assert sum(u["mixture"]) == pytest.approx(1.0)
        assert all(m > 0 for m in u["mixture"])
        assert u["mixture"] == sorted(u["mixture"], reverse=True)
        assert len(u["taste"]) == len(TASTE_FIELDS)
        assert all(0 <= t <= 1 for t in u["taste"])
        sizes.add(len(u["communities"]))
    assert len(sizes) >= 2
    names = users["author"].to_pylist()
    assert len(set(names)) == len(names)


def test_users_post_in_their_communities(world: dict) -> None:
    users = world["gt"]["users"].to_pylist()
    subs_of = {c["community"]: set(c["subreddits"]) for c in world["gt"]["communities"].to_pylist()}
    home = {u["author"]: set().union(*(subs_of[c] for c in u["communities"])) for u in users}
    fullname = {u["author"]: u["author_fullname"] for u in users}
    inside = total = 0
    for s in world["subs"]:
        if s["author"] == "[deleted]":
            continue
        assert s["author"] in home
        assert s["author_fullname"] == fullname[s["author"]]
        total += 1
        inside += s["subreddit"] in home[s["author"]]
    assert total > 50
    assert inside / total > 0.7
    # and their comments too (bots excluded)
    inside = total = 0
    for c in world["comments"]:
        if c["author"] in home:
            total += 1
            inside += c["subreddit"] in home[c["author"]]
    assert total > 100 and inside / total > 0.7


def _value_mean(png: Path) -> float:
    with Image.open(png) as im:
        rgb = np.asarray(im.convert("RGB"), dtype=float) / 255
    return float(rgb.max(axis=2).mean())  # HSV value, averaged over pixels


def _ranks(x: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(x)).astype(float)


def test_image_brightness_follows_taste(world: dict) -> None:
    root = world["root"]
    users = world["gt"]["users"].to_pylist()
    idx = TASTE_FIELDS.index("brightness")
    taste = {u["author"]: u["taste"][idx] for u in users}
    seen: dict[str, list[float]] = {}
    for s in world["subs"]:
        if s["author"] not in taste:
            continue
        ids = [s["id"]] if s.get("domain") == "i.redd.it" else []
        ids += [it["media_id"] for it in (s.get("gallery_data") or {}).get("items", [])]
        for i in ids:
            seen.setdefault(s["author"], []).append(_value_mean(root / "images" / f"{i}.png"))
    assert len(seen) >= 10
    authors = sorted(seen, key=lambda a: taste[a])
    darkest, brightest = authors[0], authors[-1]
    assert taste[brightest] - taste[darkest] > 0.3
    assert np.mean(seen[brightest]) > np.mean(seen[darkest])
    t = np.array([taste[a] for a in authors])
    v = np.array([np.mean(seen[a]) for a in authors])
    rho = np.corrcoef(_ranks(t), _ranks(v))[0, 1]
    assert rho > 0.6
