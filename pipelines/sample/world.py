"""`zipp sample`: a Reddit world with planted communities, written as published dumps.

Output under DIR:
  dumps/RS_YYYY-MM.zst, dumps/RC_YYYY-MM.zst   Pushshift/Arctic Shift field names and types
  images/<id>.png                              served as <image_base_url>/images/<id>.png
  ground_truth/{users,communities,subreddits}.parquet
Deterministic by seed.
"""

from __future__ import annotations

import calendar
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import zstandard
from rich.console import Console
from rich.progress import Progress

from pipelines.sample.images import TASTE_FIELDS, render_png
from pipelines.sample.vocab import (
    ADJECTIVES,
    BOTS,
    GENERAL,
    GENERAL_SUBREDDITS,
    NOUNS,
    SUBREDDIT_SUFFIXES,
    THEMES,
)

POST_KINDS = ("self", "image", "gallery", "link")
POST_KIND_P = (0.35, 0.35, 0.15, 0.15)


@dataclass(frozen=True)
class SampleSpec:
    users: int = 400
    seed: int = 7
    communities: int = 8
    subreddits_per_community: int = 4
    months: tuple[str, ...] = ("2021-05", "2021-06")
    posts_per_user_month: float = 2.0
    comments_per_user_month: float = 8.0
    image_base_url: str = "http://127.0.0.1:8765"
    image_size: int = 64
    images: bool = True
    corrupt_lines: int = 2
    deleted_share: float = 0.03
    removed_share: float = 0.03


@dataclass
class Community:
    name: str
    vocab: list[str]
    taste: np.ndarray
    subreddits: list[str] = field(default_factory=list)


def _b36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def _month_bounds(month: str) -> tuple[int, int]:
    y, m = (int(x) for x in month.split("-"))
    start = datetime(y, m, 1, tzinfo=UTC)
    days = calendar.monthrange(y, m)[1]
    return int(start.timestamp()), int(start.timestamp()) + days * 86400


class World:
    """The planted structure: communities, subreddits, users with mixtures and tastes."""

    def __init__(self, spec: SampleSpec):
        self.spec = spec
        self.rng = np.random.default_rng(spec.seed)
        rng = self.rng
        themes = list(THEMES)
        self.communities: list[Community] = []
        for k in range(spec.communities):
            theme = themes[k % len(themes)]
            name = theme if k < len(themes) else f"{theme}_{k // len(themes)}"
            hue = rng.uniform(0, 1)
            taste = np.array(
                [
                    hue,
                    (hue + rng.uniform(0.05, 0.25)) % 1,
                    rng.uniform(0.2, 1),
                    rng.uniform(0.25, 0.95),
                    rng.uniform(0, 1),
                    rng.uniform(0, 1),
                ]
            )
            c = Community(name, THEMES[theme], taste)
            base = "".join(w.capitalize() for w in theme.split("_"))
            for j in range(spec.subreddits_per_community):
                suffix = SUBREDDIT_SUFFIXES[j % len(SUBREDDIT_SUFFIXES)]
                c.subreddits.append(f"{base}{suffix}" + (str(k) if k >= len(themes) else ""))
            self.communities.append(c)
        self.subreddit_ids = {}
        all_subs = [s for c in self.communities for s in c.subreddits] + GENERAL_SUBREDDITS
        for i, s in enumerate(all_subs):
            self.subreddit_ids[s] = "t5_" + _b36(36**4 + i * 7919)
        n = spec.users
        self.usernames = []
        seen = set()
        for _ in range(n):
            name = f"{ADJECTIVES[rng.integers(len(ADJECTIVES))]}_{NOUNS[rng.integers(len(NOUNS))]}"
            name = f"{name}{rng.integers(10, 9999)}"
            while name in seen:
                name += "x"
            seen.add(name)
            self.usernames.append(name)
        self.user_fullnames = ["t2_" + _b36(36**5 + i * 104729) for i in range(n)]
        self.user_comms: list[np.ndarray] = []
        self.user_mix: list[np.ndarray] = []
        self.user_taste = np.zeros((n, len(TASTE_FIELDS)))
        self.activity = rng.lognormal(0, 0.6, n)
        for u in range(n):
            k = rng.choice([1, 2, 3], p=[0.5, 0.35, 0.15])
            comms = rng.choice(spec.communities, size=min(k, spec.communities), replace=False)
            mix = rng.dirichlet(np.full(len(comms), 2.0))
            order = np.argsort(-mix)
            comms, mix = comms[order], mix[order]
            self.user_comms.append(comms)
            self.user_mix.append(mix)
            dominant = self.communities[comms[0]].taste
            taste = sum(m * self.communities[c].taste for c, m in zip(comms, mix, strict=True))
            taste[:2] = dominant[:2]  # hues do not average; keep the dominant palette
            self.user_taste[u] = np.clip(taste + rng.normal(0, 0.04, len(taste)), 0, 1)

    def ground_truth(self) -> dict[str, pa.Table]:
        users = pa.table(
            {
                "author": self.usernames,
                "author_fullname": self.user_fullnames,
                "communities": [[self.communities[c].name for c in cs] for cs in self.user_comms],
                "mixture": [m.tolist() for m in self.user_mix],
                "taste": [t.tolist() for t in self.user_taste],
                "activity": self.activity,
            }
        )
        comms = pa.table(
            {
                "community": [c.name for c in self.communities],
                "subreddits": [c.subreddits for c in self.communities],
                "vocab": [c.vocab for c in self.communities],
                "taste": [c.taste.tolist() for c in self.communities],
            }
        )
        subs = pa.table(
            {
                "subreddit": list(self.subreddit_ids),
                "subreddit_id": list(self.subreddit_ids.values()),
                "community": [
                    next((c.name for c in self.communities if s in c.subreddits), None)
                    for s in self.subreddit_ids
                ],
            }
        )
        meta = {"taste_fields": ",".join(TASTE_FIELDS)}
        return {
            "users": users.replace_schema_metadata(meta),
            "communities": comms,
            "subreddits": subs,
        }


