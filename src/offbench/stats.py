"""Small, exact order statistics over measured samples.

The samples of one cell fit in memory (a few thousand values), so percentiles are
computed exactly from the sorted values rather than from an approximate histogram.
``statistics.quantiles`` is not used because it only yields evenly spaced cut points
and, before Python 3.13, refuses fewer than two values.
"""

from collections.abc import Sequence


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
