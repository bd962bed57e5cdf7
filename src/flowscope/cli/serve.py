"""`flowscope serve`: the API server."""

from __future__ import annotations

import os

import click
import uvicorn

from flowscope.cli.database import open_database
from flowscope.cli.options import database_url_option
from flowscope.config import Settings


def prepare_database(database_url: str) -> None:
    """Migrate an embedded SQLite database; insist that PostgreSQL is already migrated."""
    open_database(database_url).dispose()


def run_server(database_url: str, host: str, port: int, workers: int, log_level: str) -> None:
    prepare_database(database_url)
    # Worker processes build their own app from the environment (uvicorn's factory mode).
    os.environ["FLOWSCOPE_DATABASE_URL"] = database_url
    os.environ["FLOWSCOPE_AUTO_MIGRATE"] = "false"
    uvicorn.run(
        "flowscope.api.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
    )


@click.command()
@click.option(
    "--host",
    default=lambda: Settings().host,
    show_default="127.0.0.1",
    help="Interface to listen on; use 0.0.0.0 only behind a proxy you trust.",
)
@click.option("--port", default=lambda: Settings().port, type=int, show_default="8000")
@database_url_option
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Server processes (they share the database).",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
def serve(host: str, port: int, database_url: str, workers: int, log_level: str) -> None:
    """Run the API server (migrates an embedded SQLite database on start)."""
    run_server(database_url, host, port, workers, log_level)
