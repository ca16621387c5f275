"""A request's images on the wire: the openai backend sends them to the local
OpenAI-compatible server as data-URI ``image_url`` parts of the first user message (a
repair turn keeps them), the request id changes with them and not without them, and
fetched images are made PNG or JPEG within a size before they go."""

from __future__ import annotations

import asyncio
import io

import numpy as np
import pytest
from PIL import Image

from generation.prompts import persona_messages
from llm import ChatRequest, Runtime, make_backend, request_id
from llm.fanout import process
from llm.tokens import PACKAGED, counter
from media.image_parts import model_ready
from schemas.persona import REPLY_PARSERS
from tests.llm_server import ChatServer, decode_data_uri


def picture(fmt: str, side: int = 16, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(buf, fmt)
    return buf.getvalue()


def _send(server: ChatServer, reqs: list[ChatRequest]) -> list[dict]:
    runtime = Runtime(concurrency=2, timeout_s=30.0, max_retries=1, backoff_s=0.01)

    async def go() -> list[dict]:
        backend = make_backend("openai", "vlm", server.url, None, runtime)
        try:
            return await process(backend, reqs, counter(PACKAGED).count, REPLY_PARSERS)
        finally:
            await backend.aclose()

    return asyncio.run(go())


def test_images_arrive_as_data_uri_image_parts_of_the_first_user_message():
    images = (("image/png", picture("PNG", seed=1)), ("image/jpeg", picture("JPEG", seed=2)))
    shown = persona_messages("evidence of a film photographer")
    plain = persona_messages("evidence of a gardener")
    bodies: list[dict] = []

    def reply(body: dict) -> str:
        bodies.append(body)
        from tests.llm_server import default_reply

        return default_reply(body)

    # the first answer to the request with images is not JSON: the repair turn must keep them
    def plan(key: str, attempt: int) -> str | None:
        return "bad_json" if attempt == 1 and len(server.images.get(key, [])) else None

    with ChatServer(reply=reply, plan=plan) as server:
        out = _send(
            server,
            [
                ChatRequest("a", "persona", shown, json=True, images=images),
                ChatRequest("b", "persona", plain, json=True),
            ],
        )
        seen = dict(server.images)
    assert [o["status"] for o in out] == ["done", "done"], out
    assert out[0]["attempts"] == 2
    with_images = [urls for urls in seen.values() if urls]
    assert len(with_images) == 1 and [] in seen.values()  # the plain request had none
    assert [decode_data_uri(u) for u in with_images[0]] == list(images)
    repair = next(b for b in bodies if len(b["messages"]) > 2)  # the repair call
    first_user = repair["messages"][1]
    assert first_user["role"] == "user" and isinstance(first_user["content"], list)
    assert first_user["content"][0] == {"type": "text", "text": shown[1]["content"]}
    assert [p["type"] for p in first_user["content"][1:]] == ["image_url", "image_url"]
    assert all(isinstance(m["content"], str) for m in repair["messages"][2:])


def test_the_request_id_changes_with_the_images_and_not_without_them():
    rt = Runtime()
    msgs = persona_messages("evidence")
    one = (("image/png", picture("PNG", seed=1)),)
    other = (("image/png", picture("PNG", seed=2)),)
    base = request_id("openai:m", "persona", msgs, {}, rt)
    assert request_id("openai:m", "persona", msgs, {}, rt, "json_object", ()) == base
    ids = {request_id("openai:m", "persona", msgs, {}, rt, "json_object", i) for i in (one, other)}
    assert len(ids) == 2 and base not in ids
    assert request_id("openai:m", "persona", msgs, {}, rt, "json_object", one) in ids  # stable


def test_fetched_images_are_made_png_or_jpeg_within_the_size():
    png, jpeg = picture("PNG"), picture("JPEG")
    assert model_ready(png) == ("image/png", png)  # as it came
    assert model_ready(jpeg) == ("image/jpeg", jpeg)
    mime, data = model_ready(picture("GIF"))
    assert mime == "image/png" and Image.open(io.BytesIO(data)).format == "PNG"
    mime, data = model_ready(picture("WEBP"))
    assert mime == "image/jpeg" and Image.open(io.BytesIO(data)).format == "JPEG"
    mime, data = model_ready(picture("JPEG", side=64), max_side=32)
    with Image.open(io.BytesIO(data)) as im:
        assert mime == "image/jpeg" and max(im.size) == 32


def test_an_endpoint_can_say_it_sees_no_images():
    """`images: false` keeps image parts from a text-only model behind an OpenAI-compatible
    server (and refuses it as a judge); `images: true` where the backend cannot show
    images is an error; unset, the backend decides."""
    from llm import check_judge, sees_images
    from llm.config import LLMSpec

    endpoint = dict(backend="openai", model="m", base_url="http://127.0.0.1:1/v1")
    assert sees_images(LLMSpec(**endpoint))
    assert not sees_images(LLMSpec(**endpoint, images=False))
    assert not sees_images(LLMSpec(backend="vllm", model="m"))
    with pytest.raises(ValueError, match="images: true"):
        sees_images(LLMSpec(backend="vllm", model="m", images=True))
    check_judge(LLMSpec(**endpoint))
    with pytest.raises(ValueError, match="judge.images: false"):
        check_judge(LLMSpec(**endpoint, images=False))
