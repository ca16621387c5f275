"""The openai backend against a real local chat-completions server that injects 429s,
500s, timeouts, dropped connections and malformed JSON."""

from __future__ import annotations

import asyncio
import time

import pytest

from generation.fanout import process
from generation.llm import ChatRequest, Runtime, make_backend, read_api_key
from generation.prompts import persona_messages, rewrite_messages
from generation.tokens import PACKAGED, counter
from tests.llm_server import ChatServer

KEY = "sk-test-3f9a1c77e0b2"
FAULTS = ["429", "500", "timeout", "drop", "garbage", "bad_json"]


def transient_then_ok(key: str, attempt: int) -> str | None:
    """Every request meets one or two faults, then succeeds."""
    i = int(key[:6], 16)
    if attempt == 1:
        return FAULTS[i % len(FAULTS)]
    if attempt == 2 and i % 3 == 0:
        return FAULTS[(i // 7) % 5]  # a second, different transport fault
    return None


def _requests(n_persona: int, n_rewrite: int) -> list[ChatRequest]:
    reqs = [
        ChatRequest(f"p{i}", "persona", persona_messages(f"evidence {i}"), json=True)
        for i in range(n_persona)
    ]
    reqs += [
        ChatRequest(f"r{i}", "rewrite", rewrite_messages("none", f"a cat number {i}"))
        for i in range(n_rewrite)
    ]
    return reqs


def _run(server: ChatServer, reqs: list[ChatRequest], key: str | None = KEY, **rt) -> list[dict]:
    runtime = Runtime(
        **{"concurrency": 8, "timeout_s": 1.0, "backoff_s": 0.01, "max_retries": 3} | rt
    )

    async def go() -> list[dict]:
        backend = make_backend("openai", "test-model", server.url, key, runtime)
        try:
            return await process(backend, reqs, counter(PACKAGED).count)
        finally:
            await backend.aclose()

    return asyncio.run(go())


def test_transient_faults_are_retried_until_every_row_is_done():
    with ChatServer(plan=transient_then_ok, api_key=KEY, hang_s=3) as server:
        reqs = _requests(24, 12)
        out = _run(server, reqs)
    assert [o["request_id"] for o in out] == [r.id for r in reqs]
    assert {o["status"] for o in out} == {"done"}, [o["reason"] for o in out]
    assert all(server.outcomes[f] > 0 for f in FAULTS), server.outcomes
    for o, r in zip(out, reqs, strict=True):
        if r.task == "persona":
            assert o["attempts"] >= 2
            assert o["output"]["text"].startswith("I am a test persona")
            assert o["output"]["visual_interests"] == ["film grain", "warm light"]
        elif o["attempts"] == 1:  # 'bad_json' is still a usable (if odd) rewritten prompt
            assert o["output"] == "Sure! Here it is: {not json"
        else:
            assert "a cat number" in o["output"]
        assert o["prompt_tokens"] > 0 and o["completion_tokens"] > 0


def test_permanent_faults_end_failed_with_a_reason_and_never_leak_the_key():
    def plan(key: str, attempt: int) -> str | None:
        return FAULTS[int(key[:6], 16) % len(FAULTS)]  # the same fault every time

    with ChatServer(plan=plan, api_key=KEY, hang_s=3) as server:
        reqs = _requests(18, 0)
        out = _run(server, reqs, max_retries=2)
    assert len(out) == len(reqs)
    reasons = [o["reason"] for o in out]
    assert all(o["status"] == "failed" and o["reason"] for o in out), reasons
    assert any("http 429" in r for r in reasons)
    assert any("http 500" in r for r in reasons)
    assert any("timeout" in r for r in reasons)
    assert any("connection" in r for r in reasons)
    assert any("unreadable response body" in r for r in reasons)
    assert any("after one repair attempt" in r for r in reasons)
    echoed = [r for r in reasons if "http 500" in r]
    assert all("Bearer ***" in r for r in echoed)  # the hostile echo, scrubbed
    assert not any(KEY in (r or "") + (o["raw"] or "") for o, r in zip(out, reasons, strict=True))
    gave_up = [o for o in out if "gave up" in o["reason"]]
    assert gave_up and all(o["attempts"] == 3 for o in gave_up)


def test_a_reply_that_echoes_the_key_is_scrubbed_before_it_is_kept():
    with ChatServer(plan=lambda key, attempt: "echo", api_key=KEY) as server:
        (out,) = _run(server, _requests(0, 1))
    assert out["status"] == "done"
    assert out["output"] == "a cat, as requested by Bearer ***"


def test_a_wrong_key_fails_at_once_without_retries():
    with ChatServer(api_key=KEY) as server:
        out = _run(server, _requests(3, 0), key="sk-wrong")
    assert all(o["status"] == "failed" and "http 401" in o["reason"] for o in out)
    assert all(o["attempts"] == 1 for o in out)


def test_concurrency_is_bounded_and_the_rate_limit_spaces_requests():
    with ChatServer(latency=0.1) as server:
        out = _run(server, _requests(0, 24), concurrency=4)
        assert server.max_inflight == 4
    assert all(o["status"] == "done" for o in out)
    with ChatServer() as server:
        t0 = time.perf_counter()
        _run(server, _requests(0, 10), requests_per_s=20)
        assert time.perf_counter() - t0 >= 9 / 20 * 0.9


def test_the_key_comes_from_the_named_environment_variable(monkeypatch):
    monkeypatch.setenv("ZIPP_TEST_LLM_KEY", KEY)
    assert read_api_key("ZIPP_TEST_LLM_KEY") == KEY
    assert read_api_key(None) is None
    monkeypatch.delenv("ZIPP_TEST_LLM_KEY")
    with pytest.raises(ValueError, match="ZIPP_TEST_LLM_KEY is not set"):
        read_api_key("ZIPP_TEST_LLM_KEY")
