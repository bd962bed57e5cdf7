"""How fast the demo generator produces node executions (plain dicts, no validation).

Usage: .venv/bin/python bench/bench_generator.py [RUNS]   (default 20,000 runs)
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime

from flowscope.demo import generate_runs


def main(runs: int) -> None:
    end = datetime(2026, 3, 1, tzinfo=UTC)  # fixed, so every invocation does the same work
    started = time.perf_counter()
    nodes = 0
    for run in generate_runs(runs=runs, seed=42, end=end):
        nodes += len(run["node_executions"])
    seconds = time.perf_counter() - started
    print(
        f"{runs:,} runs, {nodes:,} node executions in {seconds:.2f} s: "
        f"{nodes / seconds:,.0f} node executions/s, {runs / seconds:,.0f} runs/s"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
