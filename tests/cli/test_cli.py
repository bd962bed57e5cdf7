"""The `flowscope` command line, through click's CliRunner on real databases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from flowscope.cli.main import cli
from flowscope.cli.openapi import openapi_document
from flowscope.store import migrate
from flowscope.store.engine import make_engine, read_transaction
from flowscope.tenancy.keys import authenticate


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def invoke(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_keys_create_list_revoke(runner: CliRunner, db_url: str) -> None:
    created = runner.invoke(
        cli,
        [
            "keys",
            "create",
            "--tenant",
            "acme",
            "--role",
            "ingest",
            "--name",
            "prod",
            "--database-url",
            db_url,
        ],
    )
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip()
    assert secret.startswith("fsk_")
    assert "not shown again" in created.stderr

    listed = json.loads(invoke(runner, "keys", "list", "--json", "--database-url", db_url))
    assert [(k["tenant"], k["role"], k["name"]) for k in listed] == [("acme", "ingest", "prod")]
    assert secret not in json.dumps(listed)
    table = invoke(runner, "keys", "list", "--database-url", db_url)
    assert "prod" in table and "ingest" in table

    engine = make_engine(db_url)
    with read_transaction(engine) as conn:
        assert authenticate(conn, secret) is not None
    assert "revoked" in invoke(
        runner, "keys", "revoke", str(listed[0]["id"]), "--database-url", db_url
    )
    with read_transaction(engine) as conn:
        assert authenticate(conn, secret) is None
    again = runner.invoke(cli, ["keys", "revoke", str(listed[0]["id"]), "--database-url", db_url])
    assert again.exit_code != 0
    assert "no live key" in again.output
    engine.dispose()


def test_keys_create_rejects_unknown_roles(runner: CliRunner, db_url: str) -> None:
    result = runner.invoke(
        cli,
        [
            "keys",
            "create",
            "--tenant",
            "t",
            "--role",
            "root",
            "--name",
            "x",
            "--database-url",
            db_url,
        ],
    )
    assert result.exit_code == 2
    assert "'root' is not one of" in result.output


def test_db_upgrade_current_downgrade(runner: CliRunner, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert "base (empty)" in invoke(runner, "db", "current", "--database-url", url)
    assert migrate.head_revision() in invoke(runner, "db", "upgrade", "--database-url", url)
    assert "up to date" in invoke(runner, "db", "current", "--database-url", url)
    assert "base (empty)" in invoke(
        runner, "db", "downgrade", "--revision", "base", "--database-url", url
    )
    assert migrate.current_revision(make_engine(url)) is None


def test_demo_loads_data_without_serving(runner: CliRunner, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    output = invoke(runner, "demo", "--runs", "40", "--no-serve", "--database-url", url)
    assert "loaded 40 runs" in output
    key = next(word for word in output.split() if word.startswith("fsk_"))
    with read_transaction(make_engine(url)) as conn:
        found = authenticate(conn, key)
    assert found is not None and found[0].role == "admin" and found[0].tenant == "demo"


def test_openapi_command_prints_the_served_document(runner: CliRunner) -> None:
    printed = json.loads(invoke(runner, "openapi"))
    assert printed == json.loads(openapi_document())
    assert "/api/v1/runs" in printed["paths"]
    assert "RunBatchCreate" in printed["components"]["schemas"]


def test_every_command_has_help(runner: CliRunner) -> None:
    for args in (
        ["--help"],
        ["serve", "--help"],
        ["db", "--help"],
        ["keys", "create", "--help"],
        ["demo", "--help"],
        ["openapi", "--help"],
    ):
        assert "Usage:" in invoke(runner, *args)


def test_keys_create_on_a_new_embedded_database(runner: CliRunner, tmp_path: Path) -> None:
    # The README's first step: no `db upgrade` needed for the embedded default.
    url = f"sqlite:///{tmp_path / 'new.db'}"
    args = ["keys", "create", "--tenant", "t", "--role", "admin", "--name", "me"]
    assert invoke(runner, *args, "--database-url", url).strip().startswith("fsk_")


def test_commands_refuse_an_unmigrated_postgres(
    runner: CliRunner, scratch_postgres_database: str
) -> None:
    result = runner.invoke(cli, ["keys", "list", "--database-url", scratch_postgres_database])
    assert result.exit_code == 1
    assert "run 'flowscope db upgrade" in result.output


def test_an_unreachable_database_is_one_clear_line(runner: CliRunner) -> None:
    url = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"
    result = runner.invoke(cli, ["keys", "list", "--database-url", url])
    assert result.exit_code == 1
    assert (
        "cannot reach the database at postgresql+psycopg://postgres@127.0.0.1:1/nowhere"
        in result.output
    )
    assert "Traceback" not in result.output
    bad = runner.invoke(cli, ["db", "current", "--database-url", "mysql://x"])
    assert bad.exit_code == 1 and "database URL" in bad.output
