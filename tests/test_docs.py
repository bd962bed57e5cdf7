"""Docs that cannot drift: settings, commands, endpoints and the OpenAPI document."""

from __future__ import annotations

import json
from pathlib import Path

import click

from flowscope.cli.main import cli
from flowscope.cli.openapi import openapi_document
from flowscope.config import Settings
from flowscope.server import create_app

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def test_every_setting_is_documented() -> None:
    settings_doc = (DOCS / "settings.md").read_text()
    readme = (ROOT / "README.md").read_text()
    for name in Settings.model_fields:
        variable = f"FLOWSCOPE_{name.upper()}"
        assert variable in settings_doc, f"{variable} missing from docs/settings.md"
        assert variable in readme, f"{variable} missing from the README's configuration table"


def _commands(group: click.Group, prefix: str = "flowscope") -> list[str]:
    found = []
    for name, command in group.commands.items():
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            found += _commands(command, path)
        else:
            found.append(path)
    return found


def test_every_command_is_documented() -> None:
    cli_doc = (DOCS / "cli.md").read_text()
    assert isinstance(cli, click.Group)
    for path in _commands(cli):
        *group, leaf = path.split()
        mentioned = path in cli_doc or (f"{' '.join(group)}" in cli_doc and leaf in cli_doc)
        assert mentioned, f"`{path}` missing from docs/cli.md"


def test_every_endpoint_is_documented() -> None:
    api_doc = (DOCS / "api.md").read_text()
    app = create_app(Settings(database_url="sqlite://"))
    for path, methods in app.openapi()["paths"].items():
        for method in methods:
            assert f"`{method.upper()} {path}`" in api_doc, f"{method.upper()} {path} undocumented"


def test_committed_openapi_is_current() -> None:
    committed = json.loads((DOCS / "openapi.json").read_text())
    assert committed == json.loads(openapi_document()), "docs/openapi.json is stale: make openapi"


def test_every_advisor_rule_and_threshold_is_documented() -> None:
    from dataclasses import fields

    from flowscope.advisor.rules import RULES
    from flowscope.advisor.thresholds import Thresholds

    advisor_doc = (DOCS / "advisor.md").read_text()
    for rule in RULES:
        assert f"| `{rule.id}` | {rule.category} |" in advisor_doc, f"rule {rule.id} undocumented"
    for field in fields(Thresholds):
        default = getattr(Thresholds(), field.name)
        assert f"| `{field.name}` | {default:g} |" in advisor_doc, f"threshold {field.name}"


def test_the_architecture_names_every_layer_of_the_import_contract() -> None:
    """`make test` checks the imports against pyproject's layers (lint-imports); the
    architecture doc's paragraph on import direction must name each of them."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = config["contracts"]
    names = {name.strip() for layer in contract["layers"] for name in layer.split("|")}
    architecture = (ROOT / "docs" / "architecture.md").read_text()
    paragraph = architecture.split("Imports run one way", 1)[1].split("| module |", 1)[0]
    missing = sorted(name for name in names if f"`{name}`" not in paragraph)
    assert missing == [], f"docs/architecture.md does not place {missing} in the layers"


def test_every_api_operation_documents_its_errors() -> None:
    """Clients generated from the OpenAPI file know every answer they can get (D10)."""
    document = json.loads(openapi_document())
    missing = []
    for path, operations in document["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method, operation in operations.items():
            wanted = {"401", "403", "422", "503"} | ({"404"} if "{" in path else set())
            lacking = wanted - set(operation["responses"])
            if lacking:
                missing.append(f"{method.upper()} {path}: {sorted(lacking)}")
    assert missing == []
