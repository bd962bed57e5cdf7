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

MAX_RETRIES = 10_000
"""Retries of one node execution."""

MAX_ELAPSED_MS = 366 * 24 * 3_600 * 1_000.0
"""A duration: a year. Longer ones are clock errors, and one of them would be every p99."""

MAX_COST = 1_000_000.0
"""The cost of one node execution or one cached result, in its currency: far beyond a real
one, so that sums over years of runs stay exact figures."""

EARLIEST_YEAR = 1970
LATEST_YEAR = 2999
"""Timestamps are from 1970 to 2999 (UTC): outside, they are clock errors, and the far ends
(year 1, year 9999 in another zone) do not even convert back to dates."""

MAX_ROW_ID = 2**63 - 1
"""A stored row's id (API keys, recommendations): what both databases' BIGINT holds."""
