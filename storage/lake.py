"""The lake's layout on disk, its two table formats and its file-level primitives.

Every lake table is a folder. Written in ``lake.format``: ``parquet`` (Parquet files,
hive partition folders, replaced by an atomic folder swap) or ``delta`` (a Delta table:
``_delta_log/`` plus Parquet files, written with the JVM-free `deltalake` package, or
with delta-spark from a SparkSession that has the Delta jars). Readers detect the
format per folder (a ``_delta_log`` folder means Delta), so a lake may hold both while
it is being converted; a table written in the other format is converted (written aside,
then swapped in).

Deletions are honoured in both formats: a Delta write that drops rows (overwrite,
`delete_where`) is followed by a VACUUM with retention 0, so no old data file still holds
the rows.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from schemas.tables import ABLATION, TABLES, TableSpec, table

DELTA_LOG = "_delta_log"
FORMATS = ("parquet", "delta")


class Lake:
    """One root folder; one folder per layer; one table per folder."""

    def __init__(self, root: str | os.PathLike, format: Literal["parquet", "delta"] = "parquet"):
        if format not in FORMATS:
            raise ValueError(f"lake.format must be one of {FORMATS}, not {format!r}")
        self.root = Path(root).absolute()
        self.format = format

    def __repr__(self) -> str:
        return f"Lake({str(self.root)!r}, {self.format!r})"

    def path(self, name: str) -> Path:
        """Folder of a table (``bronze/comments``) or of a layer (``reports``)."""
        return self.root / name

    @property
    def manifests(self) -> Path:
        return self.root / "_manifests"

    def staging(self, *parts: str) -> Path:
        """A scratch folder inside the lake, on the same filesystem as the tables."""
        return self.root.joinpath("_staging", *parts)

    # -- what is there -------------------------------------------------------------

    def is_delta(self, name: str) -> bool:
        """Whether the table's folder holds a Delta table (it has a ``_delta_log``)."""
        return is_delta(self.path(name))

    def stored_format(self, name: str) -> str | None:
        """``delta``, ``parquet``, or None when the folder is missing or empty."""
        root = self.path(name)
        if is_delta(root):
            return "delta"
        if root.is_dir() and any(root.iterdir()):
            return "parquet"
        return None

    def rows(self, name: str) -> int:
        """Row count of a table (0 when it has no files yet); Delta from the live files'
        statistics in the log (a count where a writer left none)."""
        return count_rows(self.path(name))

    def fingerprint(self, name: str) -> str:
        """Changes whenever a commit lands (Parquet: the data files' names, sizes and
        mtimes; Delta: the log's entries); the same value for a missing or empty table."""
        return table_fingerprint(self.path(name))

    # -- reading -------------------------------------------------------------------

    def dataset(self, name: str) -> ds.Dataset | None:
        """The table as a pyarrow Dataset in its declared schema (partition columns
        included), in either format; None when it has no data files yet."""
        spec = table(name)
        root = self.path(name)
        if is_delta(root):
            from deltalake import DeltaTable

            return DeltaTable(str(root)).to_pyarrow_dataset(schema=spec.schema)
        return _parquet_dataset(root, spec)

    def read(
        self, name: str, columns: list[str] | None = None, filter: ds.Expression | None = None
    ) -> pa.Table:
        """A table as a pyarrow Table with its declared schema (partition columns
        included), in either format; an empty table of that schema when it has no rows."""
        spec = table(name)
        schema = _select(spec.schema, columns)
        data = self.dataset(name)
        if data is None:
            return schema.empty_table()
        return _conform(data.to_table(columns=schema.names, filter=filter), schema)

    def batches(
        self, name: str, columns: list[str] | None = None, batch_rows: int = 131_072
    ) -> Iterator[pa.Table]:
        """`read` in pieces of at most `batch_rows` rows, scanned with little read-ahead:
        memory holds a few Parquet row groups, however big the table."""
        schema = _select(table(name).schema, columns)
        data = self.dataset(name)
        if data is None:
            return
        scan = data.to_batches(
            columns=schema.names,
            batch_size=batch_rows,
            batch_readahead=1,
            fragment_readahead=1,
            fragment_scan_options=ds.ParquetFragmentScanOptions(pre_buffer=False),
        )
        for batch in scan:
            if batch.num_rows:
                yield _conform(pa.Table.from_batches([batch]), schema)

    # -- writing a whole table -------------------------------------------------------

    def write_table(self, name: str, data: pa.Table) -> None:
        """Replace table `name` by an Arrow table, cast to its declared schema and
        partitioned by its partition columns, atomically, in ``self.format``."""
        spec = table(name)
        data = _conform(data, spec.schema)
        if self.format == "delta":
            self._replace_delta(spec, data)
            return
        staged = self._aside(name)
        _write_parquet_folder(staged, data, spec)
        swap_in(staged, self.path(name))

    def commit_table(self, name: str, staged: Path) -> None:
        """Replace table `name` by the folder `staged` of Parquet files (Spark output,
        possibly hive-partitioned). Parquet: the folder is swapped in. Delta: its rows
        become the table (one overwrite, then VACUUM) and `staged` is removed. A folder
        that is not a lake table (a report) is always swapped in."""
        staged = Path(staged)
        if self.format == "parquet" or name not in TABLES:
            swap_in(staged, self.path(name))
            return
        spec = table(name)
        data = _parquet_dataset(staged, spec)
        self._replace_delta(spec, _reader(data, spec.schema))
        shutil.rmtree(staged, ignore_errors=True)

    def ensure(self, name: str) -> None:
        """Make table `name` exist in ``self.format``: an empty table of its schema when
        it is missing, converted when it is held in the other format."""
        stored = self.stored_format(name)
        if stored == self.format:
            return
        if stored is None:
            if self.format == "delta":
                self._replace_delta(table(name), table(name).schema.empty_table())
            else:
                self.path(name).mkdir(parents=True, exist_ok=True)
            return
        self.convert(name)

    def convert(self, name: str) -> None:
        """Rewrite table `name` in ``self.format`` (written aside, then swapped in),
        streaming its rows; a table already in that format is left alone."""
        if self.stored_format(name) in (None, self.format):
            return
        spec = table(name)
        data = self.dataset(name)
        staged = self._aside(name)
        if self.format == "delta":
            _write_delta_new(staged, _reader(data, spec.schema), spec)
        else:
            _write_parquet_folder(staged, _reader(data, spec.schema), spec)
        swap_in(staged, self.path(name))

    # -- incremental commits -----------------------------------------------------------

    def append_parts(self, name: str, staged: Path, batch_id: str) -> int:
        """Append the Parquet parts under `staged` (partition folders kept) to table
        `name`; returns the rows appended. Parquet: the parts are moved in, renamed
        ``<batch>-<n>.parquet`` (empty parts skipped), so each file tells its batch.
        Delta: one append transaction with the commit metadata ``{"zipp.batch": id}``.
        A table held in the other format is converted first."""
        staged = Path(staged)
        spec = table(name)
        if self.stored_format(name) not in (None, self.format):
            self.convert(name)
        if self.format == "parquet":
            return _move_parts(staged, self.path(name), batch_id)
        data = _parquet_dataset(staged, spec)
        n = data.count_rows() if data is not None else 0
        if not n:
            self.ensure(name)
            return 0
        from deltalake import CommitProperties, write_deltalake

        write_deltalake(
            str(self.path(name)),
            _reader(data, spec.schema),
            mode="append",
            partition_by=list(spec.partition_by) or None,
            schema_mode="merge",
            commit_properties=CommitProperties(custom_metadata={"zipp.batch": batch_id}),
        )
        return n

    def delete_where(
        self,
        name: str,
        remove: Callable[[pa.Table], pa.Array],
        columns: list[str] | None = None,
        edit: Edit | None = None,
    ) -> int:
        """Drop the rows for which ``remove(chunk)`` is True; returns rows removed.
        `edit` (optional) rewrites the rows that stay: it gets a piece of a file's
        remaining rows (as stored, one row group at a time) and returns them changed, in
        the same schema, or None when nothing in them changes.

        `remove` gets each data file's rows a row group at a time, as a table of the
        declared schema (only `columns` when given: a cheaper scan), and is called
        exactly once per row; it returns a boolean array (null counts as False). Only
        files with such rows (or rows `edit` changes) are rewritten, streamed a row group
        at a time, so memory holds a few row groups however big the file. Parquet: each
        atomically in place (same name; a file left empty is deleted). Delta (in
        whichever format the table is held): one transaction that replaces those files,
        then VACUUM with retention 0."""
        root = self.path(name)
        spec = table(name)
        if is_delta(root):
            return _delete_delta(root, spec, remove, columns, edit)
        removed = 0
        for f in data_files(root):
            values = _hive_values(f.parent.relative_to(root))
            tmp = f.with_name(f".{f.name}.tmp")
            n, kept = _rewrite(f, tmp, values, spec, remove, columns, edit, "snappy")
            if kept is None:
                continue
            if kept:
                os.replace(tmp, f)
            else:
                tmp.unlink()
                f.unlink()
            removed += n
        return removed

    # -- Spark ---------------------------------------------------------------------

    def read_spark(self, spark, name: str):
        """Table `name` as a Spark DataFrame of its declared schema, in either format.
        Delta: through delta-spark where the session has the Delta jars, else the live
        files from the Delta log read as Parquet (partition columns included)."""
        from schemas.spark import has_delta, spark_schema

        spec = table(name)
        root = self.path(name)
        schema = spark_schema(spec.schema)
        if not is_delta(root):
            root.mkdir(parents=True, exist_ok=True)  # an empty table reads as empty
            return spark.read.schema(schema).parquet(str(root))
        if has_delta(spark):
            return spark.read.format("delta").load(str(root))
        from deltalake import DeltaTable

        files = DeltaTable(str(root)).file_uris()
        if not files:
            return spark.createDataFrame([], schema)
        return spark.read.schema(schema).option("basePath", str(root)).parquet(*files)

    def write_spark(self, name: str, df) -> None:
        """Replace table `name` by a Spark DataFrame (its columns cast to the declared
        schema), in ``self.format``. Delta with the Delta jars: delta-spark overwrites
        the table and VACUUMs it; without them the rows are staged as Parquet and
        committed with `commit_table`."""
        from pyspark.sql import functions as F

        from schemas.spark import has_delta, spark_schema

        spec = table(name)
        fields = spark_schema(spec.schema).fields
        df = df.select([F.col(f.name).cast(f.dataType) for f in fields])
        parts = list(spec.partition_by)
        if self.format == "delta" and has_delta(df.sparkSession):
            _write_delta_spark(self, name, df, parts)
            return
        staged = self._aside(name)
        writer = df.write.mode("overwrite")
        if parts:
            writer = writer.partitionBy(*parts)
        writer.parquet(str(staged))
        self.commit_table(name, staged)

    # -- internals -----------------------------------------------------------------

    def clean_leftovers(self) -> int:
        """Remove what a killed write left behind: tables written aside but never swapped
        in (``_staging/aside``, ``_staging/write``) and the old copies a swap had not yet
        deleted (``.<table>.old-*``). They are full copies of tables, so a deletion request
        must reach them too. Row logs (resume points) stay. Returns folders removed."""
        removed = 0
        for part in ("aside", "write"):
            folder = self.staging(part)
            if folder.exists():
                removed += sum(1 for _ in folder.iterdir())
                shutil.rmtree(folder, ignore_errors=True)
        scratch = self.path(ABLATION)  # a killed `zipp ablation`'s checkpoints
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)
            removed += 1
        if self.root.exists():
            for layer in self.root.iterdir():
                if layer.is_dir() and not layer.name.startswith("_"):
                    for old in layer.rglob(".*.old-*"):
                        if old.is_dir():
                            shutil.rmtree(old, ignore_errors=True)
                            removed += 1
        return removed

    def _aside(self, name: str) -> Path:
        """A fresh staging folder to write a table aside before swapping it in."""
        staged = self.staging("aside", f"{name.replace('/', '+')}-{uuid.uuid4().hex[:8]}")
        shutil.rmtree(staged, ignore_errors=True)
        staged.parent.mkdir(parents=True, exist_ok=True)
        return staged

    def _replace_delta(self, spec: TableSpec, data) -> None:
        """Overwrite a table with `data` as Delta: in place (one overwrite transaction,
        then VACUUM) when it is a Delta table or missing, else written aside and swapped."""
        root = self.path(spec.name)
        if self.stored_format(spec.name) == "parquet":
            staged = self._aside(spec.name)
            _write_delta_new(staged, data, spec)
            swap_in(staged, root)
            return
        _overwrite_delta(root, data, spec)


