"""The synthetic workload: valid payloads, a realistic shape and the planted facts."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest

from flowscope.demo import (
    REGRESSION,
    SLOW_OFF_CRITICAL_PATH,
    UNPRICED_MODEL,
    DemoWorkflow,
    demo_workflows,
    generate_batches,
    generate_runs,
)
from flowscope.runs.pricing import PriceBook
from flowscope.schemas.runs import RUN_CREATE, NodeExecutionCreate, RunCreate

END = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
DAYS = 10  # a short window puts 30% of the runs inside the 3-day regression

Run = dict[str, Any]


@pytest.fixture(scope="module")
def runs() -> list[Run]:
    return list(generate_runs(runs=3000, seed=42, end=END, days=DAYS))


@pytest.fixture(scope="module")
def workflows() -> dict[str, DemoWorkflow]:
    return {w.workflow_id: w for w in demo_workflows()}


def top_level(run: Run) -> dict[str, Run]:
    return {n["node_id"]: n for n in run["node_executions"] if n["iteration_id"] is None}


def overlaps(a: Run, b: Run) -> bool:
    return a["started_at"] < b["finished_at"] and b["started_at"] < a["finished_at"]


# The catalogue


def test_catalogue_has_several_apps_and_workflows_of_10_to_30_nodes() -> None:
    catalogue = demo_workflows()
    assert len({w.app_id for w in catalogue}) >= 3
    assert len({(w.app_id, w.workflow_id) for w in catalogue}) == len(catalogue) >= 5
    for w in catalogue:
        size = len(w.nodes) + sum(len(n.children) for n in w.nodes)
        assert len(w.nodes) >= 10 and size <= 30, w.workflow_id
        assert w.order[0] == "start"
        assert any(len(w.successors(n.node_id)) >= 2 for n in w.nodes), w.workflow_id


def test_catalogue_uses_every_node_type() -> None:
    types = {n.node_type for w in demo_workflows() for top in w.nodes for n in (top, *top.children)}
    assert types >= {
        "start", "end", "answer", "llm", "knowledge-retrieval", "http-request", "code",
        "tool", "if-else", "template-transform", "variable-aggregator", "iteration",
    }  # fmt: skip


def test_llm_models_are_priced_except_the_planted_unpriced_one() -> None:
    prices = PriceBook()
    models = {
        (n.model_provider, n.model_name)
        for w in demo_workflows()
        for top in w.nodes
        for n in (top, *top.children)
        if n.node_type == "llm"
    }
    assert len(models) >= 6
    unpriced = {m for m in models if prices.estimate(m[0], m[1] or "", 1000, 100) is None}
    assert unpriced == {UNPRICED_MODEL}


def test_planted_facts_name_real_nodes(workflows: dict[str, DemoWorkflow]) -> None:
    for facts in (REGRESSION, SLOW_OFF_CRITICAL_PATH):
        workflow = workflows[facts.workflow_id]
        assert workflow.app_id == facts.app_id
        workflow.node(facts.node_id)  # raises KeyError if missing
    assert workflows[REGRESSION.workflow_id].node(REGRESSION.node_id).node_type == "llm"


# Payloads


def test_same_seed_and_end_give_identical_output() -> None:
    first = list(generate_runs(runs=50, seed=7, end=END))
    again = list(generate_runs(runs=50, seed=7, end=END))
    other = list(generate_runs(runs=50, seed=8, end=END))
    assert first == again
    assert [r["id"] for r in first] != [r["id"] for r in other]


def test_every_payload_validates_and_has_exactly_the_schema_keys(runs: list[Run]) -> None:
    run_keys, node_keys = set(RunCreate.__annotations__), set(NodeExecutionCreate.__annotations__)
    for run in runs:
        assert set(run) == run_keys
        validated = RUN_CREATE.validate_python(run)
        assert len(validated["node_executions"]) == len(run["node_executions"])
        for node in run["node_executions"]:
            assert set(node) == node_keys
            assert node["cost"] is None  # the server estimates it


def test_ids_are_unique_and_short(runs: list[Run]) -> None:
    run_ids = [r["id"] for r in runs]
    node_ids = [n["id"] for r in runs for n in r["node_executions"]]
    assert len(set(run_ids)) == len(run_ids)
    assert len(set(node_ids)) == len(node_ids)
    assert max(map(len, run_ids + node_ids)) <= 255


def test_runs_are_in_time_order_inside_the_window(runs: list[Run]) -> None:
    starts = [r["started_at"] for r in runs]
    assert starts == sorted(starts)
    assert all(s.tzinfo is not None and s.utcoffset() == timedelta(0) for s in starts)
    assert starts[0] >= END - timedelta(days=DAYS)
    assert max(r["finished_at"] for r in runs) <= END
    for run in runs:
        nodes = run["node_executions"]
        assert run["started_at"] == min(n["started_at"] for n in nodes)
        assert run["finished_at"] == max(n["finished_at"] for n in nodes)
        assert [n["index"] for n in nodes] == list(range(1, len(nodes) + 1))
        assert [n["started_at"] for n in nodes] == sorted(n["started_at"] for n in nodes)


def test_working_hours_are_busier_than_nights(runs: list[Run]) -> None:
    hours = Counter(r["started_at"].hour for r in runs)
    working = sum(hours[h] for h in range(9, 17)) / 8
    night = sum(hours[h] for h in range(0, 6)) / 6
    assert working > 3 * night


def test_triggers_and_one_version_change_per_workflow(runs: list[Run]) -> None:
    triggers = Counter(r["triggered_from"] for r in runs)
    assert set(triggers) <= {"app-run", "debugging", "webapp", "service-api"}
    assert triggers.most_common(1)[0][0] == "service-api"
    versions: dict[str, list[str]] = defaultdict(list)
    for run in runs:
        versions[run["workflow_id"]].append(run["workflow_version"])
    assert len(versions) == len(demo_workflows())
    for workflow_id, seen in versions.items():
        changes = sum(a != b for a, b in pairwise(seen))
        assert (seen[0], seen[-1], changes) == ("v1", "v2", 1), workflow_id


# Timing along the DAG


def test_nodes_start_after_all_their_predecessors_finish(
    runs: list[Run], workflows: dict[str, DemoWorkflow]
) -> None:
    for run in runs:
        workflow = workflows[run["workflow_id"]]
        done = top_level(run)
        for source, target in workflow.edges:
            if source in done and target in done:
                assert done[target]["started_at"] >= done[source]["finished_at"]
        for node in done.values():
            preds = [done[p] for p in workflow.predecessors(node["node_id"]) if p in done]
            if preds:
                latest = max(preds, key=lambda p: p["finished_at"])
                assert node["predecessor_node_id"] == latest["node_id"]


def test_every_workflow_runs_parallel_branches_concurrently(
    runs: list[Run], workflows: dict[str, DemoWorkflow]
) -> None:
    concurrent: set[str] = set()
    for run in runs:
        workflow = workflows[run["workflow_id"]]
        done = top_level(run)
        for node_id in done:
            branches = [done[s] for s in workflow.successors(node_id) if s in done]
            if any(overlaps(a, b) for a in branches for b in branches if a is not b):
                concurrent.add(workflow.workflow_id)
    assert concurrent == set(workflows)


def test_iteration_children_carry_their_container_and_lie_inside_it(runs: list[Run]) -> None:
    checked = 0
    for run in runs:
        by_id = {n["id"]: n for n in run["node_executions"]}
        children = [n for n in run["node_executions"] if n["iteration_id"] is not None]
        for child in children:
            container = by_id[child["parent_id"]]
            assert container["node_type"] == "iteration"
            assert child["iteration_id"] == container["node_id"]
            assert child["iteration_index"] is not None and child["iteration_index"] >= 0
            assert container["started_at"] <= child["started_at"]
            assert child["finished_at"] <= container["finished_at"]
            checked += 1
    assert checked > 100


def test_slow_node_is_rarely_on_the_critical_path(runs: list[Run]) -> None:
    facts = SLOW_OFF_CRITICAL_PATH
    medians: dict[str, list[float]] = defaultdict(list)
    waited = total = 0
    for run in runs:
        if run["workflow_id"] != facts.workflow_id or run["status"] != "succeeded":
            continue
        for node in run["node_executions"]:
            medians[node["node_id"]].append(node["elapsed_ms"])
            if node["node_id"] == "join":
                total += 1
                waited += node["predecessor_node_id"] == facts.node_id
    slowest = max(medians, key=lambda k: statistics.median(medians[k]))
    assert slowest == facts.node_id
    assert total > 50 and waited / total < 0.2


# Failures, retries, caches


def test_a_few_percent_of_runs_fail_and_stop_there(runs: list[Run]) -> None:
    failed = [r for r in runs if r["status"] == "failed"]
    assert 0.01 <= len(failed) / len(runs) <= 0.10
    for run in failed:
        errors = [n for n in run["node_executions"] if n["status"] == "failed"]
        first = min(
            (n for n in errors if n["iteration_id"] is None), key=lambda n: n["finished_at"]
        )
        assert run["error"] == first["error"] and run["error"]
        assert all(n["started_at"] <= first["finished_at"] for n in run["node_executions"])
    handled = [r for r in runs if r["status"] == "partial-succeeded"]
    assert handled
    assert all(any(n["status"] == "exception" for n in r["node_executions"]) for r in handled)


def test_some_nodes_retry(runs: list[Run]) -> None:
    retries = Counter(n["retry_count"] for r in runs for n in r["node_executions"])
    assert set(retries) == {0, 1, 2}
    assert retries[1] + retries[2] < 0.05 * retries.total()


def test_inputs_repeat_on_pooled_nodes_and_cache_hits_are_fast(runs: list[Run]) -> None:
    nodes = [n for r in runs for n in r["node_executions"]]
    by_hash = Counter(n["input_hash"] for n in nodes)
    repeated = {h for h, count in by_hash.items() if count > 1}
    repeated_on = {n["node_id"] for n in nodes if n["input_hash"] in repeated}
    assert {"classify_intent", "faq_search"} <= repeated_on
    assert "draft_answer" not in repeated_on  # most nodes see unique inputs
    assert all(len(h) == 64 and int(h, 16) >= 0 for h in by_hash)
    hits = [n for n in nodes if n["cache_hit"]]
    assert 0 < len(hits) < 0.05 * len(nodes)
    assert all(n["elapsed_ms"] < 10 for n in hits)


def test_unpriced_model_shows_up_rarely(runs: list[Run]) -> None:
    llm = [n for r in runs for n in r["node_executions"] if n["node_type"] == "llm"]
    unpriced = [n for n in llm if (n["model_provider"], n["model_name"]) == UNPRICED_MODEL]
    assert 0 < len(unpriced) < 0.01 * len(llm)
    done = [n for n in llm if n["status"] == "succeeded" and not n["cache_hit"]]
    assert all(n["prompt_tokens"] > 0 and n["completion_tokens"] > 0 for n in done)


# The regression


def node_durations(runs: list[Run], workflow_id: str, node_id: str) -> tuple[list, list]:
    since = END - timedelta(days=REGRESSION.starts_days_before_end)
    before: list[float] = []
    after: list[float] = []
    for run in runs:
        if run["workflow_id"] != workflow_id:
            continue
        for node in run["node_executions"]:
            # Cache hits and retries have durations of their own; compare plain calls only.
            plain = not node["cache_hit"] and not node["retry_count"]
            if node["node_id"] == node_id and node["status"] == "succeeded" and plain:
                (after if run["started_at"] >= since else before).append(node["elapsed_ms"])
    return before, after


def test_regression_node_is_slower_in_the_last_days(runs: list[Run]) -> None:
    before, after = node_durations(runs, REGRESSION.workflow_id, REGRESSION.node_id)
    assert len(after) > 100
    assert statistics.median(after) >= 1.25 * statistics.median(before)


def test_other_nodes_of_the_workflow_keep_their_speed(runs: list[Run]) -> None:
    for node_id in ("classify_intent", "draft_answer", "faq_answer"):
        before, after = node_durations(runs, REGRESSION.workflow_id, node_id)
        ratio = statistics.median(after) / statistics.median(before)
        assert 0.85 < ratio < 1.15, node_id


# Batches


def test_batches_have_the_requested_size_and_the_same_runs() -> None:
    batches = list(generate_batches(runs=250, batch_size=100, seed=3, end=END))
    assert [len(b) for b in batches] == [100, 100, 50]
    flat = [r["id"] for b in batches for r in b]
    assert flat == [r["id"] for r in generate_runs(runs=250, seed=3, end=END)]
    assert list(generate_batches(runs=0, end=END)) == []


@pytest.mark.parametrize(
    "kwargs", [{"runs": -1}, {"runs": 1, "days": 0}, {"runs": 1, "batch_size": 0}]
)
def test_bad_arguments_are_rejected(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        next(generate_batches(end=END, **kwargs))
