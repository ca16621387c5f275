"""Fan-out of LLM requests over Ray actors (or the driver, for driver-run backends):
bounded concurrency, validation with one repair attempt, and every finished batch's rows
handed to the stage's row log as it comes (`StageIO.resumable`: a rerun only sends what
is missing or failed)."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from dataclasses import replace

from llm import ChatRequest, Completion, Runtime, backend_info, make_backend
from llm.tokens import counter

#: a task's reply parser: reply text -> the row's output, or ValueError saying what is wrong
Parser = Callable[[str], object]


def repair_message(error: str) -> dict[str, str]:
    """The one repair attempt after a reply fails validation."""
    return {
        "role": "user",
        "content": f"That reply could not be used: {error}. Reply again with only the "
        "corrected output, in the required format.",
    }


def _text(content: str | list) -> str:
    """A message's text (multimodal content: its text parts; images are not counted)."""
    if isinstance(content, str):
        return content
    return " ".join(p.get("text", "") for p in content if p.get("type") == "text")


def _tokens(msgs: list[dict], count: Callable[[list[str]], list[int]]) -> int:
    return sum(count([_text(m["content"]) for m in msgs]))


async def process(
    backend, batch: list[ChatRequest], count, parsers: dict[str, Parser]
) -> list[dict]:
    """Call the model for a batch, validate each reply with its task's parser (`parsers`,
    by `ChatRequest.task`, given by the stage that defines the task), repair once; one
    result per request: {request_id, status, reason, raw, output, tokens, attempts,
    seconds}."""
    if missing := sorted({r.task for r in batch} - set(parsers)):
        raise ValueError(f"no reply parser for task(s) {', '.join(missing)}")
    t0 = time.perf_counter()
    first = await backend.complete(batch)
    share = (time.perf_counter() - t0) / max(1, len(batch))
    results: dict[str, dict] = {}
    to_repair: list[tuple[ChatRequest, Completion, str]] = []
    for r, c in zip(batch, first, strict=True):
        res = _start(r, c, share, count)
        results[r.id] = res
        if c.error is not None:
            res.update(status="failed", reason=c.error)
            continue
        try:
            res.update(status="done", output=parsers[r.task](c.text))
        except ValueError as e:
            to_repair.append((r, c, str(e)))
    if to_repair:
        retry = [
            replace(
                r,
                messages=[
                    *r.messages,
                    {"role": "assistant", "content": c.text or ""},
                    repair_message(err),
                ],
            )
            for r, c, err in to_repair
        ]
        t1 = time.perf_counter()
        second = await backend.complete(retry)
        share = (time.perf_counter() - t1) / len(retry)
        for (r, _, err), rr, c in zip(to_repair, retry, second, strict=True):
            res = results[r.id]
            extra = _start(rr, c, share, count)
            for k in ("prompt_tokens", "completion_tokens", "attempts", "seconds"):
                res[k] += extra[k]
            if c.error is not None:
                res.update(status="failed", reason=f"invalid reply ({err}); repair: {c.error}")
                continue
            try:
                res.update(status="done", output=parsers[r.task](c.text), raw=None)
            except ValueError as e2:
                res.update(
                    status="failed",
                    reason=f"invalid reply after one repair attempt: {e2}",
                    raw=(c.text or "")[:2000],
                )
    scrub = getattr(backend, "scrub", None)  # outside text, once more before it is a row
    if scrub is not None:
        for res in results.values():
            for k in ("reason", "raw"):
                if res[k]:
                    res[k] = scrub(res[k])
    return [results[r.id] for r in batch]


def _start(r: ChatRequest, c: Completion, share: float, count) -> dict:
    pt = c.prompt_tokens if c.prompt_tokens is not None else _tokens(r.messages, count)
    ct = c.completion_tokens
    if ct is None:
        ct = count([c.text])[0] if c.text else 0
    return {
        "request_id": r.id,
        "status": "failed",
        "reason": None,
        "raw": (c.text or "")[:2000] if c.text else None,
        "output": None,
        "prompt_tokens": pt,
        "completion_tokens": ct,
        "attempts": c.attempts,
        "seconds": c.seconds if c.seconds is not None else share,
    }