def _overwrite_delta(root: Path, data, spec: TableSpec) -> None:
    """One overwrite transaction of a Delta table (created when missing), then VACUUM
    and log expiry when it replaced something."""
    from deltalake import write_deltalake

    existed = is_delta(root)
    write_deltalake(
        str(root),
        data,
        mode="overwrite",
        schema_mode="overwrite",
        partition_by=list(spec.partition_by) or None,
    )
    if existed:
        vacuum(root)


def is_delta(root: Path) -> bool:
    """Whether a folder holds a Delta table."""
    return (Path(root) / DELTA_LOG).is_dir()


def vacuum(root: Path) -> list[str]:
    """Delete the files the Delta log no longer references, now (retention 0), so rows
    an overwrite or a delete dropped survive in no file; returns the files deleted."""
    from deltalake import DeltaTable

    deleted = DeltaTable(str(root)).vacuum(
        retention_hours=0, dry_run=False, enforce_retention_duration=False
    )
    expire_log(root)
    return deleted


def expire_log(root: Path) -> int:
    """Checkpoint the Delta table and delete the log entries before the checkpoint: an
    old commit's add actions carry column statistics (min/max values, a deleted user's
    name among them) that must not outlive the rows. Time travel goes with them.
    Returns log files deleted."""
    from deltalake import DeltaTable

    dt = DeltaTable(str(root))
    dt.create_checkpoint()
    version = dt.version()
    deleted = 0
    for f in (Path(root) / DELTA_LOG).iterdir():
        stem = f.name.split(".", 1)[0]
        if f.is_file() and stem.isdigit() and int(stem) < version:
            f.unlink()
            deleted += 1
    return deleted


