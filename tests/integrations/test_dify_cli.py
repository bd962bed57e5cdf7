"""`flowscope import dify` and `flowscope import dify-app` through click's CliRunner."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result

from flowscope.catalog import read_workflow_pk
from flowscope.cli.main import cli
from flowscope.graphs.dify import parse_dify_dsl
from flowscope.graphs.store import read_latest_graph
from flowscope.store.engine import make_engine, read_transaction
from tests.conftest import _libpq, new_postgres_database
from tests.integrations.dify_fixture import (
    RUNS,
    SUPPORT,
    TENANT_A,
    Run,
    dify_database,
    finish_running_run,
    insert_row,
    run_row,
)
from tests.integrations.test_dify_import import (
    N_NODES,
    N_RUNS,
    stored,
    tenant_id_of,
    truncated_nodes,
)

REAL = Path(__file__).parents[1] / "graphs" / "fixtures" / "real"
SUMMARY = re.compile(
    r"^imported (\d+) runs, (\d+) node executions \(\d+\.\d runs/s\); skipped (\d+); "
    r"truncated (\d+)$"
)


@pytest.fixture
def dify_url() -> Iterator[str]:
    with dify_database() as url:
        yield _libpq(url)  # the plain libpq form users give


def invoke(db_url: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["import", *args, "--database-url", db_url])


def summary(result: Result) -> tuple[int, int, int, int]:
    """(runs, node executions, skipped runs, truncated node executions) of the summary line."""
    assert result.exit_code == 0, result.output
    match = SUMMARY.match(result.stdout.strip().splitlines()[-1])
    assert match is not None, result.stdout
    runs, nodes, skipped, truncated = (int(group) for group in match.groups())
    return runs, nodes, skipped, truncated


def test_import_dify_prints_a_summary_and_resumes(db_url: str, dify_url: str) -> None:
    first = invoke(db_url, "dify", "--dify-database-url", dify_url, "--tenant", "acme")
    assert summary(first) == (N_RUNS, N_NODES, 0, truncated_nodes(RUNS))
    again = invoke(db_url, "dify", "--dify-database-url", dify_url, "--tenant", "acme", "--json")
    assert again.exit_code == 0, again.output
    report = json.loads(again.stdout)
    assert (report["imported_runs"], report["imported_node_executions"]) == (0, 0)
    assert report["truncated_node_executions"] == 0
    assert report["cursor"] == {
        "imported_runs": N_RUNS,
        "imported_node_executions": N_NODES,
        "unfinished_runs": 1,
    }
    assert report["skipped"] == [] and report["interrupted"] is False
    assert report["source"].startswith("dify:") and "@" not in report["source"]


def test_dify_tenant_and_since_options(db_url: str, dify_url: str) -> None:
    result = invoke(
        db_url, "dify", "--dify-database-url", dify_url, "--tenant", "acme",
        "--dify-tenant", str(TENANT_A), "--since", "2026-11-20T09:03:00", "--batch-size", "2",
    )  # fmt: skip
    expected = [r for r in RUNS if r.tenant == TENANT_A and r.minute >= 3]
    assert summary(result) == (
        len(expected),
        sum(len(r.nodes) for r in expected),
        0,
        truncated_nodes(expected),
    )
    bad = invoke(db_url, "dify", "--dify-database-url", dify_url, "--tenant", "a",
                 "--dify-tenant", "not-a-uuid")  # fmt: skip
    assert bad.exit_code == 2 and "not-a-uuid" in bad.output


def test_skipped_runs_are_printed(db_url: str, dify_url: str) -> None:
    bad = Run("bad", 10, 1.0, "exploded", 0, [])
    with psycopg.connect(dify_url) as conn:
        insert_row(conn, "workflow_runs", run_row(bad, 99))
    result = invoke(db_url, "dify", "--dify-database-url", dify_url, "--tenant", "acme")
    assert summary(result) == (N_RUNS, N_NODES, 1, truncated_nodes(RUNS))
    assert f"skipped Dify run {bad.id}: status: Input should be" in result.stderr


def test_follow_polls_until_ctrl_c(
    db_url: str, dify_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    polls: list[float] = []

    def fake_sleep(seconds: float) -> None:
        polls.append(seconds)
        if len(polls) == 1:
            finish_running_run(dify_url)  # the next poll must pick the finish up
            return
        raise KeyboardInterrupt

    monkeypatch.setattr(time, "sleep", fake_sleep)
    result = invoke(
        db_url, "dify", "--dify-database-url", dify_url, "--tenant", "acme",
        "--follow", "--poll-seconds", "0.5",
    )  # fmt: skip
    assert polls == [0.5, 0.5]
    assert summary(result) == (N_RUNS, N_NODES + 1, 0, truncated_nodes(RUNS))
    engine = make_engine(db_url)
    try:
        found = stored(engine, [r for r in RUNS if r.key == "running"])["running"]
    finally:
        engine.dispose()
    assert found is not None and found.status == "succeeded" and found.total_tokens == 1180


def test_unreachable_dify_is_a_clear_error(db_url: str) -> None:
    url = "postgresql://postgres:hunter2@127.0.0.1:1/dify?connect_timeout=2"
    result = invoke(db_url, "dify", "--dify-database-url", url, "--tenant", "acme")
    assert result.exit_code == 1
    assert "cannot reach Dify's database at postgresql://postgres:***@127.0.0.1:1/dify" in (
        result.output
    )
    assert "hunter2" not in result.output and "Traceback" not in result.output


def test_database_without_dify_tables_is_a_clear_error(db_url: str) -> None:
    with new_postgres_database() as empty:
        result = invoke(db_url, "dify", "--dify-database-url", _libpq(empty), "--tenant", "a")
    assert result.exit_code == 1 and "has no table workflow_runs" in result.output
    assert "Traceback" not in result.output


def test_import_dify_app_registers_the_graph(db_url: str, tmp_path: Path) -> None:
    dsl = REAL / "svcvit_translation_workflow.yml"
    app_id, workflow_id = (str(part) for part in SUPPORT)
    result = invoke(
        db_url, "dify-app", str(dsl), "--app", app_id, "--workflow", workflow_id,
        "--tenant", "acme",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"for {app_id}/{workflow_id} (every version)" in result.output
    expected = parse_dify_dsl(dsl.read_bytes())
    engine = make_engine(db_url)
    try:
        tenant_id = tenant_id_of(engine)
        with read_transaction(engine) as conn:
            pk = read_workflow_pk(conn, tenant_id, app_id, workflow_id)
            assert pk is not None
            found = read_latest_graph(conn, pk)
    finally:
        engine.dispose()
    assert found is not None
    graph, version, _ = found
    assert version == "" and graph.format == "dify-dsl"
    assert set(graph.nodes) == set(expected.nodes) and len(graph.edges) == len(expected.edges)

    neutral = tmp_path / "graph.json"
    neutral.write_text('{"nodes": [{"id": "a", "type": "llm"}], "edges": []}')
    refused = invoke(db_url, "dify-app", str(neutral), "--app", "a", "--workflow", "w")
    assert refused.exit_code == 1 and "no workflow.graph" in refused.output


def test_json_summary_counts_truncated_node_executions(db_url: str, dify_url: str) -> None:
    result = invoke(
        db_url, "dify", "--dify-database-url", dify_url, "--tenant", "acme", "--json"
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["truncated_node_executions"] == truncated_nodes(RUNS) == 1
    assert (report["imported_runs"], report["imported_node_executions"]) == (N_RUNS, N_NODES)
