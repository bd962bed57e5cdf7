"""Importing from a Dify-shaped PostgreSQL database into flowscope (SQLite and PostgreSQL).

Expected figures come from the fixture's definitions (tests/integrations/dify_fixture.py),
and flowscope's side is read back through its reading functions.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from flowscope.catalog import read_workflow_pk
from flowscope.integrations.dify_import import BatchReport, DifyImport
from flowscope.integrations.dify_source import (
    DifySourceError,
    RunFilter,
    connect_dify,
    source_key,
)
from flowscope.integrations.import_cursors import read_cursor
from flowscope.performance.summary import read_period
from flowscope.performance.window import Window
from flowscope.rollups.read import Filters
from flowscope.runs.pricing import PriceBook
from flowscope.runs.read import read_run
from flowscope.schemas.runs import RunPublic
from flowscope.store.engine import read_transaction, write_transaction
from flowscope.tenancy.keys import ensure_tenant
from flowscope.timeutil import to_us
from tests.conftest import _libpq, new_postgres_database
from tests.integrations.dify_fixture import (
    BY_KEY,
    DIFY_1_9,
    RUNS,
    T0,
    TENANT_A,
    Node,
    Run,
    checksum,
    dify_database,
    finish_running_run,
    finished_running_run,
    insert_row,
    populate,
    run_row,
)

PRICES = PriceBook()
N_RUNS = len(RUNS)
N_NODES = sum(len(run.nodes) for run in RUNS)


@pytest.fixture
def dify_url() -> Iterator[str]:
    with dify_database() as url:
        yield url


def run_import(engine: Engine, dify_url: str, tenant: str = "acme", **options: Any) -> DifyImport:
    """One import invocation, as the CLI makes it: connect, catch up, disconnect."""
    with write_transaction(engine) as conn:
        tenant_id = ensure_tenant(conn, tenant)
    dify = connect_dify(dify_url)
    try:
        runs = RunFilter(options.pop("dify_tenant", None), options.pop("since", None))
        importer = DifyImport(dify, engine, tenant_id, runs=runs, prices=PRICES, **options)
        importer.catch_up()
        return importer
    finally:
        dify.close()


def tenant_id_of(engine: Engine, tenant: str = "acme") -> int:
    with write_transaction(engine) as conn:
        return ensure_tenant(conn, tenant)


def stored(engine: Engine, runs: list[Run], tenant: str = "acme") -> dict[str, RunPublic | None]:
    tenant_id = tenant_id_of(engine, tenant)
    with read_transaction(engine) as conn:
        return {run.key: read_run(conn, tenant_id, str(run.id)) for run in runs}


def rollups(engine: Engine, tenant: str = "acme") -> dict[str, Any]:
    """Each imported workflow's rollup figures for the fixture's day."""
    tenant_id = tenant_id_of(engine, tenant)
    day = datetime(T0.year, T0.month, T0.day, tzinfo=UTC)
    window = Window(to_us(day), to_us(day + timedelta(days=1)))
    found = {}
    with read_transaction(engine) as conn:
        for run in RUNS:
            app_id, workflow_id = (str(part) for part in run.app_workflow)
            pk = read_workflow_pk(conn, tenant_id, app_id, workflow_id)
            if pk is not None:
                found[workflow_id] = read_period(conn, pk, window, Filters()).model_dump()
    return found


def counted_tokens(run: RunPublic) -> int:
    """The run's tokens summed from its stored node executions, each counted once: a child
    of a container that reports its own tokens is inside the container's figure."""
    by_id = {n.id: n for n in run.node_executions}
    return sum(
        n.total_tokens or 0
        for n in run.node_executions
        if n.parent_id is None or by_id[n.parent_id].total_tokens is None
    )


def expected_tokens(run: Run) -> int:
    return sum(n.tokens or 0 for n in run.top_level())


def expected_retries(run: Run, node: Node) -> int:
    """The retries Dify recorded for a node's final row: the attempts its 1.16+ history keeps,
    or the legacy `retry` rows of the same node (and iteration or loop round). Dify 1.9 to
    1.15 record none."""
    if node.status == "retry":
        return 0
    legacy = [
        other
        for other in run.nodes
        if other.status == "retry"
        and (other.node_id, other.iteration, other.loop)
        == (node.node_id, node.iteration, node.loop)
    ]
    return node.retry_history + len(legacy)


