"""Rewrites through an LLM endpoint on the service's own event loop: a rewrite needs a
persona and the LLM, not the encoder, so with an endpoint backend (`openai`) the service
sends it from the loop itself and many are in flight side by side, instead of queueing
for the engine's one thread (which serialises the encoder and local models)."""

from __future__ import annotations

from typing import Any

from service.cold_start import llm_parts, rewrite_with


class EndpointRewriter:
    """The configured endpoint LLM, called asynchronously (`make` inside the loop)."""

    def __init__(self, cfg: Any):
        self.spec = cfg.llm.specs()[0]
        self.runtime, self.backend, counter = llm_parts(cfg)
        self.count = counter.count

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
