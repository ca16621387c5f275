"""Any OpenAI-compatible chat-completions endpoint (vLLM, SGLang, Ollama, LiteLLM, hosted).

Async with bounded concurrency, a client-side rate limit, per-request timeouts and
retries with exponential backoff and jitter on 429, 5xx, timeouts, dropped connections
and unreadable bodies (``Retry-After`` is honoured). The API key is read by the caller
from the environment and only ever sent in the Authorization header. Every text that
comes from the server (bodies, error messages, exception strings, the reply) is scrubbed
of the key and of every 8+ character piece of it *before* it is cut or kept
(`base.scrub_secret`, `base.clip_scrubbed`): a hostile server may echo the key.
A request's images (`ChatRequest.images`) go as ``image_url`` parts with data URIs.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import time
from collections.abc import Sequence

import aiohttp

from llm.base import (
    ChatRequest,
    Completion,
    Runtime,
    clip_scrubbed,
    scrub_secret,
    with_schema,
)

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class TransientError(Exception):
    """A failure worth retrying; `wait` is the server's Retry-After, if any."""

    def __init__(self, reason: str, wait: float | None = None):
        super().__init__(reason)
        self.wait = wait


class OpenAIBackend:
    """Chat completions over HTTP; one aiohttp session per backend instance."""

    template = False

    def __init__(
        self,
        model: str,
        base_url: str,
        api_key: str | None,
        runtime: Runtime,
        response_format: str = "json_object",
    ):
        if not base_url:
            raise ValueError("llm.base_url is required for the openai backend")
        self.model = model
        self.label = f"openai:{model}"
        self.url = base_url.rstrip("/") + "/chat/completions"
        self._key = api_key or None
        self.rt = runtime
        self.response_format = response_format
        self._gate = asyncio.Semaphore(runtime.concurrency)
        self._interval = 1.0 / runtime.requests_per_s if runtime.requests_per_s else 0.0
        self._next_slot = 0.0
        self._session: aiohttp.ClientSession | None = None

    def scrub(self, text: str) -> str:
        """Outside text with the API key and every 8+ character piece of it removed."""
        return scrub_secret(text, self._key)

    def _clip(self, text: str, limit: int) -> str:
        """At most `limit` characters of outside text: scrubbed, cut, scrubbed again."""
        return clip_scrubbed(text, limit, self._key)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            headers = {"Content-Type": "application/json"}
            if self._key:
                headers["Authorization"] = f"Bearer {self._key}"
            self._session = aiohttp.ClientSession(
                headers=headers,
                connector=aiohttp.TCPConnector(limit=self.rt.concurrency, force_close=False),
                timeout=aiohttp.ClientTimeout(total=self.rt.timeout_s),
            )
        return self._session

    async def complete(self, requests: list[ChatRequest]) -> list[Completion]:
        return list(await asyncio.gather(*(self._one(r) for r in requests)))

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _throttle(self) -> None:
        if not self._interval:
            return
        now = time.monotonic()
        slot = max(now, self._next_slot)
        self._next_slot = slot + self._interval
        if slot > now:
            await asyncio.sleep(slot - now)

    def _body(self, r: ChatRequest) -> dict:
        body = {
            "model": self.model,
            "messages": r.messages,
            "max_tokens": self.rt.max_tokens,
            "temperature": self.rt.temperature,
            "seed": self.rt.seed,
        }
        if r.json and self.rt.json_mode:
            body["response_format"] = self._response_format(r)
            if body["response_format"]["type"] == "json_object" and r.schema is not None:
                body["messages"] = with_schema(r.messages, r.schema)  # the fallback
        if r.images:
            body["messages"] = with_image_parts(body["messages"], r.images)
        return body

    def _response_format(self, r: ChatRequest) -> dict:
        """`json_schema` (decoding constrained to the task's reply schema) where this
        endpoint is configured for it and the request carries one, else `json_object`."""
        if self.response_format == "json_schema" and r.schema is not None:
            return {
                "type": "json_schema",
                "json_schema": {"name": r.task, "schema": r.schema},
            }
        return {"type": "json_object"}

    async def _one(self, r: ChatRequest) -> Completion:
        t0 = time.perf_counter()
        c = await self._call(r)
        c.seconds = time.perf_counter() - t0
        return c

    async def _call(self, r: ChatRequest) -> Completion:
        attempts = 0
        reason = "not attempted"
        async with self._gate:
            while attempts <= self.rt.max_retries:
                attempts += 1
                await self._throttle()
                try:
                    done = self._parse(await self._post(self._body(r)), attempts)
                    done.text = self.scrub(done.text)  # a hostile server may echo the key
                    return done
                except TransientError as e:
                    reason = self.scrub(str(e))
                    if attempts > self.rt.max_retries:
                        break
                    await asyncio.sleep(self._delay(attempts, e.wait))
                except _Fatal as e:
                    return Completion(None, attempts=attempts, error=self.scrub(str(e)))
        return Completion(
            None, attempts=attempts, error=f"{reason} (gave up after {attempts} attempts)"
        )

    def _delay(self, attempt: int, wait: float | None) -> float:
        if wait is not None:
            return min(wait, self.rt.max_backoff_s)
        cap = min(self.rt.max_backoff_s, self.rt.backoff_s * 2 ** (attempt - 1))
        return random.uniform(cap / 2, cap)

    async def _post(self, body: dict) -> dict:
        try:
            async with self._client().post(self.url, json=body) as resp:
                text = await resp.text(errors="replace")  # undecodable bytes: unreadable body
                if resp.status in RETRY_STATUS:
                    raise TransientError(
                        f"http {resp.status}: {self._clip(text, 200)}", _retry_after(resp.headers)
                    )
                if resp.status >= 400:
                    raise _Fatal(f"http {resp.status}: {self._clip(text, 300)}")
        except TimeoutError as e:
            raise TransientError(f"timeout after {self.rt.timeout_s:g}s") from e
        except aiohttp.ClientError as e:  # dropped connection, reset, refused, bad status line
            # its message may quote what the server sent: scrub before the cut, chain nothing
            raise TransientError(self._clip(f"connection: {type(e).__name__}: {e}", 300)) from None
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON
            raise TransientError(f"unreadable response body: {self._clip(text, 120)!r}") from None
        if not isinstance(data, dict):
            raise TransientError(f"unexpected response body: {self._clip(text, 120)!r}")
        return data

    @staticmethod
    def _parse(data: dict, attempts: int) -> Completion:
        try:
            choice = data["choices"][0]
            text = choice["message"]["content"]
        except (KeyError, IndexError, TypeError) as e:
            raise TransientError(f"response without choices[0].message.content: {e!r}") from e
        if not isinstance(text, str):
            raise TransientError("response content is not a string")
        usage = data.get("usage") or {}
        return Completion(
            text,
            prompt_tokens=_int(usage.get("prompt_tokens")),
            completion_tokens=_int(usage.get("completion_tokens")),
            attempts=attempts,
        )


def data_uri(mime: str, data: bytes) -> str:
    """An image as a ``data:`` URI (base64), the form every OpenAI-compatible server takes."""
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def with_image_parts(messages: list[dict], images: Sequence[tuple[str, bytes]]) -> list[dict]:
    """`messages` with `images` as OpenAI ``image_url`` content parts (data URIs) after the
    text of the first user message (a repair turn appended later leaves them where they
    were)."""
    out = [dict(m) for m in messages]
    at = next((i for i, m in enumerate(out) if m.get("role") == "user"), None)
    if at is None:
        out.append({"role": "user", "content": []})
        at = len(out) - 1
    content = out[at]["content"]
    parts = [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
    parts += [
        {"type": "image_url", "image_url": {"url": data_uri(mime, data)}} for mime, data in images
    ]
    out[at]["content"] = parts
    return out


class _Fatal(Exception):
    """A failure a retry cannot fix (4xx other than rate limits)."""


def _retry_after(headers) -> float | None:
    try:
        return max(0.0, float(headers.get("Retry-After", "")))
    except ValueError:
        return None


def _int(v: object) -> int | None:
    return v if isinstance(v, int) and v >= 0 else None
