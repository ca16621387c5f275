"""The sample world (planted world v2): published dump format, dirt, determinism, and
every planted structure: communities, Zipf subreddits, generic subreddits, favourites,
drift, demographics, image taste, community words, disliked communities (downvoted
comments), complete ground truth.

Dump-level tests use a small world; structure tests use the default (demo) world's
arrays without writing it."""

from __future__ import annotations

import io
import json
import re
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
from world import lines
from world.images import TASTE_FIELDS
from world.planted import (
    DEMOGRAPHICS,
    DISLIKE_SHARE,
    FAVOURITES,
    Month,
    SampleSpec,
    World,
)
from world.vocab import GENERAL, GENERIC_SUBREDDITS, MARKERS, NEGATIVE, THEMES
from world.write import write_sample

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
GROUND_TRUTH = ("users", "users_by_month", "communities", "subreddits", "images")
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
    return {n: pq.read_table(root / "ground_truth" / f"{n}.parquet") for n in GROUND_TRUTH}


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
    assert len(images_a) > 20
    for name in images_a:
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


def test_edited_and_removed_posts(world: dict) -> None:
    subs, comments = world["subs"], world["comments"]
    assert any(isinstance(s["edited"], float) for s in subs)
    assert any(isinstance(c["edited"], float) and c["edited"] > c["created_utc"] for c in comments)
    removed = [s for s in subs if s["selftext"] == "[removed]"]
    assert all(s["removed_by_category"] == "moderator" and s["is_self"] for s in removed)


# ---------------------------------------------------------------- lines
def test_json_lines_round_trip() -> None:
    names, null = pa.array(["a_b", "c"]), np.array([False, True])
    out = lines.json_lines(
        [("n", "1"), ("s", lines.jstr(names)), ("x", lines.jnullable(names, null))],
        tail=pa.array(["", ',"t":[]']),
    )
    assert [json.loads(v) for v in out.to_pylist()] == [
        {"n": 1, "s": "a_b", "x": "a_b"},
        {"n": 1, "s": "c", "x": None, "t": []},
    ]
    ids = np.array([0, 35, 36, 36**5 * 31 + 11])
    assert lines.b36(ids).to_pylist() == [np.base_repr(i, 36).lower() for i in ids]
    with pytest.raises(ValueError):
        lines.check_json_safe('http://x/"quoted"')


# ---------------------------------------------------------------- ground truth (small world)
def test_ground_truth_users(world: dict) -> None:
    users = world["gt"]["users"]
    subs_of = {c["community"]: c["subreddits"] for c in world["gt"]["communities"].to_pylist()}
    comms = set(subs_of)
    assert users.num_rows == SPEC.users
    assert users.schema.metadata[b"taste_fields"].decode().split(",") == list(TASTE_FIELDS)
    sizes = set()
    for u in users.to_pylist():
        assert 1 <= len(u["communities"]) <= 4
        assert len(set(u["communities"])) == len(u["communities"])
        assert set(u["communities"]) <= comms
        assert len(u["mixture"]) == len(u["communities"])
        assert sum(u["mixture"]) == pytest.approx(1.0)
        assert all(m > 0 for m in u["mixture"])
        assert u["mixture"] == sorted(u["mixture"], reverse=True)
        assert len(u["taste"]) == len(TASTE_FIELDS)
        assert all(0 <= t <= 1 for t in u["taste"])
        assert 0 < u["generic_share"] < 1 and u["activity"] > 0
        for attr, (values, _) in DEMOGRAPHICS.items():
            assert u[attr] in values
        favourites = u["favourite_subreddits"]
        assert 1 <= len(favourites) == len(set(favourites)) <= FAVOURITES * len(u["communities"])
        assert set(favourites) <= {s for c in u["communities"] for s in subs_of[c]}
        sizes.add(len(u["communities"]))
    assert len(sizes) >= 3
    names = users["author"].to_pylist()
    assert len(set(names)) == len(names)


def test_ground_truth_subreddits_and_communities(world: dict) -> None:
    subs = world["gt"]["subreddits"].to_pylist()
    comms = world["gt"]["communities"].to_pylist()
    owner = {s: c["community"] for c in comms for s in c["subreddits"]}
    assert len(owner) == sum(len(c["subreddits"]) for c in comms)  # one community each
    for s in subs:
        assert s["generic"] == (s["community"] is None) == (s["subreddit"] in GENERIC_SUBREDDITS)
        assert s["generic"] or owner[s["subreddit"]] == s["community"]
        assert s["popularity"] > 0 and s["subreddit_id"].startswith("t5_")
    community_pop = sum(s["popularity"] for s in subs if not s["generic"])
    assert community_pop == pytest.approx(1.0)
    for c in comms:
        assert len(c["taste"]) == len(TASTE_FIELDS) and len(c["vocab"]) >= 16
    dump_subs = {s["subreddit"]: s["subreddit_id"] for s in world["subs"]}
    ids = {s["subreddit"]: s["subreddit_id"] for s in subs}
    assert all(ids[name] == sid for name, sid in dump_subs.items())


