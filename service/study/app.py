"""The study's web app (FastAPI): a rater opens their invite link (a session cookie tied
to the invite; opening it again resumes), answers the intake survey, waits while the
worker makes their persona and images, then judges pairs, one vote each; a page shows
and deletes their data. The admin's routes are in `service.study.admin`."""

from __future__ import annotations

import contextlib
import hmac
import logging
import threading
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from service.cold_start import COLD_METHODS
from service.limits import TokenBucket
from service.study import pages
from service.study.config import StudyConfig
from service.study.pairs import plan_pairs
from service.study.queue import JobQueue
from service.study.render import StudyRenderer
from service.study.store import Rater, Store, StudyError
from service.study.survey import Survey, SurveyError, clean_answers, new_user
from service.study.tokens import AdminToken
from service.study.web import Guard, Refused, read_form, refusal, text
from service.study.worker import Worker

COOKIE = "zipp_study"
SESSION_DAYS = 60
log = logging.getLogger("zipp.study")


@dataclass
class StudyState:
    """What the routes share: the store, its queue, the survey, the admin token, the
    renderer (persona engine + diffusion model) and the worker that uses it."""

    settings: StudyConfig
    store: Store
    queue: JobQueue
    survey: Survey
    admin: AdminToken
    renderer: StudyRenderer
    worker: Worker | None = None
    methods: tuple[str, ...] = COLD_METHODS
    admin_sessions: set[str] = field(default_factory=set)
    #: admin login attempts per client address: 5 at once, then one every 12 s
    login_attempts: TokenBucket = field(default_factory=lambda: TokenBucket(1 / 12, 5))


def _state(request: Request) -> StudyState:
    return request.app.state.study


def _session(request: Request) -> tuple[str, Rater]:
    token = request.cookies.get(COOKIE)
    rater = _state(request).store.rater(token)
    if rater is None:
        raise Refused(401, "no session", "open the invite link you were sent to take part")
    return token, rater


async def _posted(request: Request) -> tuple[str, Rater, dict]:
    """A rater's form post: (session token, rater, form), the session and the form's
    CSRF token checked."""
    token, rater = _session(request)
    form = await read_form(request)
    _check_csrf(request, token, form)
    return token, rater, form


def _check_csrf(request: Request, token: str, form: dict) -> None:
    want = _state(request).store.csrf(token)
    if not hmac.compare_digest(want.encode(), text(form, "csrf").encode()):
        raise Refused(403, "form expired", "reload the page and try again")


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status)


def _examples(state: StudyState) -> list[str]:
    """The lake's largest communities: what the survey suggests when none is known."""
    subs = state.renderer.engine.subreddits.sort_by([("users", "descending")])
    return subs["subreddit"].to_pylist()[:8]


