"""`flowscope serve`: the API server."""

from __future__ import annotations

import os
import socket

import click
import uvicorn

from flowscope.cli.database import open_database
from flowscope.cli.options import database_url_option
from flowscope.config import Settings


def prepare_database(database_url: str) -> None:
    """Migrate an embedded SQLite database; insist that PostgreSQL is already migrated."""
    open_database(database_url).dispose()


def check_grpc_port(host: str, port: int) -> None:
    """Fail with one line, before anything starts, when the OTLP/gRPC port is taken.

    The workers bind it with SO_REUSEPORT to share it, which would also let them share it
    silently with another server's; this probe binds without it, so any listener refuses it.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is fine
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise click.ClickException(
                f"cannot listen for OTLP/gRPC on {host}:{port}: {exc.strerror or exc}"
            ) from None


def run_server(
    database_url: str,
    host: str,
    port: int,
    workers: int,
    log_level: str,
    otlp_grpc_port: int | None = None,
) -> None:
    if otlp_grpc_port is not None:
        check_grpc_port(host, otlp_grpc_port)
    prepare_database(database_url)
    # Worker processes build their own app from the environment (uvicorn's factory mode).
    os.environ["FLOWSCOPE_DATABASE_URL"] = database_url
    os.environ["FLOWSCOPE_AUTO_MIGRATE"] = "false"
    os.environ["FLOWSCOPE_HOST"] = host  # the gRPC listener's interface too
    if otlp_grpc_port is not None:
        os.environ["FLOWSCOPE_OTLP_GRPC_PORT"] = str(otlp_grpc_port)
    uvicorn.run(
        "flowscope.server:create_app_from_env",
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
@click.option(
    "--otlp-grpc-port",
    default=lambda: Settings().otlp_grpc_port,
    type=click.IntRange(1, 65535),
    show_default="off, or $FLOWSCOPE_OTLP_GRPC_PORT",
    help="Also receive OTLP traces over gRPC on this port of --host (4317 is the usual one).",
)
def serve(
    host: str,
    port: int,
    database_url: str,
    workers: int,
    log_level: str,
    otlp_grpc_port: int | None,
) -> None:
    """Run the API server (migrates an embedded SQLite database on start)."""
    run_server(database_url, host, port, workers, log_level, otlp_grpc_port)
