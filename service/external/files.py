"""Reading a benchmark's files: tabular rows from Parquet, Arrow (HF `datasets`) or CSV
under a folder, and an image column's value (URL, bytes or a path inside the folder)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

#: table files a folder may hold, by suffix
SUFFIXES = (".parquet", ".arrow", ".csv")


def table_files(root: Path, suffixes: tuple[str, ...] = SUFFIXES) -> list[Path]:
    """The folder's table files (recursively: HF layouts keep them under data/), sorted;
    FileNotFoundError when there is none."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder")
    files = sorted(p for p in root.rglob("*") if p.suffix in suffixes and p.is_file())
    if not files:
        raise FileNotFoundError(f"{root}: no {' / '.join(suffixes)} file")
    return files


def read_table(path: Path, need: tuple[str, ...], optional: tuple[str, ...] = ()) -> pa.Table:
    """The `need` columns (ValueError naming the missing ones) and the `optional` ones
    present, of one Parquet, Arrow IPC stream/file or CSV file."""
    if path.suffix == ".parquet":
        names = pq.read_schema(path).names
    elif path.suffix == ".arrow":
        table = _arrow(path)
        names = table.schema.names
    else:
        table = pcsv.read_csv(path)
        names = table.schema.names
    missing = [c for c in need if c not in names]
    if missing:
        raise ValueError(f"{path.name}: missing column(s) {', '.join(missing)}")
    cols = [*need, *(c for c in optional if c in names)]
    if path.suffix == ".parquet":
        return pq.read_table(path, columns=cols)
    return table.select(cols)


def _arrow(path: Path) -> pa.Table:
    """An HF `datasets` Arrow file (IPC stream) or an Arrow IPC file."""
    with pa.memory_map(str(path)) as f:
        try:
            return pa.ipc.open_stream(f).read_all()
        except pa.ArrowInvalid:
            f.seek(0)
            return pa.ipc.open_file(f).read_all()


def image_value(value: object, root: Path) -> tuple[str | None, bytes | None, str | None]:
    """An image column's value -> (http(s) URL, bytes, local path inside `root`): a string
    URL or relative path, or an HF Image struct {bytes, path}; a path that leaves `root`
    is refused (ValueError)."""
    if isinstance(value, dict):
        if value.get("bytes"):
            return None, bytes(value["bytes"]), None
        value = value.get("path")
    if isinstance(value, bytes | bytearray):
        return None, bytes(value), None
    if not value:
        return None, None, None
    text = str(value)
    if text.lower().startswith(("http://", "https://")):
        return text, None, None
    base = Path(root).resolve()
    path = (base / text).resolve()
    if base not in path.parents:
        raise ValueError(f"image path {text!r} leaves {base}")
    return None, None, str(path)
