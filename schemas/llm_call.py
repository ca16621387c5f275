"""The columns every LLM-made row carries (personas, preferences, rewrites, judged
scores), defined once: how it was made (backend:model, prompt version, token counts,
attempts) and whether it ended ``done`` or ``failed``; ``template`` marks rows made by the
deterministic template backend, not by a language model."""

import pyarrow as pa

#: columns every LLM-made row carries, in this order, after its own columns
CALL = [
    pa.field("llm", pa.string(), nullable=False),  # "backend:model"
    pa.field("template", pa.bool_(), nullable=False),  # made by the template backend
    pa.field("status", pa.string(), nullable=False),  # "done" or "failed"
    pa.field("reason", pa.string()),  # why it failed
    pa.field("raw", pa.string()),  # the model's last reply when it failed validation
    pa.field("prompt_version", pa.string(), nullable=False),
    pa.field("prompt_tokens", pa.int32(), nullable=False),
    pa.field("completion_tokens", pa.int32(), nullable=False),
    pa.field("attempts", pa.int32(), nullable=False),  # HTTP/model calls, retries included
    pa.field("seconds", pa.float64(), nullable=False),
    pa.field("request_id", pa.string(), nullable=False),  # hash of the exact request
]