def test_every_image_in_the_dumps_has_ground_truth(world: dict) -> None:
    root, images = world["root"], world["gt"]["images"].to_pylist()
    truth = {r["image_id"]: r for r in images}
    assert len(truth) == len(images)
    seen = {}
    for s in world["subs"]:
        if s.get("domain") == "i.redd.it":
            seen[s["id"]] = (s, 0)
        for j, it in enumerate((s.get("gallery_data") or {}).get("items", [])):
            seen[it["media_id"]] = (s, j)
    assert seen and set(seen) == set(truth)
    for image_id, (s, j) in seen.items():
        r = truth[image_id]
        assert (r["post_id"], r["author"], r["subreddit"], r["position"]) == (
            s["id"],
            s["author"],
            s["subreddit"],
            j,
        )
        assert r["url"] == f"{BASE_URL}/images/{image_id}.png"
        assert (root / "images" / f"{image_id}.png").is_file()
        assert len(r["taste"]) == len(TASTE_FIELDS) and all(0 <= t <= 1 for t in r["taste"])
        assert r["follows_taste"] == (r["community"] is not None)
        assert r["follows_taste"] == (s["subreddit"] not in GENERIC_SUBREDDITS)


def test_users_post_in_their_communities_or_generic(world: dict) -> None:
    users = world["gt"]["users"].to_pylist()
    subs_of = {c["community"]: set(c["subreddits"]) for c in world["gt"]["communities"].to_pylist()}
    generic = set(GENERIC_SUBREDDITS)
    home = {u["author"]: set().union(*(subs_of[c] for c in u["communities"])) for u in users}
    fullname = {u["author"]: u["author_fullname"] for u in users}
    for records, least in ((world["subs"], 50), (world["comments"], 100)):
        inside = total = 0
        for r in records:
            if r["author"] == "[deleted]" or r["author"] in BOT_NAMES:
                continue
            assert r["author_fullname"] == fullname[r["author"]]
            total += 1
            inside += r["subreddit"] in home[r["author"]] | generic
        assert total > least and inside / total > 0.9


def _value_mean(png: Path) -> float:
    with Image.open(png) as im:
        rgb = np.asarray(im.convert("RGB"), dtype=float) / 255
    return float(rgb.max(axis=2).mean())  # HSV value, averaged over pixels


def _ranks(x: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(x)).astype(float)


def test_image_brightness_follows_taste(world: dict) -> None:
    root = world["root"]
    idx = TASTE_FIELDS.index("brightness")
    taste = {u["author"]: u["taste"][idx] for u in world["gt"]["users"].to_pylist()}
    images = [r for r in world["gt"]["images"].to_pylist() if r["follows_taste"]]
    seen: dict[str, list[float]] = {}
    for r in images:
        seen.setdefault(r["author"], []).append(
            _value_mean(root / "images" / f"{r['image_id']}.png")
        )
    assert len(seen) >= 10
    authors = sorted(seen, key=lambda a: taste[a])
    darkest, brightest = authors[0], authors[-1]
    assert taste[brightest] - taste[darkest] > 0.3
    assert np.mean(seen[brightest]) > np.mean(seen[darkest])
    t = np.array([taste[a] for a in authors])
    v = np.array([np.mean(seen[a]) for a in authors])
    assert np.corrcoef(_ranks(t), _ranks(v))[0, 1] > 0.6
    # per image, against the planted taste it was rendered with
    t = np.array([r["taste"][idx] for r in images])
    v = np.array([_value_mean(root / "images" / f"{r['image_id']}.png") for r in images])
    assert np.corrcoef(_ranks(t), _ranks(v))[0, 1] > 0.6


def _words_of(text: str) -> list[str]:
    return text.lower().split()


def test_titles_and_comments_use_community_words(world: dict) -> None:
    community = {s["subreddit"]: s["community"] for s in world["gt"]["subreddits"].to_pylist()}
    vocab = {c["community"]: set(c["vocab"]) for c in world["gt"]["communities"].to_pylist()}
    every = set().union(*vocab.values())
    general = set(GENERAL)
    for texts, least in (
        ([(s["subreddit"], s["title"]) for s in world["subs"]], 0.55),
        (
            [
                (c["subreddit"], c["body"])
                for c in world["comments"]
                if c["author"] not in BOT_NAMES and not c["body"].startswith("[")
            ],
            0.35,
        ),
    ):
        own = other = total = 0
        for sub, text in texts:
            words = _words_of(text)
            if community[sub] is None:  # generic: the general vocabulary only
                assert not set(words) & every
                continue
            own += sum(w in vocab[community[sub]] for w in words)
            other += sum(w in every and w not in vocab[community[sub]] for w in words)
            total += sum(w in general or w in every for w in words)
        assert total > 200
        assert own / total > least and other == 0


