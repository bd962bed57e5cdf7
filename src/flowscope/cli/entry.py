"""The `flowscope` command's entry point. `pip install flowscope` installs the SDK alone; the
command needs the server's packages, and says so rather than failing with a traceback."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from flowscope.cli.main import cli
    except ModuleNotFoundError as missing:
        if (missing.name or "").startswith("flowscope"):
            raise  # our own code is broken: show it
        sys.exit(
            "the flowscope command needs the server's packages: "
            f"pip install 'flowscope[server]' ({missing.name} is missing)"
        )
    cli()
