"""Building blocks shared by every wire schema."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, Field, ValidationError

from flowscope.limits import MAX_COST, MAX_COUNT, MAX_ELAPSED_MS, MAX_ID
from flowscope.problems import Problem

T = TypeVar("T")


# Naive timestamps are UTC by contract. They are kept as parsed and converted where they are
# stored (flowscope.timeutil.to_us): a Python validator here would cost ~2 µs per field, a
# third of the parse time of a node execution.
UtcDatetime = datetime
Id = Annotated[str, Field(min_length=1, max_length=MAX_ID)]
ShortText = Annotated[str, Field(max_length=MAX_ID)]
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
"""Tokens, positions: bounded so that sums of them fit 64-bit integers on both databases."""
Milliseconds = Annotated[float, Field(ge=0, le=MAX_ELAPSED_MS, allow_inf_nan=False)]
Money = Annotated[float, Field(ge=0, le=MAX_COST, allow_inf_nan=False)]


def error_details(exc: ValidationError, *prefix: str | int) -> list[dict[str, Any]]:
    """A validation error as 422 `detail` items, each located under `prefix` (e.g. "body")."""
    return [
        {"loc": [*prefix, *e["loc"]], "msg": e["msg"], "type": e["type"]}
        for e in exc.errors(include_input=False, include_url=False, include_context=False)
    ]


def problem_details(problems: Iterable[Problem], *prefix: str | int) -> list[dict[str, Any]]:
    """Problems found in a batch of runs as the same `detail` items, located under `prefix`
    (e.g. "body"): the one place their wire shape is written."""
    return [
        {"loc": [*prefix, *problem.path], "msg": problem.message, "type": problem.kind}
        for problem in problems
    ]


NUL_ESCAPE = b"\\u0000"
"""The only way a JSON document carries a NUL character: most bodies never contain it, so
one byte search tells whether to look further."""
NUL_MESSAGE = "text may not contain NUL (\\u0000) characters: PostgreSQL cannot store them"


def nul_details(payload: Any, *prefix: str | int, limit: int = 20) -> list[dict[str, Any]]:
    """A `detail` item for each string (or object key) of a parsed JSON document holding a
    NUL character, located under `prefix`; at most `limit`."""
    found: list[dict[str, Any]] = []
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(payload, tuple(prefix))]
    while stack and len(found) < limit:
        value, loc = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                found.append({"loc": list(loc), "msg": NUL_MESSAGE, "type": "string_nul"})
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str) and "\x00" in key:
                    found.append({"loc": list(loc), "msg": NUL_MESSAGE, "type": "string_nul"})
                stack.append((item, (*loc, key)))
        elif isinstance(value, list):
            stack.extend((item, (*loc, i)) for i, item in enumerate(value))
    return sorted(found, key=lambda e: [str(part) for part in e["loc"]])


class Page(BaseModel, Generic[T]):
    """The envelope of every list endpoint: a page of items and the cursor of the next one."""

    data: list[T]
    next_cursor: str | None = Field(
        None, description="Pass as `cursor` to get the next page; null on the last page."
    )