def expected_error(node: Node) -> str | None:
    """A node that succeeded has no error, whatever text a retry left in its row."""
    return None if node.status == "succeeded" else node.error


def truncated_nodes(runs: list[Run]) -> int:
    """Node executions with at least one offloaded value."""
    return sum(bool(node.offloaded) for run in runs for node in run.nodes)


def assert_matches(found: RunPublic | None, run: Run) -> None:
    """A stored run against its Dify definition, node by node."""
    assert found is not None, run.key
    assert found.status == run.status
    assert found.app_id == str(run.app_workflow[0])
    assert found.workflow_id == str(run.app_workflow[1])
    assert found.workflow_version == run.version
    assert found.triggered_from == run.triggered_from
    assert found.started_at == run.started.replace(tzinfo=UTC)
    assert len(found.node_executions) == len(run.nodes)
    assert counted_tokens(found) == expected_tokens(run)
    if run.status != "running":  # Dify writes 0 until the run ends
        assert run.total_tokens == expected_tokens(run), "fixture inconsistent"
        assert found.total_tokens == run.total_tokens
        assert found.elapsed_ms == pytest.approx(run.seconds * 1000)
    else:
        assert found.total_tokens == expected_tokens(run)
        assert found.elapsed_ms is None
    if any(node.price for node in run.top_level()):
        assert found.cost == pytest.approx(float(run.cost()), rel=1e-9, abs=1e-12)
    else:
        assert found.cost is None  # nothing priced: no cost, not 0
    by_id = {n.id: n for n in found.node_executions}
    for node in run.nodes:
        got = by_id[str(run.node_uuid(node))]
        where = (run.key, node.key)
        assert got.retry_count == expected_retries(run, node), where
        assert got.error == expected_error(node), where
        assert got.truncated == bool(node.offloaded), where
        assert got.total_tokens == node.tokens, where
        if node.model is not None:
            assert (got.model_provider, got.model_name) == node.model, where


