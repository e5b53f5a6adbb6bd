"""Small, exact order statistics over measured samples.

The samples of one cell fit in memory (a few thousand values), so percentiles are
computed exactly from the sorted values rather than from an approximate histogram.
``statistics.quantiles`` is not used because it only yields evenly spaced cut points
and, before Python 3.13, refuses fewer than two values.
"""

import functools
import heapq
import itertools
import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from statistics import NormalDist


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Return the ``q``-th percentile (0..100) of already sorted values, interpolating linearly.

    This is the same definition as NumPy's default (``method="linear"``), so figures agree
    with what users compute themselves from the raw samples.
    """
    if not sorted_values:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    position = (len(sorted_values) - 1) * q / 100.0
    lower = int(position)
    upper = min(lower + 1, len(sorted_values) - 1)
    fraction = position - lower
    return sorted_values[lower] + (sorted_values[upper] - sorted_values[lower]) * fraction


def mean(values: Sequence[float]) -> float:
    """Return the arithmetic mean, or 0.0 for no values."""
    return sum(values) / len(values) if values else 0.0


def stdev(values: Sequence[float]) -> float:
    """Return the sample standard deviation, or 0.0 for fewer than two values."""
    if len(values) < 2:
        return 0.0
    centre = mean(values)
    return math.sqrt(sum((v - centre) ** 2 for v in values) / (len(values) - 1))


def cv(values: Sequence[float]) -> float | None:
    """Return the coefficient of variation, stdev over mean; ``None`` for under two values or a mean ≤ 0."""
    centre = mean(values)
    if len(values) < 2 or centre <= 0:
        return None
    return stdev(values) / centre


def median(values: Sequence[float]) -> float:
    """Return the median of (unsorted) values."""
    return percentile(sorted(values), 50)


EXACT_LIMIT = 30
"""Sample sizes up to which the Mann–Whitney distribution is counted exactly, not approximated."""


@dataclass(frozen=True)
class Shift:
    """How far sample ``y`` lies from sample ``x``: Hodges–Lehmann estimate and confidence interval.

    The estimate is the median of all differences ``y_j - x_i``; the interval is the
    distribution-free one that inverts the Mann–Whitney U test (Bauer, 1972), so
    "the interval excludes 0" is "the U test rejects" at the same level, with no
    assumption of normality: loop lag is anything but normal.
    """

    estimate: float
    low: float
    high: float
    confidence: float

    @property
    def significant(self) -> bool:
        """True when the interval excludes zero: the samples differ at this confidence."""
        return self.low > 0 or self.high < 0


def shift(x: Sequence[float], y: Sequence[float], confidence: float = 0.95) -> Shift:
    """Return the Hodges–Lehmann shift of ``y`` relative to ``x`` with its confidence interval.

    With too few values for the confidence asked (e.g. 3 against 3 at 95 %), the
    interval is unbounded and the shift never significant.
    """
    if not x or not y:
        raise ValueError("shift needs values on both sides")
    differences = sorted(b - a for a in x for b in y)
    rank = _rank_for_interval(len(x), len(y), confidence)
    estimate = percentile(differences, 50)
    if rank == 0:
        return Shift(estimate, -math.inf, math.inf, confidence)
    return Shift(estimate, differences[rank - 1], differences[-rank], confidence)


def _rank_for_interval(n: int, m: int, confidence: float) -> int:
    """Return ``c``: the interval runs from the ``c``-th smallest to the ``c``-th largest difference.

    ``c - 1`` is the largest ``u`` with P(U ≤ u) ≤ (1 - confidence) / 2 under the null
    hypothesis; 0 means no such ``u`` (too few values).
    """
    tail = (1 - confidence) / 2
    if n <= EXACT_LIMIT and m <= EXACT_LIMIT:
        cumulative = 0.0
        for u, p in enumerate(_u_distribution(n, m)):
            cumulative += p
            if cumulative > tail:
                return u
        return 0
    # Normal approximation, good for large samples.
    z = NormalDist().inv_cdf(1 - tail)
    c = n * m / 2 - z * math.sqrt(n * m * (n + m + 1) / 12)
    return max(0, math.floor(c + 0.5))


@functools.cache
def _u_distribution(n: int, m: int) -> tuple[float, ...]:
    """Return P(U = u) for u = 0..n·m under the null hypothesis (no ties), counted exactly.

    ``f(i, j, u) = f(i - 1, j, u - j) + f(i, j - 1, u)``: the largest of ``i + j``
    values is either an x (ahead of all ``j`` y's) or a y.
    """
    size = n * m + 1
    counts: list[list[list[int]]] = []
    for i in range(n + 1):
        row: list[list[int]] = []
        for j in range(m + 1):
            if i == 0 or j == 0:
                row.append([1] + [0] * (size - 1))
                continue
            x_last, y_last = counts[i - 1][j], row[j - 1]
            row.append([y_last[u] + (x_last[u - j] if u >= j else 0) for u in range(size)])
        counts.append(row)
    total = math.comb(n + m, n)
    return tuple(c / total for c in counts[n][m])


# Student's t: two-sided 95 % (0.975) and 90 % (0.95) quantiles by degrees of freedom. Exact
# to three decimals from tables; between the listed degrees of freedom, linear in 1/df.
_T_TABLE: dict[float, tuple[tuple[float, float], ...]] = {
    0.975: ((1, 12.706), (2, 4.303), (3, 3.182), (4, 2.776), (5, 2.571), (6, 2.447), (7, 2.365),
            (8, 2.306), (9, 2.262), (10, 2.228), (12, 2.179), (15, 2.131), (20, 2.086), (25, 2.060),
            (30, 2.042), (40, 2.021), (60, 2.000), (120, 1.980), (math.inf, 1.960)),
    0.95: ((1, 6.314), (2, 2.920), (3, 2.353), (4, 2.132), (5, 2.015), (6, 1.943), (7, 1.895),
           (8, 1.860), (9, 1.833), (10, 1.812), (12, 1.782), (15, 1.753), (20, 1.725), (25, 1.708),
           (30, 1.697), (40, 1.684), (60, 1.671), (120, 1.658), (math.inf, 1.645)),
}


def t_quantile(df: float, level: float = 0.975) -> float:
    """Return Student's t quantile for ``df`` degrees of freedom (not necessarily whole), 0.975 or 0.95."""
    table = _T_TABLE[level]
    if df <= table[0][0]:
        return table[0][1]
    for (low, t_low), (high, t_high) in itertools.pairwise(table):
        if df <= high:
            if math.isinf(high):
                return t_low + (t_high - t_low) * (1 - low / df)
            share = (1 / low - 1 / df) / (1 / low - 1 / high)
            return t_low + (t_high - t_low) * share
    return table[-1][1]


@dataclass(frozen=True)
class Interval:
    """An estimate with its confidence interval: ``low ≤ estimate ≤ high``, from ``units`` values."""

    estimate: float
    low: float
    high: float
    units: int

    @property
    def half_width(self) -> float:
        """Half the interval's width, relative to the estimate (0.05: ±5 %); inf without an interval."""
        if self.estimate == 0 or math.isinf(self.low) or math.isinf(self.high):
            return math.inf
        return (self.high - self.low) / 2 / abs(self.estimate)

    @property
    def excludes_zero(self) -> bool:
        """True when the whole interval lies on one side of zero."""
        return self.low > 0 or self.high < 0


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """Return the mean of independent ``values`` with its t-interval (unbounded for fewer than two)."""
    centre = mean(values)
    if len(values) < 2:
        return Interval(centre, -math.inf, math.inf, len(values))
    reach = t_quantile(len(values) - 1, _level(confidence)) * stdev(values) / math.sqrt(len(values))
    return Interval(centre, centre - reach, centre + reach, len(values))


def welch_interval(x: Sequence[float], y: Sequence[float], confidence: float = 0.95) -> Interval:
    """Return mean(y) − mean(x) with Welch's t-interval: independent samples, unequal variances."""
    estimate = mean(y) - mean(x)
    if len(x) < 2 or len(y) < 2:
        return Interval(estimate, -math.inf, math.inf, min(len(x), len(y)))
    vx, vy = stdev(x) ** 2 / len(x), stdev(y) ** 2 / len(y)
    spread = math.sqrt(vx + vy)
    if spread == 0:
        return Interval(estimate, estimate, estimate, min(len(x), len(y)))
    df = (vx + vy) ** 2 / (vx**2 / (len(x) - 1) + vy**2 / (len(y) - 1))
    reach = t_quantile(df, _level(confidence)) * spread
    return Interval(estimate, estimate - reach, estimate + reach, min(len(x), len(y)))


def _level(confidence: float) -> float:
    level = 1 - (1 - confidence) / 2
    if level not in _T_TABLE:
        raise ValueError(f"confidence must be 0.95 or 0.90, got {confidence}")
    return level


def weighted_percentile(pairs: Sequence[tuple[float, int]], q: float) -> float:
    """Return the ``q``-th percentile of values given as ``(value, count)`` pairs, sorted by value.

    The same definition as :func:`percentile` on the values repeated ``count`` times.
    """
    total = sum(count for _, count in pairs)
    if total == 0:
        raise ValueError("percentile of no values")
    position = (total - 1) * q / 100.0
    lower = int(position)

    def at(index: int) -> float:
        seen = 0
        for value, count in pairs:
            seen += count
            if seen > index:
                return value
        return pairs[-1][0]

    low, high = at(lower), at(min(lower + 1, total - 1))
    return low + (high - low) * (position - lower)


def cluster_bootstrap(
    units: Sequence[Sequence[tuple[float, int]]],
    statistic: Callable[[Sequence[tuple[float, int]]], float],
    rounds: int = 400,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Return a percentile-bootstrap interval of ``statistic`` over pooled units, resampling whole units.

    Each unit (one worker process's distribution, as sorted ``(value, count)`` pairs) is
    the level that varies: ticks of one process are not independent of each other, so
    resampling ticks would claim a precision the data lack (Kalibera & Jones).
    """
    if len(units) < 2:
        return -math.inf, math.inf
    rng = random.Random(seed)
    found = []
    for _ in range(rounds):
        pooled: dict[float, int] = {}
        for unit in rng.choices(units, k=len(units)):
            for value, count in unit:
                pooled[value] = pooled.get(value, 0) + count
        found.append(statistic(sorted(pooled.items())))
    found.sort()
    tail = (1 - confidence) / 2
    return percentile(found, 100 * tail), percentile(found, 100 * (1 - tail))


def cluster_bootstrap_percentile(
    units: Sequence[Sequence[tuple[float, int]]],
    q: float,
    rounds: int = 400,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Return :func:`cluster_bootstrap` of the ``q``-th percentile: the same interval, far faster.

    The resamples are drawn as there (same seed, same order); each one's percentile is
    found by walking the chosen units' values from the top, merged, until its rank: a
    p99 reads about 1 % of the ticks instead of pooling and sorting them all (a run's
    judging between rounds took 16 s for 88 cells the general way).
    """
    if len(units) < 2:
        return -math.inf, math.inf
    rng = random.Random(seed)
    totals = [sum(count for _, count in unit) for unit in units]
    falling = [[(-value, count) for value, count in sorted(unit, reverse=True)] for unit in units]
    chosen_from = range(len(units))
    found = []
    for _ in range(rounds):
        times: dict[int, int] = {}
        for index in rng.choices(chosen_from, k=len(units)):
            times[index] = times.get(index, 0) + 1
        total = sum(totals[i] * m for i, m in times.items())
        if total == 0:
            raise ValueError("percentile of no values")
        position = (total - 1) * q / 100.0
        lower = int(position)
        upper = min(lower + 1, total - 1)
        # Ascending rank r is falling rank total-1-r; the upper one comes first from the top.
        wanted = [total - 1 - upper, total - 1 - lower]
        values: list[float] = []
        seen = 0
        merged = heapq.merge(*(_scaled(falling[i], m) for i, m in times.items()))
        for negative, count in merged:
            seen += count
            while len(values) < 2 and seen > wanted[len(values)]:
                values.append(-negative)
            if len(values) == 2:
                break
        high, low = values
        found.append(low + (high - low) * (position - lower))
    found.sort()
    tail = (1 - confidence) / 2
    return percentile(found, 100 * tail), percentile(found, 100 * (1 - tail))


def _scaled(pairs: Sequence[tuple[float, int]], times: int) -> Iterator[tuple[float, int]]:
    """Yield ``pairs`` (negated already, to merge from the top) with their counts times ``times``."""
    for value, count in pairs:
        yield value, count * times

