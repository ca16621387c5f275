"""The `vllm` backend as the fan-out sees it: run from the driver, each batch of requests
sent through a Ray Data vLLM processor (`vllm_backend.complete_with_vllm`)."""

from __future__ import annotations

import asyncio

from llm.base import ChatRequest, Completion, Runtime


class VLLMDriver:
    """Requests go through a Ray Data processor of `actors` engines, from the driver."""

    template = False

    def __init__(
        self, model: str, runtime: Runtime, actors: int = 1, response_format: str = "json_object"
    ):
        from llm.vllm_backend import check_vllm

        check_vllm()
        self.model, self.rt, self.actors = model, runtime, actors
        self.response_format = response_format
        self.label = f"vllm:{model}"

    async def complete(self, requests: list[ChatRequest]) -> list[Completion]:
        from llm.vllm_backend import complete_with_vllm

        return await asyncio.to_thread(
            complete_with_vllm, self.model, requests, self.rt, self.actors, self.response_format
        )

    async def aclose(self) -> None:
        return None
