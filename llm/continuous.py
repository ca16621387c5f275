"""Continuous batching for a local causal LM (CPU or GPU): a finished row leaves the
batch at once and a waiting request takes its slot, as vLLM schedules on GPUs, so no row
idles beside a longer one. `generate` steps a fixed batch until its longest reply ends;
with replies of different lengths (a persona closing its JSON at 150 tokens beside one
running to 400) most of its rows are padding by the end.

A joining request is prefilled on its own (left-padded among those joining together);
its key/value cache is left-padded to the batch's length and stacked onto it. Every row
is left-padded, so one 2-D attention mask and per-row position ids (real tokens so far)
keep each row's attention and positions exactly as if it were decoded alone. Columns
that no live row uses any more are dropped from the cache.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F


def supports(model) -> bool:
    """Whether the loop can run this model: a decoder whose cache is plain per-layer keys
    and values (a sliding-window, static or recurrent cache cannot be re-stacked)."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    cache = DynamicCache(config=model.config)
    return bool(cache.layers) and all(type(layer) is DynamicLayer for layer in cache.layers)


def _forward(model, ids, mask, cache):
    pos = (mask.cumsum(1) - 1).clamp(min=0)[:, -ids.shape[1] :]
    out = model(
        input_ids=ids, attention_mask=mask, position_ids=pos, past_key_values=cache, use_cache=True
    )
    return out.logits[:, -1].float(), out.past_key_values


def _left_pad(t: torch.Tensor, length: int, dim: int) -> torch.Tensor:
    pad = length - t.shape[dim]
    if pad == 0:
        return t
    spec = [0, 0] * (t.dim() - 1 - dim) + [pad, 0]
    return F.pad(t, spec)


def _stack(cache, mask, new_cache, new_mask):
    """The batch's cache and mask with the joining rows' stacked under them."""
    length = max(mask.shape[1], new_mask.shape[1])
    for old, new in zip(cache.layers, new_cache.layers, strict=True):
        old.keys = torch.cat([_left_pad(old.keys, length, 2), _left_pad(new.keys, length, 2)])
        old.values = torch.cat([_left_pad(old.values, length, 2), _left_pad(new.values, length, 2)])
    return cache, torch.cat([_left_pad(mask, length, 1), _left_pad(new_mask, length, 1)])


def _select(cache, mask, rows: list[int]):
    """Only `rows` of the batch, and only the columns some of them still use."""
    idx = torch.tensor(rows, dtype=torch.long, device=mask.device)
    mask = mask[idx]
    first = int(mask.any(0).int().argmax())  # left padding every kept row has
    for layer in cache.layers:
        layer.keys = layer.keys[idx, :, first:]
        layer.values = layer.values[idx, :, first:]
    return cache, mask[:, first:]


@dataclass(eq=False)
class Job:
    """One request: its prompt ids, its reply schema (or None), its reply so far."""

    prompt: list[int]
    schema: dict | None
    future: Future = field(default_factory=Future)
    reply: list[int] = field(default_factory=list)


