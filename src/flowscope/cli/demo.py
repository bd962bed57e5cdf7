"""`flowscope demo`: synthetic data plus a running server, in one command."""

from __future__ import annotations

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from flowscope.cli.database import open_database
from flowscope.cli.options import database_url_option
from flowscope.cli.output import console
from flowscope.cli.serve import run_server
from flowscope.config import Settings
from flowscope.demo.seed import seed_demo
from flowscope.store.engine import write_transaction
from flowscope.tenancy.keys import create_key


@click.command()
@click.option(
    "--runs",
    default=2000,
    show_default=True,
    type=click.IntRange(1),
    help="Synthetic runs to generate.",
)
@click.option(
    "--seed", default=42, show_default=True, type=int, help="Random seed of the workload."
)
@database_url_option
@click.option("--host", default=lambda: Settings().host, show_default="127.0.0.1")
@click.option("--port", default=lambda: Settings().port, type=int, show_default="8000")
@click.option(
    "--serve/--no-serve",
    default=True,
    show_default=True,
    help="Start the server once the data is loaded.",
)
def demo(runs: int, seed: int, database_url: str, host: str, port: int, serve: bool) -> None:
    """Fill the database with a realistic synthetic workload (tenant 'demo') and serve it.

    Several apps and workflows, 10-30 node DAGs with parallel branches and an iteration,
    LLM nodes on real models, failures, retries, repeated inputs and a latency regression.
    Running it again updates the same runs (ingestion is idempotent).
    """
    engine = open_database(database_url)
    with write_transaction(engine) as conn:
        key = create_key(conn, "demo", "demo admin", "admin").key
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("loading demo runs", total=runs)
        result = seed_demo(
            engine, runs=runs, seed=seed, progress=lambda n: progress.advance(task, n)
        )
    engine.dispose()
    base = f"http://{host}:{port}"
    # Plain echo: these lines get copied and pasted, so they must never be wrapped.
    click.echo(f"loaded {result.runs} runs with {result.node_executions} node executions")
    click.echo(f"admin API key (tenant 'demo'): {key}")
    click.echo(f"dashboard: {base}/ (sign in with the key above)")
    click.echo(f"API docs: {base}/docs")
    click.echo(f"try: curl -H 'Authorization: Bearer {key}' {base}/api/v1/apps")
    bottlenecks = "apps/support-assistant/workflows/support-rag/performance/bottlenecks"
    click.echo(f"     curl -H 'Authorization: Bearer {key}' {base}/api/v1/{bottlenecks}")
    click.echo(
        "     flowscope advise --app sales-outreach --workflow meeting-prep --generate"
        + ("" if database_url == Settings().database_url else f" --database-url {database_url}")
    )
    if serve:
        click.echo(f"serving on {base} (Ctrl+C to stop)")
        run_server(database_url, host, port, workers=1, log_level="warning")
