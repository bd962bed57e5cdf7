"""Change-point detection: seconds per call on trend series of the sizes the API serves.

Hourly series of 720 points (30 days) and daily series of 365 points, lognormal noise with a
10% coefficient of variation, with and without a +20% step; 199 permutations (the default).

    python bench/bench_changepoints.py
    python bench/bench_changepoints.py --repeat 10
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
    parser.add_argument("--repeat", type=int, default=5, help="calls per case (default 5)")
    args = parser.parse_args()

    print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}")
    cases = [
        ("hourly, 720 points, no step", 720, None, True),
        ("hourly, 720 points, +20% at 480", 720, 480, True),
        ("daily, 365 points, no step", 365, None, False),
        ("daily, 365 points, +20% at 250", 365, 250, False),
    ]
    for name, n, step_at, hourly in cases:
        hours = [h % 24 for h in range(n)] if hourly else None
        timings, found = [], 0
        for seed in range(args.repeat):
            values = series(n, seed, step_at)
            started = time.perf_counter()
            found += len(find_change_points(values, hour_of_day=hours, seed=seed))
            timings.append(time.perf_counter() - started)
        print(
            f"{name:34} median {np.median(timings):6.3f} s  max {max(timings):6.3f} s"
            f"  change points found: {found}/{args.repeat} calls"
        )


if __name__ == "__main__":
    main()
