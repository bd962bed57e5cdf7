"""Building blocks shared by every wire schema."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, Field, ValidationError

from flowscope.limits import MAX_ID
from flowscope.problems import Problem

T = TypeVar("T")


# Naive timestamps are UTC by contract. They are kept as parsed and converted where they are
# stored (flowscope.timeutil.to_us): a Python validator here would cost ~2 µs per field, a
# third of the parse time of a node execution.
UtcDatetime = datetime
Id = Annotated[str, Field(min_length=1, max_length=MAX_ID)]
ShortText = Annotated[str, Field(max_length=MAX_ID)]
NonNegativeInt = Annotated[int, Field(ge=0)]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]


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


class Page(BaseModel, Generic[T]):
    """The envelope of every list endpoint: a page of items and the cursor of the next one."""

    data: list[T]
    next_cursor: str | None = Field(
        None, description="Pass as `cursor` to get the next page; null on the last page."
    )
