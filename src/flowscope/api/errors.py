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

from flowscope.problems import IngestRejected
from flowscope.schemas.common import problem_details


def unprocessable(
    loc: Sequence[str | int], message: str, kind: str = "value_error"
) -> HTTPException:
    """422 naming one location, e.g. ("query", "limit") or ("body",)."""
    return invalid([{"loc": list(loc), "msg": message, "type": kind}])


def invalid(detail: list[dict[str, Any]]) -> HTTPException:
    """422 with these `detail` items (from `unprocessable`, pydantic or problem_details)."""
    return HTTPException(422, detail)


async def _rejected(request: Request, exc: Exception) -> JSONResponse:
    """A batch refused by ingestion: 422 naming each run (and node execution) at fault;
    nothing of it was stored."""
    assert isinstance(exc, IngestRejected)
    return JSONResponse({"detail": problem_details(exc.problems, "body")}, status_code=422)


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(IngestRejected, _rejected)
