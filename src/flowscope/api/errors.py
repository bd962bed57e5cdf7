"""Every 422 of the API comes from here, in FastAPI's own validation shape
(`{"detail": [{"loc": [...], "msg": ..., "type": ...}]}`), so that a client reads a refused
query parameter, body field or run of a batch the same way. The domain raises its own
exceptions (flowscope.problems, BadWindow, BadCursor, PolicyError, GraphError); routes and
the handler below say them as locations.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError

from flowscope.problems import IngestRejected
from flowscope.schemas.common import NUL_MESSAGE, problem_details


def unprocessable(
    loc: Sequence[str | int], message: str, kind: str = "value_error"
) -> HTTPException:
    """422 naming one location, e.g. ("query", "limit") or ("body",)."""
    return invalid([{"loc": list(loc), "msg": message, "type": kind}])


def invalid(detail: list[dict[str, Any]]) -> HTTPException:
    """422 with these `detail` items (from `unprocessable`, pydantic or problem_details)."""
    return HTTPException(422, detail)


async def _unstorable(request: Request, exc: Exception) -> JSONResponse:
    """The last line, for a value the edge checks let through and the database refuses (a
    NUL character, a number out of its range): 422 rather than 500, so that clients do not
    retry it forever; the transaction was rolled back, nothing was stored."""
    assert isinstance(exc, DataError)
    reason = str(exc.orig).splitlines()[0] if exc.orig is not None else "invalid value"
    if "NUL" in reason:
        reason = NUL_MESSAGE
    detail = [
        {"loc": ["body"], "msg": f"the database refused a value: {reason}", "type": "value_error"}
    ]
    return JSONResponse({"detail": detail}, status_code=422)


async def _rejected(request: Request, exc: Exception) -> JSONResponse:
    """A batch refused by ingestion: 422 naming each run (and node execution) at fault;
    nothing of it was stored."""
    assert isinstance(exc, IngestRejected)
    return JSONResponse({"detail": problem_details(exc.problems, "body")}, status_code=422)


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(IngestRejected, _rejected)
    app.add_exception_handler(DataError, _unstorable)
