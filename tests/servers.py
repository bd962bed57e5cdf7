"""Running the `flowscope` command and server as a user would, for end-to-end tests."""

from __future__ import annotations

import os
import subprocess
import sys

from flowscope.testing import Server, free_port, start_server

__all__ = ["Server", "flowscope", "free_port", "start_server"]


def flowscope(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the `flowscope` command as a user would, capturing its output."""
    return subprocess.run(
        [sys.executable, "-m", "flowscope", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )
