"""`pip install flowscope` is the SDK alone: installed bare into a fresh venv, it records a
run over HTTP to a real server, without the server's packages, and its `flowscope` command
says which extra to install instead of failing with a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import KeyFactory, auth
from tests.servers import start_server

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
# What the server extra brings and the SDK must not: an engine embedding it pays for none.
SERVER_ONLY = ("sqlalchemy", "fastapi", "uvicorn", "numpy", "scipy", "psycopg", "redis",
               "pydantic", "grpc", "click")  # fmt: skip


@pytest.fixture(scope="module")
def bare_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with `pip install <this repository>`, no extras (a built wheel, not an
    editable install, as a user's pip installs it)."""
    venv = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", str(REPO)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return python


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[str]:
    running = start_server(
        ["--database-url", db_url, "--log-level", "warning"], log=tmp_path / "server.log"
    )
    yield running.url
    running.stop()


RECORD = textwrap.dedent(
    """
    import importlib.util, json, sys
    from flowscope import Recorder

    url, key, spool, heavy = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(",")
    rec = Recorder(url=url, api_key=key, spool_dir=spool)
    with rec.run(app_id="embedded", workflow_id="bare-sdk", run_id="bare-1") as run:
        with run.node("llm_1", node_type="llm", title="Answer") as node:
            node.usage(model="gpt-4o-mini", provider="openai", prompt_tokens=900,
                       completion_tokens=40)
    rec.close()
    print(json.dumps({
        "installed": [m for m in heavy if importlib.util.find_spec(m) is not None],
        "loaded": sorted(m for m in heavy if m in sys.modules),
    }))
    """
)


def test_the_bare_package_records_a_run_over_http(
    bare_venv: Path, server: str, make_key: KeyFactory, tmp_path: Path
) -> None:
    key = make_key("ingest")
    done = subprocess.run(
        [str(bare_venv), "-c", RECORD, server, key, str(tmp_path / "spool"), ",".join(SERVER_ONLY)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,  # not the repository: the installed package, not src/
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"installed": [], "loaded": []}
    run = httpx.get(f"{server}/api/v1/runs/bare-1", headers=auth(make_key("read")))
    assert run.status_code == 200, run.text
    assert run.json()["prompt_tokens"] == 900
    assert run.json()["node_executions"][0]["cost_source"] == "estimated"


def test_its_command_and_local_recording_name_the_extra_to_install(
    bare_venv: Path, tmp_path: Path
) -> None:
    command = subprocess.run(
        [str(bare_venv.parent / "flowscope"), "--help"], capture_output=True, text=True
    )
    assert command.returncode != 0
    assert "pip install 'flowscope[server]'" in command.stderr
    assert "Traceback" not in command.stderr
    local = subprocess.run(
        [
            str(bare_venv),
            "-c",
            "from flowscope import Recorder; Recorder(database_url='sqlite:///x.db', tenant='t')",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert local.returncode != 0 and "pip install 'flowscope[server]'" in local.stderr
