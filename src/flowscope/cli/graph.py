"""`flowscope graph import`: register a workflow's graph from a Dify DSL or JSON file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson

from flowscope import catalog
from flowscope.cli.database import open_database
from flowscope.cli.options import database_url_option, json_option
from flowscope.cli.output import fail, print_json, print_table
from flowscope.graphs.dify import parse_dify_dsl
from flowscope.graphs.model import GraphError, WorkflowGraph
from flowscope.graphs.neutral import parse_json_graph
from flowscope.graphs.store import write_graph
from flowscope.store.engine import write_transaction
from flowscope.tenancy.keys import ensure_tenant
from flowscope.timeutil import now_us

DEFAULT_TENANT = "demo"
F = TypeVar("F", bound=Callable[..., Any])


@click.group()
def graph() -> None:
    """Workflow graphs: what the advisor reads to tell data dependencies from drawn edges."""


def read_graph_file(path: Path, *, dify_only: bool = False) -> WorkflowGraph:
    """A graph from a file: JSON (`.json`) as a neutral graph, anything else (or every file,
    with `dify_only`) as Dify DSL."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise click.ClickException(f"cannot read {path}: {exc.strerror}") from None
    try:
        if path.suffix.lower() == ".json" and not dify_only:
            try:
                return parse_json_graph(orjson.loads(raw))
            except orjson.JSONDecodeError as exc:
                raise GraphError(f"not valid JSON: {exc}") from None
        return parse_dify_dsl(raw)
    except GraphError as exc:
        raise click.ClickException(f"{path}: {exc}") from None


_GRAPH_FILE_OPTIONS = (
    click.argument("file", type=click.Path(path_type=Path, dir_okay=False)),
    click.option("--app", "app_id", required=True, help="App id the graph belongs to."),
    click.option("--workflow", "workflow_id", required=True, help="Workflow id."),
    click.option(
        "--workflow-version", default=None, help="Only for this version (default: every version)."
    ),
    click.option("--tenant", default=DEFAULT_TENANT, show_default=True, help="Tenant name."),
    json_option,
    database_url_option,
)


def graph_file_options(command: F) -> F:
    """The arguments of every command that registers a graph file for a workflow."""
    for option in reversed(_GRAPH_FILE_OPTIONS):
        command = option(command)
    return command


@graph.command("import")
@graph_file_options
def import_graph(**options: Any) -> None:
    """Register FILE as the graph of a workflow: a Dify app DSL export (.yml, DSL 0.1.x to
    0.6.x) or a neutral JSON graph (.json: {"nodes": [...], "edges": [...]}).

    Prints the nodes with what each reads, and the drawn edges that are not data
    dependencies (candidates for running in parallel).

    \b
    Example:
      flowscope graph import support.yml --app support-assistant --workflow support-rag
    """
    register_graph_file(**options)


def register_graph_file(
    file: Path,
    app_id: str,
    workflow_id: str,
    workflow_version: str | None,
    tenant: str,
    as_json: bool,
    database_url: str,
    *,
    dify_only: bool = False,
) -> None:
    """Read FILE and store its graph for the workflow (creating tenant and workflow on first
    use), then print what it reads and its independent edges: the body of every command
    taking `graph_file_options` (`graph import`, `import dify-app`)."""
    parsed = read_graph_file(file, dify_only=dify_only)
    engine = open_database(database_url)
    try:
        now = now_us()
        with write_transaction(engine) as conn:
            tenant_id = ensure_tenant(conn, tenant)
            pks = catalog.ensure_workflows(conn, tenant_id, [(app_id, workflow_id)], now)
            write_graph(conn, pks[(app_id, workflow_id)], parsed, now, workflow_version or "")
    finally:
        engine.dispose()
    independent = parsed.independent_edges()
    if as_json:
        print_json(
            {
                "app_id": app_id,
                "workflow_id": workflow_id,
                "workflow_version": workflow_version,
                **parsed.to_json(),
                "independent_edges": [[e.source, e.target] for e in independent],
            }
        )
        return
    if not parsed.nodes:
        fail(f"{file}: the graph has no nodes")
    click.echo(
        f"registered {file.name} ({parsed.format}"
        + (f" {parsed.dsl_version}" if parsed.dsl_version else "")
        + f") for {app_id}/{workflow_id}"
        + (f" version {workflow_version}" if workflow_version else " (every version)")
        + f": {len(parsed.nodes)} nodes, {len(parsed.edges)} edges"
    )
    print_table(
        ("node", "type", "title", "inside", "reads"),
        [
            (
                n.id,
                n.type,
                n.title or "",
                n.parent_id or "",
                ", ".join(sorted(parsed.reads.get(n.id, ()))),
            )
            for n in parsed.nodes.values()
        ],
    )
    if independent:
        click.echo("drawn edges that are not data dependencies (could run in parallel):")
        for e in independent:
            click.echo(f"  {e.source} -> {e.target}")
