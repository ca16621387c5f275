"""What a stage's domain function gets from the runner: `StageIO`.

The stage contract (DESIGN.md) is enforced here, in one place:

* `read` / `history` only for declared inputs, `write` only for declared outputs
  (written aside in `lake.format`, swapped in atomically);
* `config`: a view of just the declared config sections or keys; reading any other key
  raises `ContractError` naming the stage and the key;
* `file` / `names`: the declared input files (fingerprinted by content by the runner);
* `resumable`: the one record-level resume path of every fan-out stage;
* `history`: a table without the benchmark's held-out reference posts (the rule is
  `contract.history`; every stage that learns or conditions reads history only);
  `history_batches` streams it in pieces.

`TableAccess` is the picklable part (lake root, format, what may be read), for Ray workers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from contract.errors import ContractError
from contract.history import EDGE_COLUMNS, POST_COLUMNS, REFERENCES, without_held_out
from schemas.usernames import read_usernames
from storage.lake import Lake, RowLog


@dataclass(frozen=True)
class TableAccess:
    """Picklable read access to the declared tables of one stage (for Ray workers)."""

    stage: str
    root: str
    format: str
    inputs: frozenset[str]
    history_inputs: frozenset[str] = frozenset()
    outputs: frozenset[str] = frozenset()
    folders: frozenset[str] = frozenset()  # lake folders that are not tables (media, models)

    @property
    def lake(self) -> Lake:
        return Lake(self.root, self.format)

    def _check(self, name: str, allowed: Iterable[str], what: str) -> None:
        if name not in allowed:
            raise ContractError(
                f"stage {self.stage!r} {what} {name!r}, which it does not declare "
                f"(declared: {', '.join(sorted(allowed)) or 'none'})"
            )

    def read(self, name: str, columns: list[str] | None = None, filter=None) -> pa.Table:
        """A declared input (or this stage's own output, for resuming); `filter`, a
        pyarrow dataset expression, reads only the matching rows."""
        self._check(name, self.inputs | self.outputs, "reads table")
        return self.lake.read(name, columns, filter=filter)

    def history(self, name: str, columns: list[str] | None = None) -> pa.Table:
        """A declared history input: the table minus the benchmark's held-out posts."""
        wanted, extra = self._history_columns(name, columns)
        table = self.lake.read(name, wanted)
        table = without_held_out(table, name, self.lake.read(REFERENCES))
        return table.drop_columns(extra) if extra else table

    def history_batches(
        self, name: str, columns: list[str] | None = None, batch_rows: int = 131_072
    ) -> Iterator[pa.Table]:
        """`history` streamed: pieces of at most `batch_rows` rows, each without the
        held-out posts (references read once), for tables too big for one process."""
        wanted, extra = self._history_columns(name, columns)
        references = self.lake.read(REFERENCES)

        def pieces() -> Iterator[pa.Table]:
            for piece in self.lake.batches(name, wanted, batch_rows):
                piece = without_held_out(piece, name, references)
                yield piece.drop_columns(extra) if extra else piece

        return pieces()

    def _history_columns(
        self, name: str, columns: list[str] | None
    ) -> tuple[list[str] | None, list[str]]:
        """(columns to read, the extra ones the held-out filter needs, dropped after) of
        declared history input `name`."""
        self._check(name, self.history_inputs, "reads the history of")
        needs = EDGE_COLUMNS if name == "silver/edges" else POST_COLUMNS.get(name, ())
        extra = [c for c in needs if columns and c not in columns]
        return (None if columns is None else [*columns, *extra]), extra

    def path(self, name: str) -> Path:
        """The folder of a declared input or output (model folders, media)."""
        allowed = self.inputs | self.outputs | self.history_inputs | self.folders
        self._check(name, allowed, "uses the path of")
        return self.lake.path(name)


class ConfigView:
    """The config sections (or single keys, ``bench.seed``) a stage declared; any other
    attribute raises `ContractError` naming the stage and the key.

    A declared section is the section's own pydantic model, typed by the package that
    owns it: ``enc: EncoderConfig = io.config.encoder`` (``graph.config``), ``llm:
    LLMConfig = io.config.llm`` (``llm.config``). A section declared key by key
    (``bench.seed``) is a view that answers those keys only.
    """

    def __init__(self, config: Any, declared: Iterable[str], stage: str):
        self._config = config
        self._stage = stage
        self._declared = tuple(declared)

    def __getattr__(self, section: str) -> Any:
        if section.startswith("_"):
            raise AttributeError(section)
        if section in self._declared:
            return getattr(self._config, section)
        keys = [d.split(".", 1)[1] for d in self._declared if d.startswith(section + ".")]
        return _SectionView(getattr(self._config, section), section, keys, self)

    def _deny(self, key: str) -> ContractError:
        return ContractError(
            f"stage {self._stage!r} reads config key {key!r}, which it does not declare "
            f"(declared: {', '.join(self._declared) or 'none'})"
        )


class _SectionView:
    """A section of which only some keys were declared."""

    def __init__(self, section: Any, name: str, keys: list[str], view: ConfigView):
        self._section, self._name, self._keys, self._view = section, name, keys, view

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        if key in self._keys:
            return getattr(self._section, key)
        raise self._view._deny(f"{self._name}.{key}")

    def __bool__(self) -> bool:
        raise self._view._deny(self._name)


class Resume:
    """Record-level resume of one output table: rows finished so far are logged as they
    come (`log`), a rerun or a run after a kill only does `pending`, and `result` merges
    the log with the table as it stood into one row per planned key."""

    def __init__(self, io: StageIO, table: str, key: str, planned: list[str]):
        self.table, self.key, self.planned = table, key, list(planned)
        self._log = RowLog(io.lake, io.stage, table, key=key)
        self._previous = io.read(table)
        if io.force:
            self._log.clear()
            self._previous = self._previous.schema.empty_table()
        self._keep = keep = self._previous
        if "source" in keep.schema.names:  # user-supplied rows are re-applied, never resumed
            self._previous = keep.filter(pc.not_equal(keep["source"], "override"))
        self._done = self._log.done_ids(self._previous)
        self.pending: list[str] = [i for i in self.planned if i not in self._done]
        self.resumed = len(self.planned) - len(self.pending)

    def add(self, ids: list[str]) -> list[str]:
        """Plan more keys (a stage that plans a chunk at a time); returns those of them
        not done yet."""
        self.planned += ids
        pending = [i for i in ids if i not in self._done]
        self.pending += pending
        self.resumed += len(ids) - len(pending)
        return pending

    def log(self, rows: pa.Table | list[dict]) -> None:
        """Log a batch of finished rows durably (before the next batch is asked for)."""
        if isinstance(rows, list):
            rows = pa.Table.from_pylist(rows) if rows else None
        if rows is not None:
            self._log.append(rows)

    def result(
        self, direct: list[dict] | None = None, plan: dict[str, dict] | None = None
    ) -> pa.Table:
        """One row per planned key (done beats failed, newest among equals) plus the
        `direct` rows made without the fan-out; raises when a row is missing. `plan`, by
        key: the columns this run's plan sets rather than the work (e.g. dense ids), put
        on every row, so a row reused from an earlier run or the log never keeps that
        run's values (rows are keyed by content, which a refresh need not change)."""
        from schemas.tables import table as spec

        out = self._log.merge(self.planned, self._previous)
        if direct:
            out = pa.concat_tables([out, pa.Table.from_pylist(direct, schema=out.schema)])
        want = len(self.planned) + len(direct or [])
        if out.num_rows != want:
            raise RuntimeError(f"{self.table}: {want} rows planned, {out.num_rows} made")
        if plan:  # column by column: a million rows never become Python dicts at once
            keys = out[self.key].to_pylist()
            for name in sorted({c for cols in plan.values() for c in cols}):
                old = out[name].to_pylist()
                new = [
                    plan[k][name] if name in plan.get(k, ()) else o
                    for k, o in zip(keys, old, strict=True)
                ]
                i = out.schema.get_field_index(name)
                field = out.schema.field(i)
                out = out.set_column(i, field, pa.array(new, field.type))
        return out.cast(spec(self.table).schema)

    def clear(self) -> None:
        self._log.clear()


@dataclass
class StageIO:
    """The runner's handle for one stage run (see the module docstring)."""

    stage: str
    lake: Lake
    access: TableAccess
    config: ConfigView
    console: Any
    force: bool = False
    files: dict[str, str | None] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    engine: Callable[[], Any] | None = None
    _resumes: dict[str, Resume] = field(default_factory=dict)
    _engine: Any = None

    # -- tables -------------------------------------------------------------------------
    def read(self, name: str, columns: list[str] | None = None) -> pa.Table:
        return self.access.read(name, columns)

    def history(self, name: str, columns: list[str] | None = None) -> pa.Table:
        return self.access.history(name, columns)

    def history_batches(
        self, name: str, columns: list[str] | None = None, batch_rows: int = 131_072
    ) -> Iterator[pa.Table]:
        return self.access.history_batches(name, columns, batch_rows)

    def path(self, name: str) -> Path:
        return self.access.path(name)

    def _check_output(self, name: str) -> None:
        self.access._check(name, self.access.outputs, "writes")

    def write(self, name: str, data: pa.Table) -> None:
        """Replace a declared output table (aside, then swapped in, in `lake.format`);
        clears that table's resume log."""
        self._check_output(name)
        self.lake.write_table(name, data)
        if name in self._resumes:
            self._resumes.pop(name).clear()

    def commit(self, name: str, staged: Path) -> None:
        """Replace a declared output by a staged folder of Parquet files."""
        self._check_output(name)
        self.lake.commit_table(name, staged)

    def read_spark(self, name: str):
        """A declared input as a Spark DataFrame (either format)."""
        self.access._check(name, self.access.inputs, "reads table")
        return self.lake.read_spark(self.spark, name)

    def write_spark(self, name: str, df) -> None:
        """Replace a declared output from a Spark DataFrame (either format)."""
        self._check_output(name)
        self.lake.write_spark(name, df)

    def resumable(self, table: str, key: str, planned: list[str]) -> Resume:
        """The record-level resume of output `table` keyed by column `key`."""
        self._check_output(table)
        r = self._resumes[table] = Resume(self, table, key, planned)
        if r.resumed:
            self.console.print(f"  {self.stage}: {r.resumed:,} row(s) already done, resuming")
        return r

    # -- files --------------------------------------------------------------------------
    def file(self, key: str) -> Path | None:
        """A declared input file (``ingest.blocklist``), None when the key is unset."""
        if key not in self.files:
            raise ContractError(
                f"stage {self.stage!r} reads file {key!r}, which it does not declare "
                f"(declared: {', '.join(self.files) or 'none'})"
            )
        return Path(self.files[key]) if self.files[key] else None

    def names(self, key: str) -> frozenset[str]:
        """Usernames in a declared one-a-line file, lower-cased (`schemas.usernames`)."""
        return read_usernames(self.file(key), key)

    # -- engine -------------------------------------------------------------------------
    @property
    def spark(self):
        """The SparkSession (started or joined by the runner on first use)."""
        return self._start()

    def ray(self) -> None:
        """Make sure Ray is up (started or joined by the runner on first use)."""
        self._start()

    def _start(self):
        if self._engine is None:
            if self.engine is None:
                raise ContractError(f"stage {self.stage!r} declares no engine to start")
            self._engine = self.engine() or True
        return self._engine

    def removed(self, what: str, n: int) -> None:
        """Count what a stage deleted for deletion requests (records, files), reported by
        `zipp run`."""
        if n:
            removed = self.details.setdefault("removed", {})
            removed[what] = removed.get(what, 0) + int(n)