def test_marker_phrases_follow_their_authors_demographics(world: dict) -> None:
    users = {u["author"]: u for u in world["gt"]["users"].to_pylist()}
    phrases = {p: v for v, ps in MARKERS.items() for p in ps}
    human = [c for c in world["comments"] if c["author"] in users]
    marked = 0
    for c in human:
        found = [v for p, v in phrases.items() if f" {p} " in f" {c['body']} "]
        marked += bool(found)
        user = users[c["author"]]
        own = {user[attr] for attr in DEMOGRAPHICS}
        assert set(found) <= own, (c["body"], own)
    assert 0.005 < marked / len(human) < 0.1


def test_downvoted_comments_are_in_the_disliked_community(world: dict) -> None:
    users = {u["author"]: u for u in world["gt"]["users"].to_pylist()}
    owner = {s["subreddit"]: s["community"] for s in world["gt"]["subreddits"].to_pylist()}
    for u in users.values():
        assert u["disliked_community"] is not None
        assert u["disliked_community"] not in u["communities"]
    assert len({u["disliked_community"] for u in users.values()}) > 10
    human = [c for c in world["comments"] if c["author"] in users]
    negative = [c for c in human if c["score"] < 0]
    assert 0.01 < len(negative) / len(human) < 0.06
    opening = tuple(f"{p} " for p in NEGATIVE)
    for c in negative:
        assert owner[c["subreddit"]] == users[c["author"]]["disliked_community"]
        assert c["body"] in ("[removed]", "[deleted]") or c["body"].startswith(opening), c
    bots = [c for c in world["comments"] if c["author"] in BOT_NAMES]
    assert all(c["score"] >= 0 for c in bots)


def test_users_by_month(world: dict) -> None:
    by_month = world["gt"]["users_by_month"].to_pylist()
    users = {u["author"]: u for u in world["gt"]["users"].to_pylist()}
    assert len(by_month) == SPEC.users * len(SPEC.months)
    for r in by_month:
        assert r["month"] in SPEC.months
        assert set(r["communities"]) <= set(users[r["author"]]["communities"])
        assert sum(r["mixture"]) == pytest.approx(1.0)
        assert r["mixture"] == sorted(r["mixture"], reverse=True)


# ---------------------------------------------------------------- vocabularies
def test_vocabularies_are_distinct_real_words() -> None:
    assert len(THEMES) >= 48
    seen: dict[str, str] = {}
    for theme, words in THEMES.items():
        assert len(words) >= 16 and len(set(words)) == len(words), theme
        for w in words:
            assert w.isascii() and w.isalnum() and w == w.lower(), w
            assert w not in seen, (w, theme, seen.get(w))
            seen[w] = theme
    assert not set(GENERAL) & set(seen)
    negative = {w for p in NEGATIVE for w in p.split()}
    assert not negative & (set(seen) | set(GENERAL)) and len(set(NEGATIVE)) == len(NEGATIVE)
    for value, phrases in MARKERS.items():  # each phrase has a word no vocabulary uses
        assert all(set(p.split()) - set(seen) - set(GENERAL) for p in phrases), value
    for v in DEMOGRAPHICS.values():
        assert set(v[0]) <= set(MARKERS) and sum(v[1]) == pytest.approx(1.0)


# ---------------------------------------------------------------- the default world's structure
@pytest.fixture(scope="module")
def demo() -> tuple[World, list[Month]]:
    w = World(SampleSpec())
    return w, [w.month(m) for m in range(len(w.spec.months))]


def _activity(months: list[Month]) -> tuple[np.ndarray, np.ndarray]:
    """(user, subreddit) of every post and user comment."""
    users, subs = [], []
    for m in months:
        human = m.comment_user >= 0
        users += [m.post_user, m.comment_user[human]]
        subs += [m.post_sub, m.post_sub[m.comment_post[human]]]
    return np.concatenate(users), np.concatenate(subs)


def test_default_world_size_and_names(demo) -> None:
    w, _ = demo
    assert w.spec.communities >= 40 and w.first_generic >= 1000
    assert len(set(w.community_names)) == w.spec.communities
    assert len(GENERIC_SUBREDDITS) >= 12
    names = w.subreddit_names
    assert len({n.lower() for n in names}) == len(names)
    assert all(re.fullmatch(r"[A-Za-z0-9_]{3,21}", n) for n in names)
    assert (w.sub_community[: w.first_generic] >= 0).all()
    assert (w.sub_community[w.first_generic :] < 0).all()
    assert w.community_size.max() > 4 * w.community_size.min()  # community sizes vary
    members = np.bincount(w.top[np.arange(w.max_communities) < w.joined[:, None]])
    assert members.max() > 5 * members.min()


