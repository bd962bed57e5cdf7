"""GET /healthz: liveness and database reachability, without a key."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from flowscope import __version__
from flowscope.api.deps import DbEngine

router = APIRouter(tags=["health"])
log = logging.getLogger("flowscope.api")


@router.get("/healthz", summary="Health and database reachability (no key needed)")
def healthz(engine: DbEngine) -> JSONResponse:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        log.warning("health check: database unreachable: %s", exc.__class__.__name__)
        return JSONResponse(
            {"status": "unavailable", "database": "unreachable", "version": __version__},
            status_code=503,
        )
    return JSONResponse({"status": "ok", "database": "ok", "version": __version__})
