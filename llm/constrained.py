"""Decoding constrained to a JSON schema for the local transformers backend: a
`LogitsProcessor` that lets each row of a batch sample only the tokens its schema's grammar
allows next (llguidance: the grammar engine behind vLLM's and SGLang's guided decoding).

Rows without a schema decode freely; a row whose grammar is complete may only end (its
EOS); a row that already ended is left alone (generate pads it).
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


class JsonSchemaLogits(LogitsProcessor):
    """Masks each row's next-token scores to what its JSON schema allows."""

    def __init__(self, tokenizer, schemas: list[dict | None], prompt_len: int, eos: int):
        from llguidance import LLMatcher

        lt = _ll_tokenizer(tokenizer, eos)
        self.matchers = [
            None if s is None else LLMatcher(lt, _grammar(json.dumps(s, sort_keys=True)))
            for s in schemas
        ]
        for m in self.matchers:
            if m is not None and m.is_error():
                raise ValueError(f"reply schema: {m.get_error()}")
        self.prompt_len = prompt_len
        self.eos = eos
        self.ended = [False] * len(schemas)
        self.bits = torch.full((len(schemas), (lt.vocab_size + 31) // 32), -1, dtype=torch.int32)
        self.shifts = torch.arange(32, dtype=torch.int32)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.Tensor:
        from llguidance.torch import fill_next_token_bitmask

        step = input_ids.shape[1] - self.prompt_len
        self.bits.fill_(-1)  # every token allowed: rows without a schema, or already ended
        for i, m in enumerate(self.matchers):
            if m is None or self.ended[i]:
                continue
            if step > 0:
                token = int(input_ids[i, -1])
                if token == self.eos or m.is_stopped():
                    self.ended[i] = True
                    continue
                m.consume_token(token)
            if m.is_error() or m.is_stopped():  # only EOS: a broken row ends, not rambles
                self.bits[i] = 0
                bit = 1 << (self.eos % 32)
                self.bits[i, self.eos // 32] = bit - (1 << 32) if bit >= 1 << 31 else bit
            else:
                fill_next_token_bitmask(m, self.bits, i)  # the grammar's mask, in Rust
        return self._masked(scores)

    def _masked(self, scores: torch.Tensor) -> torch.Tensor:
        """`scores` with every token its row's bitmask refuses set to -inf, the whole
        batch in one tensor operation (and ids past the tokenizer's vocabulary refused)."""
        allowed = ((self.bits.unsqueeze(-1) >> self.shifts) & 1).reshape(len(self.bits), -1)
        n = min(allowed.shape[1], scores.shape[1])
        scores[:, :n] = scores[:, :n].masked_fill(allowed[:, :n] == 0, float("-inf"))
        if scores.shape[1] > n:
            scores[:, n:] = float("-inf")
        return scores