def data_files(root: Path) -> list[Path]:
    """Parquet data files under a table folder, sorted (hidden and _-prefixed skipped).
    For a Delta table these are its files on disk, live or not yet vacuumed."""
    if not root.exists():
        return []
    return sorted(
        p
        for p in root.rglob("*.parquet")
        if not any(part.startswith(("_", ".")) for part in p.relative_to(root).parts)
    )


def count_rows(root: Path) -> int:
    """Rows of the table under a folder: Parquet from the files' footers, Delta from the
    live files' statistics in the log (a count where a writer left none)."""
    root = Path(root)
    if is_delta(root):
        from deltalake import DeltaTable

        dt = DeltaTable(str(root))
        actions = pa.table(dt.get_add_actions(flatten=True))
        if not actions.num_rows:
            return 0
        if "num_records" in actions.column_names and not actions["num_records"].null_count:
            return pc.sum(actions["num_records"]).as_py() or 0
        return dt.to_pyarrow_dataset().count_rows()
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
    """Fingerprint of a table folder (changes whenever a commit lands): its data files
    for Parquet, the entries of its ``_delta_log`` for Delta (every commit adds one)."""
    root = Path(root)
    if is_delta(root):
        log = root / DELTA_LOG
        entries = [p for p in log.iterdir() if p.is_file() and not p.name.startswith(".")]
        return "delta-" + fingerprint(entries)
    return fingerprint(data_files(root))


