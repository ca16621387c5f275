"""The vLLM engine through Ray Data (`ray.data.llm`): GPU only, an optional extra.

Imported lazily: nothing here loads vLLM until a run selects ``llm.backend: vllm``.
Requests go through a Ray Data vLLM processor (one engine per GPU actor, continuous
batching); replies come back as `Completion`s so validation and repair are shared with
the other backends.
"""

from __future__ import annotations

import importlib.util

from llm.base import ChatRequest, Completion, Runtime


class BackendUnavailable(ValueError):
    """The selected backend cannot run on this machine (missing extra or GPU)."""


def check_vllm() -> None:
    """Raise `BackendUnavailable` with what to install when vLLM cannot run here."""
    if importlib.util.find_spec("vllm") is None:
        raise BackendUnavailable(
            "llm.backend=vllm needs the vLLM engine: pip install 'zipp-pipeline[vllm]' (GPU nodes)"
        )
    import torch

    if not torch.cuda.is_available():
        raise BackendUnavailable("llm.backend=vllm needs a GPU; none is visible here")


def complete_with_vllm(
    model: str, requests: list[ChatRequest], runtime: Runtime, actors: int
) -> list[Completion]:
    """Run every request through a Ray Data vLLM processor; results in request order."""
    check_vllm()
    import ray
    from ray.data.llm import build_llm_processor, vLLMEngineProcessorConfig

    config = vLLMEngineProcessorConfig(
        model_source=model,
        concurrency=actors,
        batch_size=runtime.batch_size,
        engine_kwargs={"max_model_len": 16384},
    )
    processor = build_llm_processor(
        config,
        preprocess=lambda row: {
            "messages": row["messages"],
            "sampling_params": {
                "max_tokens": runtime.max_tokens,
                "temperature": runtime.temperature,
                "seed": runtime.seed,
            },
        },
        postprocess=lambda row: {
            "id": row["id"],
            "text": row.get("generated_text"),
            "prompt_tokens": len(row.get("prompt_token_ids") or []),
            "completion_tokens": len(row.get("generated_tokens") or []),
        },
    )
    rows = [{"id": r.id, "messages": r.messages} for r in requests]
    done = {row["id"]: row for row in processor(ray.data.from_items(rows)).take_all()}
    out = []
    for r in requests:
        row = done.get(r.id)
        if row is None or row["text"] is None:
            out.append(Completion(None, error="vllm: no output for this request"))
        else:
            out.append(Completion(row["text"], row["prompt_tokens"], row["completion_tokens"]))
    return out
