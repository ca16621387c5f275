"""What a client may send: a per-token rate limit (a token bucket: `rate` requests a
second, `burst` at once; 429 with Retry-After) and a request body size cap (413, by
Content-Length before anything is read, and by counting what arrives for a body sent
without one)."""

from __future__ import annotations

import math
import threading
import time

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import ServiceError, problem


class TokenBucket:
    """One bucket per key, full at start; `take` spends one request."""

    def __init__(self, rate: float, burst: int, clock=time.monotonic):
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0 when the request may go, else the seconds until it may."""
        with self._lock:
            now = self.clock()
            tokens, at = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate


class RateLimit:
    """ASGI middleware: the bucket of the request's token (``scope["zipp.token"]``, set by
    the auth middleware; requests without one, the public paths, are not limited)."""

    def __init__(self, app: ASGIApp, bucket: TokenBucket):
        self.app = app
        self.bucket = bucket

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = scope.get("zipp.token") if scope["type"] == "http" else None
        wait = self.bucket.take(key) if key is not None else 0.0
        if wait > 0:
            retry = str(max(1, math.ceil(wait)))
            detail = f"rate limit: {self.bucket.rate:g} requests/s, burst {self.bucket.burst}"
            await problem(429, detail, headers={"Retry-After": retry})(scope, receive, send)
            return
        await self.app(scope, receive, send)


class TooLarge(ServiceError):
    """The body outgrew the cap while it was read (FastAPI passes HTTP errors on)."""

    def __init__(self, limit: int):
        super().__init__(413, f"the request body is over {limit // 1024} KiB")


class BodyCap:
    """ASGI middleware: bodies over `limit` bytes are refused with 413."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length")
        if length is not None:
            if not length.strip().isdigit():
                await problem(400, "Content-Length is not a number")(scope, receive, send)
                return
            if int(length) > self.limit:
                await TooLarge(self.limit).response()(scope, receive, send)
                return
        seen = 0
        started = False

        async def capped() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise TooLarge(self.limit)
            return message

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, capped, watch)
        except TooLarge as e:  # raised outside a FastAPI route: answered here
            if not started:
                await e.response()(scope, receive, send)
