"""The `flowscope` command line."""
