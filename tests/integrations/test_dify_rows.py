"""The pure mapping of Dify rows onto flowscope runs: no database."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import orjson
import pytest

from flowscope.integrations.dify_import import SkippedRun, checked_run
from flowscope.integrations.dify_rows import (
    json_hash,
    node_from_row,
    nodes_from_rows,
    parse_json,
    run_from_rows,
)

T = datetime(2026, 11, 20, 9, 0, 0)
RUN_ID = UUID("00000000-0000-4000-8000-000000000001")


def row(
    node_id: str, *, at: float = 0.0, status: str = "succeeded", **fields: Any
) -> dict[str, Any]:
    """A workflow_node_executions row; `meta` becomes execution_metadata."""
    meta = fields.pop("meta", None)
    base: dict[str, Any] = {
        "id": uuid4(),
        "workflow_run_id": RUN_ID,
        "index": 1,
        "predecessor_node_id": None,
        "node_id": node_id,
        "node_type": "code",
        "title": node_id.title(),
        "inputs": None,
        "process_data": None,
        "outputs": None,
        "status": status,
        "error": None,
        "elapsed_time": 1.5,
        "execution_metadata": None if meta is None else orjson.dumps(meta).decode(),
        "created_at": T + timedelta(seconds=at),
        "finished_at": T + timedelta(seconds=at + 1.5),
    }
    base.update(fields)
    return base


def run_row(status: str = "succeeded", **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": RUN_ID,
        "tenant_id": UUID(int=7),
        "app_id": UUID(int=8),
        "workflow_id": UUID(int=9),
        "type": "workflow",
        "triggered_from": "app-run",
        "version": "draft",
        "inputs": '{"b": 1, "a": [1.5, "x"]}',
        "status": status,
        "error": "",
        "elapsed_time": 2.5,
        "total_tokens": 1234,
        "created_at": T,
        "finished_at": T + timedelta(seconds=2.5),
    }
    base.update(fields)
    return base


def test_run_fields_and_units() -> None:
    run = run_from_rows(run_row(), [])
    assert run["id"] == str(RUN_ID) and run["app_id"] == str(UUID(int=8))
    assert run["workflow_version"] == "draft" and run["triggered_from"] == "app-run"
    assert run["started_at"] == T.replace(tzinfo=UTC)
    assert run["elapsed_ms"] == 2500.0
    assert run["total_tokens"] == 1234
    assert run["error"] is None  # Dify writes '' for no error
    expected = hashlib.sha256(b'{"a":[1.5,"x"],"b":1}').hexdigest()
    assert run["inputs_hash"] == expected


def test_unfinished_run_has_no_zero_placeholders() -> None:
    run = run_from_rows(run_row("running", total_tokens=0, elapsed_time=0, finished_at=None), [])
    assert run["total_tokens"] is None and run["elapsed_ms"] is None
    assert run["finished_at"] is None


def test_llm_usage_split_string_price_and_model() -> None:
    node = node_from_row(
        row(
            "llm_1",
            node_type="llm",
            outputs='{"text": "hi", "usage": {"prompt_tokens": 900, "completion_tokens": 40}}',
            process_data='{"model_provider": "langgenius/openai/openai", "model_name": "gpt-4o"}',
            meta={"total_tokens": 940, "total_price": "0.0012", "currency": "USD"},
        )
    )
    assert (node["prompt_tokens"], node["completion_tokens"], node["total_tokens"]) == (
        900,
        40,
        940,
    )
    assert node["cost"] == 0.0012 and node["currency"] == "USD"
    assert (node["model_provider"], node["model_name"]) == ("langgenius/openai/openai", "gpt-4o")
    assert node["elapsed_ms"] == 1500.0


def test_truncated_json_gives_no_split_no_model_no_hash() -> None:
    node = node_from_row(
        row(
            "llm_1",
            node_type="llm",
            inputs='{"context": "a long chapter that was cut he',
            outputs='{"text": "Once upon a time, in a land far aw',
            process_data='{"model_provider": "openai", "model_name": "gpt-4o", "prompts": [{"te',
            meta={"total_tokens": 700, "total_price": "0.0042", "currency": "USD"},
        )
    )
    assert node["prompt_tokens"] is None and node["completion_tokens"] is None
    assert node["model_name"] is None and node["input_hash"] is None
    assert node["total_tokens"] == 700 and node["cost"] == 0.0042


def test_usage_from_process_data_when_outputs_are_truncated() -> None:
    node = node_from_row(
        row(
            "llm_1",
            node_type="llm",
            outputs='{"text": "cut',
            process_data='{"model_name": "gpt-4o", "usage": {"prompt_tokens": 5, "completion_tokens": 2}}',
        )
    )
    assert (node["prompt_tokens"], node["completion_tokens"], node["model_name"]) == (
        5,
        2,
        "gpt-4o",
    )


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        ({"total_price": "0.000159", "currency": "USD"}, {"cost": 0.000159, "currency": "USD"}),
        ({"total_price": 0.5, "currency": "eur"}, {"cost": 0.5, "currency": "EUR"}),
        ({"total_price": "0.25"}, {"cost": 0.25, "currency": "USD"}),
        ({"total_price": "n/a", "currency": "USD"}, {}),
        ({"total_price": "-1", "currency": "USD"}, {}),
        ({"total_price": "NaN", "currency": "USD"}, {}),
        ({"total_price": "1", "currency": "DOLLARS"}, {}),
        ({"total_tokens": 3}, {}),
    ],
)
def test_prices(meta: dict[str, Any], expected: dict[str, Any]) -> None:
    node = node_from_row(row("n", meta=meta))
    assert {k: node[k] for k in ("cost", "currency") if k in node} == expected


def test_pending_is_running_without_elapsed() -> None:
    node = node_from_row(row("n", status="pending", elapsed_time=0, finished_at=None))
    assert node["status"] == "running" and node["elapsed_ms"] is None
    assert node_from_row(row("n", status="exception"))["status"] == "exception"


def test_unparsable_metadata_is_tolerated() -> None:
    node = node_from_row(row("n", execution_metadata='{"total_tokens": 12, "total_pri'))
    assert node["total_tokens"] is None and "cost" not in node


def test_retry_rows_count_towards_the_final_attempt_per_iteration_index() -> None:
    it = {"iteration_id": "iter"}
    rows = [
        row("iter", at=0, node_type="iteration", meta={"total_tokens": 10}),
        row("flaky", at=1, status="retry", meta={**it, "iteration_index": 0}),
        row("flaky", at=2, status="retry", meta={**it, "iteration_index": 0}),
        row("flaky", at=3, meta={**it, "iteration_index": 0}),
        row("flaky", at=4, meta={**it, "iteration_index": 1}),
        row("solo", at=5, status="retry"),
        row("solo", at=6, status="failed"),
    ]
    nodes = nodes_from_rows(rows, finished=True)
    assert [n.get("retry_count") for n in nodes] == [0, None, None, 2, 0, None, 1]
    assert [n["parent_id"] for n in nodes] == [None] + [str(rows[0]["id"])] * 4 + [None, None]


def test_parent_is_the_latest_container_execution_started_before_the_child() -> None:
    rows = [
        row("lp", at=0, node_type="loop"),
        row("child", at=1, meta={"loop_id": "lp", "loop_index": 0}),
        row("lp", at=10, node_type="loop"),
        row("child", at=11, meta={"loop_id": "lp", "loop_index": 0}),
        row("orphan", at=12, meta={"loop_id": "missing", "loop_index": 0}),
    ]
    nodes = nodes_from_rows(rows, finished=True)
    assert nodes[1]["parent_id"] == str(rows[0]["id"])
    assert nodes[3]["parent_id"] == str(rows[2]["id"])
    assert nodes[4]["parent_id"] is None
    assert (nodes[1]["loop_id"], nodes[1]["loop_index"]) == ("lp", 0)


def test_nested_containers_link_to_the_innermost() -> None:
    rows = [
        row("outer", at=0, node_type="iteration"),
        row("inner", at=1, node_type="loop", meta={"iteration_id": "outer", "iteration_index": 0}),
        row("leaf", at=2, meta={"iteration_id": "outer", "loop_id": "inner", "loop_index": 0}),
    ]
    nodes = nodes_from_rows(rows, finished=True)
    assert nodes[1]["parent_id"] == str(rows[0]["id"])
    assert nodes[2]["parent_id"] == str(rows[1]["id"])


def test_json_hash_is_canonical_and_tolerant() -> None:
    assert json_hash('{"a": 1, "b": [true, null]}') == json_hash('{"b":[true,null],"a":1}')
    assert json_hash('{"a": 1') is None and json_hash("") is None and json_hash(None) is None
    assert json_hash(str(2**60)) is None  # no canonical form beyond 2**53
    assert parse_json("NaN") is None


def test_checked_run_validates_and_explains() -> None:
    ok = checked_run(run_row(), [row("n")])
    assert not isinstance(ok, SkippedRun) and ok["node_executions"][0]["node_id"] == "n"
    bad_status = checked_run(run_row("exploded"), [])
    assert isinstance(bad_status, SkippedRun) and bad_status.run_id == str(RUN_ID)
    assert "status" in bad_status.reason
    backwards = checked_run(run_row(), [row("n", finished_at=T - timedelta(seconds=5))])
    assert isinstance(backwards, SkippedRun)
    assert backwards.reason == "node_executions.0.finished_at: finished_at is before started_at"
    unreadable = checked_run(run_row(created_at=None), [])
    assert isinstance(unreadable, SkippedRun) and "unreadable" in unreadable.reason


def history(attempts: int) -> list[dict[str, Any]]:
    """Dify 1.16+'s `__dify_retry_history`: one entry per failed attempt."""
    return [
        {
            "retry_index": i,
            "inputs": {},
            "process_data": {},
            "outputs": {},
            "error": "HTTP 429",
            "elapsed_time": 0.5,
            "execution_metadata": {},
            "created_at": 1795165200 + i,
            "finished_at": 1795165201 + i,
        }
        for i in range(1, attempts + 1)
    ]


