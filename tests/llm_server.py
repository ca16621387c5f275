"""A real HTTP server speaking OpenAI chat completions on loopback, with fault injection.

It stands in for a hosted LLM API (the one thing outside this machine): the openai
backend talks to it over real sockets. Faults are planned per request content, so a test
knows which rows must end `done` and which `failed`:

* ``429``: rate limited (``Retry-After: 0``); ``500``: server error whose body echoes the
  caller's Authorization header (a hostile server); ``timeout``: no answer before the
  client gives up; ``drop``: the connection is closed without a response; ``garbage``:
  status 200 with a body that is not JSON; ``bad_json``: a well-formed reply whose content
  is not the JSON asked for (the repair path); ``echo``: a reply whose content repeats the
  caller's Authorization header.

Faults that leak the caller's key (the bearer token, without ``Bearer ``) so that it
begins exactly ``N`` characters into the text, to put it across any cut a client makes:

* ``leak<status>:N`` (e.g. ``leak400:190``, ``leak500:195``, ``leak200:110``): that status
  with a plain-text (not JSON) body; ``leakjson:N``: status 200 with a JSON body that is a
  string, not an object; ``leakreply:N``: a well-formed reply whose content carries the
  key; ``leakstatus:N``: a raw, invalid HTTP status line carrying the key (the client's
  parser error quotes it), then the connection is closed.

Every request's image parts are recorded (`images`, by content key): what was sent as an
``image_url`` part, so a test can check that images arrive as data URIs and which ones.

``python -m tests.llm_server --port 0 --latency 0.2`` serves until killed (for perf/).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import threading
from collections import Counter, defaultdict
from collections.abc import Callable

from aiohttp import web

Plan = Callable[[str, int], str | None]  # (content key, attempt number from 1) -> fault


def content_key(body: dict) -> str:
    """What identifies a logical request: a hash of its first two messages (a repair
    call, which appends to them, counts as another attempt of the same request)."""
    first = (body.get("messages") or [])[:2]
    return hashlib.sha1(json.dumps(first, sort_keys=True).encode()).hexdigest()


def default_reply(body: dict) -> str:
    """A valid answer to whatever the pipeline asks: persona JSON, preferences JSON or a
    rewritten prompt (derived from the request, so it is deterministic)."""
    system = body["messages"][0]["content"]
    last = body["messages"][-1]["content"]
    tag = content_key(body)[:6]
    if "You judge images" in system:
        parts = last if isinstance(last, list) else []
        has_image = any(
            p.get("type") == "image_url" and p["image_url"]["url"].startswith("data:image/png")
            for p in parts
        )
        score = 7 if has_image else 1
        return json.dumps({"score": score, "reason": f"saw an image: {has_image}"})
    if "visual_interests" in system:
        return json.dumps(
            {
                "demographics": {"age": "25-34", "gender": None, "region": None},
                "interests": ["photography", tag],
                "affective_traits": ["curious"],
                "visual_interests": ["film grain", "warm light"],
                "text": f"I am a test persona {tag}.",
            }
        )
    if '"likes"' in system:
        return json.dumps({"likes": ["film grain", tag], "dislikes": ["oversaturation"]})
    base = last.rsplit("\n\n", 1)[-1]
    return f"{base}, rewritten {tag}"


def image_urls(body: dict) -> list[str]:
    """The URL of every ``image_url`` content part of a request's messages, in order."""
    return [
        p["image_url"]["url"] if isinstance(p.get("image_url"), dict) else str(p.get("image_url"))
        for m in body.get("messages") or []
        if isinstance(m.get("content"), list)
        for p in m["content"]
        if isinstance(p, dict) and p.get("type") == "image_url"
    ]


def decode_data_uri(url: str) -> tuple[str, bytes]:
    """(mime type, bytes) of a base64 ``data:`` URI; ValueError for anything else."""
    match = re.fullmatch(r"data:(image/[a-z+.-]+);base64,([A-Za-z0-9+/=]+)", url)
    if match is None:
        raise ValueError(f"not a base64 image data URI: {url[:40]!r}")
    return match.group(1), base64.b64decode(match.group(2), validate=True)