class _Writer:
    """Generates one month's records."""

    def __init__(self, world: World, out: Path, month: str, ids: dict[str, int]):
        self.w = world
        self.spec = world.spec
        self.rng = world.rng
        self.out = out
        self.month = month
        self.start, self.end = _month_bounds(month)
        self.retrieved = self.end + 86400 * 3
        self.ids = ids

    def _next_id(self, kind: str) -> str:
        self.ids[kind] += 1
        return _b36(self.ids[kind] * 31 + (11 if kind == "post" else 29))

    def _words(self, vocab: list[str], lo: int, hi: int) -> str:
        n = int(self.rng.integers(lo, hi))
        pool = vocab * 3 + GENERAL
        return " ".join(pool[i] for i in self.rng.integers(0, len(pool), n))

    def _author(self, u: int | None) -> tuple[str, str | None]:
        if u is None or self.rng.random() < self.spec.deleted_share:
            return "[deleted]", None
        return self.w.usernames[u], self.w.user_fullnames[u]

    def _pick_sub(self, u: int) -> tuple[str, int | None]:
        if self.rng.random() < 0.1:
            return GENERAL_SUBREDDITS[self.rng.integers(len(GENERAL_SUBREDDITS))], None
        comms, mix = self.w.user_comms[u], self.w.user_mix[u]
        c = int(comms[self.rng.choice(len(comms), p=mix)])
        subs = self.w.communities[c].subreddits
        return subs[self.rng.integers(len(subs))], c

    def _image(self, image_id: str, u: int) -> tuple[str, int]:
        """Render the image (poster's taste) and return (URL, pixel size)."""
        size = self.spec.image_size
        if self.spec.images:
            png = render_png(self.w.user_taste[u], self.rng, size)
            (self.out / "images" / f"{image_id}.png").write_bytes(png)
        return f"{self.spec.image_base_url}/images/{image_id}.png", size

    def submissions(self) -> list[dict]:
        posts = []
        n_users = self.spec.users
        counts = self.rng.poisson(self.spec.posts_per_user_month * self.w.activity)
        for u in range(n_users):
            for _ in range(int(counts[u])):
                posts.append(self._submission(u))
        posts.sort(key=lambda p: (p["created_utc"], p["id"]))
        return posts

    def _submission(self, u: int) -> dict:
        rng = self.rng
        pid = self._next_id("post")
        sub, c = self._pick_sub(u)
        vocab = self.w.communities[c].vocab if c is not None else GENERAL
        author, fullname = self._author(u)
        kind = POST_KINDS[rng.choice(4, p=POST_KIND_P)]
        created = int(rng.integers(self.start, self.end))
        title = self._words(vocab, 4, 11).capitalize()
        permalink = f"/r/{sub}/comments/{pid}/{'_'.join(title.lower().split()[:5])}/"
        rec = {
            "all_awardings": [],
            "allow_live_comments": False,
            "archived": False,
            "author": author,
            "author_flair_css_class": None,
            "author_flair_richtext": [],
            "author_flair_text": None,
            "author_flair_type": "text",
            "author_fullname": fullname,
            "author_patreon_flair": False,
            "author_premium": False,
            "awarders": [],
            "can_gild": True,
            "category": None,
            "content_categories": None,
            "contest_mode": False,
            "created_utc": created,
            "discussion_type": None,
            "distinguished": None,
            "domain": f"self.{sub}",
            "edited": False,
            "gilded": 0,
            "gildings": {},
            "hidden": False,
            "id": pid,
            "is_created_from_ads_ui": False,
            "is_crosspostable": True,
            "is_meta": False,
            "is_original_content": False,
            "is_reddit_media_domain": False,
            "is_robot_indexable": True,
            "is_self": True,
            "is_video": False,
            "link_flair_background_color": "",
            "link_flair_css_class": None,
            "link_flair_richtext": [],
            "link_flair_text": None,
            "locked": False,
            "media": None,
            "media_embed": {},
            "media_only": False,
            "name": f"t3_{pid}",
            "no_follow": bool(rng.random() < 0.5),
            "num_comments": 0,
            "num_crossposts": 0,
            "over_18": False,
            "parent_whitelist_status": "all_ads",
            "permalink": permalink,
            "pinned": False,
            "pwls": 6,
            "quarantine": False,
            "removed_by_category": None,
            "retrieved_on": self.retrieved,
            "score": int(rng.geometric(0.08)),
            "secure_media": None,
            "secure_media_embed": {},
            "selftext": "",
            "send_replies": True,
            "spoiler": False,
            "stickied": False,
            "subreddit": sub,
            "subreddit_id": self.w.subreddit_ids[sub],
            "subreddit_subscribers": int(rng.integers(1000, 5_000_000)),
            "subreddit_type": "public",
            "suggested_sort": None,
            "thumbnail": "self",
            "title": title,
            "total_awards_received": 0,
            "treatment_tags": [],
            "upvote_ratio": round(float(rng.uniform(0.6, 1.0)), 2),
            "url": f"https://www.reddit.com{permalink}",
            "whitelist_status": "all_ads",
            "wls": 6,
        }
        if rng.random() < 0.1:
            rec["edited"] = float(created + int(rng.integers(60, 86400)))
        if kind == "self":
            rec["selftext"] = self._words(vocab, 10, 60)
            if rng.random() < self.spec.removed_share:
                rec["selftext"] = "[removed]"
                rec["removed_by_category"] = "moderator"
        elif kind == "image" and author != "[deleted]":
            url, size = self._image(pid, u)
            rec.update(self._image_fields(url, size, pid))
        elif kind == "gallery" and author != "[deleted]":
            rec.update(self._gallery_fields(pid, u))
        else:
            rec.update(
                {
                    "is_self": False,
                    "domain": "example.com",
                    "post_hint": "link",
                    "url": f"https://example.com/{'-'.join(title.lower().split()[:4])}",
                    "thumbnail": "default",
                }
            )
        rec["_kind"] = kind
        rec["_community"] = c
        return rec

    def _image_fields(self, url: str, size: int, pid: str) -> dict:
        escaped = f"{url}?width={size}&amp;format=png&amp;auto=webp&amp;s={pid}"
        return {
            "is_self": False,
            "domain": "i.redd.it",
            "post_hint": "image",
            "url": url,
            "is_reddit_media_domain": True,
            "thumbnail": escaped,
            "preview": {
                "enabled": True,
                "images": [
                    {
                        "id": f"prev{pid}",
                        "resolutions": [{"height": size // 2, "url": escaped, "width": size // 2}],
                        "source": {"height": size, "url": escaped, "width": size},
                        "variants": {},
                    }
                ],
            },
        }

    def _gallery_fields(self, pid: str, u: int) -> dict:
        items, media = [], {}
        for j in range(int(self.rng.integers(2, 5))):
            media_id = f"{pid}m{j}"
            url, size = self._image(media_id, u)
            media[media_id] = {
                "status": "valid",
                "e": "Image",
                "m": "image/png",
                "id": media_id,
                "p": [
                    {
                        "x": size // 2,
                        "y": size // 2,
                        "u": f"{url}?width={size // 2}&amp;format=png&amp;auto=webp&amp;s=p{j}",
                    }
                ],
                "s": {
                    "x": size,
                    "y": size,
                    "u": f"{url}?width={size}&amp;format=png&amp;auto=webp&amp;s=s{j}",
                },
            }
            items.append({"id": int(self.ids["post"]) * 10 + j, "media_id": media_id})
        if self.rng.random() < 0.2:  # a failed upload inside the gallery, as real dumps have
            media[f"{pid}bad"] = {"status": "failed"}
        return {
            "is_self": False,
            "is_gallery": True,
            "domain": "reddit.com",
            "url": f"https://www.reddit.com/gallery/{pid}",
            "thumbnail": "default",
            "gallery_data": {"items": items},
            "media_metadata": media,
        }

    def comments(self, posts: list[dict]) -> list[dict]:
        rng = self.rng
        by_sub: dict[str, list[dict]] = {}
        for p in posts:
            by_sub.setdefault(p["subreddit"], []).append(p)
        thread: dict[str, list[str]] = {}
        out = []
        counts = rng.poisson(self.spec.comments_per_user_month * self.w.activity)
        for u in range(self.spec.users):
            for _ in range(int(counts[u])):
                sub, c = self._pick_sub(u)
                if sub not in by_sub:
                    continue
                post = by_sub[sub][rng.integers(len(by_sub[sub]))]
                vocab = self.w.communities[c].vocab if c is not None else GENERAL
                out.append(self._comment(u, post, vocab, thread))
        for post in posts:  # AutoModerator stickies and other bots' replies
            if rng.random() < 0.1:
                out.append(self._bot_comment("AutoModerator", post, thread, sticky=True))
        for bot in BOTS[1:]:
            for _ in range(max(1, len(out) // 200)):
                if posts:
                    post = posts[rng.integers(len(posts))]
                    out.append(self._bot_comment(bot, post, thread, sticky=False))
        for p in posts:
            p["num_comments"] = len(thread.get(p["id"], []))
        out.sort(key=lambda r: (r["created_utc"], r["id"]))
        return out

    def _comment(self, u: int, post: dict, vocab: list[str], thread: dict) -> dict:
        rng = self.rng
        cid = self._next_id("comment")
        author, fullname = self._author(u)
        siblings = thread.setdefault(post["id"], [])
        parent = (
            f"t1_{siblings[rng.integers(len(siblings))]}"
            if siblings and rng.random() < 0.3
            else f"t3_{post['id']}"
        )
        siblings.append(cid)
        body = self._words(vocab, 6, 45)
        r = rng.random()
        if r < self.spec.removed_share:
            body = "[removed]"
        elif r < 2 * self.spec.removed_share:
            body = "[deleted]"
        created = int(rng.integers(post["created_utc"], max(post["created_utc"] + 60, self.end)))
        return self._comment_record(
            cid,
            author,
            fullname,
            post,
            parent,
            body,
            created,
            int(rng.geometric(0.15)) - 1,
            stickied=False,
        )

    def _bot_comment(self, bot: str, post: dict, thread: dict, sticky: bool) -> dict:
        cid = self._next_id("comment")
        thread.setdefault(post["id"], []).append(cid)
        body = (
            (
                "Thanks for posting to r/{}! Please read the rules before commenting. "
                "*I am a bot, and this action was performed automatically.*"
            ).format(post["subreddit"])
            if sticky
            else f"I will be messaging you in 1 day. ({bot})"
        )
        fullname = "t2_" + _b36(36**6 + BOTS.index(bot))
        return self._comment_record(
            cid,
            bot,
            fullname,
            post,
            f"t3_{post['id']}",
            body,
            post["created_utc"] + 5,
            1,
            stickied=sticky,
        )

    def _comment_record(
        self, cid, author, fullname, post, parent, body, created, score, stickied
    ) -> dict:
        return {
            "all_awardings": [],
            "archived": False,
            "associated_award": None,
            "author": author,
            "author_flair_background_color": None,
            "author_flair_css_class": None,
            "author_flair_richtext": [],
            "author_flair_template_id": None,
            "author_flair_text": None,
            "author_flair_text_color": None,
            "author_flair_type": "text",
            "author_fullname": fullname,
            "author_patreon_flair": False,
            "author_premium": False,
            "awarders": [],
            "body": body,
            "collapsed_because_crowd_control": None,
            "comment_type": None,
            "controversiality": 0,
            "created_utc": created,
            "distinguished": "moderator" if stickied else None,
            "edited": False,
            "gilded": 0,
            "gildings": {},
            "id": cid,
            "is_submitter": author == post["author"],
            "link_id": f"t3_{post['id']}",
            "locked": False,
            "no_follow": True,
            "parent_id": parent,
            "permalink": f"{post['permalink']}{cid}/",
            "retrieved_on": self.retrieved,
            "score": score,
            "send_replies": True,
            "stickied": stickied,
            "subreddit": post["subreddit"],
            "subreddit_id": post["subreddit_id"],
            "subreddit_name_prefixed": f"r/{post['subreddit']}",
            "subreddit_type": "public",
            "top_awarded_type": None,
            "total_awards_received": 0,
            "treatment_tags": [],
        }


CORRUPTIONS = (
    lambda line: line[: len(line) // 2],  # cut mid-record
    lambda line: b"\x00\x1f garbage \xff\xfe not json",  # binary junk
    lambda line: line.replace(b'"id":', b'"id"', 1),  # broken syntax
)


def _dump_bytes(records: list[dict], rng: np.random.Generator, corrupt: int) -> bytes:
    lines = []
    for r in records:
        clean = {k: v for k, v in r.items() if not k.startswith("_")}
        lines.append(json.dumps(clean, separators=(",", ":")).encode())
    for j in range(min(corrupt, len(lines))):
        i = int(rng.integers(len(lines)))
        lines.insert(i, CORRUPTIONS[j % len(CORRUPTIONS)](lines[i]))
    return b"\n".join(lines) + b"\n"


def write_zst(path: Path, data: bytes) -> None:
    """Compress as the published dumps are: zstd, long-distance matching, one frame."""
    params = zstandard.ZstdCompressionParameters.from_level(
        10, window_log=27, enable_ldm=True, write_content_size=False
    )
    tmp = path.with_suffix(".zst.tmp")
    with (
        open(tmp, "wb") as f,
        zstandard.ZstdCompressor(compression_params=params).stream_writer(f) as w,
    ):
        w.write(data)
    os.replace(tmp, path)


def write_sample(
    out: str | os.PathLike, spec: SampleSpec, console: Console | None = None
) -> dict[str, int]:
    """Write the sample world under `out`; returns lines written per dump file."""
    out = Path(out)
    for sub in ("dumps", "images", "ground_truth"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    world = World(spec)
    ids = {"post": 36**5, "comment": 36**6}
    summary: dict[str, int] = {}
    with Progress(console=console or Console(), transient=True) as progress:
        task = progress.add_task("sample world", total=len(spec.months))
        for month in spec.months:
            w = _Writer(world, out, month, ids)
            posts = w.submissions()
            comments = w.comments(posts)
            for prefix, recs in (("RS", posts), ("RC", comments)):
                name = f"{prefix}_{month}.zst"
                data = _dump_bytes(recs, world.rng, spec.corrupt_lines)
                write_zst(out / "dumps" / name, data)
                summary[name] = data.count(b"\n")
            progress.advance(task)
    for name, t in world.ground_truth().items():
        pq.write_table(t, out / "ground_truth" / f"{name}.parquet")
    spec_d = asdict(spec)
    (out / "world.json").write_text(json.dumps(spec_d, indent=2))
    return summary