def swap_in(staged: Path, target: Path) -> None:
    """Atomically replace folder `target` by `staged` (same filesystem)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    trash = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
    if target.exists():
        os.replace(target, trash)
    os.replace(staged, target)
    shutil.rmtree(trash, ignore_errors=True)


# -- helpers ------------------------------------------------------------------------


def _select(schema: pa.Schema, columns: list[str] | None) -> pa.Schema:
    if columns is None:
        return schema
    unknown = [c for c in columns if c not in schema.names]
    if unknown:
        raise KeyError(f"no column(s) {unknown} in the table (columns: {schema.names})")
    return pa.schema([schema.field(c) for c in columns])


def _conform(data: pa.Table, schema: pa.Schema) -> pa.Table:
    """`data`'s columns of `schema`, in its order, cast to its types; a nullable column
    `data` lacks is all nulls (a missing required one is an error)."""
    for f in schema:
        if f.name not in data.column_names:
            if not f.nullable:
                raise KeyError(f"column {f.name!r} is missing and may not be null")
            data = data.append_column(f.name, pa.nulls(data.num_rows, f.type))
    return data.select(schema.names).cast(schema)


def _reader(data: ds.Dataset | None, schema: pa.Schema) -> pa.RecordBatchReader:
    """A stream of a dataset's rows in `schema` (an empty stream when there is none)."""
    if data is None:
        return pa.RecordBatchReader.from_batches(schema, [])
    return data.scanner(columns=schema.names).to_reader()


