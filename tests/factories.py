"""Payload builders for tests: valid RunCreate / NodeExecutionCreate JSON, easy to override."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

T0 = datetime(2026, 11, 1, 10, 0, 0, tzinfo=UTC)


def iso(offset_s: float, base: datetime = T0) -> str:
    return (base + timedelta(seconds=offset_s)).isoformat()


def node(
    node_exec_id: str,
    node_id: str | None = None,
    *,
    start: float = 0.0,
    end: float | None = 1.0,
    node_type: str = "code",
    status: str = "succeeded",
    **fields: Any,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": node_exec_id,
        "node_id": node_id or node_exec_id,
        "node_type": node_type,
        "status": status,
        "started_at": iso(start),
    }
    if end is not None:
        payload["finished_at"] = iso(end)
    payload.update(fields)
    return payload


def llm(
    node_exec_id: str, prompt: int = 900, completion: int = 40, **fields: Any
) -> dict[str, Any]:
    fields.setdefault("model_provider", "openai")
    fields.setdefault("model_name", "gpt-4o-mini")
    return node(
        node_exec_id, node_type="llm", prompt_tokens=prompt, completion_tokens=completion, **fields
    )


def run(
    run_id: str,
    nodes: list[dict[str, Any]] | None = None,
    *,
    app_id: str = "support-bot",
    workflow_id: str = "triage",
    status: str = "succeeded",
    start: float = 0.0,
    end: float | None = 10.0,
    **fields: Any,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": run_id,
        "app_id": app_id,
        "workflow_id": workflow_id,
        "status": status,
        "started_at": iso(start),
        "node_executions": nodes or [],
    }
    if end is not None:
        payload["finished_at"] = iso(end)
    payload.update(fields)
    return payload


def batch(*runs: dict[str, Any]) -> dict[str, Any]:
    return {"runs": list(runs)}