@pytest.mark.parametrize("attempts", [1, 3])
def test_retries_from_the_history_dify_keeps_in_process_data(attempts: int) -> None:
    process = {"request": "GET /", "__dify_retry_history": history(attempts)}
    rows = [row("fetch", process_data=orjson.dumps(process).decode(), error="HTTP 429")]
    (node,) = nodes_from_rows(rows, finished=True)
    assert (node["status"], node["retry_count"], node["error"]) == ("succeeded", attempts, None)


def test_a_history_cut_by_truncation_gives_no_count() -> None:
    process = {"request": "GET /", "__dify_retry_history": "..."}
    (node,) = nodes_from_rows(
        [row("fetch", process_data=orjson.dumps(process).decode())], finished=True
    )
    assert node["retry_count"] == 0


def test_a_succeeded_row_keeps_no_error_but_failures_do() -> None:
    stale = node_from_row(row("flaky", error="Rate limit reached"))
    assert stale["status"] == "succeeded" and stale["error"] is None
    for status in ("failed", "exception", "retry"):
        assert node_from_row(row("n", status=status, error="boom"))["error"] == "boom"


def in_place_retry() -> dict[str, Any]:
    """A 1.9+ row Dify updated to `retry` while the next attempt runs: no end yet."""
    return row("flaky", at=1, status="retry", error="Rate limit reached", elapsed_time=0,
               finished_at=None)  # fmt: skip