def _partitioning(spec: TableSpec) -> ds.Partitioning | None:
    if not spec.partition_by:
        return None
    return ds.partitioning(
        pa.schema([spec.schema.field(c) for c in spec.partition_by]), flavor="hive"
    )


def _parquet_dataset(root: Path, spec: TableSpec) -> ds.Dataset | None:
    """A folder of Parquet files (hive partitions) in the declared schema; None if empty."""
    files = data_files(root)  # only the table's Parquet files (a folder may hold more)
    if not files:
        return None
    return ds.dataset(
        [str(f) for f in files],
        format="parquet",
        schema=spec.schema,
        partitioning=_partitioning(spec),
        partition_base_dir=str(root),
    )


def _write_parquet_folder(staged: Path, data, spec: TableSpec) -> None:
    """Write rows (a Table or a RecordBatchReader) as a Parquet table folder: one file,
    or hive partition folders for a partitioned table."""
    staged.mkdir(parents=True, exist_ok=True)
    if spec.partition_by:
        ds.write_dataset(
            data,
            staged,
            format="parquet",
            partitioning=_partitioning(spec),
            basename_template="part-{i}.parquet",
            existing_data_behavior="overwrite_or_ignore",
        )
        return
    with pq.ParquetWriter(staged / "part-00000.parquet", data.schema) as writer:
        if isinstance(data, pa.Table):
            writer.write_table(data)
        else:
            for batch in data:
                writer.write_batch(batch)


def _write_delta_new(staged: Path, data, spec: TableSpec) -> None:
    """Write rows as a new Delta table in an empty folder."""
    from deltalake import write_deltalake

    write_deltalake(
        str(staged), data, mode="overwrite", partition_by=list(spec.partition_by) or None
    )


def _write_delta_spark(lake: Lake, name: str, df, parts: list[str]) -> None:
    """delta-spark (a session with the Delta jars): overwrite the table, then VACUUM it
    with retention 0. A folder holding a Parquet table is written aside and swapped."""
    root = lake.path(name)
    target = lake._aside(name) if lake.stored_format(name) == "parquet" else root
    writer = df.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
    if parts:
        writer = writer.partitionBy(*parts)
    writer.save(str(target))
    if target != root:
        swap_in(target, root)
        return
    spark = df.sparkSession
    spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
    spark.sql(f"VACUUM delta.`{root}` RETAIN 0 HOURS")
    expire_log(root)  # the old commits' column statistics may name deleted users


def _move_parts(src: Path, dst: Path, batch_id: str) -> int:
    """Move Parquet parts under `src` into `dst` (keeping partition folders), renamed
    ``<batch>-<n>.parquet`` so names are deterministic and tell their batch; returns
    the rows moved."""
    dst.mkdir(parents=True, exist_ok=True)
    if not src.exists():
        return 0
    counters: dict[Path, int] = {}
    rows = 0
    for part in data_files(src):
        rel = part.parent.relative_to(src)
        n_rows = pq.ParquetFile(part).metadata.num_rows
        if n_rows == 0:
            continue
        n = counters[rel] = counters.get(rel, -1) + 1
        target = dst / rel / f"{batch_id}-{n:05d}.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(part, target)
        rows += n_rows
    return rows


def _hive_values(rel: Path) -> dict[str, str]:
    """Partition values of a file from its folders (``month=2021-05``)."""
    out = {}
    for part in rel.parts:
        if "=" in part:
            k, v = part.split("=", 1)
            out[urllib.parse.unquote(k)] = urllib.parse.unquote(v)
    return out


def _declared(stored: pa.Table, values: dict[str, str | None], schema: pa.Schema) -> pa.Table:
    """Rows read from a data file in `schema` (declared, or some of its columns): the
    columns the file lacks are filled from `values` (partition values), else null."""
    n = stored.num_rows
    for field in schema:
        if field.name in stored.column_names:
            continue
        value = values.get(field.name)
        arr = pa.array([value] * n, pa.string()).cast(field.type)
        stored = stored.append_column(field.name, arr)
    return stored.select(schema.names).cast(schema)


#: `Lake.delete_where`'s optional rewrite of the rows that stay (None: unchanged)
Edit = Callable[[pa.Table], "pa.Table | None"]


def _edited(read: Callable[[], pa.Table], removed: int, edit: Edit | None) -> pa.Table | None:
    """What a file becomes: its rows minus the `removed` ones (`read`), `edit`ed; None
    when the file stays as it is (nothing removed, nothing edited)."""
    if not removed and edit is None:
        return None
    rows = read()
    changed = edit(rows) if edit is not None else None
    if changed is not None:
        return changed
    return rows if removed else None


