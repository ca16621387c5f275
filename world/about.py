"""The sample world's subreddit metadata as an Arctic Shift ``subreddits_YYYY-MM.zst``
dump (Reddit's about.json ``data`` per line).

A community subreddit's title and public description are drawn from its community's
planted vocabulary (a generic subreddit's from the general words): the world plants what
a subreddit is about, as its moderators would write it, never a label or an answer. A
share of subreddits also appear in an older version (an earlier retrieval, stale text)
after the current ones, so ingest's keep-the-newest rule has work to do; the file gets the
spec's corrupt lines like the other dumps.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa

from world.lines import DumpWriter
from world.planted import World, month_bounds
from world.vocab import GENERAL, THEMES

STALE_SHARE = 0.1  # subreddits that also appear in an older version
TITLE_WORDS, DESCRIPTION_WORDS = 3, 10
DAY = 86400


def _words(rng: np.random.Generator, vocab: tuple[str, ...], n: int) -> list[str]:
    return [vocab[i] for i in rng.choice(len(vocab), min(n, len(vocab)), replace=False)]


def about_records(world: World) -> list[dict]:
    """One about.json object per subreddit (current versions first, then stale ones)."""
    spec = world.spec
    rng = np.random.default_rng([spec.seed, 11])
    first, _ = month_bounds(spec.months[0])
    _, retrieved = month_bounds(spec.months[-1])
    themes = list(THEMES)
    popularity = np.concatenate([world.sub_weight, world.generic_weight])
    records, stale = [], []
    for s, (name, fullname) in enumerate(
        zip(world.subreddit_names, world.subreddit_ids.to_pylist(), strict=True)
    ):
        community = int(world.sub_community[s])
        vocab = THEMES[themes[world.theme[community]]] if community >= 0 else GENERAL
        title = " ".join(_words(rng, vocab, TITLE_WORDS))
        rec = {
            "id": fullname.removeprefix("t5_"),
            "name": fullname,
            "display_name": name,
            "title": f"{name}: {title}",
            "public_description": "A place for " + " ".join(_words(rng, vocab, DESCRIPTION_WORDS)),
            "description": "Be kind. Posts about " + ", ".join(_words(rng, vocab, 5)) + ".",
            "subscribers": int(100 + popularity[s] * spec.users * 1000),
            "created_utc": float(first - int(rng.integers(30, 3000)) * DAY),
            "over18": False,
            "lang": "en",
            "subreddit_type": "public",
            "retrieved_on": retrieved + int(rng.integers(0, DAY)),
        }
        records.append(rec)
        if rng.random() < STALE_SHARE:
            old = " ".join(_words(rng, GENERAL, TITLE_WORDS))
            stale.append({**rec, "title": old, "retrieved_on": rec["retrieved_on"] - 30 * DAY})
    return records + stale


def write_about(world: World, dumps: Path) -> dict[str, int]:
    """Write ``subreddits_<last month>.zst``; returns its lines."""
    spec = world.spec
    records = about_records(world)
    lines = pa.array([json.dumps(r, separators=(",", ":")) + "\n" for r in records])
    name = f"subreddits_{spec.months[-1]}.zst"
    rng = np.random.default_rng([spec.seed, 12])
    dump = DumpWriter(dumps / name, len(records), spec.corrupt_lines, rng, spec.zstd_level)
    dump.write(lines)
    return {name: dump.close()}
