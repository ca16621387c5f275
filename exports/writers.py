"""The export formats: Parquet, JSONL, Delta and a HF `datasets` folder (images embedded),
each written into a new folder."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from exports.errors import ExportError

FORMATS = ("parquet", "jsonl", "delta", "hf")


def _jsonl(table: pa.Table, path: Path) -> None:
    """One JSON object per row; lists and structs as JSON arrays and objects."""
    with open(path, "w", encoding="utf-8") as f:
        for batch in table.to_batches(max_chunksize=4096):
            for row in batch.to_pylist():
                f.write(json.dumps(row, ensure_ascii=False) + "\n")


def _hf(table: pa.Table, out: Path, images_root: Path | None) -> None:
    """A `datasets.load_from_disk` folder; with `images_root` and a ``path`` column, an
    ``image`` column (``datasets.Image``) whose PNG bytes are embedded in the dataset."""
    import datasets

    if images_root is not None and "path" in table.column_names:
        files = [None if p is None else str(images_root / p) for p in table["path"].to_pylist()]
        missing = [f for f in files if f is None or not Path(f).is_file()]
        if missing:
            raise ExportError(f"{len(missing)} image file(s) missing, e.g. {missing[0]}")
        table = table.append_column("image", pa.array(files, pa.string()))
    features = datasets.Features.from_arrow_schema(table.schema)
    ds_ = datasets.Dataset.from_dict({c: table[c] for c in table.column_names}, features=features)
    if "image" in ds_.column_names:
        ds_ = ds_.cast_column("image", datasets.Image())
    ds_.save_to_disk(str(out))  # embeds local image files into the saved Arrow data


def write(table: pa.Table, fmt: str, out: Path, name: str, images_root: Path | None = None) -> Path:
    """Write `table` in format `fmt` into the new folder `out` (which must not exist).

    parquet / jsonl: ``out/<name>.<fmt>``; delta: `out` is the Delta table; hf: `out` is a
    `datasets` save_to_disk folder, with images from `images_root` (see `_hf`)."""
    if fmt == "parquet":
        out.mkdir(parents=True)
        pq.write_table(table, out / f"{name}.parquet")
    elif fmt == "jsonl":
        out.mkdir(parents=True)
        _jsonl(table, out / f"{name}.jsonl")
    elif fmt == "delta":
        from deltalake import write_deltalake

        write_deltalake(str(out), table, mode="overwrite")
    elif fmt == "hf":
        _hf(table, out, images_root)
    else:
        raise ExportError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    return out


def check_out(out: Path, overwrite: bool) -> None:
    """Refuse a target that is a file, or a non-empty folder unless `overwrite`."""
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ExportError(f"--out {out} is not empty: pass --overwrite to replace it")