def test_import_matches_dify(engine: Engine, dify_url: str) -> None:
    reports: list[BatchReport] = []
    importer = run_import(engine, dify_url, on_batch=reports.append)

    assert importer.totals.imported_runs == N_RUNS == 12
    assert importer.totals.node_executions == N_NODES == 53
    assert importer.totals.skipped == []
    assert importer.totals.truncated_node_executions == truncated_nodes(RUNS) == 1
    found = stored(engine, RUNS)
    for run in RUNS:
        assert_matches(found[run.key], run)

    plain = found["plain"]
    assert plain is not None
    assert (plain.prompt_tokens, plain.completion_tokens) == (900 + 1500, 40 + 300)
    classify = next(n for n in plain.node_executions if n.node_id == "classify")
    assert (classify.prompt_tokens, classify.completion_tokens) == (900, 40)
    assert (classify.model_provider, classify.model_name) == (
        "langgenius/openai/openai",
        "gpt-4o-mini",
    )
    assert classify.cost == pytest.approx(0.000159) and classify.cost_source == "reported"
    assert classify.elapsed_ms == pytest.approx(1500) and classify.index == 2
    assert classify.predecessor_node_id == "start"

    iteration = found["iteration"]
    assert iteration is not None
    container = next(n for n in iteration.node_executions if n.node_type == "iteration")
    children = [n for n in iteration.node_executions if n.iteration_id == "iter"]
    assert len(children) == 6 and {n.parent_id for n in children} == {container.id}
    assert sorted(n.iteration_index for n in children if n.node_type == "llm") == [0, 1, 2]
    assert container.total_tokens == 360 and container.cost == pytest.approx(0.00036)
    # Children keep their own figures, counted once through the container.
    assert sum(n.total_tokens or 0 for n in children) == 360
    # The container has no prompt/completion split: the run's split comes from its children.
    assert (iteration.prompt_tokens, iteration.completion_tokens) == (3 * 100, 3 * 20)

    loop = found["loop"]
    assert loop is not None
    container = next(n for n in loop.node_executions if n.node_type == "loop")
    children = [n for n in loop.node_executions if n.loop_id == "refine"]
    assert len(children) == 6 and {n.parent_id for n in children} == {container.id}
    assert loop.cost == pytest.approx(0.00006)

    exception = found["exception"]
    assert exception is not None and exception.status == "partial-succeeded"
    fetch = next(n for n in exception.node_executions if n.node_id == "fetch")
    assert fetch.status == "exception" and fetch.error == "HTTP 504: Gateway Timeout"

    retried = found["retry"]
    assert retried is not None
    flaky = sorted(
        (n for n in retried.node_executions if n.node_id == "flaky"), key=lambda n: n.started_at
    )
    assert [(n.status, n.retry_count) for n in flaky] == [
        ("retry", 0),
        ("retry", 0),
        ("succeeded", 2),
    ]

    failed = found["failed"]
    assert failed is not None and failed.error == "ZeroDivisionError: division by zero"
    assert {n.node_id: n.status for n in failed.node_executions}["compute"] == "failed"

    truncated = found["truncated"]
    assert truncated is not None
    story = next(n for n in truncated.node_executions if n.node_id == "story")
    assert (story.prompt_tokens, story.completion_tokens, story.input_hash) == (None, None, None)
    assert (story.model_provider, story.model_name, story.total_tokens) == ("openai", "gpt-4o", 700)

    # Dify 1.16+: retries from the row's history; its stale error text is not the node's.
    history = found["retry-history"]
    assert history is not None
    fetch = next(n for n in history.node_executions if n.node_id == "fetch")
    assert (fetch.status, fetch.retry_count, fetch.error) == ("succeeded", 2, None)
    # Dify 1.9 to 1.15: retried in place, and nothing says how often.
    in_place = found["retry-in-place"]
    assert in_place is not None
    flaky = next(n for n in in_place.node_executions if n.node_id == "flaky")
    assert (flaky.status, flaky.retry_count, flaky.error) == ("succeeded", 0, None)
    # Offloaded process data and outputs: the model from the inputs, the totals from the
    # metadata, no split, and the node says it was truncated.
    offloaded = found["offloaded"]
    assert offloaded is not None
    digest = next(n for n in offloaded.node_executions if n.node_id == "digest")
    assert (digest.model_provider, digest.model_name) == ("langgenius/openai/openai", "gpt-4o")
    assert (digest.prompt_tokens, digest.completion_tokens, digest.total_tokens) == (
        None,
        None,
        5200,
    )
    assert digest.cost == pytest.approx(0.0031) and digest.truncated is True
    assert digest.input_hash is not None  # its inputs were not cut
    assert [n.truncated for n in offloaded.node_executions] == [False, True, False]

    running = found["running"]
    assert running is not None and running.finished_at is None
    assert {n.node_id: n.status for n in running.node_executions}["write"] == "running"

    with read_transaction(engine) as conn:
        cursor = read_cursor(conn, tenant_id_of(engine), importer.source)
    last = RUNS[-1]
    assert cursor.position == (to_us(last.started.replace(tzinfo=UTC)), str(last.id))
    assert cursor.unfinished == (str(BY_KEY["running"].id),)
    assert (cursor.imported_runs, cursor.imported_node_executions) == (N_RUNS, N_NODES)
    assert [r.rows_read for r in reports] == [N_RUNS]  # one batch, smaller than batch_size

    figures = rollups(engine)
    assert sum(f["run_count"] for f in figures.values()) == N_RUNS


def test_import_again_adds_nothing(engine: Engine, dify_url: str) -> None:
    run_import(engine, dify_url)
    before, figures = stored(engine, RUNS), rollups(engine)
    reports: list[BatchReport] = []
    again = run_import(engine, dify_url, on_batch=reports.append)
    assert (again.totals.imported_runs, again.totals.node_executions) == (0, 0)
    assert again.totals.truncated_node_executions == 0  # nothing written again
    # The running run is re-read once per process, but it did not change: no update (it was
    # counted as one, issue 15 item 7).
    assert again.totals.refreshed_runs == 0
    assert stored(engine, RUNS) == before
    assert rollups(engine) == figures
    with read_transaction(engine) as conn:
        cursor = read_cursor(conn, tenant_id_of(engine), again.source)
    assert (cursor.imported_runs, cursor.imported_node_executions) == (N_RUNS, N_NODES)


