"""Who is looking: the session cookie, sign-in redirects, form protection and 404 pages.

A page depends on `Viewer` (any live session whose key may read) or `AdminViewer`; a form
handler also on `checked_form`, which refuses a request from another site (Origin header)
or without the session's form token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Engine

from flowscope.appstate import get_engine
from flowscope.store.engine import read_transaction
from flowscope.tenancy.keys import Principal
from flowscope.tenancy.sessions import csrf_token, csrf_valid, read_session
from flowscope.web.templating import templates

COOKIE = "flowscope_session"


@dataclass(frozen=True, slots=True)
class Viewing:
    """The signed-in viewer: their key's principal and the session's form token."""

    principal: Principal
    csrf: str

    @property
    def is_admin(self) -> bool:
        return self.principal.may("admin")


class SignInRequired(Exception):
    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


class PageNotFound(Exception):
    def __init__(self, message: str) -> None:
        self.message = message


def session_token(request: Request) -> str | None:
    return request.cookies.get(COOKIE) or None


def get_viewer(request: Request, engine: Annotated[Engine, Depends(get_engine)]) -> Viewing:
    token = session_token(request)
    principal = None
    if token:
        with read_transaction(engine) as conn:
            principal = read_session(conn, token)
    if token is None or principal is None or not principal.may("read"):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(target)
    return Viewing(principal, csrf_token(token))


def get_admin_viewer(viewer: Annotated[Viewing, Depends(get_viewer)]) -> Viewing:
    if not viewer.is_admin:
        raise HTTPException(403, "this needs an admin key; sign in with one")
    return viewer


def checked_form(request: Request, csrf: Annotated[str, Form()] = "") -> None:
    """Refuse cross-site form posts: a foreign Origin, or a missing or wrong form token."""
    origin = request.headers.get("origin")
    if origin and origin != "null" and _host_of(origin) != request.headers.get("host"):
        raise HTTPException(403, "cross-site form submissions are refused")
    token = session_token(request)
    if token is None or not csrf_valid(token, csrf):
        raise HTTPException(403, "the form has expired; reload the page and try again")


def _host_of(origin: str) -> str:
    return origin.split("://", 1)[-1].rstrip("/")


Viewer = Annotated[Viewing, Depends(get_viewer)]
AdminViewer = Annotated[Viewing, Depends(get_admin_viewer)]
CheckedForm = Depends(checked_form)


def install_handlers(app: FastAPI) -> None:
    async def sign_in(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        return RedirectResponse(f"/login?next={quote(exc.next_url, safe='')}", status_code=303)

    async def not_found(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageNotFound)
        return render_error(request, 404, exc.message)

    app.add_exception_handler(SignInRequired, sign_in)
    app.add_exception_handler(PageNotFound, not_found)


def render_error(request: Request, status: int, message: str) -> HTMLResponse:
    return templates.TemplateResponse(
        request, "error.html", {"status": status, "message": message}, status_code=status
    )
