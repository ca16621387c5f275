"""The persona service (`zipp serve`): FastAPI on uvicorn.

``POST /v1/personas`` (cold start), ``GET /v1/personas/{pseudonym}`` (a lake persona by
its export pseudonym), ``POST /v1/rewrite``, ``POST /v1/images`` (PNG), ``/healthz``,
``/metrics`` (Prometheus), ``/docs`` and ``/openapi.json``. Every other path needs a
bearer token; requests are rate limited per token and their bodies capped; every error is
JSON ``{"error", "detail"}``. The engine (`service.cold_start.PersonaEngine`) loads once
per process; it is synchronous and its LLM backend is not thread-safe, so its calls run in
the threadpool one at a time.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Security
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import Response

from schemas.persona import Persona
from service.auth import BearerAuth, TokenStore
from service.cold_start import COLD_METHODS, NewUser, UnknownSubreddits
from service.errors import CatchAll, ServiceError, http_error, validation_error
from service.images import ImageRenderer
from service.lake_personas import KeyMissing, LakePersonas
from service.limits import BodyCap, RateLimit, TokenBucket
from service.metrics import Metrics, MetricsMiddleware
from service.rewriter import EndpointRewriter

log = logging.getLogger("zipp.serve")

#: paths that need no token: liveness, metrics, the API's own description
PUBLIC = frozenset({"/healthz", "/metrics", "/docs", "/docs/oauth2-redirect", "/openapi.json"})
#: caps on what a request may hold (422 beyond them)
MAX_SUBREDDITS, MAX_COMMENTS, MAX_COMMENT_CHARS = 200, 200, 2000
MAX_IMAGES, MAX_PROMPT_CHARS = 8, 1000

Method = Literal[COLD_METHODS]  # type: ignore[valid-type]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Url = Annotated[str, StringConstraints(min_length=1, max_length=2048)]
Phrase = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Prompt = Annotated[str, StringConstraints(min_length=1, max_length=MAX_PROMPT_CHARS)]


class Comment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subreddit: Name
    text: str = Field(max_length=MAX_COMMENT_CHARS)


class PersonaRequest(BaseModel):
    """A new user: the communities they name, some of their comments and image URLs."""

    model_config = ConfigDict(extra="forbid")
    subreddits: list[Name] = Field(min_length=1, max_length=MAX_SUBREDDITS)
    comments: list[Comment] = Field(default_factory=list, max_length=MAX_COMMENTS)
    image_urls: list[Url] = Field(default_factory=list, max_length=MAX_IMAGES)
    prompt: Prompt | None = None
    methods: list[Method] | None = Field(None, min_length=1, max_length=len(COLD_METHODS))


class RewriteRequest(BaseModel):
    """A persona (the object, or a lake persona's pseudonym), a prompt and a method;
    `viper` takes liked/disliked visual attributes (a lake persona brings its own)."""

    model_config = ConfigDict(extra="forbid")
    persona: Persona | None = None
    pseudonym: str | None = Field(None, max_length=64)
    prompt: Prompt
    method: Method = "zero_shot"
    likes: list[Phrase] | None = Field(None, max_length=20)
    dislikes: list[Phrase] | None = Field(None, max_length=20)

    @model_validator(mode="after")
    def _one_persona(self) -> RewriteRequest:
        if (self.persona is None) == (self.pseudonym is None):
            raise ValueError("give exactly one of persona (an object) or pseudonym")
        return self


class RewriteResponse(BaseModel):
    prompt: str
    negative_prompt: str | None
    method: str


class ImageRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: Prompt
    negative_prompt: Prompt | None = None
    seed: int = Field(0, ge=0, le=2**32 - 1)


_ENGINE_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCKS_LOCK = threading.Lock()


def _engine_lock(engine: Any) -> threading.Lock:
    """One lock per engine object, shared by every app that serves it."""
    with _LOCKS_LOCK:
        return _ENGINE_LOCKS.setdefault(engine, threading.Lock())


class Service:
    """What the routes share: config, engine, lake index, renderer, metrics."""

    def __init__(self, cfg: Any, engine: Any, metrics: Metrics):
        self.cfg = cfg
        self.engine = engine
        self.metrics = metrics
        self.lake: LakePersonas | None = None
        self.rewriter: EndpointRewriter | None = None  # made in the loop (lifespan)
        self.renderer = ImageRenderer(cfg)
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="zipp-engine")
        self.images_cfg = cfg.images.model_copy(
            update={"allow_hosts": list(cfg.serve.image_allow_hosts)}
        )

    async def run(self, op: str, fn: Callable, *args):
        """`fn` on the engine's thread, holding the engine's lock; its time in the metrics.
        One thread: requests queue for it without holding a pool thread each, and the
        engine's per-thread state (torch's) stays warm."""
        lock = _engine_lock(self.engine)

        def work():
            with lock:
                t0 = time.perf_counter()
                try:
                    return fn(*args)
                finally:
                    self.metrics.engine.labels(op).observe(time.perf_counter() - t0)

        return await asyncio.get_running_loop().run_in_executor(self.pool, work)

    async def fetch(self, urls: list[str]) -> tuple[list[bytes], list[dict]]:
        """A client's image URLs, fetched side by side with the hostile-URL rules."""
        from service.cold_start import fetch_images

        results = await asyncio.gather(
            *(run_in_threadpool(fetch_images, [u], self.images_cfg) for u in urls)
        )
        images = [b for got, _ in results for b in got]
        refused = [r for _, failed in results for r in failed]
        for r in refused:
            self.metrics.images_refused.labels(r["reason"]).inc()
        return images, refused

    def lake_persona(self, pseudonym: str) -> dict:
        try:
            found = self.lake.get(pseudonym) if self.lake is not None else None
        except KeyMissing as e:
            raise ServiceError(503, str(e)) from None
        if found is None:
            raise ServiceError(404, "no lake persona has this pseudonym")
        return found


