"""Regressions in trend series: where a metric moved to a new level and stayed there.

Method (E-divisive means, as used by MongoDB's performance CI: Daly et al., ICPE 2020, "Change
Point Detection in Software Performance Testing"; the statistic is Matteson & James 2014):

1. Skip NaNs (empty buckets) and infinities. For hourly series, remove the hour-of-day profile
   by dividing each point by its hour's median (latency profiles scale: a busy hour makes every
   call slower by a factor, not by a constant), then multiplying by the overall median so the
   series keeps its units. If some hour's median is not positive, the profile is subtracted
   instead (and the overall median added back).
2. Bisection: in a segment, pick the split that maximises the energy-distance statistic
   between its left and right parts, test it with a permutation test (shuffle the segment,
   recompute the maximum), and recurse on both sides while significant. Both sides always
   keep at least `min_segment` points.
3. Confirm each candidate against its neighbours (the segments between it and the candidates
   either side) with a two-sided Mann-Whitney U test, and keep it only when that test is
   significant too and the medians differ by at least `min_change_pct`. A candidate that fails
   is dropped (the weakest first) and its neighbours re-checked against the merged segment.

`before` and `after` are medians, robust to the odd slow bucket; `change_pct` compares them
(a change from a median of 0 has no percentage and is not reported).
The energy statistic alone flags small but consistent shifts; Mann-Whitney alone (or a t-test)
flags noise at the best of many splits; requiring both, plus a practical size, keeps a noisy
but stable series quiet.

Computation (the permutation test dominates: up to `permutations` statistics per segment):

- |a - b| = a + b - 2 min(a, b), and the a + b parts cancel in q, so q at every split follows
  from running sums of min(x_i, x_j) over the pairs before each point, and min(x_i, x_j) is
  the sorted values at min(rank_i, rank_j) (`_Ranked.split_cores`).
- Those sums are computed for a batch of shuffles at once, one column per shuffle: all pairs
  directly for short segments, else in O(n^1.5) per shuffle instead of O(n^2): pairs within a
  block of consecutive positions and pairs within a small block of ranks directly, every other
  pair through a 2-D table of per-block sums (`_earlier_min_sums`).
- The shuffles are the ones a plain loop draws (`rng.permutation(n)`, one after another): a
  small first batch (a stable segment usually stops there), then the rest. A batch that crosses
  the stopping point (more shuffles reaching the observed maximum than a significant p-value
  allows) rewinds the generator and redraws only the shuffles the loop would have drawn. So the
  generator ends where the loop leaves it, and the p-values, and with them the change points,
  are those of the plain loop (tests/analytics/test_changepoints.py compares the two). Only
  float rounding differs, by about 1e-13 of the statistic against the 1e-9 tolerance for ties;
  it could pick another split only where two splits score exactly the same.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.stats import mannwhitneyu

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

# Shuffles in the first batch, and in each later one once some shuffle has reached the observed
# maximum (else the later batches take all the rest; see `_batch_size`).
_BATCHES = (16, 64)
# Cells (points x shuffles) per batch at most: bounds the work arrays kept between calls.
_MAX_CELLS = 1 << 16
# Batches of up to this many pairs x shuffles sum all pairs directly (one position block).
_DIRECT_CELLS = 3 << 16


@dataclass(frozen=True, slots=True)
class ChangePoint:
    """A shift in level: `index` is the first point of the new regime, in the input's indices.

    `before` and `after` are the medians of the segments between this change point and its
    neighbours (profile-adjusted values for hourly series); `confidence` is 1 - max(p-values of
    the permutation test that found it and of the Mann-Whitney test against its neighbours).
    """

    index: int
    before: float
    after: float
    change_pct: float
    confidence: float


def find_change_points(
    values: Sequence[float],
    *,
    min_segment: int = 5,
    min_change_pct: float = 10.0,
    alpha: float = 0.01,
    permutations: int = 199,
    seed: int = 0,
    hour_of_day: Sequence[int] | None = None,
) -> list[ChangePoint]:
    """Change points in `values`, in order; deterministic for a given `seed`.

    `hour_of_day` (one entry per value) removes a daily profile first; see the module docstring.

    >>> [(p.index, p.before, p.after) for p in find_change_points([10.0] * 6 + [20.0] * 6)]
    [(6, 10.0, 20.0)]
    """
    if min_segment < 2:
        raise ValueError("min_segment must be at least 2")
    if (1 / (permutations + 1)) > alpha:
        raise ValueError(f"{permutations} permutations cannot reach a p-value of {alpha}")
    if hour_of_day is not None and len(hour_of_day) != len(values):
        raise ValueError("hour_of_day must have one entry per value")

    raw = np.asarray(values, dtype=np.float64)
    kept = np.flatnonzero(np.isfinite(raw))  # NaN marks an empty bucket
    series = raw[kept]
    if hour_of_day is not None:
        series = remove_daily_profile(series, np.asarray(hour_of_day)[kept])
    if len(series) < 2 * min_segment:
        return []

    rng = np.random.default_rng(seed)
    candidates: dict[int, float] = {}  # split index -> permutation p-value
    with _scratch() as scratch:
        _bisect(series, 0, len(series), min_segment, alpha, permutations, rng, candidates, scratch)
    return [
        ChangePoint(int(kept[cp.index]), cp.before, cp.after, cp.change_pct, cp.confidence)
        for cp in _confirm(series, candidates, alpha, min_change_pct)
    ]


def remove_daily_profile(values: FloatArray, hours: npt.NDArray[np.int_]) -> FloatArray:
    """The series with its hour-of-day profile removed, in its own units: each value divided
    by its hour's median and multiplied by the overall median, or, when some hour's median is
    not positive, less its hour's median plus the overall one. NaNs (empty buckets) stay NaN
    and count in no median."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        return values
    overall = float(np.median(values[finite]))
    profile = np.full(len(values), math.nan)
    for hour in np.unique(hours[finite]):
        at = hours == hour
        profile[at] = float(np.median(values[at & finite]))
    if np.all(profile[np.isfinite(profile)] > 0):
        return np.asarray(values / profile * overall, dtype=np.float64)
    return np.asarray(values - profile + overall, dtype=np.float64)


