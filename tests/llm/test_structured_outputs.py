"""How each backend asks for a reply's JSON: vLLM's guided decoding or the schema in the
prompt, and request ids that change with the way the reply is asked for."""

from __future__ import annotations

import json

from generation.prompts import persona_messages
from llm import ChatRequest, Runtime
from llm.base import request_id, with_schema
from llm.vllm_backend import vllm_row
from schemas.persona import REPLY_SCHEMAS


def _persona() -> ChatRequest:
    messages = persona_messages("## r/Cats\n- [comment] my tabby naps in the sun")
    return ChatRequest("p", "persona", messages, json=True, schema=REPLY_SCHEMAS["persona"])


def test_vllm_rows_use_guided_decoding_or_carry_the_schema_in_the_prompt():
    rt = Runtime(max_tokens=64, seed=3)
    req = _persona()
    guided = vllm_row(req, rt, "json_schema")
    assert json.loads(guided["sampling_params"]["structured_outputs"]["json"]) == req.schema
    assert guided["messages"] == req.messages
    assert guided["sampling_params"]["max_tokens"] == 64
    free = vllm_row(req, rt, "json_object")
    assert "structured_outputs" not in free["sampling_params"]
    assert free["messages"] == with_schema(req.messages, req.schema)
    assert free["messages"] != req.messages
    text = ChatRequest("r", "rewrite", [{"role": "user", "content": "a cat"}])
    assert vllm_row(text, rt, "json_schema")["messages"] == text.messages
    assert "structured_outputs" not in vllm_row(text, rt, "json_schema")["sampling_params"]


def test_with_schema_appends_to_the_system_message_or_adds_one():
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]
    out = with_schema(msgs, schema)
    assert out[0]["content"].startswith("S\n\n") and out[1] == msgs[1]
    assert json.loads(out[0]["content"].rsplit("\n", 1)[1]) == schema
    assert msgs[0]["content"] == "S"  # the request's own messages are left alone
    bare = with_schema([{"role": "user", "content": "U"}], schema)
    assert bare[0]["role"] == "system" and bare[1] == {"role": "user", "content": "U"}


def test_the_request_id_changes_with_the_response_format_and_keeps_old_ids():
    rt = Runtime()
    req = _persona()
    ids = {
        f: request_id("hf:m", "persona", req.messages, {}, rt, f)
        for f in ("json_object", "json_schema")
    }
    assert ids["json_object"] != ids["json_schema"]
    assert ids["json_object"] == request_id("hf:m", "persona", req.messages, {}, rt)


def test_a_repetition_penalty_reaches_the_request_id_and_vllm_only_when_set():
    req = _persona()
    plain, penalised = Runtime(), Runtime(repetition_penalty=1.2)
    assert request_id("hf:m", "persona", req.messages, {}, plain) != request_id(
        "hf:m", "persona", req.messages, {}, penalised
    )
    assert vllm_row(req, penalised)["sampling_params"]["repetition_penalty"] == 1.2
