"""SDK fixtures: the tenant's id, reading runs back, and real API servers on free ports."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from flowscope.runs.read import read_run
from flowscope.schemas.runs import RunPublic
from flowscope.store.engine import read_transaction, write_transaction
from flowscope.store.tables import NodeExecution, WorkflowRun
from flowscope.tenancy.keys import ensure_tenant
from tests.servers import Server, start_server

TENANT = "acme"


@pytest.fixture
def tenant_id(engine: Engine) -> int:
    with write_transaction(engine) as conn:
        return ensure_tenant(conn, TENANT)


def stored_run(engine: Engine, tenant_id: int, run_id: str) -> RunPublic:
    with read_transaction(engine) as conn:
        run = read_run(conn, tenant_id, run_id)
    assert run is not None, f"run {run_id} is not stored"
    return run


def counts(engine: Engine) -> tuple[int, int]:
    """(runs, node executions) stored, all tenants."""
    with read_transaction(engine) as conn:
        runs = conn.execute(select(func.count()).select_from(WorkflowRun)).scalar_one()
        nodes = conn.execute(select(func.count()).select_from(NodeExecution)).scalar_one()
    return runs, nodes


Serve = Callable[[int], str]


@pytest.fixture
def serve(db_url: str, tmp_path: Path) -> Iterator[Serve]:
    """serve(port) -> base URL of a `flowscope serve` process on the test database."""
    servers: list[Server] = []

    def start(port: int) -> str:
        log = tmp_path / f"server-{port}.log"
        server = start_server(
            ["--database-url", db_url, "--log-level", "warning"], log=log, port=port
        )
        servers.append(server)
        return server.url

    yield start
    for server in servers:
        server.stop()