def test_running_run_finishes_on_a_later_pass(engine: Engine, dify_url: str) -> None:
    first = run_import(engine, dify_url)
    done = finish_running_run(dify_url)
    second = run_import(engine, dify_url)
    assert (second.totals.imported_runs, second.totals.node_executions) == (0, 1)
    assert second.totals.refreshed_runs == 1
    found = stored(engine, [done])["running"]
    assert_matches(found, done)
    assert found is not None and found.total_tokens == 1180
    write = next(n for n in found.node_executions if n.node_id == "write")
    assert (write.status, write.total_tokens, write.prompt_tokens) == ("succeeded", 700, 600)
    with read_transaction(engine) as conn:
        cursor = read_cursor(conn, tenant_id_of(engine), first.source)
    assert cursor.unfinished == ()
    assert (cursor.imported_runs, cursor.imported_node_executions) == (N_RUNS, N_NODES + 1)
    third = run_import(engine, dify_url)
    assert third.totals.refreshed_runs == 0 and third.totals.node_executions == 0


def test_killed_import_resumes_with_the_same_totals(engine: Engine, dify_url: str) -> None:
    class Killed(Exception):
        pass

    def kill(report: BatchReport) -> None:
        raise Killed

    with pytest.raises(Killed):
        run_import(engine, dify_url, batch_size=2, on_batch=kill)
    partial = stored(engine, RUNS)
    assert [key for key, run in partial.items() if run is not None] == ["plain", "iteration"]

    resumed = run_import(engine, dify_url, batch_size=2)
    assert resumed.totals.imported_runs == N_RUNS - 2
    found = stored(engine, RUNS)
    for run in RUNS:
        assert_matches(found[run.key], run)
    with read_transaction(engine) as conn:
        cursor = read_cursor(conn, tenant_id_of(engine), resumed.source)
    assert (cursor.imported_runs, cursor.imported_node_executions) == (N_RUNS, N_NODES)
    assert sum(f["run_count"] for f in rollups(engine).values()) == N_RUNS
    total_tokens = sum(f["tokens"]["total"] for f in rollups(engine).values())
    assert total_tokens == sum(expected_tokens(run) for run in RUNS)


def test_dify_tenant_filter(engine: Engine, dify_url: str) -> None:
    importer = run_import(engine, dify_url, dify_tenant=TENANT_A)
    assert importer.source.endswith(f"#{TENANT_A}")
    assert importer.totals.imported_runs == sum(run.tenant == TENANT_A for run in RUNS) == 11
    found = stored(engine, RUNS)
    assert found["other-tenant"] is None
    assert all(found[run.key] is not None for run in RUNS if run.tenant == TENANT_A)


def test_since_filter(engine: Engine, dify_url: str) -> None:
    importer = run_import(engine, dify_url, since=T0 + timedelta(minutes=4))
    expected = {run.key for run in RUNS if run.minute >= 4}
    assert expected == {"retry", "failed", "truncated", "running"} | DIFY_1_9
    assert importer.totals.imported_runs == len(expected)
    found = stored(engine, RUNS)
    assert {key for key, run in found.items() if run is not None} == expected


def test_dify_database_is_never_written(engine: Engine, dify_url: str) -> None:
    before = checksum(dify_url)
    tenant_id = tenant_id_of(engine)
    dify = connect_dify(dify_url)
    try:
        DifyImport(dify, engine, tenant_id, prices=PRICES).catch_up()
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            dify.execute("UPDATE workflow_runs SET status = 'failed'")
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction), dify.transaction():
            dify.execute("CREATE TABLE flowscope_was_here (id int)")
    finally:
        dify.close()
    assert checksum(dify_url) == before


