"""`python -m flowscope` is the `flowscope` command."""

from flowscope.cli.entry import main

if __name__ == "__main__":
    main()