def test_a_row_still_in_retry_is_running_while_the_run_goes_on() -> None:
    run = run_from_rows(
        run_row("running", total_tokens=0, elapsed_time=0, finished_at=None),
        [row("start", at=0), in_place_retry()],
    )
    flaky = run["node_executions"][1]
    assert flaky["status"] == "running"
    assert (flaky["finished_at"], flaky["elapsed_ms"], flaky["error"]) == (None, None, None)
    assert flaky["retry_count"] == 0


def test_a_row_still_in_retry_when_the_run_ended_failed() -> None:
    ended = T + timedelta(seconds=9)
    run = run_from_rows(
        run_row("failed", error="Node flaky run failed", finished_at=ended, elapsed_time=9),
        [row("start", at=0), in_place_retry()],
    )
    flaky = run["node_executions"][1]
    assert flaky["status"] == "failed" and flaky["error"] == "Rate limit reached"
    assert flaky["finished_at"] == ended.replace(tzinfo=UTC) and flaky["elapsed_ms"] is None
    checked = checked_run(run_row("failed", finished_at=ended), [in_place_retry()])
    assert not isinstance(checked, SkippedRun)


def test_legacy_retry_rows_stay_retry_rows_even_while_the_run_goes_on() -> None:
    rows = [
        row("flaky", at=1, status="retry", error="Rate limit reached"),
        row("flaky", at=3, status="running", elapsed_time=0, finished_at=None),
    ]
    nodes = nodes_from_rows(rows, finished=False)
    assert [(n["status"], n.get("retry_count")) for n in nodes] == [("retry", None), ("running", 1)]


OFFLOADED_PROCESS = {
    "model_mode": "chat", "prompts": [{"role": "user", "text": "Summarize this contract..."}],
    "usage": "...", "finish_reason": "...", "model_provider": "...", "model_name": "...",
}  # fmt: skip


def test_offloaded_row_is_truncated_and_reads_the_model_from_its_inputs() -> None:
    node = node_from_row(
        row(
            "digest",
            node_type="llm",
            inputs='{"model_provider": "langgenius/openai/openai", "model_name": "gpt-4o"}',
            process_data=orjson.dumps(OFFLOADED_PROCESS).decode(),
            outputs='{"text": "The contract binds both parti...", "usage": "..."}',
            meta={"total_tokens": 5200, "total_price": "0.0031", "currency": "USD"},
            offloaded=("outputs", "process_data"),
        )
    )
    assert node["truncated"] is True
    assert (node["model_provider"], node["model_name"]) == ("langgenius/openai/openai", "gpt-4o")
    assert (node["prompt_tokens"], node["completion_tokens"], node["total_tokens"]) == (
        None,
        None,
        5200,
    )
    assert node["cost"] == 0.0031 and node["input_hash"] is not None


def test_values_cut_by_truncation_are_not_read_as_figures() -> None:
    node = node_from_row(
        row(
            "digest",
            node_type="llm",
            inputs='{"query": "Summarize the contract: Article 1. The parties agr..."}',
            process_data=orjson.dumps(
                {**OFFLOADED_PROCESS, "model_provider": "openai", "model_name": "gpt-4o-mi..."}
            ).decode(),
            offloaded=("inputs", "process_data"),
        )
    )
    # A cut value is no model; a hash of cut inputs would match other inputs cut alike.
    assert node["model_provider"] == "openai" and node["model_name"] is None
    assert node["input_hash"] is None and node["truncated"] is True


def test_a_row_without_offload_is_not_marked() -> None:
    assert "truncated" not in node_from_row(row("n", offloaded=()))
    assert "truncated" not in node_from_row(row("n"))
    # Without an offload row, a value ending in "..." is the node's own.
    plain = node_from_row(row("n", process_data='{"model_name": "odd..."}'))
    assert plain["model_name"] == "odd..."
