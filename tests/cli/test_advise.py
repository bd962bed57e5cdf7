"""`flowscope graph import` and `flowscope advise` against a real database."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import Engine

from flowscope.cli.main import cli
from flowscope.ingestion.ingest import ingest_runs
from flowscope.runs.pricing import PriceBook
from flowscope.schemas.runs import RUN_CREATE
from flowscope.store.engine import write_transaction
from flowscope.tenancy.keys import ensure_tenant
from tests.api.test_advisor_api import APP, WORKFLOW, graph, runs
from tests.factories import T0

FIXTURES = Path(__file__).parents[1] / "graphs" / "fixtures"


def invoke(db_url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, [*args, "--database-url", db_url])
    return result.exit_code, result.output


def test_graph_import_dify_and_json(db_url: str, tmp_path: Path) -> None:
    code, out = invoke(
        db_url, "graph", "import", str(FIXTURES / "dify_v06_support.yml"),
        "--app", "support", "--workflow", "chat",
    )  # fmt: skip
    assert code == 0, out
    assert "dify-dsl 0.6.0" in out and "(every version)" in out
    path = tmp_path / "g.json"
    path.write_text(json.dumps(graph("start")))
    code, out = invoke(
        db_url, "graph", "import", str(path), "--app", APP, "--workflow", WORKFLOW, "--json"
    )
    assert code == 0, out
    assert json.loads(out)["independent_edges"] == [["summarize", "keywords"]]


def test_graph_import_refuses_bad_files(db_url: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("kind: app\nversion: 0.9.0\nworkflow: {graph: {nodes: [], edges: []}}\n")
    code, out = invoke(db_url, "graph", "import", str(bad), "--app", "a", "--workflow", "w")
    assert code == 1 and "0.9.0" in out
    code, out = invoke(
        db_url, "graph", "import", str(tmp_path / "missing.yml"), "--app", "a", "--workflow", "w"
    )
    assert code == 1 and "cannot read" in out


def test_advise_generates_and_prints(db_url: str, engine: Engine, tmp_path: Path) -> None:
    with write_transaction(engine) as conn:
        tenant_id = ensure_tenant(conn, "demo")
        models = [RUN_CREATE.validate_python(r) for r in runs(40, keywords_s=0.5)["runs"]]
        ingest_runs(conn, tenant_id, models, prices=PriceBook())
    path = tmp_path / "g.json"
    path.write_text(json.dumps(graph("start")))
    assert (
        invoke(db_url, "graph", "import", str(path), "--app", APP, "--workflow", WORKFLOW)[0] == 0
    )

    workflow = ("--app", APP, "--workflow", WORKFLOW)
    code, out = invoke(db_url, "advise", *workflow)
    assert code == 0 and "no active recommendations" in out and "--generate" in out
    end = (T0 + timedelta(days=1)).isoformat()
    code, out = invoke(db_url, "advise", *workflow, "--generate", "--end", end)
    assert code == 0, out
    assert "analysed 40 runs (40 sampled)" in out
    assert "parallelization: keywords could run beside summarize" in out
    code, out = invoke(db_url, "advise", *workflow, "--json")
    listed = json.loads(out)
    assert "independent-sequential-nodes" in {r["rule_id"] for r in listed["data"]}
    code, out = invoke(db_url, "advise", "--app", APP, "--workflow", "nope")
    assert code == 1 and "not found" in out
