"""External benchmarks from local files, behind one loader interface.

A loader turns a benchmark's files into the shape ZIPBench scores: users, each user's
history (what a persona or a history baseline may see), held-out references (what
generated images are compared with) and base prompts (`split_history`, one rule for
every benchmark). Here: `movielens` (MovieLens ratings + movie posters). The parsers of
PIP, Pick-a-Pic, RapidData and recbole's MovieLens-100K, and the command that runs them
(`zipp bench external NAME`), are in `service.external`.

    bench = load_external("movielens", "/data/ml-latest-small", references=2)
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pyarrow as pa

ITEMS = pa.schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("title", pa.string(), nullable=False),
        pa.field("image_path", pa.string()),  # absolute path of the item's image, if any
        pa.field("timestamp", pa.int64(), nullable=False),  # or the item's order in its file
        pa.field("image_url", pa.string()),  # an http(s) URL (fetched with the hostile rules)
        pa.field("image", pa.binary()),  # the image's bytes where the files carry them
        pa.field("rating", pa.float64()),  # a rating the user gave, if any
    ]
)
PROMPTS = pa.schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("prompt_id", pa.string(), nullable=False),
        pa.field("prompt", pa.string(), nullable=False),
    ]
)


@dataclass
class ExternalBench:
    """A benchmark read from files: history and references share the ITEMS schema."""

    name: str
    history: pa.Table
    references: pa.Table
    prompts: pa.Table
    notes: dict[str, int] = field(default_factory=dict)  # rows skipped, by why


def split_history(
    name: str,
    liked: dict[str, list[dict]],
    references: int,
    prompt: Callable[[dict], str],
    users: int | None = None,
) -> ExternalBench:
    """Each user's items (oldest first) -> the newest `references` liked ones held out
    (`liked` items carry ``liked: False`` to stay history only), one base prompt per
    held-out item (`prompt(item)`), the rest history; users with no liked item to hold
    out or nothing left are dropped; with `users`, those with the most history first."""
    split = {}
    for user, items in liked.items():
        held = [i for i in items if i.get("liked", True)][-references:] if references else []
        out = {id(i) for i in held}
        rest = [i for i in items if id(i) not in out]
        if held and rest:
            split[user] = (rest, held[::-1])  # references newest first
    order = sorted(split, key=lambda u: (-len(split[u][0]), _natural(u)))
    order = sorted(order[:users] if users else order, key=_natural)
    history = [i for u in order for i in split[u][0]]
    refs = [i for u in order for i in split[u][1]]
    rows = [
        {"user_id": i["user_id"], "prompt_id": f"{name}-{i['item_id']}", "prompt": prompt(i)}
        for i in refs
    ]
    keep = ITEMS.names
    return ExternalBench(
        name,
        pa.Table.from_pylist([{k: i.get(k) for k in keep} for i in history], schema=ITEMS),
        pa.Table.from_pylist([{k: i.get(k) for k in keep} for i in refs], schema=ITEMS),
        pa.Table.from_pylist(rows, schema=PROMPTS),
    )


class Loader(Protocol):
    """Reads one benchmark's files. `references` newest liked items per user are held out."""

    name: str

    def load(self, root: Path, references: int) -> ExternalBench: ...


class MovieLensPosters:
    """MovieLens (`ratings.csv`: userId,movieId,rating,timestamp; `movies.csv`:
    movieId,title,genres) with posters as `posters/<movieId>.{jpg,png}`. A user's liked
    movies (rating >= `min_rating`) with a poster form their history; the newest
    `references` are held out, and each held-out movie gives a neutral base prompt
    ("a movie poster for <title>")."""

    name = "movielens"

    def __init__(self, min_rating: float = 4.0):
        self.min_rating = min_rating

    def load(self, root: Path, references: int) -> ExternalBench:
        root = Path(root)
        for f in ("ratings.csv", "movies.csv"):
            if not (root / f).is_file():
                raise FileNotFoundError(f"movielens: {root / f} not found")
        titles = {
            r["movieId"]: r["title"] for r in csv_rows(root / "movies.csv", {"movieId", "title"})
        }
        posters = {
            p.stem: str(p.resolve())
            for p in (root / "posters").glob("*")
            if p.suffix.lower() in (".jpg", ".jpeg", ".png")
        }
        liked: dict[str, list[dict]] = {}
        for r in csv_rows(root / "ratings.csv", {"userId", "movieId", "rating", "timestamp"}):
            if float(r["rating"]) < self.min_rating or r["movieId"] not in posters:
                continue
            liked.setdefault(r["userId"], []).append(
                {
                    "user_id": r["userId"],
                    "item_id": r["movieId"],
                    "title": titles.get(r["movieId"], r["movieId"]),
                    "image_path": posters[r["movieId"]],
                    "timestamp": int(r["timestamp"]),
                }
            )
        history, refs, prompts = [], [], []
        for user in sorted(liked, key=_natural):
            items = sorted(liked[user], key=lambda x: (-x["timestamp"], x["item_id"]))
            if len(items) <= references:
                continue  # nothing would be left to mine a persona from
            refs += items[:references]
            history += items[references:]
            prompts += [
                {
                    "user_id": user,
                    "prompt_id": f"ml-{i['item_id']}",
                    "prompt": f"a movie poster for {i['title']}",
                }
                for i in items[:references]
            ]
        return ExternalBench(
            self.name,
            pa.Table.from_pylist(history, schema=ITEMS),
            pa.Table.from_pylist(refs, schema=ITEMS),
            pa.Table.from_pylist(prompts, schema=PROMPTS),
        )


def csv_rows(path: Path, need: set[str]):
    """A CSV file's rows as dicts; ValueError naming a missing column or an empty field
    by file and line."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = need - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        for n, row in enumerate(reader, 2):
            if any(not row.get(c) for c in need):
                raise ValueError(
                    f"{path}:{n}: empty {', '.join(c for c in need if not row.get(c))}"
                )
            yield row


def _natural(s: str):
    return (0, int(s)) if s.isdigit() else (1, s)


LOADERS: dict[str, Loader] = {"movielens": MovieLensPosters()}
#: read by `service.external` (`zipp bench external NAME`), not by `load_external`
ELSEWHERE = ("pip", "pickapic", "rapidata")


def load_external(name: str, root: str | Path, references: int = 2) -> ExternalBench:
    """Load a named external benchmark from local files."""
    if name not in LOADERS:
        where = f" ({name}: `zipp bench external {name}`)" if name in ELSEWHERE else ""
        raise ValueError(f"unknown external benchmark {name!r}{where}; have: {', '.join(LOADERS)}")
    return LOADERS[name].load(Path(root), references)
