"""`python -m flowscope` is the `flowscope` command."""

from flowscope.cli.main import cli

if __name__ == "__main__":
    cli()
