"""Rewrites through an LLM endpoint on the service's own event loop: a rewrite needs a
persona and the LLM, not the encoder, so with an endpoint backend (`openai`) the service
sends it from the loop itself and many are in flight side by side, instead of queueing
for the engine's one thread (which serialises the encoder and local models)."""

from __future__ import annotations

from typing import Any

from service.cold_start import rewrite_with


class EndpointRewriter:
    """The configured endpoint LLM, called asynchronously (`make` inside the loop)."""

    def __init__(self, cfg: Any):
        from llm import make_backend, read_api_key
        from llm.tokens import counter, tokenizer_source

        self.spec = cfg.llm.specs()[0]
        self.runtime = cfg.llm.runtime()
        self.backend = make_backend(
            self.spec.backend,
            self.spec.model,
            self.spec.base_url,
            read_api_key(self.spec.api_key_env),
            self.runtime,
            response_format=self.spec.response_format,
        )
        self.count = counter(
            tokenizer_source(self.spec.backend, self.spec.model, self.spec.tokenizer)
        ).count

    @staticmethod
    def fits(cfg: Any) -> bool:
        """Whether the configured LLM is an endpoint (what this rewriter serves)."""
        from llm import backend_info

        return backend_info(cfg.llm.specs()[0].backend).endpoint

    async def rewrite(self, persona, prompt, method, likes=(), dislikes=()):
        return await rewrite_with(
            self.backend, self.count, self.spec.label, self.runtime,
            persona, prompt, method, likes, dislikes,
        )  # fmt: skip

    async def aclose(self) -> None:
        await self.backend.aclose()
