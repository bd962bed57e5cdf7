"""The wire schema's field limits: one source for the schemas that enforce them and for the
SDK and the importers that cut values to fit (no dependencies: the SDK imports it)."""

MAX_ID = 255
"""Ids and short texts: app, workflow and node ids, node types, model names, versions."""

MAX_TITLE = 1_000
"""A node execution's title."""

MAX_ERROR = 100_000
"""An error message."""

MAX_COUNT = 2**40
"""A count (tokens, retries): far beyond any real one, so that sums of millions of them still
fit the databases' 64-bit integers."""

MAX_WINDOW_DAYS = 365
"""The longest analysis window, in days (API, pages, CLI and the advisor alike)."""
