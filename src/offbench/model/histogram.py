"""A cell's loop-lag distribution, kept whole in a few hundred bytes (HdrHistogram).

The four percentiles of :class:`~offbench.model.results.LoopLag` hide the distribution's
shape; the charts of ``offbench report`` draw all of it. Each cell therefore stores its
corrected lags as an HdrHistogram in the standard compressed, base64 encoding
(`HdrHistogram <https://hdrhistogram.github.io/HdrHistogram/>`_'s V2 format), so other
HdrHistogram tools can read it too. Values are recorded in microseconds with
:data:`SIGNIFICANT_FIGURES` significant figures: every stored value is within 1 % of
what the probe measured.
"""

from __future__ import annotations

import binascii
import functools
import zlib
from collections import Counter
from collections.abc import Iterable
from typing import Any, NamedTuple

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 3_600_000_000
"""One hour: longer lags are recorded as one hour (a cell times out long before)."""
SIGNIFICANT_FIGURES = 2
TICKS_PER_HALF_DISTANCE = 5
"""Points per halving of the distance to 100 % (HdrHistogram's usual spectrum resolution)."""


class Point(NamedTuple):
    """One point of a percentile spectrum: this share of the ticks lagged at most ``lag_ms``."""

    percentile: float
    lag_ms: float


class HistogramError(ValueError):
    """The text is not an HdrHistogram encoding that offbench can read."""


def encode(lags_ms: Iterable[float]) -> str:
    """Return the encoded histogram of ``lags_ms`` (milliseconds, clamped to 1 µs … 1 h)."""
    histogram = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_FIGURES)
    counts = Counter(min(HIGHEST_US, max(LOWEST_US, round(ms * 1000))) for ms in lags_ms)
    for microseconds, count in counts.items():
        histogram.record_value(microseconds, count)
    encoded: bytes = histogram.encode()
    return encoded.decode("ascii")


def spectrum(encoded: str) -> list[Point]:
    """Return the percentile spectrum of an encoded histogram, 0 % up to the maximum at 100 %."""
    histogram = _decode(encoded)
    points: list[Point] = []
    for step in histogram.get_percentile_iterator(TICKS_PER_HALF_DISTANCE):
        # The iterator hands back one object, changed in place at every step.
        value = histogram.get_highest_equivalent_value(step.value_iterated_to)
        points.append(Point(step.percentile_level_iterated_to, value / 1000))
    return points


def count(encoded: str) -> int:
    """Return how many lags the encoded histogram holds."""
    total: int = _decode(encoded).get_total_count()
    return total


def check(encoded: str) -> None:
    """Raise :class:`HistogramError` if ``encoded`` cannot be read."""
    _decode(encoded)


def _decode(encoded: str) -> Any:
    try:
        return HdrHistogram.decode(encoded.encode("ascii"))
    except (UnicodeError, binascii.Error, zlib.error, TypeError, ValueError) as exc:
        raise HistogramError(f"not an HdrHistogram encoding ({exc})") from None
    except Exception as exc:  # hdrh raises its own HdrCookieException, HdrLengthException
        raise HistogramError(f"not an HdrHistogram encoding ({type(exc).__name__})") from None


def encode_us(values_us: Iterable[int]) -> str:
    """Return the encoded histogram of whole microseconds (clamped to 1 µs … 1 h), e.g. callback durations."""
    histogram = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_FIGURES)
    for microseconds, times in Counter(min(HIGHEST_US, max(LOWEST_US, v)) for v in values_us).items():
        histogram.record_value(microseconds, times)
    encoded: bytes = histogram.encode()
    return encoded.decode("ascii")


def merge(encoded: Iterable[str]) -> str | None:
    """Return one encoded histogram holding every value of ``encoded``'s; ``None`` if there are none.

    Histograms pool exactly (their counts add up), unlike percentiles: this is how the
    worker processes of one cell combine theirs.
    """
    total: Any = None
    for text in encoded:
        histogram = _decode(text)
        if total is None:
            total = histogram
        else:
            total.add(histogram)
    if total is None:
        return None
    merged: bytes = total.encode()
    return merged.decode("ascii")


def percentiles_ms(encoded: str, levels: Iterable[float]) -> list[float]:
    """Return the values (ms) at these percentiles of an encoded histogram; 100 is its maximum."""
    histogram = _decode(encoded)
    values: list[float] = []
    for level in levels:
        value = histogram.get_max_value() if level >= 100 else histogram.get_value_at_percentile(level)
        values.append(value / 1000)
    return values


@functools.lru_cache(maxsize=4096)
def counts_ms(encoded: str) -> tuple[tuple[float, int], ...]:
    """Return the recorded values of an encoded histogram as sorted ``(ms, count)`` pairs.

    Each value is the highest its bucket stands for, as :func:`spectrum` reads them. The
    counts are read straight from the decoded array (hdrh's recorded iterator took 10-40 ms
    a histogram, in Python, and the runner reads every unit's after each round); the pairs
    are kept too, per encoding.
    """
    histogram = _decode(encoded)
    highest, at = histogram.get_highest_equivalent_value, histogram.get_value_from_index
    return tuple((highest(at(index)) / 1000, int(times))
                 for index, times in enumerate(list(histogram.counts)) if times)
