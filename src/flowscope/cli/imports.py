"""`flowscope import dify` and `flowscope import dify-app`: runs and graphs from a Dify."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import click
import psycopg
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from flowscope.cli.database import open_database
from flowscope.cli.graph import graph_file_options, register_graph_file
from flowscope.cli.options import database_url_option, json_option
from flowscope.cli.output import errors, print_json
from flowscope.integrations.dify_import import (
    DEFAULT_BATCH_SIZE,
    BatchReport,
    DifyImport,
    ImportTotals,
)
from flowscope.integrations.dify_source import (
    DifySourceError,
    RunFilter,
    connect_dify,
    shown_url,
)
from flowscope.store.engine import write_transaction
from flowscope.tenancy.keys import ensure_tenant

_DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]


@click.group("import")
def import_group() -> None:
    """Import from systems you already run: a self-hosted Dify's runs and app graphs."""


@import_group.command("dify")
@click.option(
    "--dify-database-url",
    required=True,
    envvar="FLOWSCOPE_DIFY_DATABASE_URL",
    help="Dify's PostgreSQL database, read only (postgresql://user@host:5432/dify; the "
    "password may come from PGPASSWORD or ~/.pgpass). Env: FLOWSCOPE_DIFY_DATABASE_URL.",
)
@click.option("--tenant", required=True, help="flowscope tenant the runs go to.")
@click.option(
    "--dify-tenant",
    type=click.UUID,
    default=None,
    help="Only this Dify workspace's runs (its tenant id). Default: every workspace's.",
)
@click.option(
    "--since",
    type=click.DateTime(_DATE_FORMATS),
    default=None,
    help="Only runs started at or after this date or time (UTC).",
)
@click.option("--follow", is_flag=True, help="After catching up, poll for new runs until Ctrl-C.")
@click.option(
    "--poll-seconds",
    type=click.FloatRange(min=0.1),
    default=5.0,
    show_default=True,
    help="Seconds between polls with --follow.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 5000),
    default=DEFAULT_BATCH_SIZE,
    show_default=True,
    help="Runs read and written per transaction.",
)
@json_option
@database_url_option
def import_dify(
    dify_database_url: str,
    tenant: str,
    dify_tenant: UUID | None,
    since: datetime | None,
    follow: bool,
    poll_seconds: float,
    batch_size: int,
    as_json: bool,
    database_url: str,
) -> None:
    """Import workflow runs and node executions from a self-hosted Dify's PostgreSQL
    database, never writing to it.

    Resumes where the last import of the same database (and --dify-tenant) into the same
    tenant stopped; runs imported while still running are read again until they finish.
    Runs that cannot be imported are printed with the reason and skipped.

    \b
    Example:
      flowscope import dify --dify-database-url postgresql://postgres@dify-db:5432/dify \\
          --tenant acme --follow
    """
    try:
        dify = connect_dify(dify_database_url)
    except DifySourceError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        engine = open_database(database_url)
        try:
            with write_transaction(engine) as conn:
                tenant_id = ensure_tenant(conn, tenant)
            progress = _progress()
            importer = DifyImport(
                dify,
                engine,
                tenant_id,
                runs=RunFilter(dify_tenant, since),
                batch_size=batch_size,
                on_batch=lambda report: _show(progress, report),
            )
            outcome = _run(importer, progress, follow=follow, poll_seconds=poll_seconds)
            cursor = importer.cursor()
        finally:
            engine.dispose()
    except psycopg.Error as exc:
        reason = (str(exc).strip().splitlines() or ["error"])[0]
        raise click.ClickException(
            f"reading Dify's database at {shown_url(dify_database_url)} failed: {reason} "
            "(run the same command again to resume)"
        ) from None
    finally:
        dify.close()
    if as_json:
        print_json(
            {
                "source": importer.source,
                "tenant": tenant,
                **_counts(importer.totals, outcome.busy_seconds),
                "skipped": [asdict(s) for s in importer.totals.skipped],
                "interrupted": outcome.interrupted,
                "cursor": {
                    "imported_runs": cursor.imported_runs,
                    "imported_node_executions": cursor.imported_node_executions,
                    "unfinished_runs": len(cursor.unfinished),
                },
            }
        )
    else:
        click.echo(summary_line(importer.totals, outcome.busy_seconds))
    if outcome.interrupted and not follow:
        raise SystemExit(130)


def _progress() -> Progress:
    """Runs and node executions imported, on stderr when it is a terminal."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("runs, {task.fields[nodes]:,} node executions, {task.fields[rate]} runs/s"),
        TimeElapsedColumn(),
        console=errors,
        disable=not errors.is_terminal,
    )


@dataclass
class _Outcome:
    interrupted: bool = False
    busy_seconds: float = 0.0  # time spent importing, not waiting between polls


def _run(
    importer: DifyImport, progress: Progress, *, follow: bool, poll_seconds: float
) -> _Outcome:
    """Catch up (and with `follow`, poll again until Ctrl-C)."""
    outcome = _Outcome()
    with progress:
        task = progress.add_task("importing Dify runs", total=None, nodes=0, rate="0")
        try:
            progress.update(task, total=importer.count_new())
            while True:
                started = time.monotonic()
                try:
                    importer.catch_up()
                finally:
                    outcome.busy_seconds += time.monotonic() - started
                if not follow:
                    return outcome
                time.sleep(poll_seconds)
                done = progress.tasks[task].completed
                progress.update(task, total=done + importer.count_new())
        except KeyboardInterrupt:
            outcome.interrupted = True
            return outcome


def _show(progress: Progress, report: BatchReport) -> None:
    """One committed batch: its skipped runs printed, the bar advanced."""
    for skipped in report.skipped:
        progress.console.print(
            f"skipped Dify run {skipped.run_id}: {skipped.reason}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    task = progress.tasks[0]
    progress.update(
        task.id,
        advance=report.rows_read,
        nodes=task.fields["nodes"] + report.node_executions,
        rate=f"{(task.completed + report.rows_read) / (task.elapsed or 1e-9):.1f}",
    )


def _counts(totals: ImportTotals, seconds: float) -> dict[str, float | int]:
    return {
        "imported_runs": totals.imported_runs,
        "imported_node_executions": totals.node_executions,
        "updated_runs": totals.refreshed_runs,
        "skipped_runs": len(totals.skipped),
        "truncated_node_executions": totals.truncated_node_executions,
        "import_seconds": round(seconds, 3),
        "runs_per_second": round(totals.imported_runs / seconds, 1) if seconds > 0 else 0.0,
    }


def summary_line(totals: ImportTotals, seconds: float) -> str:
    """`imported N runs, M node executions (X runs/s); skipped K; truncated T`: T node
    executions whose inputs, outputs or process data Dify kept only cut."""
    counts = _counts(totals, seconds)
    return (
        f"imported {totals.imported_runs} runs, {totals.node_executions} node executions "
        f"({counts['runs_per_second']:.1f} runs/s); skipped {len(totals.skipped)}; "
        f"truncated {totals.truncated_node_executions}"
    )


@import_group.command("dify-app")
@graph_file_options
def import_dify_app(**options: Any) -> None:
    """Register a Dify app's DSL export (FILE.yml) as the graph of the workflow its runs are
    imported under: --app and --workflow are Dify's app and workflow ids.

    The same as `flowscope graph import`, for Dify DSL only.

    \b
    Example:
      flowscope import dify-app support.yml --app 5f0c...e1 --workflow 9a7d...42 --tenant acme
    """
    register_graph_file(**options, dify_only=True)
