"""The lake's layout on disk and its file-level primitives (atomic swap, fingerprints)."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
import uuid
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq

from schemas.tables import table


class Lake:
    """One root folder; one folder per layer; one table per folder."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).absolute()

    def path(self, name: str) -> Path:
        """Folder of a table (``bronze/comments``) or of a layer (``reports``)."""
        return self.root / name

    @property
    def manifests(self) -> Path:
        return self.root / "_manifests"

    def staging(self, *parts: str) -> Path:
        """A scratch folder inside the lake, on the same filesystem as the tables."""
        return self.root.joinpath("_staging", *parts)

    def rows(self, name: str) -> int:
        """Row count of a table from Parquet footers (0 when it has no files yet)."""
        return count_rows(self.path(name))

    def read(self, name: str):
        """A table as a pyarrow Table with its declared schema (partition columns included)."""
        spec = table(name)
        root = self.path(name)
        files = data_files(root)  # only the table's Parquet files (a folder may hold more)
        if not files:
            return spec.schema.empty_table()
        part = (
            ds.partitioning(
                spec.schema.empty_table().select(list(spec.partition_by)).schema, flavor="hive"
            )
            if spec.partition_by
            else None
        )
        return ds.dataset(
            [str(f) for f in files],
            format="parquet",
            schema=spec.schema,
            partitioning=part,
            partition_base_dir=str(root),
        ).to_table()

    def commit_table(self, name: str, staged: Path) -> None:
        """Replace table `name` by the folder `staged` (write aside, then swap)."""
        swap_in(staged, self.path(name))

    def write_table(self, name: str, data) -> None:
        """Replace table `name` by an Arrow table, cast to its declared schema (atomic)."""
        staged = self.staging("write", name)
        shutil.rmtree(staged, ignore_errors=True)
        staged.mkdir(parents=True)
        pq.write_table(data.cast(table(name).schema), staged / "part-00000.parquet")
        self.commit_table(name, staged)


def data_files(root: Path) -> list[Path]:
    """Parquet data files under a table folder, sorted (hidden and _-prefixed skipped)."""
    if not root.exists():
        return []
    return sorted(
        p
        for p in root.rglob("*.parquet")
        if not any(part.startswith(("_", ".")) for part in p.relative_to(root).parts)
    )


def count_rows(root: Path) -> int:
    """Rows of the Parquet files under a folder, from their footers."""
    files = data_files(root)
    return ds.dataset([str(f) for f in files], format="parquet").count_rows() if files else 0


def fingerprint(paths: list[Path] | list[str]) -> str:
    """Cheap content fingerprint of files: path, size and mtime of each."""
    h = hashlib.sha1()
    for p in sorted(map(str, paths)):
        st = os.stat(p)
        h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def table_fingerprint(root: Path) -> str:
    """Fingerprint of a table folder's data files (changes whenever a commit lands)."""
    return fingerprint(data_files(root))


def swap_in(staged: Path, target: Path) -> None:
    """Atomically replace folder `target` by `staged` (same filesystem)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    trash = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
    if target.exists():
        os.replace(target, trash)
    os.replace(staged, target)
    shutil.rmtree(trash, ignore_errors=True)


class RowLog:
    """Record-level resume for long stages.

    Finished rows land as Parquet parts in a staging folder as they come (each part is
    written aside, then renamed, so a kill never leaves half a part). A rerun reads them
    back and only does the rest; the stage then writes the table once and `clear`s the log.
    """

    def __init__(self, lake: Lake, stage: str, name: str, key: str = "request_id"):
        self.name = name
        self.key = key  # the column that identifies a row
        self.dir = lake.staging("rows", stage, name)

    def read(self):
        """Every row logged so far (the table's schema; empty when none)."""
        spec = table(self.name)
        files = data_files(self.dir)
        if not files:
            return spec.schema.empty_table()
        return ds.dataset([str(f) for f in files], format="parquet", schema=spec.schema).to_table()

    def append(self, rows) -> None:
        """Log a batch of finished rows (an Arrow table) durably."""
        if not rows.num_rows:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        name = f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"  # sorts by time
        tmp = self.dir / f".{name}.tmp"
        pq.write_table(rows.cast(table(self.name).schema), tmp)
        os.replace(tmp, self.dir / name)

    def clear(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def pending(self, ids: list[str], previous) -> list[str]:
        """`ids` with no ``done`` row yet, in the table from before or in this log."""
        import pyarrow.compute as pc

        done: set[str] = set()
        for t in (previous, self.read()):
            if t.num_rows:
                done.update(t.filter(pc.equal(t["status"], "done"))[self.key].to_pylist())
        return [i for i in ids if i not in done]

    def merge(self, ids: list[str], previous):
        """The finished table: one row per id in `ids` order (a done row wins over a failed
        one; among equals the newest), rows of ids no longer asked for dropped."""
        import pyarrow as pa

        wanted = set(ids)
        best: dict[str, dict] = {}
        for t in (previous, self.read()):  # the log's parts sort in write order
            for row in t.to_pylist():
                rid = row[self.key]
                if rid not in wanted:
                    continue
                old = best.get(rid)
                if old is None or row["status"] == "done" or old["status"] != "done":
                    best[rid] = row
        order = {i: n for n, i in enumerate(ids)}
        rows = sorted(best.values(), key=lambda row: order[row[self.key]])
        return pa.Table.from_pylist(rows, schema=table(self.name).schema)
