"""Change-point detection: milliseconds per call on trend series of the sizes the API serves.

Lognormal noise with a 10% coefficient of variation, 199 permutations (the default):

- hourly, 720 points (30 days, `hour_of_day` given), with a +20% step at 480 and without;
- daily, 120 and 30 points, with a +20% step at two thirds and without.

Each case is run on `--repeat` series (seeds 0, 1, ...), each series `--calls` times; the figure
per series is the median of its calls, and the case prints the median and the worst of those.
The targets: under 5 ms for 720 points, under 1 ms up to 100 points.

    python bench/bench_changepoints.py
    python bench/bench_changepoints.py --repeat 10 --calls 5
"""

from __future__ import annotations

import argparse
import math
import platform
import time

import numpy as np

from flowscope.analytics.changepoints import find_change_points


def series(n: int, seed: int, step_at: int | None) -> list[float]:
    sigma = math.sqrt(math.log(1 + 0.1**2))
    values = 100 * np.random.default_rng(seed).lognormal(-(sigma**2) / 2, sigma, n)
    if step_at is not None:
        values[step_at:] *= 1.2
    return [float(v) for v in values]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="series per case (default 7)")
    parser.add_argument("--calls", type=int, default=3, help="calls per series (default 3)")
    args = parser.parse_args()

    print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}")
    cases = [
        ("hourly, 720 points, +20% at 480", 720, 480, True),
        ("hourly, 720 points, pure noise", 720, None, True),
        ("daily, 120 points, +20% at 80", 120, 80, False),
        ("daily, 120 points, pure noise", 120, None, False),
        ("daily, 30 points, +20% at 20", 30, 20, False),
        ("daily, 30 points, pure noise", 30, None, False),
    ]
    find_change_points(series(100, 0, 50))  # warm-up: imports, first-call allocations
    for name, n, step_at, hourly in cases:
        hours = [h % 24 for h in range(n)] if hourly else None
        per_series, found = [], 0
        for seed in range(args.repeat):
            values = series(n, seed, step_at)
            timings = []
            for _ in range(args.calls):
                started = time.perf_counter()
                points = find_change_points(values, hour_of_day=hours, seed=seed)
                timings.append(time.perf_counter() - started)
            per_series.append(float(np.median(timings)))
            found += len(points)
        print(
            f"{name:34} median {np.median(per_series) * 1e3:8.2f} ms"
            f"  max {max(per_series) * 1e3:8.2f} ms"
            f"  change points found: {found} in {args.repeat} series"
        )


if __name__ == "__main__":
    main()
