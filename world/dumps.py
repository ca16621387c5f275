"""One month of the sample world as RS_/RC_ dump files, rendered chunk by chunk.

The field names, their order and their JSON types are those of the 2021 Pushshift dumps
(and of the generator before planted world v2): submissions carry kind-specific tails
(`post_hint`, `preview`, `is_gallery`/`gallery_data`/`media_metadata` with `&amp;`-escaped
URLs), comments link to their post and parent; those in the author's disliked community
open with a negativity phrase, lean on that community's words and score below zero. Text
is drawn per chunk from the word tables with numpy and joined by Arrow; each chunk's lines
stream into the file's zstd frame, so memory is bounded by the month's activity arrays
plus one chunk of text.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from world.images import TASTE_FIELDS
from world.lines import (
    DumpWriter,
    b36,
    concat,
    jbool,
    jnullable,
    jnum,
    joined,
    json_lines,
    jstr,
    lit,
    scatter,
)
from world.planted import (
    DEMOGRAPHIC_VALUES,
    GALLERY,
    IMAGE,
    POST_KINDS,
    SELF,
    Month,
    World,
)
from world.vocab import BOTS, GENERAL, MARKERS, NEGATIVE, THEMES

CHUNK = 1 << 17  # records rendered at a time
TITLE_WORDS = (4, 11)  # [lo, hi) words
SELFTEXT_WORDS = (10, 60)
BODY_WORDS = (6, 45)
TITLE_VOCAB = 0.7  # share of title words from the community vocabulary
TEXT_VOCAB = 0.5  # ... of self-text and comment words
NEGATIVE_VOCAB = 0.7  # ... of downvoted comments' words (the disliked community's)
NEGATIVE_SCORE_P = 0.3  # downvoted comments score -geometric(p)
MARKER_RATE = 0.05  # comments with one demographic marker phrase of their author
EDITED_POSTS, EDITED_COMMENTS = 0.1, 0.03
AUTOMOD_BODY = (
    "Thanks for posting to r/{}! Please read the rules before commenting. "
    "*I am a bot, and this action was performed automatically.*"
)
UPVOTE_RATIOS = pa.array([lit(p / 100) for p in range(60, 101)])
BOT_NAMES = pa.array(BOTS)
BOT_FULLNAMES = concat('"t2_', b36(36**6 + np.arange(len(BOTS))), '"')


def post_ids(serial: np.ndarray) -> pa.Array:
    return b36((36**5 + serial + 1) * 31 + 11)


def comment_ids(serial: np.ndarray) -> pa.Array:
    return b36((36**6 + serial + 1) * 31 + 29)


class Words:
    """One table of every word, phrase and capitalised word, with per-source ranges."""

    def __init__(self) -> None:
        words: list[str] = []
        self.vocab_lo, self.vocab_len = [], []
        for vocab in THEMES.values():
            self.vocab_lo.append(len(words))
            self.vocab_len.append(len(vocab))
            words += vocab
        self.general_lo = len(words)
        words += GENERAL
        self.marker_lo, self.marker_len = [], []
        for value in DEMOGRAPHIC_VALUES:
            self.marker_lo.append(len(words))
            self.marker_len.append(len(MARKERS[value]))
            words += MARKERS[value]
        self.negative_lo = len(words)
        words += NEGATIVE
        self.capital = len(words)  # word i capitalised is capital + i
        self.table = pa.array(words + [w.capitalize() for w in words])
        self.vocab_lo, self.vocab_len = np.array(self.vocab_lo), np.array(self.vocab_len)
        self.marker_lo, self.marker_len = np.array(self.marker_lo), np.array(self.marker_len)

    def draw(
        self,
        theme: np.ndarray,
        lengths: np.ndarray,
        vocab_share: float | np.ndarray,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """Word numbers for rows of `lengths` words: from the row's theme vocabulary (theme
        -1: none) with probability `vocab_share` (one, or one per row), otherwise general."""
        row_theme = np.repeat(theme, lengths)
        share = np.repeat(vocab_share, lengths) if np.ndim(vocab_share) else vocab_share
        u = rng.random(len(row_theme), dtype=np.float32)
        tokens = self.general_lo + _index(u, len(GENERAL))
        own = (row_theme >= 0) & (rng.random(len(row_theme), dtype=np.float32) < share)
        t = row_theme[own]
        tokens[own] = self.vocab_lo[t] + _index(u[own], self.vocab_len[t])
        return tokens


def _index(u: np.ndarray, n: np.ndarray | int) -> np.ndarray:
    """Uniform [0, 1) floats to indices below `n` (float32 rounding can reach n)."""
    return np.minimum((u * n).astype(np.int64), np.asarray(n) - 1)


def _starts(lengths: np.ndarray) -> np.ndarray:
    return np.cumsum(lengths) - lengths


def _prefix(tokens: np.ndarray, lengths: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `n` tokens of every row."""
    position = np.arange(len(tokens)) - np.repeat(_starts(lengths), lengths)
    return tokens[position < n], np.minimum(lengths, n)


