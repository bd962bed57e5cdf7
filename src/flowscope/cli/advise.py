"""`flowscope advise`: a workflow's recommendations in the terminal, optionally regenerated."""

from __future__ import annotations

from datetime import datetime

import click

from flowscope import catalog
from flowscope.advisor.generate import generate_recommendations
from flowscope.advisor.lifecycle import read_recommendations
from flowscope.advisor.thresholds import ThresholdError, make_thresholds
from flowscope.cli.database import open_database
from flowscope.cli.options import database_url_option, json_option
from flowscope.cli.output import fail, print_json
from flowscope.cli.report import DEFAULT_TENANT, IsoDateTime, read_tenant_id
from flowscope.config import Settings
from flowscope.performance.window import MAX_DAYS, BadWindow, make_window
from flowscope.runs.pricing import PriceBook
from flowscope.schemas.advisor import RecommendationPublic
from flowscope.store.engine import read_transaction, write_transaction
from flowscope.timeutil import now_us

STATUSES = ("active", "dismissed", "resolved", "all")


@click.command()
@click.option("--app", "app_id", required=True, help="App id, e.g. support-assistant.")
@click.option("--workflow", "workflow_id", required=True, help="Workflow id, e.g. support-rag.")
@click.option("--tenant", default=DEFAULT_TENANT, show_default=True, help="Tenant name.")
@click.option("--generate", is_flag=True, help="Regenerate the recommendations first.")
@click.option(
    "--days",
    type=click.IntRange(1, MAX_DAYS),
    default=7,
    show_default=True,
    help="With --generate: analyse this many days back from now.",
)
@click.option(
    "--end",
    type=IsoDateTime(),
    default=None,
    help="With --generate: the window's end (default now; ISO 8601, no offset means UTC).",
)
@click.option(
    "--status",
    type=click.Choice(STATUSES),
    default="active",
    show_default=True,
    help="Which recommendations to print.",
)
@json_option
@database_url_option
def advise(
    app_id: str,
    workflow_id: str,
    tenant: str,
    generate: bool,
    days: int,
    end: datetime | None,
    status: str,
    as_json: bool,
    database_url: str,
) -> None:
    """Print a workflow's recommendations, largest estimated impact first.

    With --generate, the advisor first reruns every rule over the last --days (as
    POST .../optimization/recommendations does): recommendations found again are updated,
    ones no longer found are resolved, dismissed ones stay dismissed.

    \b
    Example:
      flowscope advise --app support-assistant --workflow support-rag --generate
    """
    settings = Settings()
    try:
        thresholds = make_thresholds(settings.advisor_thresholds)
    except ThresholdError as exc:
        fail(f"FLOWSCOPE_ADVISOR_THRESHOLDS: {exc}")
        return
    try:
        window = make_window(days, None, end, default_days=days)
    except BadWindow as exc:
        fail(f"--{exc.field}: {exc}")
        return
    engine = open_database(database_url)
    statuses = ("active", "dismissed", "resolved") if status == "all" else (status,)
    try:
        with (write_transaction if generate else read_transaction)(engine) as conn:
            missing = f"workflow {app_id}/{workflow_id} not found for tenant {tenant!r}"
            tenant_id = read_tenant_id(conn, tenant)
            workflow_pk = (
                None
                if tenant_id is None
                else catalog.read_workflow_pk(conn, tenant_id, app_id, workflow_id)
            )
            if workflow_pk is None:
                fail(missing)
                return
            if generate:
                result = generate_recommendations(
                    conn,
                    workflow_pk,
                    window,
                    thresholds=thresholds,
                    prices=PriceBook(),
                    default_ttls=settings.cache_ttl_seconds,
                    actor="cli",
                    now_us=now_us(),
                )
                if not as_json:
                    click.echo(
                        f"analysed {result.runs_in_window:,} runs ({result.runs_sampled:,} "
                        f"sampled){'' if result.graph else ', no graph registered'}: "
                        f"{result.created} new, {result.updated} updated, {result.reopened} "
                        f"reopened, {result.resolved} resolved"
                    )
                    for rule_id in result.failed_rules:
                        click.echo(f"rule {rule_id} failed (see the log); the others ran")
            data = read_recommendations(conn, workflow_pk, statuses=statuses)
    finally:
        engine.dispose()
    if as_json:
        print_json({"count": len(data), "data": [r.model_dump(mode="json") for r in data]})
        return
    if not data:
        hint = "" if generate else " (run with --generate to analyse the recent runs)"
        click.echo(
            f"no {status if status != 'all' else ''} recommendations{hint}".replace("  ", " ")
        )
        return
    print_recommendations(data)


def print_recommendations(data: list[RecommendationPublic]) -> None:
    """One block per recommendation: plain lines (ids and steps get copied from them, so they
    are never cut or wrapped by us; the terminal wraps long ones)."""
    for rec in data:
        colour = _COLOURS.get(rec.severity)
        head = click.style(f"{rec.severity.upper():<8}", fg=colour, bold=True)
        click.echo(f"{head} #{rec.id} {rec.category}: {rec.title}")
        click.echo(f"  {rec.description}")
        click.echo(f"  impact: {_impact(rec)}; confidence {rec.confidence:.0%}; "
                   f"evidence: {rec.evidence.sample_size:,} ({rec.rule_id})")  # fmt: skip
        for number, step in enumerate(rec.action_steps, start=1):
            click.echo(f"  {number}. {step}")
        if rec.status == "dismissed":
            click.echo(f"  dismissed by {rec.dismissed_by}: {rec.dismiss_reason or '(no reason)'}")
        click.echo()


_COLOURS = {"critical": "red", "high": "yellow", "medium": "cyan", "low": "white"}


def _impact(rec: RecommendationPublic) -> str:
    parts = []
    i = rec.estimated_impact
    if i.latency_ms_per_run:
        parts.append(f"-{i.latency_ms_per_run:,.0f} ms/run")
    if i.cost_per_1k_runs:
        parts.append(f"-{i.cost_per_1k_runs:,.4g}/1k runs")
    if i.error_rate:
        parts.append(f"-{i.error_rate:.1%} failed runs")
    return ", ".join(parts) or "none in numbers"
