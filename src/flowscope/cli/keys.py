"""`flowscope keys`: create, list and revoke API keys."""

from __future__ import annotations

import click

from flowscope.cli.database import open_database
from flowscope.cli.options import database_url_option, json_option
from flowscope.cli.output import fail, print_json, print_table
from flowscope.store.engine import read_transaction, write_transaction
from flowscope.tenancy import keys as key_store


@click.group()
def keys() -> None:
    """Manage API keys (each bound to one tenant and one role)."""


@keys.command()
@click.option("--tenant", required=True, help="Tenant name; created on first use.")
@click.option(
    "--role",
    type=click.Choice(key_store.ROLES),
    required=True,
    help="ingest: write runs; read: analytics; admin: everything plus key management.",
)
@click.option("--name", required=True, help="What the key is for, e.g. 'prod ingest'.")
@database_url_option
@json_option
def create(tenant: str, role: str, name: str, database_url: str, as_json: bool) -> None:
    """Create a key and print it once: only its hash is stored."""
    with write_transaction(open_database(database_url)) as conn:
        created = key_store.create_key(conn, tenant, name, role)  # type: ignore[arg-type]
    if as_json:
        print_json(created.model_dump(mode="json"))
        return
    click.echo(created.key)
    click.echo(
        f"key {created.id} for tenant {tenant!r}, role {role}. "
        "Store it now: it is not shown again.",
        err=True,
    )


@keys.command(name="list")
@click.option("--tenant", default=None, help="Only this tenant's keys.")
@database_url_option
@json_option
def list_keys(tenant: str | None, database_url: str, as_json: bool) -> None:
    """List keys (never their secrets)."""
    with read_transaction(open_database(database_url)) as conn:
        found = key_store.read_keys(conn, tenant)
    if as_json:
        print_json([k.model_dump(mode="json") for k in found])
        return
    print_table(
        ("id", "tenant", "name", "role", "prefix", "created", "last used", "revoked"),
        [
            (
                k.id,
                k.tenant,
                k.name,
                k.role,
                k.prefix + "…",
                k.created_at,
                k.last_used_at,
                k.revoked_at,
            )
            for k in found
        ],
    )


@keys.command()
@click.argument("key_id", type=int)
@database_url_option
def revoke(key_id: int, database_url: str) -> None:
    """Revoke key KEY_ID: requests with it get 401 from now on."""
    with write_transaction(open_database(database_url)) as conn:
        if not key_store.revoke_key(conn, key_id):
            fail(f"no live key with id {key_id}")
    click.echo(f"key {key_id} revoked")