def rater_routes(app: FastAPI) -> None:
    """The rater's routes."""

    @app.get("/", response_class=HTMLResponse)
    def home() -> HTMLResponse:
        return _html(
            pages.page(
                "Study",
                "<h1>A study of pictures and tastes</h1>"
                "<p>To take part, open the invite link you were sent.</p>",
            )
        )

    @app.get("/healthz")
    def healthz(request: Request) -> dict:
        return {"ok": True, "queue": _state(request).queue.counts()}

    @app.get("/i/{code}")
    def invite(code: str, request: Request) -> Response:
        state = _state(request)
        try:
            token = state.store.open_invite(code)
        except StudyError as e:
            return refusal(request, e.status, "invite refused", str(e))
        resp = RedirectResponse("/study", status_code=303)
        resp.set_cookie(
            COOKIE,
            token,
            max_age=SESSION_DAYS * 86400,
            httponly=True,
            samesite="lax",
            secure=state.settings.secure_cookies,
            path="/",
        )
        return resp

    @app.get("/study", response_class=HTMLResponse)
    def study(request: Request) -> Response:
        state = _state(request)
        token, rater = _session(request)
        csrf = state.store.csrf(token)
        if rater.state == "survey":
            return _html(pages.survey_page(state.survey, csrf))
        if rater.state == "rendering":
            made, total = state.queue.rater_progress(rater.id)
            return _html(pages.wait_page(made, total, rater.error))
        pairs = state.store.pairs(rater.id)
        todo = [p for p in pairs if p.vote is None]
        if not todo:
            return _html(pages.done_page(len(pairs)))
        n = len(pairs) - len(todo) + 1
        return _html(pages.pair_page(todo[0], n, len(pairs), csrf))

    @app.post("/study/survey", response_class=HTMLResponse)
    async def survey(request: Request) -> Response:
        state = _state(request)
        token, rater, form = await _posted(request)
        if rater.state != "survey":
            return RedirectResponse("/study", status_code=303)
        try:  # loads once (seconds): off the event loop
            engine = await run_in_threadpool(lambda: state.renderer.engine)
        except Exception as e:
            log.error("study: the persona engine could not load: %s", type(e).__name__)
            raise Refused(503, "not ready", "the study cannot make personas now") from None
        try:
            answers = clean_answers(state.survey, form)
            user = new_user(state.survey, answers, engine.resolve, _examples(state))
        except SurveyError as e:
            keep = {k: v for k, v in form.items() if k != "csrf"}
            page = pages.survey_page(state.survey, state.store.csrf(token), keep, str(e))
            return _html(page, 400)
        study = state.store.study(rater.study)
        pairs = plan_pairs(len(study["prompts"]), study["methods"], study["votes_per_rater"])
        kept = {
            "answers": answers,
            "persona_input": {"subreddits": list(user.subreddits), "comments": user.comments},
        }
        with contextlib.suppress(StudyError):  # answered in another tab: show where they are
            state.store.start(rater.id, kept, pairs)
        return RedirectResponse("/study", status_code=303)

    @app.post("/study/vote")
    async def vote(request: Request) -> Response:
        state = _state(request)
        token, rater, form = await _posted(request)
        state.store.vote(rater.id, text(form, "pair"), text(form, "vote"))
        return RedirectResponse("/study", status_code=303)

    @app.get("/study/image/{image}")
    def image(image: str, request: Request) -> Response:
        _, rater = _session(request)
        path = _state(request).store.image_file(rater.id, image)
        if path is None or not path.is_file():
            raise Refused(404, "not found", "no such picture")
        return FileResponse(
            path, media_type="image/png", headers={"Cache-Control": "private, max-age=86400"}
        )

    @app.get("/study/data", response_class=HTMLResponse)
    def data(request: Request) -> Response:
        state = _state(request)
        token, rater = _session(request)
        survey = state.store.survey(rater.id) or {}
        votes = sum(p.vote is not None for p in state.store.pairs(rater.id))
        page = pages.data_page(
            state.survey,
            survey.get("answers"),
            state.store.persona(rater.id),
            votes,
            state.store.csrf(token),
        )
        return _html(page)

    @app.post("/study/delete", response_class=HTMLResponse)
    async def delete(request: Request) -> Response:
        state = _state(request)
        token, rater, form = await _posted(request)
        if text(form, "confirm") != "yes":
            raise Refused(400, "not confirmed", "tick the box to confirm the deletion")
        files = state.store.delete_rater(rater.id)
        state.renderer.forget(rater.id)
        log.info("study: a rater's data was deleted at their request (%d images)", files)
        resp = _html(pages.deleted_page(files))
        resp.delete_cookie(COOKIE, path="/")
        return resp


def error_handlers(app: FastAPI) -> None:
    """Every refusal as JSON {"error", "detail"} (a page for a browser), no stack trace."""

    @app.exception_handler(Refused)
    async def _refused(request: Request, e: Refused) -> Response:
        return refusal(request, e.status, e.error, e.detail)

    @app.exception_handler(StudyError)
    async def _study(request: Request, e: StudyError) -> Response:
        error = "already voted" if e.status == 409 else "refused"
        return refusal(request, e.status, error, str(e))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, e: HTTPException) -> Response:
        return refusal(
            request,
            e.status_code,
            "not found" if e.status_code == 404 else "refused",
            str(e.detail),
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, e: RequestValidationError) -> Response:
        return refusal(request, 422, "invalid request", "a parameter is missing or malformed")

    @app.exception_handler(Exception)
    async def _crash(request: Request, e: Exception) -> Response:
        log.error("study: %s on %s %s", type(e).__name__, request.method, request.url.path)
        return JSONResponse(
            {"error": "internal error", "detail": "the server could not do this; try again"},
            status_code=500,
        )


def create_app(state: StudyState, run_worker: bool = True) -> FastAPI:
    """The app over `state`; with `run_worker` its worker thread runs while the app does,
    and the persona engine starts loading at once (the survey's check needs it)."""
    from service.study.admin import admin_routes

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if run_worker and state.worker is not None:
            threading.Thread(target=_warm, args=(state.renderer,), daemon=True).start()
            state.worker.start()
        yield
        if state.worker is not None:
            state.worker.stop()

    app = FastAPI(
        title="ZIPP human A/B study",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.study = state
    app.add_middleware(Guard)
    error_handlers(app)
    rater_routes(app)
    admin_routes(app)
    return app


def _warm(renderer: StudyRenderer) -> Any:
    try:
        return renderer.engine
    except Exception as e:  # reported again, to the rater, by the survey's check
        log.error("study: the persona engine could not load: %s", type(e).__name__)
        return None
