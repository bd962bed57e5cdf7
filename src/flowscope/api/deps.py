"""Request dependencies: the database engine, the price book and the caller's key."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from flowscope import catalog
from flowscope.config import Settings
from flowscope.runs.pricing import PriceBook
from flowscope.store.engine import read_transaction, write_transaction
from flowscope.tenancy.keys import Principal, authenticate, touch_key

log = logging.getLogger("flowscope.api")


def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_prices(request: Request) -> PriceBook:
    prices: PriceBook = request.app.state.prices
    return prices


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": "Bearer"})


def get_principal(
    engine: Annotated[Engine, Depends(get_engine)],
    authorization: Annotated[str | None, Header()] = None,
    x_flowscope_api_key: Annotated[
        str | None,
        Header(description="The key, for clients that cannot set Authorization (OTLP exporters)."),
    ] = None,
) -> Principal:
    if x_flowscope_api_key and x_flowscope_api_key.strip():
        secret = x_flowscope_api_key
    else:
        if not authorization:
            raise _unauthorized(
                "missing API key: send 'Authorization: Bearer fsk_...' or 'x-flowscope-api-key'"
            )
        scheme, _, secret = authorization.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise _unauthorized("malformed Authorization header: expected 'Bearer fsk_...'")
    with read_transaction(engine) as conn:
        found = authenticate(conn, secret.strip())
    if found is None:
        raise _unauthorized("unknown or revoked API key")
    principal, stale = found
    if stale:
        try:
            with write_transaction(engine) as conn:
                touch_key(conn, principal.key_id)
        except SQLAlchemyError:
            # Bookkeeping only: never fail a request because last-use could not be written.
            log.warning("could not record last use of key %s", principal.key_id, exc_info=True)
    return principal


def require(permission: str) -> Callable[[Principal], Principal]:
    """A dependency that lets through keys whose role grants `permission`."""

    def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if not principal.may(permission):
            raise HTTPException(
                403,
                f"this key's role '{principal.role}' may not {permission}; "
                f"use a key with role '{permission}' or 'admin'",
            )
        return principal

    return check


CanIngest = Annotated[Principal, Depends(require("ingest"))]
CanRead = Annotated[Principal, Depends(require("read"))]
IsAdmin = Annotated[Principal, Depends(require("admin"))]
DbEngine = Annotated[Engine, Depends(get_engine)]
Prices = Annotated[PriceBook, Depends(get_prices)]
AppSettings = Annotated[Settings, Depends(get_settings)]


@contextmanager
def workflow_scope(
    engine: Engine, tenant_id: int, app_id: str, workflow_id: str, *, write: bool = False
) -> Iterator[tuple[Connection, int]]:
    """A transaction and the workflow's key in the caller's tenant; 404 when it has no such
    workflow (unknown and foreign look the same)."""
    with (write_transaction if write else read_transaction)(engine) as conn:
        workflow_pk = catalog.read_workflow_pk(conn, tenant_id, app_id, workflow_id)
        if workflow_pk is None:
            raise HTTPException(404, f"workflow {app_id}/{workflow_id} not found")
        yield conn, workflow_pk
