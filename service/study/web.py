"""HTTP plumbing the study's routes share: a capped form reader (a client's body is
hostile), refusals as JSON {"error", "detail"} (or a page for a browser) with no stack
trace, and the response headers every page carries."""

from __future__ import annotations

import logging
import urllib.parse

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.study.pages import message_page

MAX_BODY = 64 * 1024  # a survey, a vote or a study form: far below this
MAX_FIELDS = 64
FORM = "application/x-www-form-urlencoded"
log = logging.getLogger("zipp.study")

HEADERS = {
    "Referrer-Policy": "no-referrer",  # an invite link never leaves in a Referer
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "Cache-Control": "no-store",
}


class Refused(Exception):
    """A request refused with an HTTP status, a short error and what to do."""

    def __init__(self, status: int, error: str, detail: str):
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def refusal(request: Request, status: int, error: str, detail: str) -> Response:
    """A refusal: a page for a browser, else JSON {"error", "detail"}."""
    if wants_html(request):
        return HTMLResponse(message_page(error, detail, status), status_code=status)
    return JSONResponse({"error": error, "detail": detail}, status_code=status)


async def read_form(request: Request) -> dict[str, str | list[str]]:
    """An urlencoded form body, at most `MAX_BODY` bytes and `MAX_FIELDS` fields; a
    repeated field (checkboxes) becomes a list."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != FORM:
        raise Refused(415, "unsupported body", f"send the form as {FORM}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise Refused(413, "body too large", f"a form is at most {MAX_BODY} bytes")
    try:
        pairs = urllib.parse.parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS
        )
    except (UnicodeDecodeError, ValueError):
        raise Refused(400, "bad form", "the form could not be read") from None
    out: dict[str, str | list[str]] = {}
    for k, v in pairs:
        if k in out:
            prev = out[k]
            out[k] = [*prev, v] if isinstance(prev, list) else [prev, v]
        else:
            out[k] = v
    return out


def text(form: dict, key: str) -> str:
    """One text field of a form ('' when missing; a repeated one is refused)."""
    v = form.get(key, "")
    if isinstance(v, list):
        raise Refused(400, "bad form", f"field {key!r} given more than once")
    return v


class Guard:
    """ASGI middleware: a declared body over the cap is refused before it is read, and
    every response gets the study's headers (no Referer, no framing, a strict CSP)."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY):
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            length = dict(scope.get("headers") or []).get(b"content-length")
            if length is not None and (not length.isdigit() or int(length) > self.limit):
                resp = JSONResponse(
                    {"error": "body too large", "detail": f"at most {self.limit} bytes"},
                    status_code=413,
                )
                await resp(scope, receive, send)
                return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                have = {k.lower() for k, _ in message.get("headers", [])}
                extra = [
                    (k.lower().encode(), v.encode())
                    for k, v in HEADERS.items()
                    if k.lower().encode() not in have
                ]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers if scope["type"] == "http" else send)