def test_zipf_popularity_in_post_counts(demo) -> None:
    w, months = demo
    posts = np.bincount(
        np.concatenate([m.post_sub for m in months]), minlength=len(w.subreddit_names)
    )
    posts = posts[: w.first_generic]
    weight = w.sub_weight
    rho = np.corrcoef(_ranks(weight), _ranks(posts))[0, 1]
    assert rho > 0.4
    top = np.sort(posts)[::-1]
    slope = np.polyfit(np.log(np.arange(1, 101)), np.log(top[:100]), 1)[0]
    assert -1.6 < slope < -0.5
    assert top[: len(top) // 10].sum() > 0.4 * top.sum()  # the top 10% hold most posts
    assert (posts > 0).sum() > 0.5 * len(posts)  # and the long tail is there


def test_generic_subreddits_lead_for_many_users(demo) -> None:
    w, months = demo
    users, subs = _activity(months)
    n_subs = len(w.subreddit_names)
    counts = np.bincount(users * n_subs + subs, minlength=w.spec.users * n_subs)
    counts = counts.reshape(w.spec.users, n_subs)
    active = counts.sum(axis=1) > 0
    generic_top = w.sub_community[counts.argmax(axis=1)] < 0
    assert 0.35 < generic_top[active].mean() < 0.65
    generic = w.sub_community[subs] < 0
    assert 0.35 < generic.mean() < 0.65


def test_users_keep_to_a_few_favourites(demo) -> None:
    w, months = demo
    users, subs = _activity(months)
    keep = w.sub_community[subs] >= 0
    pairs = np.unique(users[keep] * len(w.subreddit_names) + subs[keep])
    user, sub = np.divmod(pairs, len(w.subreddit_names))
    per_community = np.unique(user * w.spec.communities + w.sub_community[sub], return_counts=True)[
        1
    ]
    assert np.median(per_community) <= FAVOURITES
    assert np.median(w.community_size) > 4 * FAVOURITES


def test_mixtures_drift_and_users_join_communities(demo) -> None:
    w, months = demo
    a, b = w.month_mix[0], w.month_mix[1]
    changed = np.abs(a - b).sum(axis=1) > 0.02
    assert changed.mean() > 0.5
    multi = (a > 0).sum(axis=1) > 1
    assert changed[multi].mean() > 0.9
    joined = (b > 0).sum(axis=1) > (a > 0).sum(axis=1)
    assert 0.03 < joined.mean() < 0.3
    # the joined community shows up in the second month's activity
    m1 = months[1]
    new = w.top[np.flatnonzero(joined), (a[joined] > 0).sum(axis=1)]
    active = {(u, c) for u, c in zip(m1.post_user, w.sub_community[m1.post_sub], strict=True)}
    assert sum((u, c) in active for u, c in zip(np.flatnonzero(joined), new, strict=True)) > 10


def test_a_small_share_of_comments_is_downvoted(demo) -> None:
    w, months = demo
    assert not (w.disliked[:, None] == w.top).any()  # never a (possible) own community
    assert np.bincount(w.disliked, minlength=w.spec.communities).min() > 0
    human = np.concatenate([m.comment_user >= 0 for m in months])
    negative = np.concatenate([m.comment_negative for m in months])
    assert not negative[~human].any()
    assert 0.5 * DISLIKE_SHARE < negative[human].mean() <= DISLIKE_SHARE
    for m in months:
        rows = np.flatnonzero(m.comment_negative)
        community = w.sub_community[m.post_sub[m.comment_post[rows]]]
        assert (community == w.disliked[m.comment_user[rows]]).all()


def _mutual_information(a: np.ndarray, b: np.ndarray) -> float:
    joint = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(joint, (a, b), 1)
    joint /= joint.sum()
    expected = joint.sum(axis=1, keepdims=True) @ joint.sum(axis=0, keepdims=True)
    nz = joint > 0
    return float((joint[nz] * np.log(joint[nz] / expected[nz])).sum())


def test_demographics_weakly_shape_communities(demo) -> None:
    w, _ = demo
    member = np.arange(w.max_communities) < w.joined[:, None]
    user, community = np.repeat(np.arange(w.spec.users), w.joined), w.top[member]
    rng = np.random.default_rng(0)
    for j, attr in enumerate(DEMOGRAPHICS):
        value = w.demographics[user, j]
        real = _mutual_information(value, community)
        shuffled = [_mutual_information(value, rng.permutation(community)) for _ in range(20)]
        assert real > 1.3 * max(shuffled), attr  # present ...
        assert real < 0.15, attr  # ... and weak
