"""What every LLM stage shares (personas, preferences, rewrite, score): the runtime from
the stage's LLM settings section (`llm.*`, or the judge's own `judge.*`), the fan-out of
each model's requests through the stage's one resume path (`StageIO.resumable`), with a
progress bar, and the final atomic write with per-status counts in the manifest.

A stage builds one `Work` per configured model (requests, how a reply becomes a row, and
rows made without a call), hands them to `run_llm_stage` with its settings section, and
writes the result with `finish`. Every LLM-made row carries the call columns of
`schemas.llm_call.CALL` (`call_columns`, `direct_call`, `call_values`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from contract.stage_io import StageIO
from llm import ModelSpec, backend_info, preflight
from llm.config import LLMSettings
from llm.fanout import Parser
from schemas.llm_call import CALL

#: the call columns' names, in their schema's order
CALL_NAMES = tuple(f.name for f in CALL)

__all__ = [
    "CALL_NAMES",
    "Work",
    "call_columns",
    "call_values",
    "direct_call",
    "finish",
    "no_call",
    "preflight",
    "progress_bar",
    "run_llm_chunks",
    "run_llm_stage",
]


@dataclass
class Work:
    """One model's share of a stage: requests to send, how a reply becomes a row, rows
    that need no call (made directly, e.g. failed for a missing input), and per request
    id the row's columns that come from this run's plan, not from the reply (`planned`:
    the user's dense id, subreddit ids): a row reused from an earlier run gets them anew,
    since a request's id names its content, never a dense id that a refresh shifts."""

    spec: ModelSpec
    requests: list = field(default_factory=list)
    to_row: Callable[[object, dict], dict] | None = None
    direct: list[dict] = field(default_factory=list)
    planned: dict[str, dict] = field(default_factory=dict)


def progress_bar(console) -> Progress:
    """The stages' progress bar: description, bar, n/total, counts by status, time."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[counts]}"),
        TimeElapsedColumn(),
    )
    return Progress(*columns, console=console, transient=False)


def run_llm_stage(
    io: StageIO,
    stage: str,
    table: str,
    work: Iterable[Work],
    parsers: dict[str, Parser],
    *,
    settings: LLMSettings,
) -> pa.Table:
    """Fan every model's requests out through `io.resumable(table)` (a rerun or a run
    after a kill sends only what is not done yet), then return `table` as it is to be
    written: one row per request + the direct rows. `stage` labels the progress bars;
    `settings` is the stage's LLM settings section (the runtime fields and `actors`:
    `io.config.llm`, or `io.config.judge` for the judge)."""
    return run_llm_chunks(io, stage, table, [list(work)], parsers, settings=settings)


def run_llm_chunks(
    io: StageIO,
    stage: str,
    table: str,
    chunks: Iterable[list[Work]],
    parsers: dict[str, Parser],
    *,
    settings: LLMSettings,
    slim_plan: tuple[str, ...] | None = None,
) -> pa.Table:
    """`run_llm_stage` over the models' work a chunk at a time: each chunk (every
    model's `Work` for some users) is planned, sent and logged before the next is built,
    so the driver holds one chunk's requests. With `slim_plan` (the planned columns a
    row's id already fixes, e.g. its evidence text), only the rows reused from before
    keep their plan, without those columns: a made row carries its plan (`to_row`)."""
    from llm import read_api_key
    from llm.fanout import fan_out
    from llm.tokens import tokenizer_source
    from schemas.tables import table as spec_of

    resume = io.resumable(table, "request_id", [])
    calls = io.details.setdefault("calls", {})[table] = {"planned": 0, "sent": 0, "reused": 0}
    schema = spec_of(table).schema
    direct: list[dict] = []
    plan: dict[str, dict] = {}

    def log(rows: list[dict]) -> None:
        resume.log(pa.Table.from_pylist(rows, schema=schema))

    with progress_bar(io.console) as bar:
        tasks: dict[str, object] = {}
        totals: dict[str, int] = {}
        before: dict[str, Counter] = {}  # each model's counts from earlier chunks
        for work in chunks:
            ids = [r.id for w in work for r in w.requests]
            pending = set(resume.add(ids))
            # what a refresh redid: requests sent this run vs rows reused from the table or log
            calls.update(
                planned=calls["planned"] + len(ids),
                sent=calls["sent"] + len(pending),
                reused=calls["reused"] + len(ids) - len(pending),
            )
            for w in work:
                direct += w.direct
                for rid, cols in w.planned.items():
                    if slim_plan is None:
                        plan[rid] = cols
                    elif rid not in pending:
                        plan[rid] = {k: v for k, v in cols.items() if k not in slim_plan}
            if pending:
                with io.console.status(f"{stage}: starting Ray"):
                    io.ray()
            for w in work:
                pend = [r for r in w.requests if r.id in pending]
                if not pend:
                    continue
                label = w.spec.label
                if label not in tasks:
                    tasks[label] = bar.add_task(f"{stage} {label}", total=0, counts="")
                    totals[label], before[label] = 0, Counter()
                task = tasks[label]
                totals[label] += len(pend)
                bar.update(task, total=totals[label])

                def progress(n: int, counts: Counter, task=task, label=label) -> None:
                    shown = " ".join(f"{k}={v}" for k, v in (before[label] + counts).items())
                    bar.update(task, advance=n, counts=shown)

                endpoint = backend_info(w.spec.backend).endpoint
                key = read_api_key(w.spec.api_key_env) if endpoint else None
                tok = tokenizer_source(w.spec.backend, w.spec.model, w.spec.tokenizer)
                before[label] += fan_out(  # this chunk's rows by status
                    pend,
                    w.spec.model_dump(),
                    settings.runtime(),
                    settings.actors,
                    key,
                    tok,
                    w.to_row,
                    log,
                    parsers,
                    progress,
                )
    if resume.resumed:
        io.console.print(f"  {io.stage}: {resume.resumed:,} row(s) already done, resumed")
    return resume.result(direct, plan=plan)


def finish(io: StageIO, table: str, out: pa.Table, stage: str | None = None) -> None:
    """Write the table (which clears its row log), record per-status counts, failure
    reasons and tokens in the manifest's details, and print them."""
    io.write(table, out)
    counts = Counter(out["status"].to_pylist())
    reasons = Counter(
        (r or "").split(":", 1)[0][:60]
        for r, s in zip(out["reason"].to_pylist(), out["status"].to_pylist(), strict=True)
        if s == "failed"
    )
    tokens = {
        "prompt": int(pc.sum(out["prompt_tokens"]).as_py() or 0),
        "completion": int(pc.sum(out["completion_tokens"]).as_py() or 0),
    }
    # rows that failed for a missing input (no call made) are final; a rerun retries the rest
    retryable = sum(
        1
        for st, n in zip(out["status"].to_pylist(), out["attempts"].to_pylist(), strict=True)
        if st == "failed" and n > 0
    )
    io.details.update(
        rows=out.num_rows,
        done=counts.get("done", 0),
        failed=retryable,
        failed_for_missing_input=counts.get("failed", 0) - retryable,
        failure_reasons=dict(reasons.most_common(10)),
        tokens=tokens,
        template_rows=int(pc.sum(out["template"].cast(pa.int64())).as_py() or 0),
    )
    io.console.print(
        f"  {table}: {counts.get('done', 0):,} done, {counts.get('failed', 0):,} failed"
        + (f" ({dict(reasons.most_common(3))})" if reasons else "")
        + f"; tokens in/out {tokens['prompt']:,}/{tokens['completion']:,}"
    )