def _routes(app: FastAPI, svc: Service) -> None:
    bearer = [Security(HTTPBearer(auto_error=False))]  # the docs' padlock; checked earlier

    @app.get("/healthz", tags=["ops"], summary="liveness (no token)")
    async def healthz() -> dict:
        return {"status": "ok", "engine": svc.engine is not None}

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics (no token)")
    async def metrics() -> Response:
        return Response(svc.metrics.render(), media_type=svc.metrics.content_type)

    @app.post("/v1/personas", tags=["personas"], dependencies=bearer)
    async def cold_start(body: PersonaRequest) -> dict:
        """A persona for a user the lake never saw (cold start; nothing is stored)."""
        engine = svc.engine
        images, refused = await svc.fetch(body.image_urls) if body.image_urls else ([], [])
        user = NewUser(
            tuple(body.subreddits),
            tuple((c.subreddit, c.text) for c in body.comments),
            tuple(images),
        )
        methods = tuple(body.methods or COLD_METHODS)
        try:
            out = await svc.run("persona", engine.persona, user, body.prompt, methods)
        except UnknownSubreddits:
            raise ServiceError(422, "none of the subreddits is in the lake's graph") from None
        except ValueError as e:
            raise ServiceError(502, str(e), "llm_failed") from None
        return out.public() | {"images_fetched": len(images), "images_refused": refused}

    @app.get("/v1/personas/{pseudonym}", tags=["personas"], dependencies=bearer)
    async def lake_persona(pseudonym: str) -> dict:
        """A lake persona by its export pseudonym (`u_` + 16 hex)."""
        return svc.lake_persona(pseudonym)

    @app.post("/v1/rewrite", tags=["rewrite"], dependencies=bearer)
    async def rewrite(body: RewriteRequest) -> RewriteResponse:
        """A prompt rewritten for a persona by one method."""
        likes, dislikes = body.likes or [], body.dislikes or []
        if body.persona is not None:
            persona = body.persona.model_dump()
        else:
            persona = svc.lake_persona(body.pseudonym)
            if body.method == "viper" and not (likes or dislikes):
                likes, dislikes = svc.lake.preferences.get(body.pseudonym, ([], []))
        args = (persona, body.prompt, body.method, likes, dislikes)
        try:
            if svc.rewriter is not None:  # an endpoint LLM: sent from the loop, side by side
                t0 = time.perf_counter()
                text, negative = await svc.rewriter.rewrite(*args)
                svc.metrics.engine.labels("rewrite").observe(time.perf_counter() - t0)
            else:
                text, negative = await svc.run("rewrite", svc.engine.rewrite, *args)
        except ValueError as e:
            raise ServiceError(502, str(e), "llm_failed") from None
        return RewriteResponse(prompt=text, negative_prompt=negative, method=body.method)

    @app.post(
        "/v1/images",
        tags=["images"],
        dependencies=bearer,
        response_class=Response,
        responses={200: {"content": {"image/png": {}}, "description": "the image (PNG)"}},
    )
    async def image(body: ImageRequest) -> Response:
        """An image of the prompt from the configured diffusion model."""
        if svc.renderer.model() is None:
            raise ServiceError(503, svc.renderer.missing())
        t0 = time.perf_counter()  # the renderer serialises its own calls
        try:
            png = await run_in_threadpool(
                svc.renderer.png, body.prompt, body.negative_prompt, body.seed
            )
        except FileNotFoundError:
            raise ServiceError(503, svc.renderer.missing()) from None
        svc.metrics.engine.labels("image").observe(time.perf_counter() - t0)
        return Response(png, media_type="image/png")


