"""Apps, workflows and their versions: registered on first sight, looked up by tenant."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, select

from flowscope.store import dialect
from flowscope.store.tables import App, Workflow, WorkflowVersion

WorkflowKey = tuple[str, str]  # (app_id, workflow_id)


def ensure_workflows(
    conn: Connection, tenant_id: int, keys: Iterable[WorkflowKey], now_us: int
) -> dict[WorkflowKey, int]:
    """The primary key of each (app_id, workflow_id), creating the ones not seen before."""
    wanted = sorted(set(keys))
    app_ids = sorted({app_id for app_id, _ in wanted})
    dialect.insert_ignore(
        conn,
        "apps",
        ("tenant_id", "app_id", "created_at_us"),
        ("tenant_id", "app_id"),
        [(tenant_id, app_id, now_us) for app_id in app_ids],
    )
    found = conn.execute(
        select(App.app_id, App.id).where(App.tenant_id == tenant_id, App.app_id.in_(app_ids))
    )
    app_pks = {app_id: pk for app_id, pk in found}
    dialect.insert_ignore(
        conn,
        "workflows",
        ("app_pk", "workflow_id", "created_at_us"),
        ("app_pk", "workflow_id"),
        [(app_pks[app_id], workflow_id, now_us) for app_id, workflow_id in wanted],
    )
    rows = conn.execute(
        select(App.app_id, Workflow.workflow_id, Workflow.id)
        .join(App, App.id == Workflow.app_pk)
        .where(App.tenant_id == tenant_id, App.app_id.in_(app_ids))
    )
    wanted_set = set(wanted)
    return {(a, w): pk for a, w, pk in rows if (a, w) in wanted_set}


def ensure_versions(conn: Connection, versions: Iterable[tuple[int, str]], now_us: int) -> None:
    """Remember each (workflow_pk, version) the first time it is seen."""
    dialect.insert_ignore(
        conn,
        "workflow_versions",
        ("workflow_pk", "version", "first_seen_us"),
        ("workflow_pk", "version"),
        [(pk, version, now_us) for pk, version in sorted(set(versions))],
    )


def read_workflow_pk(conn: Connection, tenant_id: int, app_id: str, workflow_id: str) -> int | None:
    """The workflow's key within this tenant, or None (unknown and foreign look the same)."""
    return conn.execute(
        select(Workflow.id)
        .join(App, App.id == Workflow.app_pk)
        .where(
            App.tenant_id == tenant_id, App.app_id == app_id, Workflow.workflow_id == workflow_id
        )
    ).scalar_one_or_none()


def read_workflow_pks(conn: Connection, tenant_id: int) -> dict[tuple[str, str], int]:
    """Every workflow of the tenant: (app id, workflow id) -> its key, in one query."""
    rows = conn.execute(
        select(App.app_id, Workflow.workflow_id, Workflow.id)
        .join(App, App.id == Workflow.app_pk)
        .where(App.tenant_id == tenant_id)
    )
    return {(app_id, workflow_id): pk for app_id, workflow_id, pk in rows}


def read_versions(conn: Connection, workflow_pk: int) -> list[str]:
    """The workflow's versions in the order they were first seen."""
    return list(
        conn.execute(
            select(WorkflowVersion.version)
            .where(WorkflowVersion.workflow_pk == workflow_pk)
            .order_by(WorkflowVersion.first_seen_us)
        ).scalars()
    )


def read_apps(conn: Connection, tenant_id: int) -> dict[str, list[str]]:
    """Every app of the tenant with its workflow ids, sorted."""
    apps: dict[str, list[str]] = {}
    rows = conn.execute(
        select(App.app_id, Workflow.workflow_id)
        .outerjoin(Workflow, Workflow.app_pk == App.id)
        .where(App.tenant_id == tenant_id)
        .order_by(App.app_id, Workflow.workflow_id)
    )
    for app_id, workflow_id in rows:
        apps.setdefault(app_id, [])
        if workflow_id is not None:
            apps[app_id].append(workflow_id)
    return apps
