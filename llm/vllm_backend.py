"""The vLLM engine through Ray Data (`ray.data.llm`): GPU only, an optional extra.

Imported lazily: nothing here loads vLLM until a run selects ``llm.backend: vllm``.
Requests go through a Ray Data vLLM processor (one engine per GPU actor, continuous
batching); replies come back as `Completion`s so validation and repair are shared with
the other backends.
"""

from __future__ import annotations

import importlib.util
import json

from llm.base import ChatRequest, Completion, Runtime, with_schema


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


def vllm_row(r: ChatRequest, runtime: Runtime, response_format: str = "json_object") -> dict:
    """One request as a Ray Data vLLM processor row: its messages and sampling params;
    with ``json_schema`` and a reply schema, vLLM's guided decoding (``structured_outputs``,
    the schema as a JSON string so Ray Data's Arrow blocks carry it unchanged), else the
    schema spelt out in the prompt (`llm.base.with_schema`)."""
    sampling: dict = {
        "max_tokens": runtime.max_tokens,
        "temperature": runtime.temperature,
        "seed": runtime.seed,
        "repetition_penalty": runtime.repetition_penalty,
    }
    messages = r.messages
    if r.json and r.schema is not None:
        if response_format == "json_schema":
            sampling["structured_outputs"] = {"json": json.dumps(r.schema)}
        else:
            messages = with_schema(r.messages, r.schema)
    return {"id": r.id, "messages": messages, "sampling_params": sampling}


def complete_with_vllm(
    model: str,
    requests: list[ChatRequest],
    runtime: Runtime,
    actors: int,
    response_format: str = "json_object",
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
            "sampling_params": row["sampling_params"],
        },
        postprocess=lambda row: {
            "id": row["id"],
            "text": row.get("generated_text"),
            "prompt_tokens": len(row.get("prompt_token_ids") or []),
            "completion_tokens": len(row.get("generated_tokens") or []),
        },
    )
    rows = [vllm_row(r, runtime, response_format) for r in requests]
    done = {row["id"]: row for row in processor(ray.data.from_items(rows)).take_all()}
    out = []
    for r in requests:
        row = done.get(r.id)
        if row is None or row["text"] is None:
            out.append(Completion(None, error="vllm: no output for this request"))
        else:
            out.append(Completion(row["text"], row["prompt_tokens"], row["completion_tokens"]))
    return out
