"""The `flowscope` entry point: one group, one module per command family."""

from __future__ import annotations

import click
from pydantic import ValidationError

from flowscope import __version__
from flowscope.analytics.critical_path import set_default_tolerance_us
from flowscope.cli.advise import advise
from flowscope.cli.db import db
from flowscope.cli.demo import demo
from flowscope.cli.graph import graph
from flowscope.cli.imports import import_group
from flowscope.cli.keys import keys
from flowscope.cli.openapi import openapi
from flowscope.cli.report import report
from flowscope.cli.serve import serve
from flowscope.config import Settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="flowscope")
def cli() -> None:
    """flowscope: performance analytics, result cache and optimization advisor for LLM workflows.

    Start with `flowscope demo` to see it with synthetic data, or `flowscope serve` for real.
    """
    # Runs ingested by commands (demo, import) read critical paths as the server does.
    try:
        tolerance_ms = Settings().critical_path_tolerance_ms
    except ValidationError as exc:
        raise click.UsageError(f"settings from the environment: {exc}") from None
    set_default_tolerance_us(round(tolerance_ms * 1000))


for command in (serve, db, keys, demo, report, advise, graph, import_group, openapi):
    cli.add_command(command)
