"""Real flowscope server processes and scratch databases, for integration tests and benchmarks.

flowscope's own tests and bench/ use these; so can an application that tests against a real
flowscope:

    with scratch_postgres_database("postgresql+psycopg://postgres@127.0.0.1/postgres") as url:
        subprocess.run(["flowscope", "db", "upgrade", "--database-url", url], check=True)
        with running_server(["--database-url", url]) as server:
            httpx.get(f"{server.url}/healthz")
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
from sqlalchemy.engine import make_url


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A `flowscope serve` process and the base URL it answers on."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path | None

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def _output(self) -> str:
        return self.log.read_text() if self.log is not None else "(output not kept)"


def start_server(
    args: Sequence[str],
    *,
    log: Path | None = None,
    port: int | None = None,
    timeout: float = 60,
) -> Server:
    """Start `flowscope serve ARGS --port P` and wait until GET /healthz answers 200.

    The server's output goes to `log` (discarded when None); raises RuntimeError with it if
    the server exits or does not answer within `timeout` seconds.
    """
    port = port or free_port()
    command = [sys.executable, "-m", "flowscope", "serve", "--port", str(port), *args]
    if log is None:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    else:
        with open(log, "wb") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    server = Server(process, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{server._output()}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"server did not answer within {timeout} s:\n{server._output()}")


@contextmanager
def running_server(args: Sequence[str], **options: object) -> Iterator[Server]:
    """`start_server` as a context manager that stops the server on exit."""
    server = start_server(args, **options)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def scratch_postgres_database(admin_url: str, prefix: str = "flowscope_scratch") -> Iterator[str]:
    """A new, empty PostgreSQL database on the server of `admin_url`, dropped afterwards.

    `admin_url` must be allowed to create databases; the URL of the new one is yielded.
    """
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    url = make_url(admin_url)
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
