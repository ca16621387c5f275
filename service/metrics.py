"""Prometheus metrics of one app (its own registry): requests and latency per route
template and status, time spent in the engine, client images refused by reason. Labels
come from fixed sets only (the route's template, never the path a client sent)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("zipp.serve")

_METHODS = frozenset({"GET", "POST", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS"})
_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The service's collectors in a registry of their own."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "zipp_serve_requests",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "zipp_serve_request_seconds",
            "HTTP request latency by method, route template and status",
            ["method", "route", "status"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.engine = Histogram(
            "zipp_serve_engine_seconds",
            "time in the engine per call (after waiting for it)",
            ["op"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.images_refused = Counter(
            "zipp_serve_images_refused",
            "client image URLs refused or failed, by the fetcher's reason",
            ["reason"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


def route_template(scope: Scope, routes: Sequence[BaseRoute]) -> str:
    """The template of the route a request went to (or would have, when refused before
    routing), else ``unmatched``."""
    route = scope.get("route")
    if route is None:
        for r in routes:
            if r.matches(scope)[0] == Match.FULL:
                route = r
                break
    return getattr(route, "path", None) or "unmatched"


class MetricsMiddleware:
    """ASGI middleware counting and timing every HTTP request."""

    def __init__(self, app: ASGIApp, metrics: Metrics, routes: Callable[[], Sequence[BaseRoute]]):
        self.app = app
        self.metrics = metrics
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            method = scope["method"] if scope["method"] in _METHODS else "other"
            labels = (method, route_template(scope, self.routes()), str(status))
            self.metrics.requests.labels(*labels).inc()
            seconds = time.perf_counter() - t0
            self.metrics.latency.labels(*labels).observe(seconds)
            log.info("%s %s %s %.1f ms", *labels, seconds * 1000)
