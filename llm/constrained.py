"""Decoding constrained to a JSON schema for the local transformers backend: a
`LogitsProcessor` that lets each row of a batch sample only the tokens its schema's grammar
allows next (llguidance: the grammar engine behind vLLM's and SGLang's guided decoding).

Rows without a schema decode freely; a row whose grammar is complete may only end (its
EOS); a row that already ended is left alone (generate pads it). `SchemaMasks` keeps the
rows' grammar states for a batch whose rows come and go (`llm.continuous`);
`JsonSchemaLogits` is the same for `generate`.
"""

from __future__ import annotations

import functools
import json

import torch
from transformers import LogitsProcessor


@functools.cache
def _ll_tokenizer(tokenizer, eos: int):
    import llguidance.hf

    return llguidance.hf.from_tokenizer(tokenizer, eos_token=eos)


@functools.cache
def _grammar(schema: str) -> str:
    from llguidance import LLMatcher

    return LLMatcher.grammar_from_json_schema(schema)


class SchemaMasks:
    """The JSON-schema grammar state of each live row of a batch, in row order: rows join
    (`add`) and leave (`keep`) as a continuous batch refills; `__call__` masks the rows'
    next-token scores, `consume` advances each row by the token it took."""

    def __init__(self, tokenizer, eos: int):
        self.lt = _ll_tokenizer(tokenizer, eos)
        self.eos = eos
        self.matchers: list = []
        self.ended: list[bool] = []
        self.words = (self.lt.vocab_size + 31) // 32
        self.shifts = torch.arange(32, dtype=torch.int32)

    def add(self, schemas: list[dict | None]) -> None:
        from llguidance import LLMatcher

        for s in schemas:
            m = None if s is None else LLMatcher(self.lt, _grammar(json.dumps(s, sort_keys=True)))
            if m is not None and m.is_error():
                raise ValueError(f"reply schema: {m.get_error()}")
            self.matchers.append(m)
            self.ended.append(False)

    def keep(self, rows: list[int]) -> None:
        self.matchers = [self.matchers[i] for i in rows]
        self.ended = [self.ended[i] for i in rows]

    def consume(self, tokens: list[int]) -> None:
        for i, (m, token) in enumerate(zip(self.matchers, tokens, strict=True)):
            if m is None or self.ended[i]:
                continue
            if token == self.eos or m.is_stopped():
                self.ended[i] = True
                continue
            m.consume_token(token)

    def __call__(self, scores: torch.Tensor) -> torch.Tensor:
        """`scores` [rows, vocab] with what each row's grammar refuses set to -inf; rows
        without a schema, or already ended, untouched; a broken or complete row may only
        end (EOS): it ends, not rambles. One tensor operation for the whole batch."""
        from llguidance.torch import fill_next_token_bitmask

        bits = torch.full((len(self.matchers), self.words), -1, dtype=torch.int32)
        for i, m in enumerate(self.matchers):
            if m is None or self.ended[i]:
                continue
            if m.is_error() or m.is_stopped():
                bits[i] = 0
                bit = 1 << (self.eos % 32)
                bits[i, self.eos // 32] = bit - (1 << 32) if bit >= 1 << 31 else bit
            else:
                fill_next_token_bitmask(m, bits, i)  # the grammar's mask, in Rust
        allowed = ((bits.unsqueeze(-1) >> self.shifts) & 1).reshape(len(bits), -1)
        n = min(allowed.shape[1], scores.shape[1])
        scores[:, :n] = scores[:, :n].masked_fill(allowed[:, :n] == 0, float("-inf"))
        if scores.shape[1] > n:
            scores[:, n:] = float("-inf")  # ids past the tokenizer's vocabulary
        return scores


class JsonSchemaLogits(LogitsProcessor):
    """`SchemaMasks` as a `generate` logits processor (a fixed batch)."""

    def __init__(self, tokenizer, schemas: list[dict | None], prompt_len: int, eos: int):
        self.masks = SchemaMasks(tokenizer, eos)
        self.masks.add(schemas)
        self.prompt_len = prompt_len

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.Tensor:
        if input_ids.shape[1] > self.prompt_len:
            self.masks.consume(input_ids[:, -1].tolist())
        return self.masks(scores)
