"""The openai backend against a real local chat-completions server that injects 429s,
500s, timeouts, dropped connections, malformed JSON and bodies that leak the API key."""

from __future__ import annotations

import asyncio
import json
import random
import string
import time

import pytest

from generation.prompts import persona_messages, rewrite_messages
from generation.rewrite import REPLY_PARSERS as REWRITE_PARSERS
from llm import ChatRequest, Runtime, make_backend, read_api_key
from llm.base import REDACTED, clip_scrubbed, scrub_secret
from llm.fanout import process
from llm.tokens import PACKAGED, counter
from schemas.persona import REPLY_PARSERS as PERSONA_PARSERS
from tests.llm_server import ChatServer, content_key, default_reply

PARSERS = PERSONA_PARSERS | REWRITE_PARSERS  # the tasks these tests send

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
            return await process(backend, reqs, counter(PACKAGED).count, PARSERS)
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
    assert all("Bearer [redacted]" in r for r in echoed)  # the hostile echo, scrubbed
    assert not any(KEY in (r or "") + (o["raw"] or "") for o, r in zip(out, reasons, strict=True))
    gave_up = [o for o in out if "gave up" in o["reason"]]
    assert gave_up and all(o["attempts"] == 3 for o in gave_up)


def test_a_reply_that_echoes_the_key_is_scrubbed_before_it_is_kept():
    with ChatServer(plan=lambda key, attempt: "echo", api_key=KEY) as server:
        (out,) = _run(server, _requests(0, 1))
    assert out["status"] == "done"
    assert out["output"] == "a cat, as requested by Bearer [redacted]"


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


# A realistic key (the shape of a hosted provider's), the same on every run.
LEAKY_KEY = "sk-" + "".join(random.Random(11).choices(string.ascii_letters + string.digits, k=40))


def _leaks(text: str | None, key: str = LEAKY_KEY) -> bool:
    """Whether `text` holds any piece of `key` 8 or more characters long (every such piece
    contains one of the key's 8-character windows)."""
    return bool(text) and any(key[i : i + 8] in text for i in range(len(key) - 7))


def test_scrub_secret_removes_the_key_and_every_piece_of_it_of_8_characters_or_more():
    key = LEAKY_KEY
    assert scrub_secret(f"Bearer {key}", key) == f"Bearer {REDACTED}"
    for i in range(len(key)):
        for j in range(i + 8, len(key) + 1):  # prefixes, suffixes and inner pieces
            assert scrub_secret(f"<{key[i:j]}>", key) == f"<{REDACTED}>", (i, j)
    # pieces shorter than 8 characters are not the key; text without the key is untouched
    assert scrub_secret(f"{key[:7]} and {key[-7:]}", key) == f"{key[:7]} and {key[-7:]}"
    assert scrub_secret("nothing secret here", key) == "nothing secret here"
    assert scrub_secret(f"{key}{key} and again {key[5:30]}.", key) == (
        f"{REDACTED} and again {REDACTED}."
    )
    assert scrub_secret(f"a {key} b", None) == f"a {key} b"
    assert scrub_secret("", key) == ""
    assert scrub_secret("key=EMPTY; EMPT", "EMPTY") == f"key={REDACTED}; EMPT"  # short: whole


def test_a_scrubbed_cut_never_leaves_a_piece_of_the_key_wherever_the_cut_falls():
    key = LEAKY_KEY
    naive_leaks = 0
    for at in range(0, 30):
        text = "e" * at + key + " tail"
        for limit in range(len(text) + 2):
            out = clip_scrubbed(text, limit, key)
            assert not _leaks(out), (at, limit, out)
            assert out == scrub_secret(text, key)[:limit]
            naive_leaks += _leaks(text[:limit].replace(key, REDACTED))  # the old order
    assert naive_leaks  # cutting before the whole-key scrub does leak: the case is real


# Every cut the backend (and the fan-out's `raw` column) makes in outside text, and the
# server fault that puts the key across it: the key begins at cut-20 .. cut+5.
CUTS = {
    "leak200": 120,  # 200 with a body that is not JSON: "unreadable response body"
    "leakjson": 120,  # 200 with JSON that is not an object: "unexpected response body"
    "leak429": 200,  # retried statuses keep 200 characters of the body
    "leak500": 200,
    "leak503": 200,
    "leak400": 300,  # other 4xx fail at once and keep 300
    "leak404": 300,
    "leakstatus": 300,  # the client's own error quoting a bad status line, cut at 300
    "leakreply": 2000,  # a reply that is never valid: the fan-out keeps 2000 of it as raw
}


