"""Request dependencies: the database engine, the price book and the caller's key."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import Depends, Header, HTTPException
from sqlalchemy import Connection, Engine

from flowscope import catalog
from flowscope.appstate import AppSettings, DbEngine, Prices, RowId, get_engine
from flowscope.store.engine import read_transaction, write_transaction
from flowscope.tenancy.credentials import (
    KeyRejected,
    NotPermitted,
    principal_from_headers,
    require_permission,
)
from flowscope.tenancy.keys import Principal

# The app.state accessors are shared with the dashboard (flowscope.appstate); routes take them
# from here with the key checks.
__all__ = [
    "AppSettings",
    "CanIngest",
    "CanRead",
    "DbEngine",
    "IsAdmin",
    "Prices",
    "RowId",
    "get_principal",
    "require",
    "workflow_scope",
]


def get_principal(
    engine: Annotated[Engine, Depends(get_engine)],
    authorization: Annotated[str | None, Header()] = None,
    x_flowscope_api_key: Annotated[
        str | None,
        Header(description="The key, for clients that cannot set Authorization (OTLP exporters)."),
    ] = None,
) -> Principal:
    try:
        return principal_from_headers(engine, authorization, x_flowscope_api_key)
    except KeyRejected as exc:
        raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None


def require(permission: str) -> Callable[[Principal], Principal]:
    """A dependency that lets through keys whose role grants `permission`."""

    def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        try:
            return require_permission(principal, permission)
        except NotPermitted as exc:
            raise HTTPException(403, str(exc)) from None

    return check


CanIngest = Annotated[Principal, Depends(require("ingest"))]
CanRead = Annotated[Principal, Depends(require("read"))]
IsAdmin = Annotated[Principal, Depends(require("admin"))]


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
