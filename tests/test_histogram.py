"""The stored lag distribution: faithful to the lags, compact, and checked on load."""

from __future__ import annotations

import itertools
import random

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from offbench.errors import UsageError
from offbench.model import histogram, results
from offbench.stats import percentile
from tests.builders import sample_run


def lags(n: int = 5000, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    # Mostly sub-millisecond timer noise with a tail of multi-millisecond stalls.
    return [rng.lognormvariate(-1.0, 1.2) for _ in range(n)] + [rng.uniform(5, 40) for _ in range(50)]


def test_spectrum_matches_the_exact_percentiles_within_the_histograms_precision() -> None:
    values = lags()
    ordered = sorted(values)
    points = histogram.spectrum(histogram.encode(values))
    for point in points[1:-1]:
        exact = percentile(ordered, point.percentile)
        # Two significant figures: a value is stored within 1 % (and whole microseconds).
        nearest = min(ordered, key=lambda v: abs(v - point.lag_ms))
        assert point.lag_ms == pytest.approx(nearest, rel=0.01, abs=0.001)
        assert point.lag_ms >= exact * 0.99 - 0.001
    assert points[-1].percentile == 100.0
    assert points[-1].lag_ms == pytest.approx(ordered[-1], rel=0.01)
    assert points[0].lag_ms == pytest.approx(ordered[0], rel=0.01, abs=0.001)


def test_spectrum_never_goes_down() -> None:
    points = histogram.spectrum(histogram.encode(lags(seed=7)))
    assert all(a.percentile <= b.percentile for a, b in itertools.pairwise(points))
    assert all(a.lag_ms <= b.lag_ms for a, b in itertools.pairwise(points))


def test_every_lag_is_counted_and_out_of_range_values_are_clamped() -> None:
    encoded = histogram.encode([0.0, -1.0, 0.0004, 5.0, 1e12])
    assert histogram.count(encoded) == 5
    points = histogram.spectrum(encoded)
    assert points[0].lag_ms == pytest.approx(0.001)  # one microsecond, the floor
    assert points[-1].lag_ms == pytest.approx(histogram.HIGHEST_US / 1000, rel=0.01)


def test_the_encoding_is_compact() -> None:
    # A thousand ticks a second for ten seconds still fits in about a kilobyte.
    encoded = histogram.encode(lags(10_000))
    assert len(encoded) < 2000


@pytest.mark.parametrize("text", ["", "abc", "HISTFAAAAB", "é", "a" * 64])
def test_malformed_encodings_are_refused(text: str) -> None:
    with pytest.raises(histogram.HistogramError, match="not an HdrHistogram encoding"):
        histogram.check(text)


def test_a_results_file_with_a_bad_histogram_names_the_cell() -> None:
    run = sample_run()
    cell = msgspec.structs.replace(run.results[0], lag_histogram="not base64!")
    data = results.encode(msgspec.structs.replace(run, results=[cell]))
    with pytest.raises(UsageError, match=r"lag_histogram") as caught:
        results.decode(data, "bad.json")
    assert str(caught.value).startswith("bad.json: malformed results:")


def test_files_of_schema_version_2_still_load_without_histograms() -> None:
    data = msgspec.json.decode(results.encode(sample_run()))
    data["schema_version"] = 2
    for cell in data["results"]:
        cell.pop("lag_histogram", None)
    run = results.decode(msgspec.json.encode(data))
    assert run.schema_version == results.SCHEMA_VERSION  # upgraded on the way in
    assert run.results[0].lag_histogram is None


@given(st.lists(st.floats(min_value=0.001, max_value=60_000.0), min_size=1, max_size=300))
def test_the_counts_hold_every_lag_once_each_at_its_buckets_top_within_one_percent(lags: list[float]) -> None:
    pairs = histogram.counts_ms(histogram.encode(lags))
    assert sum(times for _, times in pairs) == len(lags)
    values = [ms for ms, _ in pairs]
    assert values == sorted(set(values))
    # Every recorded lag lies in one bucket whose top is at or above it and within 1 % (2 figures).
    expanded = sorted(ms for ms, times in pairs for _ in range(times))
    for lag, top in zip(sorted(max(0.001, round(x * 1000) / 1000) for x in lags), expanded, strict=True):
        assert lag <= top * 1.0001 + 0.001
        assert top <= lag * 1.01 + 0.001
