"""Caller-side records and their wire form, checked against the wire schema itself."""

from __future__ import annotations

import threading

import pytest

from flowscope.schemas.runs import RUN_CREATE
from flowscope.sdk.records import Node, Run
from flowscope.sdk.transport import by_run
from flowscope.sdk.wire import run_to_wire

Submitted = list[tuple[Run, list[Node]]]


def new_run(submitted: Submitted, **fields: str) -> Run:
    return Run(lambda run, nodes: submitted.append((run, nodes)), "app", "wf", None, fields)  # type: ignore[arg-type]


def test_a_run_is_submitted_once_with_every_started_node() -> None:
    submitted: Submitted = []
    with new_run(submitted, workflow_version="v1") as run:
        with run.node("a", "llm", title="A") as node:
            node.usage("gpt-4o-mini", "openai", 10, 5)
            node.usage("gpt-4o-mini", "openai", 1, 2, cost=0.25)
            node.cache_hit()
        unfinished = run.node("b", "code", loop_id="loop", loop_index=2).start()
        run.node("never-started", "code")
    assert len(submitted) == 1
    wire = RUN_CREATE.validate_python(run_to_wire(*submitted[0]))
    assert (wire["status"], wire["workflow_version"]) == ("succeeded", "v1")
    a, b = wire["node_executions"]
    assert (a["status"], a["title"], a["index"], a["cache_hit"]) == ("succeeded", "A", 0, True)
    assert (a["prompt_tokens"], a["completion_tokens"], a["cost"], a["model_name"]) == (
        11,
        7,
        0.25,
        "gpt-4o-mini",
    )
    assert a["finished_at"] is not None and a["finished_at"] >= a["started_at"]
    assert (b["status"], b.get("finished_at"), b["loop_id"], b["loop_index"], b["index"]) == (
        "running",
        None,
        "loop",
        2,
        1,
    )

    unfinished.end()  # after its run: reported again, alone
    assert len(submitted) == 2 and submitted[1][1] == [unfinished]


def test_node_ids_are_unique_and_indexes_dense_across_threads() -> None:
    submitted: Submitted = []
    with new_run(submitted) as run:

        def work() -> None:
            for _ in range(200):
                with run.node("n", "code"):
                    pass

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    nodes = submitted[0][1]
    assert len({n.id for n in nodes}) == 800
    assert sorted(n.index for n in nodes) == list(range(800))


def test_long_errors_are_cut_to_what_the_schema_accepts() -> None:
    submitted: Submitted = []
    with pytest.raises(ValueError), new_run(submitted) as run, run.node("a", "code"):
        raise ValueError("x" * 200_000)
    wire = RUN_CREATE.validate_python(run_to_wire(*submitted[0]))
    assert (
        wire["status"] == "failed" and wire["error"] is not None and len(wire["error"]) == 100_000
    )
    assert wire["node_executions"][0]["error"] == wire["error"]


@pytest.mark.parametrize(
    ("detail", "kind", "indexes"),
    [
        (
            [{"loc": ["body", "runs", 2, "id"]}, {"loc": ["body", "runs", 0, "x"]}],
            "rejected",
            [0, 2],
        ),
        ([{"loc": ["body", "runs"], "msg": "at most 10 runs"}], "split", []),
        ([{"loc": ["body", "runs", 9, "id"]}], "split", []),  # no such run in the batch
        ("not a list", "split", []),
        ([], "split", []),
    ],
)
def test_server_errors_name_runs_by_index(detail: object, kind: str, indexes: list[int]) -> None:
    outcome = by_run(detail, 3)
    assert outcome.kind == kind
    assert sorted(outcome.rejected) == indexes
