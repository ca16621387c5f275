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
        self.words = (lt.vocab_size + 31) // 32

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.Tensor:
        step = input_ids.shape[1] - self.prompt_len
        for i, m in enumerate(self.matchers):
            if m is None or self.ended[i]:
                continue
            if step > 0:
                token = int(input_ids[i, -1])
                if token == self.eos or m.is_stopped():
                    self.ended[i] = True
                    continue
                m.consume_token(token)
            scores[i] = self._masked(m, scores[i])
        return scores

    def _masked(self, m, row: torch.Tensor) -> torch.Tensor:
        """`row` with every token the grammar refuses set to -inf (only EOS once the
        grammar is complete or in error, so a broken row ends rather than rambles)."""
        if m.is_error() or m.is_stopped():
            allowed = torch.zeros_like(row, dtype=torch.bool)
            allowed[self.eos] = True
        else:
            words = torch.frombuffer(bytearray(m.compute_bitmask()), dtype=torch.int32)
            bits = (words.unsqueeze(-1) >> torch.arange(32, dtype=torch.int32)) & 1
            allowed = torch.zeros_like(row, dtype=torch.bool)
            flat = bits.reshape(-1).bool()
            n = min(flat.numel(), row.numel())
            allowed[:n] = flat[:n]
        return row.masked_fill(~allowed, float("-inf"))
