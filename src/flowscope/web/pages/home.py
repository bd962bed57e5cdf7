"""Sign-in, sign-out and the home page: every app's workflows at a glance."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup
from sqlalchemy import Connection, Engine

from flowscope import catalog
from flowscope.appstate import AppSettings, DbEngine
from flowscope.performance.overview import read_workflow_overview
from flowscope.rollups.read import Filters, latency, read_run_figures
from flowscope.store.engine import read_transaction, write_transaction
from flowscope.tenancy.keys import authenticate
from flowscope.tenancy.sessions import create_session, delete_session
from flowscope.web.svg.sparkline import sparkline
from flowscope.web.templating import templates
from flowscope.web.viewer import COOKIE, CheckedForm, Viewer, session_token
from flowscope.web.window import WindowChoice, choose_window

router = APIRouter(include_in_schema=False)
Choice = Annotated[WindowChoice, Depends(choose_window)]


def _safe_next(target: str) -> str:
    """Only a path on this site: never an open redirect."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


LOGIN_COOKIE = "flowscope_login"
"""The sign-in form's token, also in a hidden field: a form posted from another site lacks
the cookie (SameSite=Strict) and cannot read it, so it cannot sign a browser in to the
attacker's tenant (login CSRF)."""


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> Response:
    return _login_form(request, _safe_next(next))


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    engine: DbEngine,
    settings: AppSettings,
    key: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
    login_token: Annotated[str, Form()] = "",
) -> Response:
    target = _safe_next(next)
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(expected, login_token):
        return _login_form(request, target, 403, "The sign-in form expired; sign in again.")
    with read_transaction(engine) as conn:
        found = authenticate(conn, key.strip())
    if found is None:
        return _login_form(request, target, 401, "That key is unknown or revoked.")
    principal = found[0]
    if not principal.may("read"):
        return _login_form(
            request, target, 403, "This key may only ingest; sign in with a read or admin key."
        )
    with write_transaction(engine) as conn:
        token = create_session(conn, principal.key_id, settings.session_hours * 3600)
    response = RedirectResponse(target, status_code=303)
    response.delete_cookie(LOGIN_COOKIE, path="/login", httponly=True, samesite="strict")
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(settings.session_hours * 3600),
        httponly=True,
        samesite="strict",
        secure=_is_https(request),
        path="/",
    )
    return response


def _login_form(request: Request, target: str, status: int = 200, error: str = "") -> Response:
    """The sign-in page with a fresh form token, in its cookie and in the form."""
    token = secrets.token_urlsafe(24)
    response = templates.TemplateResponse(
        request,
        "login.html",
        {"next": target, "error": error, "login_token": token},
        status_code=status,
    )
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=3600,
        httponly=True,
        samesite="strict",
        secure=_is_https(request),
        path="/login",
    )
    return response


def _is_https(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "")
    return request.url.scheme == "https" or forwarded.split(",")[0].strip() == "https"


@router.post("/logout", dependencies=[CheckedForm])
def logout(request: Request, engine: DbEngine) -> Response:
    token = session_token(request)
    if token:
        with write_transaction(engine) as conn:
            delete_session(conn, token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, viewer: Viewer, engine: DbEngine, choice: Choice) -> Response:
    apps = await run_in_threadpool(_read_home, engine, viewer.principal.tenant_id, choice)
    return templates.TemplateResponse(
        request, "home.html", {"viewer": viewer, "choice": choice, "apps": apps}
    )


def _read_home(engine: Engine, tenant_id: int, choice: WindowChoice) -> list[dict[str, object]]:
    window, filters = choice.window, Filters()
    apps: list[dict[str, object]] = []
    with read_transaction(engine) as conn:
        pks = catalog.read_workflow_pks(conn, tenant_id)
        for app_id in catalog.read_apps(conn, tenant_id):
            overview = read_workflow_overview(conn, tenant_id, app_id, window, filters) or []
            rows = []
            for workflow in overview:
                pk = pks.get((app_id, workflow.workflow_id))
                series = None if pk is None else _p95_series(conn, pk, workflow.workflow_id, choice)
                rows.append({"workflow": workflow, "sparkline": series})
            apps.append({"app_id": app_id, "workflows": rows})
    return apps


def _p95_series(
    conn: Connection, workflow_pk: int, workflow_id: str, choice: WindowChoice
) -> Markup:
    step, window = choice.bucket_us, choice.window
    merged = read_run_figures(
        conn, workflow_pk, window.start_us, window.end_us, Filters(), bucket_us=step
    )
    starts = range(window.start_us // step * step, window.end_us, step)
    values = [latency(merged[s]).quantile(0.95) if s in merged else None for s in starts]
    return sparkline(values, label=f"p95 latency of {workflow_id} per {choice.granularity}")
