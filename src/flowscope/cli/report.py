"""`flowscope report`: a workflow's summary, nodes and bottlenecks, read from the database."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import click
from rich import box
from rich.console import Console
from rich.table import Table
from sqlalchemy import Connection, select

from flowscope import catalog
from flowscope.cli.database import open_database
from flowscope.cli.options import database_url_option, json_option
from flowscope.cli.output import console, fail, print_json
from flowscope.performance.nodes import read_bottlenecks, read_nodes
from flowscope.performance.summary import read_summary
from flowscope.performance.window import MAX_DAYS, BadWindow, make_window
from flowscope.rollups.read import Filters
from flowscope.schemas.performance import (
    BottleneckList,
    NodeList,
    PeriodFigures,
    Summary,
    WindowPublic,
)
from flowscope.store.engine import read_transaction
from flowscope.store.tables import Tenant

DEFAULT_TENANT = "demo"
"""The tenant `flowscope demo` loads, so that `report` works on the demo without --tenant."""
DEFAULT_DAYS = 7
MISSING = "-"


class IsoDateTime(click.ParamType):
    """An ISO 8601 date or datetime; without an offset it is read as UTC (as the API does)."""

    name = "ISO"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime):
            return value
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 date or time, e.g. 2026-03-01T00:00Z", param)


def read_tenant_id(conn: Connection, name: str) -> int | None:
    """The tenant's id by name, or None; unlike `ensure_tenant` it never creates one."""
    return conn.execute(select(Tenant.id).where(Tenant.name == name)).scalar_one_or_none()


@click.command()
@click.option("--app", "app_id", required=True, help="App id, e.g. support-assistant.")
@click.option("--workflow", "workflow_id", required=True, help="Workflow id, e.g. support-rag.")
@click.option(
    "--tenant",
    default=DEFAULT_TENANT,
    show_default=True,
    help="Tenant name (the one `flowscope demo` loads is the default).",
)
@click.option(
    "--days",
    type=int,
    default=None,
    help=f"Window: this many days back from now (1-{MAX_DAYS}; default {DEFAULT_DAYS}).",
)
@click.option(
    "--start",
    type=IsoDateTime(),
    default=None,
    help="Window start instead of --days (ISO 8601; no offset means UTC).",
)
@click.option("--end", type=IsoDateTime(), default=None, help="Window end (default now; UTC).")
@click.option("--workflow-version", default=None, help="Only runs of this workflow version.")
@click.option("--triggered-from", default=None, help="Only runs with this triggered_from.")
@click.option(
    "--threshold-percentile",
    type=click.FloatRange(0, 100, min_open=True),
    default=90.0,
    show_default=True,
    help="Which latency percentile the bottlenecks show (0-100].",
)
@json_option
@database_url_option
def report(
    app_id: str,
    workflow_id: str,
    tenant: str,
    days: int | None,
    start: datetime | None,
    end: datetime | None,
    workflow_version: str | None,
    triggered_from: str | None,
    threshold_percentile: float,
    as_json: bool,
    database_url: str,
) -> None:
    """Print a workflow's analytics: its summary, its nodes and its bottlenecks.

    The window is whole hours: --days back from now (default 7), or --start to --end.
    Times are in ms, rates in %, changes against the previous window of the same length.
    --json prints {"summary", "nodes", "bottlenecks"}, each the body the HTTP API returns.

    \b
    Example:
      flowscope report --app support-assistant --workflow support-rag --days 3
    """
    try:
        window = make_window(days, start, end, default_days=DEFAULT_DAYS)
    except BadWindow as exc:
        fail(f"invalid --{exc.field}: {exc}")
        return
    filters = Filters(workflow_version=workflow_version, triggered_from=triggered_from)
    engine = open_database(database_url)
    try:
        with read_transaction(engine) as conn:
            missing = f"workflow {app_id}/{workflow_id} not found for tenant {tenant!r}"
            tenant_id = read_tenant_id(conn, tenant)
            if tenant_id is None:
                fail(f"{missing}: no such tenant")
                return
            workflow_pk = catalog.read_workflow_pk(conn, tenant_id, app_id, workflow_id)
            if workflow_pk is None:
                apps = catalog.read_apps(conn, tenant_id)
                known = ", ".join(f"{a}/{w}" for a, ws in apps.items() for w in ws)
                fail(f"{missing} (known: {known})" if known else missing)
                return
            summary = read_summary(conn, workflow_pk, window, filters)
            nodes = read_nodes(conn, workflow_pk, window, filters)
            bottlenecks = read_bottlenecks(
                conn, workflow_pk, window, filters, threshold_percentile=threshold_percentile
            )
    finally:
        engine.dispose()
    if as_json:
        print_json(
            {
                "summary": summary.model_dump(mode="json"),
                "nodes": nodes.model_dump(mode="json"),
                "bottlenecks": bottlenecks.model_dump(mode="json"),
            }
        )
        return
    heading = f"{app_id}/{workflow_id}, tenant {tenant!r}"
    if filters != Filters():
        shown = {"version": workflow_version, "triggered from": triggered_from}
        heading += ", " + ", ".join(f"{k} {v}" for k, v in shown.items() if v is not None)
    if summary.run_count == 0:
        before = summary.previous_period.run_count
        click.echo(
            f"No runs of {heading} from {_span(summary.window)}."
            + (f" The {window.hours} hours before had {before:,}." if before else "")
        )
        return
    # Plain echo: ids and times get copied from these lines, so they must never be wrapped.
    click.echo(heading)
    click.echo(
        f"window {_span(summary.window)} (previous: {_span(summary.previous_period.window)})"
    )
    print_summary(summary)
    print_nodes(nodes, summary.cost.currency)
    print_bottlenecks(bottlenecks)