def call_values(llm: str, template: bool, version: str, res: dict) -> dict:
    """The call columns (`CALL_NAMES`, in order) of a row made by `llm` (its label;
    `template`: by the template backend) with prompt `version`, from a fan-out result (or
    `no_call`); the model's raw reply is kept only when the row failed."""
    made = {
        "llm": llm,
        "template": template,
        "raw": res["raw"] if res["status"] == "failed" else None,
        "prompt_version": version,
    }
    return {k: made[k] if k in made else res[k] for k in CALL_NAMES}


def call_columns(spec: ModelSpec, version: str, res: dict) -> dict:
    """The columns every LLM-made row carries, from a fan-out result."""
    return call_values(spec.label, backend_info(spec.backend).template, version, res)


def no_call(request_id: str, status: str, reason: str | None = None) -> dict:
    """A fan-out result for a row made without a call: no tokens, no attempts."""
    return {
        "status": status,
        "reason": reason,
        "raw": None,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "attempts": 0,
        "seconds": 0.0,
        "request_id": request_id,
    }


def direct_call(
    spec: ModelSpec, version: str, request_id: str, status: str, reason: str | None = None
) -> dict:
    """`call_columns` of a row made without a call (made directly, or failed for a
    missing input): no tokens, no attempts."""
    return call_columns(spec, version, no_call(request_id, status, reason))