class MonthWriter:
    """Renders one month's posts and comments into its two dump files."""

    def __init__(self, world: World, month: Month):
        self.w, self.m, self.spec = world, month, world.spec
        self.words = Words()
        self.retrieved = lit(month.end + 3 * 86400)
        self.sub_names = pa.array(world.subreddit_names)
        self.sub_ids = jstr(world.subreddit_ids)
        share = np.concatenate([world.sub_weight * 4e7, world.generic_weight * 1.2e8])
        self.subscribers = (share + 500).astype(np.int64)
        self.sub_theme = np.where(world.sub_community >= 0, world.theme[world.sub_community], -1)
        self.pids = post_ids(month.post_serial)
        self._titles(np.random.default_rng([self.spec.seed, 2, month.index]))
        self.image_ids = self._image_ids()
        self.base = self.spec.image_base_url + "/images/"

    def _titles(self, rng: np.random.Generator) -> None:
        """Titles from the posting community's words; permalink slugs and link paths."""
        m, words = self.m, self.words
        lengths = rng.integers(*TITLE_WORDS, len(m.post_sub))
        tokens = words.draw(self.sub_theme[m.post_sub], lengths, TITLE_VOCAB, rng)
        capitals = tokens.copy()
        capitals[_starts(lengths)[lengths > 0]] += words.capital
        self.titles = joined(capitals, lengths, words.table, " ")
        slug = joined(*_prefix(tokens, lengths, 5), words.table, "_")
        self.link_paths = joined(*_prefix(tokens, lengths, 4), words.table, "-")
        sub = self.sub_names.take(pa.array(m.post_sub))
        self.permalinks = concat("/r/", sub, "/comments/", self.pids, "/", slug, "/")

    def _image_ids(self) -> pa.Array:
        """`<post id>` for image posts, `<post id>m<j>` for gallery items."""
        m = self.m
        pid = self.pids.take(pa.array(m.image_post))
        gallery = m.post_kind[m.image_post] == GALLERY
        item = concat(pid, "m", jnum(m.image_position))
        return pc.if_else(pa.array(gallery), item, pid)

    # ------------------------------------------------------------ files
    def write(self, dumps: Path) -> dict[str, int]:
        """Write RS_ and RC_ of the month; returns lines per file."""
        spec, m = self.spec, self.m
        out = {}
        for prefix, n, render in (
            ("RS", len(m.post_serial), self._post_lines),
            ("RC", len(m.comment_serial), self._comment_lines),
        ):
            name = f"{prefix}_{m.name}.zst"
            rng = np.random.default_rng([spec.seed, 4, m.index, prefix == "RC"])
            dump = DumpWriter(dumps / name, n, spec.corrupt_lines, rng, spec.zstd_level)
            for chunk, lo in enumerate(range(0, n, CHUNK)):
                rows = np.arange(lo, min(n, lo + CHUNK))
                seed = [spec.seed, 5, m.index, prefix == "RC", chunk]
                dump.write(render(rows, np.random.default_rng(seed)))
            out[name] = dump.close()
        return out

    def images_table(self) -> pa.Table:
        """Ground truth of the month's images: who posted what where, the taste rendered."""
        m, w = self.m, self.w
        post = m.image_post
        sub = m.post_sub[post]
        community = w.sub_community[sub]
        names = np.array(w.community_names + [None], dtype=object)
        flat = pa.array(m.image_taste.ravel())
        offsets = pa.array(np.arange(len(post) + 1, dtype=np.int32) * len(TASTE_FIELDS))
        return pa.table(
            {
                "image_id": self.image_ids,
                "post_id": self.pids.take(pa.array(post)),
                "author": w.usernames.take(pa.array(m.post_user[post])),
                "subreddit": self.sub_names.take(pa.array(sub)),
                "community": pa.array(names[community].tolist(), pa.string()),
                "month": pa.array([m.name] * len(post), pa.string()),
                "kind": pa.array(np.array(POST_KINDS)[m.post_kind[post]].tolist(), pa.string()),
                "position": m.image_position,
                "follows_taste": m.image_follows,
                "taste": pa.ListArray.from_arrays(offsets, flat),
                "url": concat(self.base, self.image_ids, ".png"),
            }
        )

    # ------------------------------------------------------------ submissions
    def _post_lines(self, rows: np.ndarray, rng: np.random.Generator) -> pa.Array:
        m, w, spec = self.m, self.w, self.spec
        n = len(rows)
        kind, sub, deleted = m.post_kind[rows], m.post_sub[rows], m.post_deleted[rows]
        created = m.post_created[rows]
        take = pa.array(rows)
        pid, permalink = self.pids.take(take), self.permalinks.take(take)
        sub_name = self.sub_names.take(pa.array(sub))
        author = w.usernames.take(pa.array(m.post_user[rows]))
        kinds = pa.array(kind.astype(np.int8))
        edited = rng.random(n) < EDITED_POSTS
        edited_at = created + rng.integers(60, 86400, n)
        removed = (kind == SELF) & (rng.random(n) < spec.removed_share)
        is_self = kind == SELF
        lengths = np.where(is_self, rng.integers(*SELFTEXT_WORDS, n), 0)[is_self]
        tokens = self.words.draw(self.sub_theme[sub[is_self]], lengths, TEXT_VOCAB, rng)
        selftext = scatter(is_self, joined(tokens, lengths, self.words.table, " "))
        selftext = pc.if_else(pa.array(removed), "[removed]", selftext)
        image_url = concat(self.base, pid, ".png")
        size, half = self.spec.image_size, self.spec.image_size // 2
        escaped = concat(image_url, f"?width={size}&amp;format=png&amp;auto=webp&amp;s=", pid)
        fields = [
            ("all_awardings", "[]"),
            ("allow_live_comments", "false"),
            ("archived", "false"),
            ("author", jstr(pc.if_else(pa.array(deleted), "[deleted]", author))),
            ("author_flair_css_class", "null"),
            ("author_flair_richtext", "[]"),
            ("author_flair_text", "null"),
            ("author_flair_type", '"text"'),
            (
                "author_fullname",
                jnullable(w.user_fullnames.take(pa.array(m.post_user[rows])), deleted),
            ),
            ("author_patreon_flair", "false"),
            ("author_premium", "false"),
            ("awarders", "[]"),
            ("can_gild", "true"),
            ("category", "null"),
            ("content_categories", "null"),
            ("contest_mode", "false"),
            ("created_utc", jnum(created)),
            ("discussion_type", "null"),
            ("distinguished", "null"),
            (
                "domain",
                jstr(
                    pc.choose(
                        kinds, concat("self.", sub_name), "i.redd.it", "reddit.com", "example.com"
                    )
                ),
            ),
            ("edited", pc.if_else(pa.array(edited), concat(jnum(edited_at), ".0"), "false")),
            ("gilded", "0"),
            ("gildings", "{}"),
            ("hidden", "false"),
            ("id", jstr(pid)),
            ("is_created_from_ads_ui", "false"),
            ("is_crosspostable", "true"),
            ("is_meta", "false"),
            ("is_original_content", "false"),
            ("is_reddit_media_domain", jbool(kind == IMAGE)),
            ("is_robot_indexable", "true"),
            ("is_self", jbool(is_self)),
            ("is_video", "false"),
            ("link_flair_background_color", '""'),
            ("link_flair_css_class", "null"),
            ("link_flair_richtext", "[]"),
            ("link_flair_text", "null"),
            ("locked", "false"),
            ("media", "null"),
            ("media_embed", "{}"),
            ("media_only", "false"),
            ("name", concat('"t3_', pid, '"')),
            ("no_follow", jbool(rng.random(n) < 0.5)),
            ("num_comments", jnum(m.post_comments[rows])),
            ("num_crossposts", "0"),
            ("over_18", "false"),
            ("parent_whitelist_status", '"all_ads"'),
            ("permalink", jstr(permalink)),
            ("pinned", "false"),
            ("pwls", "6"),
            ("quarantine", "false"),
            ("removed_by_category", pc.if_else(pa.array(removed), '"moderator"', "null")),
            ("retrieved_on", self.retrieved),
            ("score", jnum(rng.geometric(0.08, n))),
            ("secure_media", "null"),
            ("secure_media_embed", "{}"),
            ("selftext", jstr(selftext)),
            ("send_replies", "true"),
            ("spoiler", "false"),
            ("stickied", "false"),
            ("subreddit", jstr(sub_name)),
            ("subreddit_id", self.sub_ids.take(pa.array(sub))),
            ("subreddit_subscribers", jnum(self.subscribers[sub])),
            ("subreddit_type", '"public"'),
            ("suggested_sort", "null"),
            ("thumbnail", jstr(pc.choose(kinds, "self", escaped, "default", "default"))),
            ("title", jstr(self.titles.take(take))),
            ("total_awards_received", "0"),
            ("treatment_tags", "[]"),
            ("upvote_ratio", UPVOTE_RATIOS.take(pa.array(rng.integers(0, 41, n)))),
            (
                "url",
                jstr(
                    pc.choose(
                        kinds,
                        concat("https://www.reddit.com", permalink),
                        image_url,
                        concat("https://www.reddit.com/gallery/", pid),
                        concat("https://example.com/", self.link_paths.take(take)),
                    )
                ),
            ),
            ("whitelist_status", '"all_ads"'),
            ("wls", "6"),
        ]
        preview = concat(
            ',"post_hint":"image","preview":{"enabled":true,"images":[{"id":"prev',
            pid,
            f'","resolutions":[{{"height":{half},"url":"',
            escaped,
            f'","width":{half}}}],"source":{{"height":{size},"url":"',
            escaped,
            f'","width":{size}}},"variants":{{}}}}]}}',
        )
        gallery = scatter(kind == GALLERY, self._gallery_tails(rows[kind == GALLERY]))
        tail = pc.choose(kinds, "", preview, gallery, ',"post_hint":"link"')
        return json_lines(fields, tail)

    def _gallery_tails(self, rows: np.ndarray) -> pa.Array:
        """`is_gallery`, `gallery_data` and `media_metadata` of the given gallery posts."""
        m = self.m
        lo, hi = np.searchsorted(m.image_post, [rows[0], rows[-1] + 1]) if len(rows) else (0, 0)
        items = np.arange(lo, hi)
        items = items[m.post_kind[m.image_post[items]] == GALLERY]
        count = np.bincount(np.searchsorted(rows, m.image_post[items]), minlength=len(rows))
        media_id = self.image_ids.take(pa.array(items))
        j = jnum(m.image_position[items])
        url = concat(self.base, media_id, ".png")
        counter = 36**5 + m.post_serial[m.image_post[items]] + 1
        size, half = self.spec.image_size, self.spec.image_size // 2
        entry = concat(
            '"',
            media_id,
            '":{"status":"valid","e":"Image","m":"image/png","id":"',
            media_id,
            f'","p":[{{"x":{half},"y":{half},"u":"',
            url,
            f"?width={half}&amp;format=png&amp;auto=webp&amp;s=p",
            j,
            f'"}}],"s":{{"x":{size},"y":{size},"u":"',
            url,
            f"?width={size}&amp;format=png&amp;auto=webp&amp;s=s",
            j,
            '"}}',
        )
        item = concat(
            '{"id":', jnum(counter * 10 + m.image_position[items]), ',"media_id":"', media_id, '"}'
        )
        pid = self.pids.take(pa.array(rows))
        failed = pc.if_else(
            pa.array(m.post_failed[rows]), concat(',"', pid, 'bad":{"status":"failed"}'), ""
        )
        return concat(
            ',"is_gallery":true,"gallery_data":{"items":[',
            _join_groups(item, count, ","),
            ']},"media_metadata":{',
            _join_groups(entry, count, ","),
            failed,
            "}",
        )

    # ------------------------------------------------------------ comments
    def _comment_lines(self, rows: np.ndarray, rng: np.random.Generator) -> pa.Array:
        m, w = self.m, self.w
        n = len(rows)
        post, bot, user = m.comment_post[rows], m.comment_bot[rows], m.comment_user[rows]
        human, deleted, created = bot < 0, m.comment_deleted[rows], m.comment_created[rows]
        cid = comment_ids(m.comment_serial[rows])
        sub = m.post_sub[post]
        sub_name = self.sub_names.take(pa.array(sub))
        who = pa.array(np.maximum(user, 0))
        author = pc.if_else(
            pa.array(human),
            pc.if_else(pa.array(deleted), "[deleted]", w.usernames.take(who)),
            BOT_NAMES.take(pa.array(np.maximum(bot, 0))),
        )
        fullname = pc.if_else(
            pa.array(human),
            jnullable(w.user_fullnames.take(who), deleted),
            BOT_FULLNAMES.take(pa.array(np.maximum(bot, 0))),
        )
        link_id = concat("t3_", self.pids.take(pa.array(post)))
        parent = m.comment_parent[rows]
        replies = parent >= 0
        parent_id = scatter(replies, concat("t1_", comment_ids(m.comment_serial[parent[replies]])))
        parent_id = pc.if_else(pa.array(replies), parent_id, link_id)
        edited = human & (rng.random(n) < EDITED_COMMENTS)
        edited_at = created + rng.integers(60, 86400, n)
        score = np.where(human, rng.geometric(0.15, n) - 1, 1)
        score = np.where(m.comment_negative[rows], -rng.geometric(NEGATIVE_SCORE_P, n), score)
        fields = [
            ("all_awardings", "[]"),
            ("archived", "false"),
            ("associated_award", "null"),
            ("author", jstr(author)),
            ("author_flair_background_color", "null"),
            ("author_flair_css_class", "null"),
            ("author_flair_richtext", "[]"),
            ("author_flair_template_id", "null"),
            ("author_flair_text", "null"),
            ("author_flair_text_color", "null"),
            ("author_flair_type", '"text"'),
            ("author_fullname", fullname),
            ("author_patreon_flair", "false"),
            ("author_premium", "false"),
            ("awarders", "[]"),
            ("body", jstr(self._bodies(rows, sub_name, rng))),
            ("collapsed_because_crowd_control", "null"),
            ("comment_type", "null"),
            ("controversiality", "0"),
            ("created_utc", jnum(created)),
            ("distinguished", pc.if_else(pa.array(bot == 0), '"moderator"', "null")),
            ("edited", pc.if_else(pa.array(edited), concat(jnum(edited_at), ".0"), "false")),
            ("gilded", "0"),
            ("gildings", "{}"),
            ("id", jstr(cid)),
            ("is_submitter", jbool(human & (user == m.post_user[post]))),
            ("link_id", jstr(link_id)),
            ("locked", "false"),
            ("no_follow", "true"),
            ("parent_id", jstr(parent_id)),
            ("permalink", jstr(concat(self.permalinks.take(pa.array(post)), cid, "/"))),
            ("retrieved_on", self.retrieved),
            ("score", jnum(score)),
            ("send_replies", "true"),
            ("stickied", jbool(bot == 0)),
            ("subreddit", jstr(sub_name)),
            ("subreddit_id", self.sub_ids.take(pa.array(sub))),
            ("subreddit_name_prefixed", jstr(concat("r/", sub_name))),
            ("subreddit_type", '"public"'),
            ("top_awarded_type", "null"),
            ("total_awards_received", "0"),
            ("treatment_tags", "[]"),
        ]
        return json_lines(fields)

    def _bodies(self, rows: np.ndarray, sub_name: pa.Array, rng: np.random.Generator) -> pa.Array:
        """Users' comments from their subreddit's community words, a marker phrase of the
        author's demographics now and then, negativity in downvoted ones, `[removed]`/
        `[deleted]`; the bots' templates."""
        m, spec, words = self.m, self.spec, self.words
        n = len(rows)
        bot, user, negative = m.comment_bot[rows], m.comment_user[rows], m.comment_negative[rows]
        human = bot < 0
        lengths = np.where(human, rng.integers(*BODY_WORDS, n), 0)
        theme = self.sub_theme[m.post_sub[m.comment_post[rows]]]
        share = np.where(negative, NEGATIVE_VOCAB, TEXT_VOCAB).astype(np.float32)
        tokens = words.draw(theme, lengths, share, rng)
        marked = np.flatnonzero(human & (rng.random(n) < MARKER_RATE))
        value = self.w.demographic_value[user[marked], rng.integers(0, 3, len(marked))]
        at = _starts(lengths)[marked] + (rng.random(len(marked)) * lengths[marked]).astype(int)
        phrase = (rng.random(len(marked)) * words.marker_len[value]).astype(np.int64)
        tokens[at] = words.marker_lo[value] + phrase
        neg = np.flatnonzero(negative)  # a phrase first, one more word somewhere after it
        start = _starts(lengths)[neg]
        tokens[start] = words.negative_lo + _index(rng.random(len(neg)), len(NEGATIVE))
        inside = start + 1 + (rng.random(len(neg)) * (lengths[neg] - 1)).astype(np.int64)
        tokens[inside] = words.negative_lo + _index(rng.random(len(neg)), len(NEGATIVE))
        body = joined(tokens, lengths, words.table, " ")
        r = rng.random(n)
        body = pc.if_else(pa.array(r < spec.removed_share), "[removed]", body)
        body = pc.if_else(
            pa.array((r >= spec.removed_share) & (r < 2 * spec.removed_share)), "[deleted]", body
        )
        automod = concat(*_template(AUTOMOD_BODY, sub_name))
        others = concat(
            "I will be messaging you in 1 day. (", BOT_NAMES.take(pa.array(np.maximum(bot, 0))), ")"
        )
        return pc.if_else(pa.array(human), body, pc.if_else(pa.array(bot == 0), automod, others))


def _template(text: str, value: pa.Array) -> list:
    """`text.format(value)` as concatenation parts."""
    head, tail = text.split("{}")
    return [head, value, tail]


def _join_groups(values: pa.Array, counts: np.ndarray, sep: str) -> pa.Array:
    """Consecutive runs of `counts[i]` values joined with `sep`."""
    offsets = np.zeros(len(counts) + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    return pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), values), sep)
