"""The statistics behind 'offbench compare': exact Mann–Whitney tails, Hodges–Lehmann intervals."""

from __future__ import annotations

import math
import random

import pytest

from offbench import stats


@pytest.mark.parametrize(
    ("n", "m", "critical"),
    # Two-sided 5 % critical values of U from the published tables: reject when U <= critical.
    [(5, 5, 2), (6, 6, 5), (8, 8, 13), (10, 10, 23), (5, 10, 8), (20, 20, 127)],
)
def test_interval_rank_matches_published_critical_values(n: int, m: int, critical: int) -> None:
    assert stats._rank_for_interval(n, m, 0.95) == critical + 1


def test_exact_distribution_is_a_distribution() -> None:
    for n, m in [(1, 1), (3, 4), (7, 5)]:
        dist = stats._u_distribution(n, m)
        assert len(dist) == n * m + 1
        assert math.isclose(sum(dist), 1.0)
        assert all(math.isclose(a, b) for a, b in zip(dist, reversed(dist), strict=True))


def test_normal_approximation_continues_the_exact_counts() -> None:
    exact = stats._rank_for_interval(30, 30, 0.95)
    approx = stats._rank_for_interval(31, 31, 0.95)
    assert exact < approx < exact + 30


def test_a_clear_shift_is_significant_with_the_right_estimate() -> None:
    x = [10.0, 10.2, 9.9, 10.1, 10.0, 9.8, 10.3, 10.1, 9.9, 10.0]
    y = [v * 2 for v in x]
    found = stats.shift(x, y)
    assert found.significant
    assert found.low <= found.estimate <= found.high
    assert 9.5 < found.estimate < 10.5


def test_identical_samples_are_not_significant() -> None:
    found = stats.shift([4.0] * 10, [4.0] * 10)
    assert not found.significant
    assert found.estimate == 0


def test_too_few_values_are_never_significant() -> None:
    found = stats.shift([1.0, 2.0, 3.0], [100.0, 200.0, 300.0])
    assert not found.significant
    assert math.isinf(found.low)
    assert math.isinf(found.high)


def test_interval_covers_no_shift_about_as_often_as_promised() -> None:
    rng = random.Random(7)
    trials = 400
    false_alarms = sum(
        stats.shift([rng.gauss(0, 1) for _ in range(10)], [rng.gauss(0, 1) for _ in range(10)]).significant
        for _ in range(trials)
    )
    # The exact interval has at least 95 % coverage; allow binomial noise above 5 %.
    assert false_alarms / trials < 0.09


def test_stdev_and_median() -> None:
    assert stats.stdev([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]) == pytest.approx(2.138, abs=1e-3)
    assert stats.stdev([1.0]) == 0.0
    assert stats.median([3.0, 1.0, 2.0]) == 2.0


def test_the_coefficient_of_variation_is_the_sample_stdev_over_the_mean_where_it_exists() -> None:
    assert stats.cv([90.0, 110.0]) == pytest.approx(math.sqrt(200) / 100)
    assert stats.cv([5.0, 5.0, 5.0]) == 0.0
    assert stats.cv([7.0]) is None  # one value has no spread
    assert stats.cv([]) is None
    assert stats.cv([-1.0, 1.0]) is None  # no mean to be a share of