def energy_statistics(x: FloatArray, min_segment: int) -> FloatArray:
    """q(tau) for every split tau of `x` (NaN where a side would be shorter than `min_segment`).

    q = m*k/(m+k) * (2/(m*k) * B - W_L / C(m,2) - W_R / C(k,2)), with B the sum of |x_i - y_j|
    across the split and W_L, W_R the sums over pairs within each side (Matteson & James 2014).
    A side needs two points for C(m,2) > 0: splits leaving fewer are NaN whatever `min_segment`.
    Computed from the sorted values (`_Ranked.split_cores`), not from the n x n distances.
    """
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    q = np.full(n + 1, np.nan)
    min_segment = max(min_segment, 2)
    if n < 2 * min_segment:
        return q
    ranked = _Ranked(x)
    cores = ranked.split_cores(ranked.ranks[:, np.newaxis], min_segment, _Scratch())
    q[min_segment : n - min_segment + 1] = ranked.scores(cores[:, 0])
    return q


class _Scratch:
    """Work arrays kept between calls, one per name, grown as needed and reused as views.

    A fresh array of a few hundred KiB costs a page fault per 4 KiB page on first touch, and
    the allocator hands such memory back to the system when it is freed: allocating the work
    arrays anew on every call took longer than the arithmetic on them. `_MAX_CELLS` and
    `_DIRECT_CELLS` bound the arrays: about 5 MB in all for 720 points, 7 MB for 2000.
    """

    def __init__(self) -> None:
        self._arrays: dict[str, npt.NDArray[Any]] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: type[np.generic]) -> Any:
        size = math.prod(shape)
        array = self._arrays.get(name)
        if array is None or array.dtype != dtype or array.size < size:
            array = np.empty(max(size, 1), dtype=dtype)
            self._arrays[name] = array
        return array[:size].reshape(shape)


_shared_scratch = _Scratch()
_shared_scratch_lock = threading.Lock()


