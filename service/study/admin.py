"""The admin's routes: the token (from the environment, compared as digests in constant
time) as a Bearer header, or once on a login form that sets an admin cookie; create a
study and its invites, follow its progress, read its results, export its votes."""

from __future__ import annotations

import asyncio
import hmac
import io
import math

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from service.study import admin_pages
from service.study.results import results, vote_rows
from service.study.store import StudyError
from service.study.tokens import csrf_token, digest, new_secret
from service.study.web import Refused, read_form, text

ADMIN_COOKIE = "zipp_study_admin"


def _state(request: Request):
    return request.app.state.study


def _admin(request: Request) -> str | None:
    """The admin session's digest (None for a Bearer token); Refused otherwise."""
    state = _state(request)
    if not state.admin.configured:
        raise Refused(
            503,
            "admin disabled",
            f"set the environment variable {state.admin.env} (16 characters or more) "
            "and restart the server",
        )
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        if state.admin.check(auth[7:].strip()):
            return None
        raise Refused(401, "not allowed", "the admin token is not valid")
    cookie = request.cookies.get(ADMIN_COOKIE)
    if cookie and digest(cookie) in state.admin_sessions:
        return digest(cookie)
    raise Refused(401, "not allowed", "log in at /admin/login or send the admin token")


def _csrf(request: Request, session: str | None) -> str:
    return csrf_token(_state(request).store.db.csrf_key, f"admin:{session}") if session else ""


async def _admin_form(request: Request) -> dict:
    """The form of an admin POST; a cookie session must bring its form token."""
    session = _admin(request)
    form = await read_form(request)
    if session is not None and not hmac.compare_digest(
        _csrf(request, session).encode(), text(form, "csrf").encode()
    ):
        raise Refused(403, "form expired", "reload the page and try again")
    return form


def _int(form: dict, key: str, default: int) -> int:
    raw = text(form, key).strip() or str(default)
    if not raw.isdigit() or len(raw) > 6:
        raise Refused(400, "bad form", f"{key} must be a whole number")
    return int(raw)


def _study(request: Request, study: str) -> dict:
    found = _state(request).store.study(study) if len(study) < 64 else None
    if found is None:
        raise Refused(404, "not found", "no such study")
    return found


def admin_routes(app: FastAPI) -> None:
    """The admin's routes."""

    @app.get("/admin/login", response_class=HTMLResponse)
    def login_form() -> HTMLResponse:
        return HTMLResponse(admin_pages.login_page())

    @app.post("/admin/login")
    async def login(request: Request) -> Response:
        state = _state(request)
        wait = state.login_attempts.take(request.client.host if request.client else "-")
        if wait:
            page = admin_pages.login_page("too many attempts: wait a minute")
            return HTMLResponse(page, 429, headers={"Retry-After": str(math.ceil(wait))})
        form = await read_form(request)
        if not state.admin.configured:
            _admin(request)  # says why
        if not state.admin.check(text(form, "token")):
            await asyncio.sleep(0.5)  # slows guessing; the token is long anyway
            return HTMLResponse(admin_pages.login_page("that is not the admin token"), 401)
        session = new_secret()
        state.admin_sessions.add(digest(session))
        resp = RedirectResponse("/admin", status_code=303)
        resp.set_cookie(
            ADMIN_COOKIE,
            session,
            httponly=True,
            samesite="strict",
            secure=state.settings.secure_cookies,
            path="/admin",
        )
        return resp

    @app.get("/admin", response_class=HTMLResponse)
    def home(request: Request) -> HTMLResponse:
        state = _state(request)
        session = _admin(request)
        page = admin_pages.home_page(state.store.studies(), state.methods, _csrf(request, session))
        return HTMLResponse(page)

    @app.post("/admin/studies")
    async def create(request: Request) -> Response:
        state = _state(request)
        form = await _admin_form(request)
        methods = form.get("methods", [])
        methods = [methods] if isinstance(methods, str) else methods
        try:
            study, codes = state.store.create_study(
                text(form, "name"),
                methods,
                text(form, "prompts").splitlines(),
                _int(form, "votes", 12),
                _int(form, "raters", 10),
                state.methods,
            )
        except StudyError as e:
            raise Refused(e.status, "study refused", str(e)) from None
        return _invites(request, study, codes)

    @app.post("/admin/studies/{study}/invites")
    async def more_invites(study: str, request: Request) -> Response:
        form = await _admin_form(request)
        _study(request, study)
        try:
            codes = _state(request).store.add_invites(study, _int(form, "n", 5))
        except StudyError as e:
            raise Refused(e.status, "invites refused", str(e)) from None
        return _invites(request, study, codes)

    def _invites(request: Request, study: str, codes: list[str]) -> Response:
        base = _state(request).settings.public_url or str(request.base_url)
        links = [f"{base.rstrip('/')}/i/{c}" for c in codes]
        if "text/html" in request.headers.get("accept", ""):
            return HTMLResponse(admin_pages.invites_page(_study(request, study), links))
        return JSONResponse({"study": study, "invites": links})

    @app.get("/admin/studies/{study}")
    def progress(study: str, request: Request) -> Response:
        state = _state(request)
        session = _admin(request)
        found = _study(request, study)
        prog = state.store.progress(study)
        table = results(state.store.db, study)
        if "text/html" not in request.headers.get("accept", ""):
            rows = table.astype(object).where(table.notna(), None).to_dict("records")
            return JSONResponse({"study": found, "progress": prog, "results": rows})
        page = admin_pages.study_page(found, prog, table, _csrf(request, session))
        return HTMLResponse(page)

    @app.get("/admin/studies/{study}/export.{fmt}")
    def export(study: str, fmt: str, request: Request) -> Response:
        _admin(request)
        _study(request, study)
        if fmt not in ("csv", "parquet"):
            raise Refused(404, "not found", "export.csv or export.parquet")
        table = vote_rows(_state(request).store.db, study)
        buf = io.BytesIO()
        if fmt == "csv":
            pacsv.write_csv(table, buf)
            media = "text/csv"
        else:
            pq.write_table(table, buf)
            media = "application/vnd.apache.parquet"
        return Response(
            buf.getvalue(),
            media_type=media,
            headers={"Content-Disposition": f'attachment; filename="{study}-votes.{fmt}"'},
        )
