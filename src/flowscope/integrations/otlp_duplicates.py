"""One model call reported twice, in two traces, counted once.

Instrumentations that do not share a context report each call twice: OpenInference's
LangChain instrumentation never makes its spans current, so its OpenAI instrumentation
reports the same call as a trace of its own (a "lone" call: a trace that is that one call).
Such a lone call is a duplicate when a call of another trace *holds* it: the same service
(the run's app), the same prompt and completion tokens (none, for a failed call), a model
that agrees (one name a dated version of the other, or either unknown), and its time within the
other call's. Then its
trace makes no run, and a run it made before the holder arrived is removed.

Calls are kept (table `otlp_calls`) as long as received spans are, so the two reports may
arrive in any order, in any requests. A holder is looked for up to `HOLD_WINDOW_US` before
the lone call started.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection

from flowscope.runs.rows import PRICED_NODE_TYPES
from flowscope.schemas.runs import RunCreate
from flowscope.store import dialect
from flowscope.timeutil import to_us

HOLD_WINDOW_US = 3_600_000_000  # a model call longer than an hour is not looked for
_COLUMNS = (
    "tenant_id",
    "trace_id",
    "span_id",
    "call_key",
    "model",
    "start_us",
    "end_us",
    "lone",
    "scope",
    "received_at_us",
)
_UPDATE = (
    "DO UPDATE SET call_key = excluded.call_key, model = excluded.model, "
    "start_us = excluded.start_us, end_us = excluded.end_us, lone = excluded.lone, "
    "scope = excluded.scope, received_at_us = excluded.received_at_us"
)
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Call:
    trace_id: str
    span_id: str
    call_key: str
    model: str | None
    start_us: int
    end_us: int
    lone: bool
    scope: str | None = None  # the instrumentation that reported it


def calls_of(run: RunCreate, scopes: Mapping[str, str | None]) -> list[Call]:
    """The finished model calls of a run mapped from a generic trace
    (Dify's traces carry Dify's own ids and are never duplicates of this kind); `scopes`
    gives each span's instrumentation scope by span id (a node's id is its span's)."""
    if run.get("triggered_from") != "otlp":
        return []
    nodes = run["node_executions"]
    lone = len(nodes) == 1
    out = []
    for node in nodes:
        finished = node.get("finished_at")
        prompt, completion = node.get("prompt_tokens"), node.get("completion_tokens")
        if node["node_type"] not in PRICED_NODE_TYPES or finished is None:
            continue  # a failed call reports no usage: it is told apart by model and time
        key = f"{run['app_id']}\x1f{prompt or 0}\x1f{completion or 0}"
        out.append(
            Call(
                run["id"],
                node["id"],
                hashlib.sha256(key.encode()).hexdigest(),
                node.get("model_name"),
                to_us(node["started_at"]),
                to_us(finished),
                lone,
                scopes.get(node["id"]),
            )
        )
    return out


def duplicates(batch: Iterable[Call], stored: Iterable[Call]) -> set[str]:
    """Trace ids of the lone calls that a call of another trace holds."""
    every = {(c.trace_id, c.span_id): c for c in stored}
    every.update({(c.trace_id, c.span_id): c for c in batch})
    holders: dict[str, list[Call]] = defaultdict(list)
    for call in every.values():
        if not call.lone:
            holders[call.call_key].append(call)
    return {
        call.trace_id
        for call in every.values()
        if call.lone and any(_holds(other, call) for other in holders.get(call.call_key, ()))
    }


def _holds(outer: Call, inner: Call) -> bool:
    return (
        outer.trace_id != inner.trace_id
        and outer.start_us <= inner.start_us
        and inner.end_us <= outer.end_us
        and _same_model(outer.model, inner.model)
        and (outer.scope is None or inner.scope is None or outer.scope != inner.scope)
    )


def _same_model(a: str | None, b: str | None) -> bool:
    """`gpt-4o-mini` and its dated `gpt-4o-mini-2024-07-18` agree; `gpt-4o` does not."""
    return not a or not b or _undated(a) == _undated(b)


def _undated(model: str) -> str:
    return _DATE_SUFFIX.sub("", model.strip().lower())


_DATE_SUFFIX = re.compile(r"-\d{4}-?\d{2}-?\d{2}$")


def read_calls(
    conn: Connection, tenant_id: int, keys: Sequence[str], start_us: int, end_us: int
) -> list[Call]:
    """The tenant's stored calls with these keys that started in [start_us, end_us]."""
    found: list[Call] = []
    mark = dialect.mark(conn)
    for begin in range(0, len(keys), _CHUNK):
        where, params = dialect.any_of(conn, "call_key", list(keys[begin : begin + _CHUNK]))
        rows = conn.exec_driver_sql(
            "SELECT trace_id, span_id, call_key, model, start_us, end_us, lone, scope "
            "FROM otlp_calls "
            f"WHERE tenant_id = {mark} AND {where} AND start_us BETWEEN {mark} AND {mark}",
            (tenant_id, *params, start_us, end_us),
        )
        found.extend(
            Call(t, s, k, m, a, b, bool(lone), scope) for t, s, k, m, a, b, lone, scope in rows
        )
    return found


def write_calls(conn: Connection, tenant_id: int, calls: Sequence[Call], now_us: int) -> None:
    unique = {(c.trace_id, c.span_id): c for c in calls}
    rows = [
        (tenant_id, *key, c.call_key, c.model, c.start_us, c.end_us, c.lone, c.scope, now_us)
        for key, c in sorted(unique.items())
    ]
    dialect.bulk_upsert(
        conn,
        "otlp_calls",
        _COLUMNS,
        ("tenant_id", "trace_id", "span_id"),
        _UPDATE,
        rows,
        in_key_order=True,
    )


def prune_calls(conn: Connection, received_before_us: int) -> int:
    """Forget calls received before the cutoff; returns how many."""
    cutoff = dialect.mark(conn)
    result = conn.exec_driver_sql(
        f"DELETE FROM otlp_calls WHERE received_at_us < {cutoff}", (received_before_us,)
    )
    return int(result.rowcount or 0)
