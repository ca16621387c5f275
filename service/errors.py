"""Errors as JSON, always: ``{"error": short code, "detail": message}``, from the HTTP
errors the routes and middleware raise, from request validation, and from anything else
(a catch-all middleware answers 500 and logs the exception's type and route only: no
stack trace, message or request content leaves the process or reaches a log line)."""

from __future__ import annotations

import logging

from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("zipp.serve")

#: the short code of each status the service answers with
CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    500: "internal",
    503: "unavailable",
}


def problem(
    status: int, detail: str, code: str | None = None, headers: dict | None = None
) -> JSONResponse:
    """The JSON error response."""
    body = {"error": code or CODES.get(status, "error"), "detail": detail}
    return JSONResponse(body, status_code=status, headers=headers)


class ServiceError(HTTPException):
    """An HTTP error with its own short code (`detail` is shown to the client)."""

    def __init__(self, status: int, detail: str, code: str | None = None, headers=None):
        super().__init__(status, detail, headers)
        self.code = code

    def response(self) -> JSONResponse:
        return problem(self.status_code, str(self.detail), self.code, self.headers)


async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
    return problem(exc.status_code, str(exc.detail), getattr(exc, "code", None), exc.headers)


def _where(loc: tuple) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 naming the first few fields and what is wrong (never the values sent)."""
    errors = exc.errors()
    shown = "; ".join(f"{_where(tuple(e.get('loc', ())))}: {e.get('msg')}" for e in errors[:5])
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return problem(422, shown + more)


class CatchAll:
    """ASGI middleware: an exception the app did not turn into a response becomes a 500
    JSON error (when no response has started) and one log line with its type."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as e:  # the one place every error ends
            route = getattr(scope.get("route"), "path", "unmatched")
            log.error("unhandled %s on %s %s", type(e).__name__, scope.get("method"), route)
            if not started:
                await problem(500, "internal error")(scope, receive, send)