def _mask(remove: Callable[[pa.Table], pa.Array], chunk: pa.Table) -> pa.Array:
    mask = remove(chunk)
    if isinstance(mask, pa.ChunkedArray):
        mask = mask.combine_chunks()
    mask = pc.fill_null(pa.array(mask, pa.bool_()), False)
    if len(mask) != chunk.num_rows:
        raise ValueError(f"delete_where: mask of {len(mask)} rows for {chunk.num_rows}")
    return mask


def _rewrite(
    src: Path,
    dst: Path,
    values: dict[str, str | None],
    spec: TableSpec,
    remove: Callable[[pa.Table], pa.Array],
    columns: list[str] | None,
    edit: Edit | None,
    compression: str,
) -> tuple[int, int | None]:
    """One data file for `delete_where`, a row group at a time: `remove` sees each row
    group (in the declared schema, partition columns from `values`), the rows it flags
    are dropped, `edit` gets the rest, and each piece is written to `dst` as it comes.
    `dst` is created at the first changed row group (the unchanged ones before it are
    copied then), so a file that nothing changes is not written. Returns the rows
    removed and the rows written (None when nothing changed; `dst` then not made)."""
    schema = _select(spec.schema, columns)
    removed, writer = 0, None
    with pq.ParquetFile(src) as file:
        probe = None if columns is None else [c for c in columns if c in file.schema_arrow.names]
        try:
            for i in range(file.num_row_groups):
                keep = writer is not None
                n, piece = _row_group(file, i, probe, values, schema, remove, edit, keep)
                removed += n
                if piece is None:
                    continue
                if writer is None:
                    writer = _PieceWriter(dst, file.schema_arrow, compression)
                    for j in range(i):  # the unchanged row groups before this one
                        writer.write(file.read_row_group(j))
                writer.write(piece)
                piece = None  # freed before the next row group is read
        except BaseException:
            if writer is not None:
                writer.close()
                dst.unlink(missing_ok=True)
            raise
    if writer is None:
        return removed, None
    writer.close()
    return removed, writer.rows


def _row_group(
    file: pq.ParquetFile,
    i: int,
    probe: list[str] | None,
    values: dict[str, str | None],
    schema: pa.Schema,
    remove: Callable[[pa.Table], pa.Array],
    edit: Edit | None,
    keep: bool,
) -> tuple[int, pa.Table | None]:
    """Row group `i` for `_rewrite`: the rows `remove` flags (`probe`: the columns it
    needs, None for all) and what the row group becomes (as stored, without them,
    `edit`ed); None when nothing in it changes, unless `keep` asks for it anyway."""
    rows = file.read_row_group(i, columns=probe)
    mask = _mask(remove, _declared(rows, values, schema))
    n = mask.true_count
    if not n and edit is None and not keep:
        return 0, None
    if probe is not None:
        rows = file.read_row_group(i)
    if n:
        rows = rows.filter(pc.invert(mask))
    new = edit(rows) if edit is not None and rows.num_rows else None
    if new is not None:
        return n, new
    return n, rows if n or keep else None


class _PieceWriter:
    """A Parquet file written a piece (one row group or fewer rows) at a time, in the
    schema of the file it replaces; counts the rows written."""

    def __init__(self, path: Path, schema: pa.Schema, compression: str):
        self.schema = schema
        self.rows = 0
        self._writer = pq.ParquetWriter(path, schema, compression=compression)

    def write(self, piece: pa.Table) -> None:
        if not piece.num_rows:
            return
        if not piece.schema.equals(self.schema):
            piece = piece.cast(self.schema)
        self._writer.write_table(piece)
        self.rows += piece.num_rows

    def close(self) -> None:
        self._writer.close()


def _local_path(root: Path, path: str) -> Path:
    """The local file of a path in the Delta log (relative and URL-encoded, or a URI)."""
    if "://" in path:
        return Path(urllib.parse.unquote(urllib.parse.urlparse(path).path))
    return root / urllib.parse.unquote(path)


