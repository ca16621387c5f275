"""What the LLM stages share: the runtime from config, the resumable fan-out with a
progress bar, and the final atomic write with per-status counts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from jobs.config import LLMConfig, LLMSpec
from jobs.runner import StageContext
from schemas.lake import RowLog


def runtime(cfg: LLMConfig):
    """`llm.*` -> the backends' Runtime (a client-side rate limit is split over actors)."""
    from generation.llm import Runtime

    rps = cfg.requests_per_s / cfg.actors if cfg.requests_per_s else None
    return Runtime(
        concurrency=cfg.concurrency,
        batch_size=cfg.batch_size,
        max_tokens=cfg.max_tokens,
        temperature=cfg.temperature,
        seed=cfg.seed,
        json_mode=cfg.json_mode,
        timeout_s=cfg.timeout_s,
        max_retries=cfg.max_retries,
        backoff_s=cfg.backoff_s,
        max_backoff_s=cfg.max_backoff_s,
        requests_per_s=rps,
        num_gpus=cfg.num_gpus,
    )


def preflight(specs: list[LLMSpec]) -> None:
    """Fail fast, before any evidence is built, when a configured model cannot be called:
    a missing endpoint or key variable, or vLLM without its extra or a GPU."""
    from generation.llm import read_api_key
    from generation.llm.vllm_backend import check_vllm

    for spec in specs:
        if spec.backend == "openai":
            if not spec.base_url:
                raise ValueError(f"llm.base_url: required for {spec.label}")
            read_api_key(spec.api_key_env)
        elif spec.backend == "vllm":
            check_vllm()


@dataclass
class Work:
    """One model's share of a stage: requests to send, how a reply becomes a row, and rows
    that need no call (made directly, e.g. failed for a missing input)."""

    spec: LLMSpec
    requests: list = field(default_factory=list)
    to_row: Callable[[object, dict], dict] | None = None
    direct: list[dict] = field(default_factory=list)


def run_llm_stage(
    ctx: StageContext,
    stage: str,
    table: str,
    work: Iterable[Work],
    parsers: dict | None = None,
) -> pa.Table:
    """Fan every model's requests out (resuming from the log and the table as it stands),
    then write `table` once: finished rows + direct rows. Returns what was written."""
    from generation.fanout import fan_out
    from generation.llm import read_api_key
    from generation.tokens import tokenizer_source
    from pipelines.ray_session import ray_session

    lake, cfg = ctx.lake, ctx.config
    log = RowLog(lake, stage, table)
    previous = lake.read(table)
    if ctx.force:
        log.clear()
        previous = previous.schema.empty_table()
    if "source" in previous.schema.names:  # overrides are re-applied, never resumed
        previous = previous.filter(pc.not_equal(previous["source"], "override"))
    rt = runtime(cfg.llm)
    work = list(work)
    requests, direct = [], []
    todo = {}
    for w in work:
        ids = set(log.pending([r.id for r in w.requests], previous))
        todo[id(w)] = [r for r in w.requests if r.id in ids]
    total = sum(len(t) for t in todo.values())
    resumed = sum(len(w.requests) for w in work) - total
    if resumed:
        ctx.console.print(f"  {stage}: {resumed:,} row(s) already done, resuming")
    if total and any(w.spec.backend != "vllm" for w in work):
        with ctx.console.status(f"{stage}: starting Ray"):
            ray_session(cfg.ray.address, cfg.ray.num_cpus)
    status: Counter = Counter()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[counts]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=ctx.console, transient=False) as bar:
        for w in work:
            requests += w.requests
            direct += w.direct
            pend = todo[id(w)]
            if not pend:
                continue
            task = bar.add_task(f"{stage} {w.spec.label}", total=len(pend), counts="")

            def progress(n: int, counts: Counter, task=task) -> None:
                bar.update(task, advance=n, counts=" ".join(f"{k}={v}" for k, v in counts.items()))

            key = read_api_key(w.spec.api_key_env) if w.spec.backend == "openai" else None
            tok = tokenizer_source(w.spec.backend, w.spec.model, w.spec.tokenizer)
            status += fan_out(
                pend,
                w.spec.model_dump(),
                rt,
                cfg.llm.actors,
                key,
                tok,
                w.to_row,
                log,
                progress,
                parsers,
            )
    out = log.merge([r.id for r in requests], previous)
    if direct:
        out = pa.concat_tables([out, pa.Table.from_pylist(direct, schema=out.schema)])
    if out.num_rows != len(requests) + len(direct):
        raise RuntimeError(
            f"{stage}: {len(requests) + len(direct)} rows planned, {out.num_rows} made"
        )
    return out


def finish(ctx: StageContext, table: str, out: pa.Table, stage: str) -> None:
    """Write the table, clear the resume log, record per-status counts and failure reasons."""
    ctx.lake.write_table(table, out)
    RowLog(ctx.lake, stage, table).clear()
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
    ctx.details.update(
        rows=out.num_rows,
        done=counts.get("done", 0),
        failed=retryable,
        failed_for_missing_input=counts.get("failed", 0) - retryable,
        failure_reasons=dict(reasons.most_common(10)),
        tokens=tokens,
        template_rows=int(pc.sum(out["template"].cast(pa.int64())).as_py() or 0),
    )
    ctx.console.print(
        f"  {table}: {counts.get('done', 0):,} done, {counts.get('failed', 0):,} failed"
        + (f" ({dict(reasons.most_common(3))})" if reasons else "")
        + f"; tokens in/out {tokens['prompt']:,}/{tokens['completion']:,}"
    )


def call_columns(spec: LLMSpec, version: str, res: dict) -> dict:
    """The columns every LLM-made row carries, from a fan-out result."""
    return {
        "llm": spec.label,
        "template": spec.backend == "template",
        "status": res["status"],
        "reason": res["reason"],
        "raw": res["raw"] if res["status"] == "failed" else None,
        "prompt_version": version,
        "prompt_tokens": res["prompt_tokens"],
        "completion_tokens": res["completion_tokens"],
        "attempts": res["attempts"],
        "seconds": res["seconds"],
        "request_id": res["request_id"],
    }
