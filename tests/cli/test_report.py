"""`flowscope report` on the demo workload, against what the HTTP API returns for the same window."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from flowscope.cli.main import cli
from flowscope.demo.seed import seed_demo
from tests.conftest import KeyFactory, auth

END = datetime(2026, 3, 2, tzinfo=UTC)
WINDOW = ["--start", "2026-02-23T00:00:00Z", "--end", "2026-03-02T00:00:00Z"]
API_WINDOW = {"start": "2026-02-23T00:00:00Z", "end": "2026-03-02T00:00:00Z"}
APP, WORKFLOW = "support-assistant", "support-rag"
PERFORMANCE = f"/api/v1/apps/{APP}/workflows/{WORKFLOW}/performance"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def seeded(engine: Engine, db_url: str) -> str:
    """The database URL, with 30 days of demo runs up to END for tenant 'demo'."""
    seed_demo(engine, runs=200, end=END)
    return db_url


def report(runner: CliRunner, db_url: str, *args: str) -> Result:
    return runner.invoke(cli, ["report", *args, "--database-url", db_url])


def workflow_report(runner: CliRunner, db_url: str, *args: str) -> str:
    result = report(runner, db_url, "--app", APP, "--workflow", WORKFLOW, *args)
    assert result.exit_code == 0, result.output
    return result.output


def api(client: TestClient, key: str, path: str, **params: Any) -> Any:
    response = client.get(f"{PERFORMANCE}/{path}", params=params, headers=auth(key))
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize(
    ("options", "params"),
    [
        ((), {}),
        (
            ("--threshold-percentile", "75", "--triggered-from", "service-api"),
            {"threshold_percentile": 75, "triggered_from": "service-api"},
        ),
        (("--workflow-version", "v2"), {"workflow_version": "v2"}),
    ],
)
def test_json_is_what_the_api_returns(
    runner: CliRunner,
    seeded: str,
    client: TestClient,
    make_key: KeyFactory,
    options: tuple[str, ...],
    params: dict[str, Any],
) -> None:
    printed = json.loads(workflow_report(runner, seeded, *WINDOW, *options, "--json"))

    key = make_key(role="read", tenant="demo")
    shared = {k: v for k, v in params.items() if k != "threshold_percentile"}
    assert printed == {
        "summary": api(client, key, "summary", **API_WINDOW, **shared),
        "nodes": api(client, key, "nodes", **API_WINDOW, **shared),
        "bottlenecks": api(client, key, "bottlenecks", **API_WINDOW, **params),
    }
    assert printed["summary"]["run_count"] > 0
    assert printed["nodes"]["data"] and printed["bottlenecks"]["data"]


def test_the_tables_show_every_node_and_bottleneck(runner: CliRunner, seeded: str) -> None:
    found = json.loads(workflow_report(runner, seeded, *WINDOW, "--json"))
    output = workflow_report(runner, seeded, *WINDOW)

    assert f"{APP}/{WORKFLOW}, tenant 'demo'" in output
    assert "window 2026-02-23 00:00 to 2026-03-02 00:00 UTC" in output
    for label in ("Summary", "success rate", "latency p95", "cost per run", "cache hit rate"):
        assert label in output
    for header in ("node", "type", "execs", "errors", "p50 ms", "p95 ms", "crit. path", "retries"):
        assert header in output
    for header in ("Bottlenecks", "path ms/run", "p90 ms", "reason", "saving ms/run"):
        assert header in output
    assert " ms" in output and "%" in output and " USD" in output
    lines = output.splitlines()
    for entry in found["nodes"]["data"]:
        # Whole ids, each on the row with its type (never wrapped or cut, whatever the width).
        assert any(entry["node_id"] in line and entry["node_type"] in line for line in lines)
    for entry in found["bottlenecks"]["data"]:
        assert any(entry["node_id"] in line and entry["reason"] in line for line in lines)
    assert "…" not in output


def test_the_threshold_names_the_percentile_column(runner: CliRunner, seeded: str) -> None:
    assert "p75 ms" in workflow_report(runner, seeded, *WINDOW, "--threshold-percentile", "75")


def test_an_empty_window_prints_one_friendly_line(runner: CliRunner, seeded: str) -> None:
    before_the_data = ["--start", "2025-01-01", "--end", "2025-01-08"]
    output = workflow_report(runner, seeded, *before_the_data)
    assert output.strip() == (
        f"No runs of {APP}/{WORKFLOW}, tenant 'demo' from 2025-01-01 00:00 to 2025-01-08 00:00 UTC."
    )

    printed = json.loads(workflow_report(runner, seeded, *before_the_data, "--json"))
    assert printed["summary"]["run_count"] == 0
    assert printed["summary"]["success_rate"] is None
    assert set(printed["summary"]["latency_ms"].values()) == {None}
    assert printed["nodes"]["data"] == [] and printed["bottlenecks"]["data"] == []


def test_an_empty_window_mentions_the_runs_before_it(runner: CliRunner, seeded: str) -> None:
    # The demo's runs end before END: the week after it is empty, the week before is not.
    output = workflow_report(runner, seeded, "--start", "2026-03-02", "--end", "2026-03-09")
    assert output.startswith(f"No runs of {APP}/{WORKFLOW}")
    assert "The 168 hours before had" in output


def test_an_unknown_workflow_is_named(runner: CliRunner, seeded: str) -> None:
    result = report(runner, seeded, "--app", APP, "--workflow", "nope", *WINDOW)
    assert result.exit_code == 1
    assert f"workflow {APP}/nope not found for tenant 'demo'" in result.output
    assert f"{APP}/{WORKFLOW}" in result.output  # the known workflows, as a hint
    assert "Traceback" not in result.output


def test_an_unknown_tenant_is_named_and_not_created(runner: CliRunner, seeded: str) -> None:
    args = ["--app", APP, "--workflow", WORKFLOW, "--tenant", "ghost", *WINDOW]
    for _ in range(2):
        result = report(runner, seeded, *args)
        assert result.exit_code == 1
        assert f"workflow {APP}/{WORKFLOW} not found for tenant 'ghost'" in result.output
        assert "no such tenant" in result.output


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--days", "0"], "--days"),
        (["--days", "366"], "--days"),
        (["--days", "3", "--start", "2026-02-01"], "--days"),
        (["--start", "2026-03-02", "--end", "2026-03-01"], "--start"),
    ],
)
def test_a_bad_window_names_the_option(
    runner: CliRunner, tmp_path: Path, args: list[str], named: str
) -> None:
    url = f"sqlite:///{tmp_path / 'unused.db'}"
    result = report(runner, url, "--app", APP, "--workflow", WORKFLOW, *args)
    assert result.exit_code == 1
    assert f"invalid {named}" in result.output
    assert "Traceback" not in result.output


def test_bad_option_values_are_usage_errors(runner: CliRunner, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'unused.db'}"
    base = ["--app", APP, "--workflow", WORKFLOW]
    not_a_time = report(runner, url, *base, "--start", "last tuesday")
    assert not_a_time.exit_code == 2 and "--start" in not_a_time.output
    assert "not an ISO 8601 date or time" in not_a_time.output
    percentile = report(runner, url, *base, "--threshold-percentile", "0")
    assert percentile.exit_code == 2 and "--threshold-percentile" in percentile.output


def test_help_names_the_default_tenant(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["report", "--help"])
    assert result.exit_code == 0
    assert "--tenant" in result.output and "default: demo" in result.output
    assert "--json" in result.output and "--threshold-percentile" in result.output