def _padded(at: int, token: str, sep: str = " ") -> str:
    """Filler text in which `token` begins exactly `at` characters in, then more text."""
    unit = "error: invalid request for key" + sep
    filler = unit * (at // len(unit) + 1)
    return f"{filler[:at]}{token}{sep}was not accepted{sep}" + "x" * 40


def _words(content: str | list) -> int:
    """Whitespace words of a message's text, plain or in multimodal parts."""
    if isinstance(content, str):
        return len(content.split())
    return sum(len(p.get("text", "").split()) for p in content if p.get("type") == "text")


class ChatServer:
    """Serve on 127.0.0.1 in a background thread (start/stop, or use as a context)."""

    def __init__(
        self,
        latency: float = 0.0,
        plan: Plan | None = None,
        api_key: str | None = None,
        reply: Callable[[dict], str] = default_reply,
        hang_s: float = 30.0,
        port: int = 0,
    ):
        self.latency = latency
        self.plan = plan or (lambda key, attempt: None)
        self.api_key = api_key
        self.reply = reply
        self.hang_s = hang_s
        self.port = port
        self.attempts: dict[str, int] = defaultdict(int)
        self.outcomes: Counter = Counter()
        self.answered: Counter = Counter()  # content key -> 200 replies sent
        self.images: dict[str, list[str]] = {}  # content key -> its image parts' URLs
        self.inflight = 0
        self.max_inflight = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            return await self._answer(request)
        finally:
            with self._lock:
                self.inflight -= 1

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization")
        if self.api_key is not None and auth != f"Bearer {self.api_key}":
            return web.json_response({"error": {"message": "bad key"}}, status=401)
        body = await request.json()
        key = content_key(body)
        with self._lock:
            self.attempts[key] += 1
            self.images[key] = image_urls(body)
            fault = self.plan(key, self.attempts[key])
            self.outcomes[fault or "ok"] += 1
        if self.latency:
            await asyncio.sleep(self.latency)
        kind, _, at = (fault or "").removeprefix("leak").partition(":")
        token = (auth or "").removeprefix("Bearer ")
        if fault and fault.startswith("leak") and kind != "reply":
            return self._leak(request, kind, int(at), token)
        if fault == "429":
            return web.json_response(
                {"error": {"message": "rate limited"}}, status=429, headers={"Retry-After": "0"}
            )
        if fault == "500":
            echo = request.headers.get("Authorization", "")
            return web.Response(status=500, text=f"internal error; you sent {echo}")
        if fault == "timeout":
            await asyncio.sleep(self.hang_s)
        if fault == "drop":
            request.transport.abort()
            return web.Response(status=500)
        if fault == "garbage":
            return web.Response(
                status=200, text='{"choices": [{"message": ', content_type="application/json"
            )
        if fault and fault.startswith("leakreply:"):
            content = _padded(int(at), token)
        elif fault == "echo":  # a well-formed reply that repeats the caller's credentials
            content = f"a cat, as requested by {auth}"
        elif fault == "bad_json":
            content = "Sure! Here it is: {not json"
        else:
            content = self.reply(body)
        with self._lock:
            self.answered[key] += 1
        return web.json_response(
            {
                "id": "chatcmpl-" + key[:12],
                "object": "chat.completion",
                "model": body.get("model"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": sum(_words(m["content"]) for m in body["messages"]),
                    "completion_tokens": len(content.split()),
                },
            }
        )

    @staticmethod
    def _leak(request: web.Request, kind: str, at: int, token: str) -> web.Response:
        """The response for a ``leak*`` fault other than ``leakreply``."""
        if kind == "json":  # the opening quote counts: the key still begins at `at`
            return web.json_response(_padded(max(0, at - 1), token, sep=""))
        if kind == "status":
            line = "HTTP/1.1 2x0 " + _padded(max(0, at - 13), token, sep="")
            request.transport.write(line.encode() + b"\r\nContent-Length: 0\r\n\r\n")
            request.transport.close()
            return web.Response(status=500)  # never sent: the connection is closed
        return web.Response(status=int(kind), text=_padded(at, token), content_type="text/plain")

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.port, backlog=1024)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        self._runner = runner
        self._ready.set()

    def start(self) -> ChatServer:
        def main() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self._serve())
            self._loop.run_forever()

        self._thread = threading.Thread(target=main, daemon=True)
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        fut = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
        fut.result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def __enter__(self) -> ChatServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


if __name__ == "__main__":
    import argparse
    import time

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--latency", type=float, default=0.2)
    args = ap.parse_args()
    server = ChatServer(latency=args.latency, port=args.port).start()
    print(server.url, flush=True)
    while True:
        time.sleep(3600)