def load_tokens(cfg: Any) -> TokenStore:
    """The `serve` section's bearer tokens; ValueError when there are none."""
    serve = cfg.serve
    store = TokenStore.load(serve.tokens_file, serve.tokens_env)
    if not len(store):
        raise ValueError(
            f"no bearer tokens: set {serve.tokens_env} (comma-separated tokens) or "
            "serve.tokens_file (one 'name:sha256hex' a line)"
        )
    return store


def create_app(cfg: Any, engine: Any = None) -> FastAPI:
    """The service for a composed config (`jobs.config.ZippConfig`); `engine`, a loaded
    `PersonaEngine`, else one is loaded at startup. ValueError when no token is set."""
    serve = cfg.serve
    store = load_tokens(cfg)
    metrics = Metrics()
    svc = Service(cfg, engine, metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        owned = svc.engine is None  # an engine given to create_app stays its caller's
        if owned:
            from service.cold_start import PersonaEngine

            svc.engine = await run_in_threadpool(PersonaEngine, cfg)
        svc.lake = await run_in_threadpool(LakePersonas.load, cfg, svc.engine.spec.label)
        if EndpointRewriter.fits(cfg):
            svc.rewriter = EndpointRewriter(cfg)
        log.info("ready: %d lake personas by pseudonym", len(svc.lake))
        yield
        if svc.rewriter is not None:
            await svc.rewriter.aclose()
        if owned:
            await svc.run("close", svc.engine.close)
        svc.pool.shutdown(wait=False)

    app = FastAPI(
        title="ZIPP persona service",
        summary="cold-start personas, lake personas by pseudonym, rewrites, images",
        version="1",
        lifespan=lifespan,
        redoc_url=None,
    )
    app.state.service = svc
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    _routes(app, svc)
    # outermost last: metrics see every answer, errors become JSON, then auth, rate, size
    app.add_middleware(BodyCap, limit=serve.max_body_kb * 1024)
    app.add_middleware(RateLimit, bucket=TokenBucket(serve.rate_per_s, serve.burst))
    app.add_middleware(BearerAuth, store=store, public=PUBLIC)
    app.add_middleware(CatchAll)
    app.add_middleware(MetricsMiddleware, metrics=metrics, routes=lambda: app.routes)
    return app