@contextmanager
def _scratch() -> Iterator[_Scratch]:
    """The shared work arrays, or (while another thread holds them) fresh ones."""
    if not _shared_scratch_lock.acquire(blocking=False):
        yield _Scratch()
        return
    try:
        yield _shared_scratch
    finally:
        _shared_scratch_lock.release()


class _Ranked:
    """A segment's values in rank order, shared by its observed statistic and all shuffles.

    With v the sorted values, min(x_i, x_j) = v[min(rank_i, rank_j)], so a shuffle is fully
    described by the ranks in shuffled order: column p of a rank matrix R (n x B) is shuffle p.
    """

    def __init__(self, x: FloatArray) -> None:
        n = len(x)
        order = np.argsort(x, kind="stable")
        self.n = n
        self.ranks: IntArray = np.empty(n, dtype=np.intp)
        self.ranks[order] = np.arange(n)
        # q depends on differences only; centring keeps the running sums small.
        self.values: FloatArray = x[order] - np.median(x)
        later = np.arange(n - 1, -1, -1, dtype=np.float64)  # points ranked above each rank
        below = np.concatenate(([0.0], np.cumsum(self.values[:-1])))
        # sum over the other points of min(v_r, v_j), by rank r; and over all pairs
        self.row_mins: FloatArray = below + later * self.values
        self.pair_mins = float(later @ self.values)

    def split_cores(self, ranks: IntArray, min_segment: int, scratch: _Scratch) -> FloatArray:
        """c(tau) for tau = min_segment .. n - min_segment (rows) and each column of `ranks`.

        With M_L, M_R the sums of min over the pairs within the left and the right side,
        q = 4/n * ((n - 1) * c - M) for M the sum over all pairs, and c = M_L/(m-1) + M_R/(k-1):
        the a + b parts of |a - b| = a + b - 2 min(a, b) cancel. M_L is the running sum of
        `_earlier_min_sums`; M_R = M - (row-min sums of the left side) + M_L.
        The result is a view into `scratch`, valid until its next use.
        """
        n, width = ranks.shape
        block = n if n * n * width <= _DIRECT_CELLS else _position_block(n)
        mins = _earlier_min_sums(self.values, ranks, block, _rank_shift(n), scratch)
        rows = mins.shape[0]  # n rounded up to whole blocks
        row_mins = scratch.get("row_mins", (rows, width), np.float64)
        np.take(self.row_mins, ranks, out=row_mins[:n])
        row_mins[n:] = 0.0
        _running_sums(mins.reshape(rows // block, block, width))
        _running_sums(row_mins.reshape(rows // block, block, width))
        # Running sums are inclusive: row tau - 1 holds the sums over the first tau points.
        lo, hi = min_segment - 1, n - min_segment
        m = np.arange(min_segment, n - min_segment + 1, dtype=np.float64)
        k = n - m
        right = np.subtract(self.pair_mins, row_mins[lo:hi], out=row_mins[lo:hi])
        right += mins[lo:hi]
        right *= (1 / (k - 1))[:, np.newaxis]
        cores = mins[lo:hi]
        cores *= (1 / (m - 1))[:, np.newaxis]
        cores += right
        return cores

    def scores(self, cores: FloatArray) -> FloatArray:
        """q from c (monotone increasing, so it commutes with taking maxima)."""
        n = self.n
        return np.asarray((4 / n) * ((n - 1) * cores - self.pair_mins), dtype=np.float64)


def _position_block(n: int) -> int:
    """Positions per block: balances the direct pairs in a block against the table's size."""
    return max(4, round(math.sqrt(n / 2)))


def _rank_shift(n: int) -> int:
    """log2 of the ranks per rank block (at most 2**7, for the int8 counts)."""
    return max(1, min(7, round(math.log2(math.sqrt(n / 3)))))


def _earlier_min_sums(
    values: FloatArray, ranks: IntArray, block: int, shift: int, scratch: _Scratch
) -> FloatArray:
    """S[t, p] = sum over i < t of min(y[i, p], y[t, p]), with y = values[ranks].

    Rows past n (padding to whole position blocks) hold garbage. Each pair i < t is counted
    once, by the first rule that applies:

    - same position block (`block` consecutive positions): summed directly, one offset t - i at
      a time over all blocks and columns at once, or all pairs at once if there is one block;
    - different rank blocks (2**shift consecutive ranks): a 2-D table holds, per position block
      and rank block, the sum of the values and their number; its running sums over earlier
      position blocks and lower (higher) rank blocks give the pairs where i is the smaller
      (larger) one: min is y[i] for the former, y[t] for the latter;
    - same rank block, earlier position block: summed directly in rank order, one rank offset
      at a time; the lower rank's value is the min, and it goes to whichever point comes later.

    The result is a view into `scratch`.
    """
    n, width = ranks.shape
    blocks = -(-n // block)
    rows = blocks * block
    span = 1 << shift
    groups = -(-n // span)  # rank blocks
    y = scratch.get("y", (rows, width), np.float64)
    np.take(values, ranks, out=y[:n])
    y[n:] = 0.0
    sums = scratch.get("sums", (rows, width), np.float64)
    sums.fill(0.0)
    work = scratch.get("work", (max(rows, groups * span) * width,), np.float64)
    if blocks == 1 and n > 1:
        # All pairs at once: pairs[t, i] = min(y[t], y[i]), summed over i < t.
        pairs = scratch.get("pairs", (n, n, width), np.float64)
        np.minimum(y[:n, np.newaxis, :], y[np.newaxis, :n, :], out=pairs)
        np.einsum("ti,tip->tp", _earlier_mask(n), pairs, out=sums[:n])
        return sums
    y3 = y.reshape(blocks, block, width)
    s3 = sums.reshape(blocks, block, width)
    w3 = work[: rows * width].reshape(blocks, block, width)
    for d in range(1, min(block, n)):
        pair = np.minimum(y3[:, d:], y3[:, :-d], out=w3[:, d:])
        np.add(s3[:, d:], pair, out=s3[:, d:])
    if blocks == 1:
        return sums

    y, out = y[:n], sums[:n]
    taken = work[: n * width].reshape(n, width)
    block_of = np.arange(n) // block
    columns = np.arange(width)

    # Table cell (position block c + 1, rank block g + 1): the sum, then the count, of each
    # column's values there (columns innermost).
    cell = scratch.get("cell", (n, width), np.intp)
    np.right_shift(ranks, shift, out=cell)
    cell *= 2 * width
    cell += (((block_of + 1) * (groups + 1) + 1) * 2 * width)[:, np.newaxis] + columns
    table = scratch.get("table", ((blocks + 1) * (groups + 1) * 2 * width,), np.float64)
    table.fill(0.0)
    np.add.at(table, cell, y)
    cell += width
    np.add.at(table, cell, 1.0)
    grid = table.reshape(blocks + 1, groups + 1, 2 * width)
    for c in range(2, blocks):  # the last block's points are earlier than none
        np.add(grid[c], grid[c - 1], out=grid[c])
    for g in range(2, groups + 1):
        np.add(grid[:, g], grid[:, g - 1], out=grid[:, g])
    # Now cell (c, g) sums the points in position blocks < c and rank blocks < g.
    cell -= (groups + 2) * 2 * width + width  # (c, g), sums: smaller values, earlier blocks
    out += np.take(table, cell, out=taken)
    cell += 3 * width  # (c, g + 1), counts: points up to this rank block, earlier blocks
    larger = np.take(table, cell, out=taken)
    np.subtract((block_of * block)[:, np.newaxis], larger, out=larger)
    larger *= y
    out += larger

    # Same rank block, earlier position block. In rank order: each rank's position block.
    flat = cell
    np.multiply(ranks, width, out=flat)
    flat += columns
    where = scratch.get("where", (groups * span, width), np.int16 if blocks < 1 << 15 else np.intp)
    where.fill(blocks)  # ranks past n: a block after all others
    where.reshape(-1)[flat] = block_of[:, np.newaxis]
    where3 = where.reshape(groups, span, width)
    padded = np.zeros(groups * span)
    padded[:n] = values
    v3 = padded.reshape(groups, span, 1)
    lower = scratch.get("lower", (groups, span, width), np.float64)  # lower ranks, earlier
    lower.fill(0.0)
    higher = scratch.get("higher", (groups, span, width), np.int8)  # higher ranks, earlier
    higher.fill(0)
    earlier = scratch.get("earlier", (groups, span, width), np.bool_)
    term = work[: groups * span * width].reshape(groups, span, width)
    for d in range(1, span):
        low, high = where3[:, :-d], where3[:, d:]  # position blocks of ranks r - d and r
        np.less(low, high, out=earlier[:, d:])
        np.multiply(earlier[:, d:].view(np.int8), v3[:, :-d], out=term[:, d:])
        np.add(lower[:, d:], term[:, d:], out=lower[:, d:])
        np.less(high, low, out=earlier[:, :-d])
        np.add(higher[:, :-d], earlier[:, :-d].view(np.int8), out=higher[:, :-d])
    np.multiply(higher, v3, out=term)
    lower += term
    out += np.take(lower.reshape(-1), flat, out=taken)
    return sums


def _earlier_mask(n: int) -> FloatArray:
    """mask[t, i] = 1 where i < t (kept for the short segments that come up all the time)."""
    return _small_earlier_mask(n) if n <= 128 else np.tril(np.ones((n, n)), -1)


@functools.cache
def _small_earlier_mask(n: int) -> FloatArray:
    return np.tril(np.ones((n, n)), -1)


def _running_sums(a: FloatArray) -> None:
    """In place, cumulative sums down the rows of `a` (blocks x rows per block x columns)."""
    blocks, rows, _ = a.shape
    if blocks == 1:  # np.cumsum is slow per element but one call
        np.cumsum(a[0], axis=0, out=a[0])
        return
    for i in range(1, rows):
        np.add(a[:, i], a[:, i - 1], out=a[:, i])
    if blocks > 1:
        a[1:] += np.cumsum(a[:-1, -1], axis=0)[:, np.newaxis, :]


def _best_split(
    segment: FloatArray,
    min_segment: int,
    alpha: float,
    permutations: int,
    rng: np.random.Generator,
    scratch: _Scratch,
) -> tuple[int, float] | None:
    """The split maximising q and its permutation p-value; None for a constant segment.

    p = (#shuffles whose best split scores >= observed, + 1) / (permutations + 1), the shuffles
    drawn as `rng.permutation(n)` one after another. Stops early (p = 1.0) once p can no longer
    reach `alpha`, leaving `rng` just after the shuffle that settled it: most segments of a
    stable series are rejected after a few shuffles.
    """
    ranked = _Ranked(segment)
    n = len(segment)
    exceed_limit = alpha * (permutations + 1) - 1
    exceeded = 0
    threshold = math.nan
    split = -1
    done = 0
    first = True
    while first or done < permutations:
        size = _batch_size(n, permutations, done, exceeded)
        state = rng.bit_generator.state
        shuffled = _shuffled_ranks(ranked.ranks, size, rng, scratch, with_identity=first)
        cores = ranked.split_cores(shuffled, min_segment, scratch)
        if first:
            scores = ranked.scores(cores[:, 0])
            best = int(np.argmax(scores))
            observed = float(scores[best])
            if not observed > 0:  # a constant segment: the loop draws no shuffles
                rng.bit_generator.state = state
                return None
            split = min_segment + best
            # Float noise must not turn a tie into a win for the observed split.
            threshold = observed - 1e-9 * max(abs(observed), 1.0)
            cores = cores[:, 1:]
            first = False
        if not size:
            break
        maxima = ranked.scores(cores.max(axis=0))
        reached = exceeded + np.cumsum(maxima >= threshold)
        over = np.flatnonzero(reached > exceed_limit)
        if len(over):
            # Rewind, and draw only the shuffles up to the one that settled it.
            rng.bit_generator.state = state
            row = ranked.ranks.copy()
            for _ in range(int(over[0]) + 1):
                rng.shuffle(row)
            return split, 1.0
        exceeded = int(reached[-1])
        done += size
    return split, (exceeded + 1) / (permutations + 1)


def _batch_size(n: int, permutations: int, done: int, exceeded: int) -> int:
    """Shuffles in the next batch (the first also holds the observed order).

    Small first, as a stable segment usually stops within it; then, if no shuffle has reached
    the observed maximum yet, all the rest (the segment is probably significant, which takes
    every shuffle), else `_BATCHES[1]`. At most `_MAX_CELLS` cells per work array.
    """
    left = permutations - done
    if done == 0:
        want = min(_BATCHES[0], left)
    elif exceeded == 0:
        want = left
    else:
        want = min(_BATCHES[1], left)
    most = max(1, _MAX_CELLS // n - 1)
    parts = -(-want // most)
    return -(-want // parts) if parts else 0


def _shuffled_ranks(
    ranks: IntArray, count: int, rng: np.random.Generator, scratch: _Scratch, *, with_identity: bool
) -> IntArray:
    """Columns: `ranks` shuffled as by `count` successive `rng.permutation(len(ranks))` calls
    (after `ranks` itself if `with_identity`).

    Shuffling a copy of `ranks` in place draws the same numbers as permuting arange(n) and
    indexing with the result, so the columns are ranks[rng.permutation(n)], one call each.
    """
    start = int(with_identity)
    rows = scratch.get("shuffles", (start + count, len(ranks)), np.intp)
    rows[:] = ranks
    for row in rows[start:]:
        rng.shuffle(row)
    columns = scratch.get("ranks", (len(ranks), start + count), np.intp)
    np.copyto(columns, rows.T)
    return columns


def _bisect(
    series: FloatArray,
    start: int,
    end: int,
    min_segment: int,
    alpha: float,
    permutations: int,
    rng: np.random.Generator,
    found: dict[int, float],
    scratch: _Scratch,
) -> None:
    if end - start < 2 * min_segment:
        return
    best = _best_split(series[start:end], min_segment, alpha, permutations, rng, scratch)
    if best is None:
        return
    tau, p = best
    if p > alpha:
        return
    found[start + tau] = p
    # Left first, then right: the order fixes which shuffles each segment draws from `rng`.
    _bisect(series, start, start + tau, min_segment, alpha, permutations, rng, found, scratch)
    _bisect(series, start + tau, end, min_segment, alpha, permutations, rng, found, scratch)


def _confirm(
    series: FloatArray, candidates: dict[int, float], alpha: float, min_change_pct: float
) -> list[ChangePoint]:
    kept = sorted(candidates)
    while kept:
        bounds = [0, *kept, len(series)]
        checked = [
            _compare(series, bounds[i], bounds[i + 1], bounds[i + 2], candidates[bounds[i + 1]])
            for i in range(len(kept))
        ]
        failing = [
            i
            for i, cp in enumerate(checked)
            if cp is None or cp.confidence < 1 - alpha or not abs(cp.change_pct) >= min_change_pct
        ]
        if not failing:
            return [cp for cp in checked if cp is not None]
        # Drop the weakest failure, then re-check its neighbours against the merged segment.
        del kept[min(failing, key=lambda i: _strength(checked[i]))]
    return []


def _strength(cp: ChangePoint | None) -> tuple[float, float]:
    if cp is None:
        return (-math.inf, -math.inf)
    return (cp.confidence, abs(cp.change_pct))


def _compare(
    series: FloatArray, start: int, split: int, end: int, permutation_p: float
) -> ChangePoint | None:
    left, right = series[start:split], series[split:end]
    before, after = float(np.median(left)), float(np.median(right))
    if before == 0:
        return None  # no percentage change from zero
    mann_whitney_p = float(mannwhitneyu(left, right, alternative="two-sided").pvalue)
    return ChangePoint(
        index=split,
        before=before,
        after=after,
        change_pct=(after - before) / abs(before) * 100,
        confidence=1 - max(permutation_p, mann_whitney_p),
    )
