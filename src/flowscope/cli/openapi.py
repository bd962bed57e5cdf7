"""`flowscope openapi`: print the API's OpenAPI document."""

from __future__ import annotations

import click
import orjson

from flowscope.config import Settings
from flowscope.server import create_app


def openapi_document() -> bytes:
    """The OpenAPI document, stable byte for byte (sorted keys) so it can be committed."""
    app = create_app(Settings(database_url="sqlite://"))
    return orjson.dumps(app.openapi(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)


@click.command()
def openapi() -> None:
    """Print the OpenAPI document of the REST API (also served at /openapi.json)."""
    click.echo(openapi_document().decode())
