"""Pick-a-Pic v2: ranking rows `caption, user_id, ranking_id, image_0_uid, image_1_uid,
label_0, label_1, best_image_uid` (Parquet or HF `datasets` Arrow files, or CSV), each
image as bytes (`jpg_0`/`jpg_1`), a URL (`image_0_url`/`image_1_url`) or a file
`images/<uid>.{jpg,png,webp}` in the folder. The image a user chose is liked history
with its caption; ties (no chosen image) are skipped, counted. The newest
`references` choices are held out: their captions the base prompts, the chosen images the
references. Order: `created_at` when the rows have it, else file order."""

from __future__ import annotations

from pathlib import Path

import pyarrow.compute as pc

from evaluation.external import ExternalBench, split_history
from service.external.files import image_value, read_table, table_files

NAME = "pickapic"
NEED = (
    "caption",
    "user_id",
    "ranking_id",
    "image_0_uid",
    "image_1_uid",
    "label_0",
    "label_1",
    "best_image_uid",
)
OPTIONAL = ("image_0_url", "image_1_url", "created_at")
BYTES = ("jpg_0", "jpg_1")


def load(root: Path, references: int, users: int | None = None) -> ExternalBench:
    """The rows under `root` -> an `ExternalBench`; images as bytes are read only for
    the users kept."""
    root = Path(root)
    by_user: dict[str, list[dict]] = {}
    seen: set[tuple[str, str]] = set()
    ties = 0
    files = table_files(root)
    for f in files:
        t = read_table(f, NEED, OPTIONAL)
        for n, r in enumerate(t.to_pylist()):
            if r["label_0"] == r["label_1"]:
                ties += 1
                continue
            side = 0 if r["best_image_uid"] == r["image_0_uid"] else 1
            user, uid = str(r["user_id"]), str(r["best_image_uid"])
            if (user, uid) in seen:
                continue  # the same choice in another ranking row
            seen.add((user, uid))
            url, _, path = image_value(r.get(f"image_{side}_url"), root)
            by_user.setdefault(user, []).append(
                {
                    "user_id": user,
                    "item_id": uid,
                    "title": str(r["caption"]),
                    "image_url": url,
                    "image_path": path or _local(root, uid),
                    "timestamp": _when(r.get("created_at"), n),
                    "_at": (str(f), n, side),
                }
            )
    for items in by_user.values():
        items.sort(key=lambda i: i["timestamp"])
    bench = split_history(NAME, by_user, references, lambda i: i["title"], users)
    bench.notes["tied_rows_skipped"] = ties
    return _with_bytes(bench, by_user, files)


def _when(created: object, n: int) -> int:
    """A row's order: its creation time in microseconds when given, else its row number."""
    if created is None:
        return n
    if hasattr(created, "timestamp"):
        return int(created.timestamp() * 1e6)
    try:
        return int(created)
    except (TypeError, ValueError):
        return n


def _local(root: Path, uid: str) -> str | None:
    """The chosen image's file under `root`/images, by its uid (none that leaves it)."""
    folder = (root / "images").resolve()
    for ext in (".jpg", ".jpeg", ".png", ".webp"):
        p = (folder / f"{uid}{ext}").resolve()
        if p.parent == folder and p.is_file():
            return str(p)
    return None


def _with_bytes(bench: ExternalBench, by_user: dict, files: list) -> ExternalBench:
    """The kept items' `jpg_0`/`jpg_1` bytes, read file by file for those rows only."""
    import pyarrow as pa

    where = {(i["user_id"], i["item_id"]): i["_at"] for v in by_user.values() for i in v}
    wanted: dict[str, dict[int, int]] = {}
    for t in (bench.history, bench.references):
        for u, it in zip(t["user_id"].to_pylist(), t["item_id"].to_pylist(), strict=True):
            f, n, side = where[(u, it)]
            wanted.setdefault(f, {})[n] = side
    got: dict[tuple[str, int], bytes] = {}
    for f in map(str, files):
        rows = wanted.get(f)
        if not rows or not f.endswith((".parquet", ".arrow")):
            continue
        try:
            t = read_table(Path(f), BYTES)
        except ValueError:
            continue  # no image bytes in this file
        idx = pa.array(sorted(rows), pa.int64())
        for n, b0, b1 in zip(
            idx.to_pylist(), *(pc.take(t[c], idx).to_pylist() for c in BYTES), strict=True
        ):
            got[(f, n)] = b0 if rows[n] == 0 else b1
    for attr in ("history", "references"):
        t = getattr(bench, attr)
        data = [
            got.get(where[(u, i)][:2])
            for u, i in zip(t["user_id"].to_pylist(), t["item_id"].to_pylist(), strict=True)
        ]
        col = t.schema.get_field_index("image")
        setattr(bench, attr, t.set_column(col, "image", pa.array(data, pa.binary())))
    return bench


def kind(item: dict) -> str:
    """How a history item reads in the persona's evidence."""
    return "chose an image for"