def _backend(spec: dict, api_key: str | None, runtime: Runtime, actors: int = 1):
    """The backend a model spec (`LLMSpec.model_dump()`) names, built where it is called."""
    return make_backend(
        spec["backend"],
        spec["model"],
        spec.get("base_url"),
        api_key,
        runtime,
        actors,
        response_format=spec.get("response_format", "json_object"),
    )


class LLMWorker:
    """A Ray actor holding one backend (and its HTTP session or model weights)."""

    def __init__(
        self,
        spec: dict,
        runtime: Runtime,
        api_key: str | None,
        tokenizer: str,
        parsers: dict[str, Parser],
    ):
        self.backend = _backend(spec, api_key, runtime)
        self.tokenizer = tokenizer
        self.parsers = parsers

    async def run(self, batch: list[ChatRequest]) -> list[dict]:
        return await process(self.backend, batch, counter(self.tokenizer).count, self.parsers)

    async def close(self) -> None:
        await self.backend.aclose()


def fan_out(
    requests: list[ChatRequest],
    spec: dict,
    runtime: Runtime,
    actors: int,
    api_key: str | None,
    tokenizer: str,
    to_row: Callable[[ChatRequest, dict], dict],
    log: Callable[[list[dict]], None],
    parsers: dict[str, Parser],
    progress: Callable[[int, Counter], None] | None = None,
) -> Counter:
    """Send `requests` to the model `spec` names and hand `log` a table row per request
    (made by `to_row`; replies checked by their task's parser in `parsers`) as each batch
    finishes (the stage's durable row log: a kill loses
    at most the batches in flight). Where the backend runs is its registry entry's
    (`llm.BACKENDS`): `actors` Ray actors (GPU backends get
    `runtime.num_gpus` each and one batch at a time; the others several batches in
    flight, enough to keep `runtime.concurrency` requests open), or the driver.
    Returns the count of rows by status."""
    status: Counter = Counter()
    if not requests:
        return status
    info = backend_info(spec["backend"])
    batches = [
        requests[i : i + runtime.batch_size] for i in range(0, len(requests), runtime.batch_size)
    ]

    def record(batch: list[ChatRequest], results: list[dict]) -> None:
        log([to_row(r, res) for r, res in zip(batch, results, strict=True)])
        status.update(res["status"] for res in results)
        if progress:
            progress(len(results), status)

    if info.runs_in == "driver":
        backend = _backend(spec, api_key, runtime, actors)
        count = counter(tokenizer).count
        try:
            for batch in batches:
                record(batch, asyncio.run(process(backend, batch, count, parsers)))
        finally:
            asyncio.run(backend.aclose())
        return status

    import ray
    from ray.exceptions import RayActorError

    from engines.ray import feed_actors

    # a model in the actor: two batches in flight, one decoding and the next joining its
    # continuous batch as rows end (`llm.continuous`); endpoints: enough for concurrency
    weights = info.gpu != "no"
    per_actor = 2 if weights else 2 * math.ceil(runtime.concurrency / runtime.batch_size) + 1
    options = {"num_gpus": runtime.num_gpus} if weights else {"num_cpus": 0.25}
    # SPREAD: one actor per node while nodes last (small CPU actors would otherwise pack
    # on the driver's node), so a lost node costs only its share; no-op on one node
    worker = ray.remote(LLMWorker).options(
        max_concurrency=max(2, per_actor), scheduling_strategy="SPREAD", **options
    )
    pool = [worker.remote(spec, runtime, api_key, tokenizer, parsers) for _ in range(actors)]
    try:
        feed_actors(pool, batches, per_actor, record)
    finally:
        for a, closed in [(a, a.close.remote()) for a in pool]:
            with suppress(RayActorError):  # an actor lost with its node has nothing to close
                ray.get(closed)
            ray.kill(a)
    return status