class DecodeLoop:
    """One thread decoding every submitted request in a continuous batch of at most
    `batch_size` rows: greedy, or sampled at `temperature` (seeded per loop); the
    repetition penalty as `generate` applies it (a seen token's score divided by it, or
    multiplied where negative); with `masks` (`llm.constrained.SchemaMasks`, empty) each
    row with a schema decodes only what its grammar allows. A reply is its new tokens up
    to, not including, its first stop id (at most `max_new_tokens`)."""

    def __init__(
        self,
        model,
        batch_size: int,
        max_new_tokens: int,
        stop_ids: set[int],
        pad_id: int,
        temperature: float = 0.0,
        repetition_penalty: float = 1.0,
        seed: int = 0,
        masks=None,
    ):
        self.model, self.batch_size, self.max_new_tokens = model, batch_size, max_new_tokens
        self.stop_ids, self.pad_id, self.masks = stop_ids, pad_id, masks
        self.temperature, self.penalty = temperature, repetition_penalty
        self.dev = next(model.parameters()).device
        self.rng = torch.Generator(device=self.dev).manual_seed(seed)
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        #: the loop's own clock: prefill forwards apart from decode steps (each step's
        #: forward, mask and sampling), and the tokens each made
        keys = ("prefill_s", "prefills", "decode_s", "decode_tokens", "steps")
        self.stats = dict.fromkeys(keys, 0)

    def submit(self, prompt: list[int], schema: dict | None = None) -> Future:
        """Queue a request; its future resolves to the reply's token ids."""
        job = Job(list(prompt), schema)
        self.queue.put(job)
        with self.lock:
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, daemon=True, name="decode")
                self.thread.start()
        return job.future

    def close(self) -> None:
        """Stop the thread once the queued requests are done."""
        self.queue.put(None)

    def _run(self) -> None:
        rows: list[Job] = []
        cache = mask = last = None
        closing = False
        while not closing or rows:
            joining: list[Job] = []
            while len(rows) + len(joining) < self.batch_size and not closing:
                try:  # wait for work only when nothing is decoding
                    job = self.queue.get(block=not rows and not joining)
                except queue.Empty:
                    break
                if job is None:
                    closing = True
                else:
                    joining.append(job)
            if not rows and not joining:
                continue
            try:
                rows, cache, mask, last = self._step(rows, joining, cache, mask, last)
            except Exception as e:  # every live row fails with it; the loop goes on
                for job in rows + joining:
                    if not job.future.done():
                        job.future.set_exception(e)
                if self.masks is not None:
                    self.masks.keep([])
                rows, cache, mask, last = [], None, None, None

    @torch.inference_mode()
    def _step(self, rows, joining, cache, mask, last):
        """One decode step of the live rows and the prefill of the joining ones; each
        row's next token; finished rows resolved and dropped."""
        from transformers import DynamicCache

        logits = []
        t0 = time.perf_counter()
        if rows:
            mask = torch.cat([mask, mask.new_ones(len(rows), 1)], 1)
            step, cache = _forward(self.model, last[:, None], mask, cache)
            logits.append(step)
        t1 = time.perf_counter()
        if joining:
            width = max(len(j.prompt) for j in joining)
            pads = [width - len(j.prompt) for j in joining]
            ids = [[self.pad_id] * n + j.prompt for n, j in zip(pads, joining, strict=True)]
            ids = torch.tensor(ids)
            starts = torch.tensor(pads)[:, None]
            new_mask = (torch.arange(width)[None] >= starts).long().to(self.dev)
            new_cache = DynamicCache(config=self.model.config)
            first, new_cache = _forward(self.model, ids.to(self.dev), new_mask, new_cache)
            logits.append(first)
            if rows:
                cache, mask = _stack(cache, mask, new_cache, new_mask)
            else:
                cache, mask = new_cache, new_mask
            rows = rows + joining
            if self.masks is not None:
                self.masks.add([j.schema for j in joining])
        t2 = time.perf_counter()
        self.stats["prefill_s"] += t2 - t1
        self.stats["prefills"] += len(joining)
        scores = torch.cat(logits)
        if self.penalty != 1.0:
            for r, job in enumerate(rows):
                seen = torch.tensor(sorted({*job.prompt, *job.reply}), device=self.dev)
                s = scores[r, seen]
                scores[r, seen] = torch.where(s < 0, s * self.penalty, s / self.penalty)
        if self.masks is not None:
            scores = self.masks(scores)
        if self.temperature > 0:
            probs = torch.softmax(scores / self.temperature, -1)
            tokens = torch.multinomial(probs, 1, generator=self.rng)[:, 0]
        else:
            tokens = scores.argmax(-1)
        token_list = tokens.tolist()
        if self.masks is not None:
            self.masks.consume(token_list)
        # decode: the live rows' step and every row's choice; a joining row's first
        # token comes from its prefill
        self.stats["decode_s"] += (t1 - t0) + (time.perf_counter() - t2)
        self.stats["decode_tokens"] += len(token_list) - len(joining)
        self.stats["steps"] += len(token_list) > len(joining)
        keep = []
        for r, (job, t) in enumerate(zip(rows, token_list, strict=True)):
            ended = t in self.stop_ids
            if not ended:
                job.reply.append(t)
            if ended or len(job.reply) >= self.max_new_tokens:
                job.future.set_result(job.reply)
            else:
                keep.append(r)
        if len(keep) < len(rows):
            if self.masks is not None:
                self.masks.keep(keep)
            rows = [rows[r] for r in keep]
            if not rows:
                return [], None, None, None
            cache, mask = _select(cache, mask, keep)
            tokens = tokens[keep]
        return rows, cache, mask, tokens


def generate(loop: DecodeLoop, prompts: list[list[int]], schemas=None) -> list[list[int]]:
    """Every prompt through `loop` (joining in list order); the replies in prompt order."""
    futures = [
        loop.submit(p, None if schemas is None else schemas[i]) for i, p in enumerate(prompts)
    ]
    return [f.result() for f in futures]
