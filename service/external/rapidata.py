"""RapidData human preference pairs: rows `prompt, image1, image2, votes_image1,
votes_image2, model1, model2` (Parquet, HF `datasets` Arrow or CSV); an image is a URL,
bytes, an HF Image struct or a path inside the folder. No users: each pair's majority vote
is the crowd's choice, and every scorer is asked which image it prefers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from service.external.files import image_value, read_table, table_files

NAME = "rapidata"
NEED = ("prompt", "image1", "image2", "votes_image1", "votes_image2")
OPTIONAL = ("model1", "model2")


@dataclass
class Side:
    """One image of a pair: where it is and its votes."""

    url: str | None
    image: bytes | None
    path: str | None
    votes: float
    model: str


@dataclass
class Pair:
    """A human-voted pair of images for one prompt."""

    pair_id: str
    prompt: str
    sides: tuple[Side, Side]


def load(root: Path, pairs: int | None = None) -> list[Pair]:
    """The first `pairs` pairs under `root` (all when None), file by file; ValueError
    naming the file and row of a negative or missing vote count."""
    root = Path(root)
    out: list[Pair] = []
    for f in table_files(root):
        t = read_table(f, NEED, OPTIONAL)
        for n, r in enumerate(t.to_pylist()):
            if pairs is not None and len(out) >= pairs:
                return out
            sides = []
            for k in (1, 2):
                votes = r[f"votes_image{k}"]
                if votes is None or float(votes) < 0:
                    raise ValueError(f"{f.name}:{n + 1}: votes_image{k} is {votes!r}")
                url, data, path = image_value(r[f"image{k}"], root)
                sides.append(Side(url, data, path, float(votes), str(r.get(f"model{k}") or "")))
            out.append(Pair(f"{f.stem}-{n}", str(r["prompt"] or ""), (sides[0], sides[1])))
    return out