def _leak_requests() -> tuple[list[ChatRequest], dict[str, str], dict[str, str]]:
    reqs, plan, family = [], {}, {}
    for fault, cut in CUTS.items():
        # the status line is quoted after a prefix the client writes: sweep wider
        low = cut - 180 if fault == "leakstatus" else cut - 20
        for at in range(low, cut + 6):
            i = len(reqs)
            if fault == "leakreply" and i % 2:  # too long for a rewrite, not JSON for a persona
                r = ChatRequest(f"q{i}", "rewrite", rewrite_messages("none", f"a cat {i}"))
            else:
                r = ChatRequest(f"q{i}", "persona", persona_messages(f"evidence {i}"), json=True)
            reqs.append(r)
            plan[content_key({"messages": r.messages})] = f"{fault}:{at}"
            family[r.id] = fault
    return reqs, plan, family


def test_a_key_echoed_across_any_cut_never_reaches_an_error_a_reason_or_a_raw_reply():
    reqs, plan, family = _leak_requests()
    runtime = Runtime(concurrency=16, timeout_s=5.0, backoff_s=0.001, max_retries=1)

    async def go():
        backend = make_backend("openai", "test-model", server.url, LEAKY_KEY, runtime)
        try:
            completions = await backend.complete(reqs)
            rows = await process(backend, reqs, counter(PACKAGED).count, PARSERS)
        finally:
            await backend.aclose()
        return completions, rows

    with ChatServer(plan=lambda key, attempt: plan.get(key), api_key=LEAKY_KEY) as server:
        completions, rows = asyncio.run(go())
    assert sum(server.outcomes.values()) > len(reqs)
    for r, c, row in zip(reqs, completions, rows, strict=True):
        kept = [c.error, c.text, row["reason"], row["raw"], json.dumps(row["output"])]
        assert not any(_leaks(t) for t in kept), (family[r.id], kept)
        assert row["status"] == "failed", (family[r.id], row)

    def texts(fault: str) -> list[str]:
        if fault == "leakreply":
            return [row["raw"] for r, row in zip(reqs, rows, strict=True) if family[r.id] == fault]
        return [c.error for r, c in zip(reqs, completions, strict=True) if family[r.id] == fault]

    expected = {
        "leak200": "unreadable response body",
        "leakjson": "unexpected response body",
        "leak429": "http 429",
        "leak500": "http 500",
        "leak503": "http 503",
        "leak400": "http 400",
        "leak404": "http 404",
        "leakstatus": "connection: ClientResponseError",
    }
    for fault in CUTS:
        got = texts(fault)
        assert all(expected.get(fault, "") in t for t in got), (fault, got[:2])
        assert any(REDACTED in t for t in got), fault  # the key was there, whole, and went
        # and some cut fell inside it: a cut marker shows the key straddled that cut
        assert any(t.count("[") > t.count(REDACTED) for t in got), (fault, got[:3])


def test_json_schema_endpoints_get_the_tasks_reply_schema_on_the_wire():
    """`response_format: json_schema` sends each JSON task's schema (derived from the model
    that validates its reply); requests without one, and json_object endpoints, ask for
    any JSON object; a text task asks for no format."""
    from evaluation.judge import JUDGE_SCHEMA
    from schemas.persona import REPLY_SCHEMAS

    seen: dict[str, dict | None] = {}

    systems: dict[str, str] = {}

    def reply(body: dict) -> str:
        seen[body["messages"][1]["content"]] = body.get("response_format")
        systems[body["messages"][1]["content"]] = body["messages"][0]["content"]
        return default_reply(body)

    persona = persona_messages("evidence of a cat person")
    reqs = [
        ChatRequest("p", "persona", persona, json=True, schema=REPLY_SCHEMAS["persona"]),
        ChatRequest("r", "rewrite", rewrite_messages("none", "a cat")),
    ]
    runtime = Runtime(concurrency=2, timeout_s=2.0, max_retries=0)
    for fmt in ("json_schema", "json_object"):
        seen.clear()
        with ChatServer(reply=reply) as server:

            async def go(fmt=fmt, server=server) -> list[dict]:
                backend = make_backend(
                    "openai", "m", server.url, None, runtime, response_format=fmt
                )
                try:
                    return await process(backend, reqs, counter(PACKAGED).count, PARSERS)
                finally:
                    await backend.aclose()

            out = asyncio.run(go())
        assert [o["status"] for o in out] == ["done", "done"]
        sent = seen[persona[1]["content"]]
        if fmt == "json_schema":
            assert sent == {
                "type": "json_schema",
                "json_schema": {"name": "persona", "schema": REPLY_SCHEMAS["persona"]},
            }
            props = sent["json_schema"]["schema"]["properties"]
            assert {"interests", "visual_interests", "text"} <= set(props)
            assert systems[persona[1]["content"]] == persona[0]["content"]
        else:  # the fallback: the schema spelt out in the prompt
            assert sent == {"type": "json_object"}
            system = systems[persona[1]["content"]]
            assert system.startswith(persona[0]["content"])
            schema = json.loads(system.rsplit("\n", 1)[1])
            assert schema == REPLY_SCHEMAS["persona"]
        assert [v for k, v in seen.items() if k != persona[1]["content"]] == [None]
    assert set(JUDGE_SCHEMA["properties"]) == {"score", "reason"}