def test_unfit_runs_are_skipped_and_the_cursor_moves_past_them(
    engine: Engine, dify_url: str
) -> None:
    bad = Run("bad", 10, 1.0, "exploded", 0, [])
    with psycopg.connect(_libpq(dify_url)) as conn:
        insert_row(conn, "workflow_runs", run_row(bad, 99))
    later = run_import(engine, dify_url, batch_size=4)
    assert [(s.run_id, "status" in s.reason) for s in later.totals.skipped] == [(str(bad.id), True)]
    assert later.totals.imported_runs == N_RUNS
    with read_transaction(engine) as conn:
        cursor = read_cursor(conn, tenant_id_of(engine), later.source)
    assert cursor.position is not None and cursor.position[1] == str(bad.id)
    assert run_import(engine, dify_url).totals.skipped == []


def test_two_tenants_import_the_same_runs_each_their_own(engine: Engine, dify_url: str) -> None:
    """Run ids are per tenant (D8): the same Dify database imported into two tenants gives
    each its own runs (it skipped them all, saying another tenant had them)."""
    first = run_import(engine, dify_url, tenant="acme")
    other = run_import(engine, dify_url, tenant="globex")
    assert other.totals.imported_runs == first.totals.imported_runs == N_RUNS
    assert other.totals.skipped == first.totals.skipped == []
    with read_transaction(engine) as conn:
        cursor = read_cursor(conn, tenant_id_of(engine, "globex"), other.source)
    assert cursor.imported_runs == N_RUNS


def test_missing_tables_and_bad_urls_are_clear_errors() -> None:
    with (
        new_postgres_database() as empty,
        pytest.raises(DifySourceError, match="has no table workflow_runs"),
    ):
        connect_dify(empty)
    with pytest.raises(DifySourceError) as caught:
        connect_dify("postgresql://postgres:hunter2@127.0.0.1:1/dify", connect_timeout=2)
    assert "cannot reach Dify's database at postgresql://postgres:***@127.0.0.1:1/dify" in str(
        caught.value
    )
    assert "hunter2" not in str(caught.value)


def test_source_key_names_host_port_database_and_tenant(dify_url: str) -> None:
    url = make_url(dify_url)
    expected = f"dify:{url.host}:{url.port or 5432}/{url.database}"
    dify = connect_dify(dify_url)
    try:
        assert source_key(dify, None) == expected
        assert source_key(dify, TENANT_A) == f"{expected}#{TENANT_A}"
    finally:
        dify.close()


def test_fixture_costs_are_the_top_level_prices() -> None:
    """The expected costs themselves, from the definitions: containers include children."""
    assert BY_KEY["plain"].cost() == Decimal("0.001359")
    assert BY_KEY["iteration"].cost() == Decimal("0.00036")
    assert finished_running_run().cost() == Decimal("0.00059")


def test_two_imports_of_one_source_take_turns(
    engine: Engine, dify_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An import whose cursor another import moved while it read re-reads from there."""
    from flowscope.integrations import dify_import

    read = dify_import.read_runs_after
    others: list[DifyImport] = []

    def read_while_another_import_commits(*args: Any, **kwargs: Any) -> Any:
        rows = read(*args, **kwargs)
        if not others:
            monkeypatch.setattr(dify_import, "read_runs_after", read)
            others.append(run_import(engine, dify_url))
        return rows

    monkeypatch.setattr(dify_import, "read_runs_after", read_while_another_import_commits)
    first = run_import(engine, dify_url)
    assert others[0].totals.imported_runs == N_RUNS and first.totals.imported_runs == 0
    with read_transaction(engine) as conn:
        cursor = read_cursor(conn, tenant_id_of(engine), first.source)
    assert (cursor.imported_runs, cursor.imported_node_executions) == (N_RUNS, N_NODES)


def test_dify_before_1_9_has_no_offload_table(engine: Engine) -> None:
    """Dify before 1.9 has no workflow_node_execution_offload: nothing is marked truncated."""
    runs = [run for run in RUNS if not any(node.offloaded for node in run.nodes)]
    with new_postgres_database() as url:
        populate(url, runs, offload_table=False)
        importer = run_import(engine, url)
    assert importer.totals.imported_runs == len(runs) == N_RUNS - 1
    assert importer.totals.truncated_node_executions == 0
    found = stored(engine, runs)
    for run in runs:
        assert_matches(found[run.key], run)