_SUMMARY_ROWS = ("runs", "failed", "success rate", "latency p50", "latency p95", "latency p99",
                 "tokens", "cost", "cost per run", "cache hit rate")  # fmt: skip


def _period(p: PeriodFigures) -> list[str]:
    """The summary figures of one period, in the order of _SUMMARY_ROWS."""
    currency = p.cost.currency
    return [
        _count(p.run_count), _count(p.failed), _rate(p.success_rate),
        _ms(p.latency_ms.p50, unit=True), _ms(p.latency_ms.p95, unit=True),
        _ms(p.latency_ms.p99, unit=True), _count(p.tokens.total),
        _money(p.cost.total, currency), _money(p.cost.per_run_mean, currency),
        _rate(p.cache.hit_rate),
    ]  # fmt: skip


def print_summary(summary: Summary) -> None:
    before, change = summary.previous_period, summary.previous_period.change_pct
    # The API gives a change for these three figures only.
    changes = {"success rate": change.success_rate, "latency p95": change.latency_p95,
               "cost": change.cost}  # fmt: skip
    rows = zip(_SUMMARY_ROWS, _period(summary), _period(before), strict=True)
    _print(
        "Summary",
        ("", "this period", "previous", "change"),
        [(name, now, then, _change(changes.get(name))) for name, now, then in rows],
    )
    if summary.cost.unpriced_node_executions:
        click.echo(
            f"{summary.cost.unpriced_node_executions:,} node executions used a model without "
            "a price: the cost leaves them out."
        )


def print_nodes(nodes: NodeList, currency: str) -> None:
    _print(
        f"Nodes, {nodes.runs_analysed:,} runs analysed (run time and crit. path: share of "
        "that time; on path: share of runs)",
        ("node", "type", "execs", "errors", "p50 ms", "p95 ms", "run time", "crit. path",
         "on path", f"cost {currency}", "cache hits", "retries"),
        [
            (n.node_id, n.node_type, _count(n.executions), _rate(n.error_rate),
             _ms(n.latency_ms.p50), _ms(n.latency_ms.p95), _rate(n.share_of_run_time),
             _rate(n.critical_path_share), _rate(n.on_critical_path_rate), _money(n.cost),
             _rate(n.cache_hit_rate), _count(n.retries))
            for n in nodes.data
        ],
    )  # fmt: skip


def print_bottlenecks(bottlenecks: BottleneckList) -> None:
    if not bottlenecks.data:
        click.echo("No bottlenecks: no node has 5% or more of the critical-path time.")
        return
    _print(
        "Bottlenecks, by ms on the critical path per run (saving: what a typical run saves "
        "if the node took half as long)",
        ("rank", "node", "path ms/run", "share", f"p{bottlenecks.threshold_percentile:g} ms",
         "reason", "saving ms/run"),
        [
            (str(b.rank), b.node_id, _ms(b.critical_path_ms_per_run), _rate(b.critical_path_share),
             _ms(b.latency_ms_at_threshold), b.reason, _ms(b.estimated_saving_ms_per_run))
            for b in bottlenecks.data
        ],
    )  # fmt: skip


_TEXT_COLUMNS = frozenset({"", "node", "type", "reason"})


def _print(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A table with numbers aligned right; ids are never wrapped (they get copied)."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    for column in columns:
        if column in _TEXT_COLUMNS:
            table.add_column(column, no_wrap=True)
        else:
            table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*row)
    click.echo()
    click.echo(title)
    width = console.measure(table, options=console.options.update(max_width=_UNBOUNDED)).maximum
    if width <= console.width:
        console.print(table)
    else:
        # Squeezed into a narrow terminal, rich would cut figures to "…": print whole rows
        # at the table's natural width and let the terminal wrap them (or `less -S`).
        Console(width=width).print(table)


_UNBOUNDED = 10_000


def _span(window: WindowPublic) -> str:
    return f"{window.start:%Y-%m-%d %H:%M} to {window.end:%Y-%m-%d %H:%M} UTC"


def _count(value: int) -> str:
    return f"{value:,}"


def _ms(value: float | None, *, unit: bool = False) -> str:
    if value is None:
        return MISSING
    shown = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.1f}"
    return f"{shown} ms" if unit else shown


def _rate(value: float | None) -> str:
    return MISSING if value is None else f"{value * 100:.1f}%"


def _change(pct: float | None) -> str:
    return "" if pct is None else f"{pct:+.1f}%"


def _money(value: float | None, currency: str | None = None) -> str:
    if value is None:
        return MISSING
    return f"{value:,.4f} {currency}" if currency else f"{value:,.4f}"
