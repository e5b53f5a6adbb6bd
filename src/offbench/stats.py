"""Small, exact order statistics over measured samples.

The samples of one cell fit in memory (a few thousand values), so percentiles are
computed exactly from the sorted values rather than from an approximate histogram.
``statistics.quantiles`` is not used because it only yields evenly spaced cut points
and, before Python 3.13, refuses fewer than two values.
"""

import functools
import math
from collections.abc import Sequence
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