def _delete_delta(
    root: Path, spec: TableSpec, remove: Callable[[pa.Table], pa.Array], columns, edit=None
) -> int:
    """`Lake.delete_where` for a Delta table: the files holding rows to drop (or rows
    `edit` changes) are replaced, in one transaction, by files without them, each
    streamed a row group at a time into its new file; then VACUUM."""
    from deltalake import DeltaTable
    from deltalake.transaction import AddAction, RemoveAction

    dt = DeltaTable(str(root))
    protocol = dt.protocol()
    if protocol.min_reader_version > 1 or protocol.reader_features:
        return _delete_delta_rewrite(root, spec, remove, edit)
    actions = pa.table(dt.get_add_actions(flatten=False)).to_pylist()
    removed, commit = 0, []
    now = int(time.time() * 1000)
    for a in actions:
        values = {k: (None if v is None else str(v)) for k, v in (a.get("partition") or {}).items()}
        name = f"part-00000-{uuid.uuid4()}-c000.zstd.parquet"
        rel = f"{a['path'].rsplit('/', 1)[0]}/{name}" if "/" in a["path"] else name
        new = _local_path(root, rel)
        local = _local_path(root, a["path"])
        n, kept = _rewrite(local, new, values, spec, remove, columns, edit, "zstd")
        if kept is None:
            continue
        removed += n
        commit.append(RemoveAction(a["path"], True, now, a["size_bytes"], values))
        if not kept:
            new.unlink()
            continue
        stats = json.dumps({"numRecords": kept})
        commit.append(AddAction(rel, new.stat().st_size, values, now, True, stats))
    if not commit:
        return 0
    dt.create_write_transaction(
        commit, "append", dt.schema(), partition_by=dt.metadata().partition_columns or None
    )
    vacuum(root)
    return removed


def _delete_delta_rewrite(root: Path, spec: TableSpec, remove, edit=None) -> int:
    """Fallback for Delta tables with reader features (deletion vectors, column mapping):
    the whole table is read into memory, filtered, `edit`ed and overwritten, then
    VACUUM; not streamed, so memory holds the whole table."""
    from deltalake import DeltaTable

    data = _conform(DeltaTable(str(root)).to_pyarrow_table(), spec.schema)
    mask = _mask(remove, data)
    n = pc.sum(mask).as_py() or 0
    kept = _edited(lambda: data.filter(pc.invert(mask)), n, edit)
    if kept is not None:
        _overwrite_delta(root, kept, spec)
    return n


class RowLog:
    """Record-level resume for long stages.

    Finished rows land as Parquet parts in a staging folder as they come (each part is
    written aside, then renamed, so a kill never leaves half a part). A rerun reads them
    back and only does the rest; the stage then writes the table once and `clear`s the log.
    The log is plain Parquet staging in every lake format (it is not a lake table).
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

    def done_ids(self, previous) -> set[str]:
        """Ids with a ``done`` row in the table from before or in this log (the log's key
        and status columns only)."""
        done: set[str] = set()
        files = [str(f) for f in data_files(self.dir)]
        logged = (
            ds.dataset(files, format="parquet").to_table(columns=[self.key, "status"])
            if files
            else None
        )
        for t in (previous, logged):
            if t is not None and t.num_rows:
                done.update(t.filter(pc.equal(t["status"], "done"))[self.key].to_pylist())
        return done

    def merge(self, ids: list[str], previous):
        """The finished table: one row per id in `ids` order (a done row wins over a failed
        one; among equals the newest), rows of ids no longer asked for dropped. Columnar:
        no row becomes a Python object (a million-user table stays in Arrow)."""
        schema = table(self.name).schema
        t = pa.concat_tables([previous.cast(schema), self.read()])  # log parts: write order
        wanted = pa.array(ids, t.schema.field(self.key).type)
        t = t.filter(pc.is_in(t[self.key], value_set=wanted))
        t = t.append_column("_done", pc.equal(t["status"], "done").fill_null(False))
        t = t.append_column("_seq", pa.array(np.arange(t.num_rows)))
        # per id the last of (not done, done) x (oldest .. newest): the newest done row,
        # else the newest row
        t = t.sort_by([(self.key, "ascending"), ("_done", "ascending"), ("_seq", "ascending")])
        if t.num_rows:
            keys = t[self.key].combine_chunks()
            differs = pc.not_equal(keys.slice(0, len(keys) - 1), keys.slice(1))
            t = t.filter(pa.concat_arrays([differs, pa.array([True])]))
        t = t.take(pc.sort_indices(pc.index_in(t[self.key], value_set=wanted)))
        return t.drop_columns(["_done", "_seq"]).cast(schema)
