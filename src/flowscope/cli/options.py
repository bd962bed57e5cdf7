"""Options shared by several commands."""

from __future__ import annotations

import click

from flowscope.config import Settings

database_url_option = click.option(
    "--database-url",
    envvar="FLOWSCOPE_DATABASE_URL",
    default=lambda: Settings().database_url,
    show_default="sqlite:///./flowscope.db or $FLOWSCOPE_DATABASE_URL",
    help="flowscope database (sqlite:///path.db or postgresql+psycopg://...).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
