"""The statistics every interval is made of: units, t-intervals, the host's speed divided out."""

from __future__ import annotations

import math
import random
import statistics
from statistics import fmean as mean
from statistics import stdev

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offbench.judge import precision
from offbench.model import histogram
from offbench.model.results import Unit
from offbench.stats import (
    cluster_bootstrap,
    cluster_bootstrap_percentile,
    mean_interval,
    percentile,
    t_quantile,
    weighted_percentile,
    welch_interval,
)


def unit(throughput: float = 100.0, *, reference: float | None = 1.0, cpu: float | None = 0.0,
         started: float = 0.0, lags: list[float] | None = None, round_index: int = 0) -> Unit:
    values = lags if lags is not None else [0.1] * 100
    return Unit(round=round_index, started_s=started, duration_s=1.0, ops=int(throughput),
                throughput_ops_s=throughput, op_latency_mean_ms=1.0, lag_p99_ms=None, ticks=len(values),
                lag_histogram=histogram.encode(values) if values else None, reference_ms=reference,
                wakeup_us=20.0, cpu_s=cpu, other_cpu=0.0)


def test_t_quantiles_are_the_tables() -> None:
    assert t_quantile(1) == pytest.approx(12.706)
    assert t_quantile(4) == pytest.approx(2.776)
    assert t_quantile(30) == pytest.approx(2.042)
    assert t_quantile(1e9) == pytest.approx(1.960, abs=1e-3)
    assert t_quantile(4, 0.95) == pytest.approx(2.132)
    # Between tabulated degrees of freedom it lies between their quantiles.
    assert t_quantile(11) < t_quantile(10)
    assert t_quantile(11) > t_quantile(12)


def test_the_mean_interval_covers_the_truth_as_often_as_it_says() -> None:
    # 2000 seeded experiments of 4 units each: the 95 % interval must hold the true mean in
    # 95 % of them. Seeded, so not flaky; the binomial spread of 2000 trials is 0.5 %.
    rng = random.Random(7)
    covered = sum(
        (found := mean_interval([rng.gauss(10.0, 2.0) for _ in range(4)])).low <= 10.0 <= found.high
        for _ in range(2000)
    )
    assert 0.935 <= covered / 2000 <= 0.965


def test_one_unit_gives_no_interval() -> None:
    found = mean_interval([5.0])
    assert math.isinf(found.low)
    assert math.isinf(found.high)
    assert found.half_width == math.inf


def test_welch_widens_when_units_disagree() -> None:
    agreeing = welch_interval([10.0, 10.1, 9.9, 10.0], [11.0, 11.1, 10.9, 11.0])
    disagreeing = welch_interval([8.0, 12.0, 9.0, 11.0], [9.0, 13.0, 10.0, 12.0])
    assert agreeing.estimate == pytest.approx(1.0)
    assert disagreeing.estimate == pytest.approx(1.0)
    assert agreeing.excludes_zero
    assert not disagreeing.excludes_zero
    assert disagreeing.high - disagreeing.low > 10 * (agreeing.high - agreeing.low)


@given(st.lists(st.tuples(st.integers(0, 50), st.integers(1, 5)), min_size=1, max_size=30),
       st.floats(0, 100))
def test_a_weighted_percentile_is_the_percentile_of_the_repeated_values(
    pairs: list[tuple[int, int]], q: float
) -> None:
    merged: dict[float, int] = {}
    for value, count in pairs:
        merged[float(value)] = merged.get(float(value), 0) + count
    ordered = sorted(merged.items())
    flat = [value for value, count in ordered for _ in range(count)]
    assert weighted_percentile(ordered, q) == pytest.approx(percentile(flat, q))


def test_the_cluster_bootstrap_resamples_whole_units() -> None:
    alike = [[(1.0, 99), (5.0, 1)]] * 4
    unlike = [[(1.0, 99), (5.0, 1)], [(1.0, 99), (5.0, 1)], [(1.0, 90), (50.0, 10)], [(1.0, 99), (5.0, 1)]]
    p99 = lambda pooled: weighted_percentile(pooled, 99)  # noqa: E731
    low, high = cluster_bootstrap(alike, p99)
    assert low == high  # identical units: every resample pools the same distribution
    low, high = cluster_bootstrap(unlike, p99)
    assert low < 10 < high  # one unit with a 50 ms mode: resamples with and without it
    assert cluster_bootstrap(alike[:1], p99) == (-math.inf, math.inf)


def test_the_fast_percentile_bootstrap_is_the_general_one() -> None:
    rng = random.Random(3)
    for _ in range(20):
        units = [sorted({round(rng.expovariate(1.0), 2): rng.randint(1, 4) for _ in range(rng.randint(1, 80))}
                        .items()) for _ in range(rng.randint(2, 7))]
        for q in (50.0, 99.0, 99.9):
            general = cluster_bootstrap(units, lambda pooled, q=q: weighted_percentile(pooled, q), rounds=50)
            assert cluster_bootstrap_percentile(units, q, rounds=50) == general


def test_host_factors_follow_the_host_without_one_units_scatter() -> None:
    # The host slows from 1.0 to 2.0 ms per reference halfway; one unit reads a wild 9.0.
    refs = [1.0] * 10 + [2.0] * 10
    refs[4] = 9.0
    units = [unit(reference=r, started=float(i)) for i, r in enumerate(refs)]
    found = precision.host_factors(units, [""] * len(units))
    median = statistics.median(refs)  # the run's median reference: factors are relative to it
    assert found[4] == pytest.approx(1.0 / median)  # the outlier's neighbours outvote it
    assert found[0] == pytest.approx(1.0 / median)
    assert found[-1] == pytest.approx(2.0 / median)


def test_host_factors_compare_each_interpreter_with_itself() -> None:
    # Python B is twice as slow at the reference as A, on a steady host: no unit's host was slow.
    units = [unit(reference=1.0 if i % 2 else 2.0, started=float(i)) for i in range(12)]
    kinds = ["A" if i % 2 else "B" for i in range(12)]
    assert precision.host_factors(units, kinds) == pytest.approx([1.0] * 12)


def test_normalising_scales_by_the_host_as_far_as_the_unit_computes_and_the_workload_follows() -> None:
    cpu_bound = unit(50.0, cpu=1.0)
    sleeper = unit(50.0, cpu=0.0)
    # The host ran at half speed around the unit (factor 2), for a workload that follows it fully:
    assert precision.normalised(cpu_bound, 2.0, 1.0) == pytest.approx(100.0)
    assert precision.normalised(sleeper, 2.0, 1.0) == pytest.approx(50.0)
    assert precision.normalised(unit(50.0, cpu=0.5), 2.0, 1.0) == pytest.approx(50.0 * math.sqrt(2))
    # A workload whose throughput does not follow the reference is left as measured.
    assert precision.normalised(cpu_bound, 2.0, 0.0) == pytest.approx(50.0)
    # A pool's processes can use more than one CPU: the elasticity stops at 1.
    assert precision.elasticity(unit(cpu=1.8)) == 1.0


def drifting(follows: float, seed: int, cells: int = 4, units_per_cell: int = 6) -> list[list[Unit]]:
    """Cells whose units ran while the host's speed wandered by ±15 %, their throughput following it.

    ``follows`` of the host's slowness shows in the throughput (1: pure Python, 0: a sleep);
    each unit also has 3 % noise of its own, as a quiet cell's units have here.
    """
    rng = random.Random(seed)
    found = []
    for c in range(cells):
        units = []
        for i in range(units_per_cell):
            slow = math.exp(rng.gauss(0.0, 0.15))
            throughput = (100.0 * (c + 1)) / slow ** follows * math.exp(rng.gauss(0.0, 0.03))
            # Neighbours in time share the host's speed: each unit's reference reads it with 2 % scatter.
            units.append(unit(throughput, reference=2.0 * slow * math.exp(rng.gauss(0.0, 0.02)), cpu=1.0,
                              started=float(i * cells + c) * 100.0))
        found.append(units)
    return found


@pytest.mark.parametrize("follows", [1.0, 0.6, 0.0])
def test_the_sensitivity_is_what_the_throughput_follows_of_the_host(follows: float) -> None:
    # Units 100 s apart: each unit's neighbours are other moments, so its own reference
    # must carry its host speed; NEIGHBOURS = 1 keeps the median to the unit itself.
    cells = drifting(follows, seed=11)
    every = [u for units in cells for u in units]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(precision, "NEIGHBOURS", 1)
        factors = precision.host_factors(every, [""] * len(every))
    flat = iter(factors)
    pairs = [[(u, next(flat)) for u in units] for units in cells]
    found = precision.sensitivity(pairs)
    # 24 units, 3 % own noise against ±15 % drift: the slope is known to about ±0.05.
    assert found == pytest.approx(follows, abs=0.12)


def test_correcting_a_workload_that_follows_the_host_narrows_its_spread() -> None:
    cells = drifting(1.0, seed=5)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(precision, "NEIGHBOURS", 1)
        corrected = precision.correct(cells, ["cpu"] * len(cells), [""] * len(cells))
    for units, values in zip(cells, corrected.values(cells), strict=True):
        raw = [u.throughput_ops_s for u in units]
        assert stdev(values) / mean(values) < 0.5 * stdev(raw) / mean(raw)


def test_a_workload_that_does_not_follow_the_host_is_left_as_measured() -> None:
    # numpy's C loops measured here did not follow the pure-Python reference: dividing
    # by it only added the reference's noise. Its sensitivity must come out 0.
    cells = drifting(0.0, seed=9)
    corrected = precision.correct(cells, ["numpy"] * len(cells), [""] * len(cells))
    assert corrected.sensitivities == [0.0] * len(cells)
    assert corrected.values(cells) == [[u.throughput_ops_s for u in units] for units in cells]


def test_a_cell_is_precise_when_its_interval_is_within_the_precision() -> None:
    assert precision.precise([100.0, 100.5, 99.5], 5.0)
    assert not precision.precise([100.0, 130.0, 70.0], 5.0)
    assert not precision.precise([100.0], 50.0)


def test_a_cell_settles_when_it_is_precise_and_its_lag_decided_or_clearly_over_the_budget() -> None:
    steady = [100.0, 100.5, 99.5]
    quiet = [unit(lags=[0.1] * 100), unit(lags=[0.2] * 100), unit(lags=[0.15] * 100)]
    # Far below budget / 2 with 300 ticks: decided without 1000 ticks.
    assert precision.settled(steady, quiet, 10.0, 5.0, 1000) == "precise"
    near = [unit(lags=[9.0] * 100), unit(lags=[11.0] * 100), unit(lags=[10.0] * 100)]
    assert precision.settled(steady, near, 10.0, 5.0, 1000) is None  # needs more ticks
    assert precision.settled(steady, near, 10.0, 5.0, 300) == "precise"  # has enough
    noisy = [100.0, 140.0, 60.0]
    blocked = [unit(lags=[40.0] * 100), unit(lags=[45.0] * 100), unit(lags=[50.0] * 100)]
    # Its lag is far over the budget: out of the verdict, however imprecise its throughput.
    assert precision.settled(noisy, blocked, 10.0, 5.0, 1000) == "over budget"
    assert precision.settled(noisy, near, 10.0, 5.0, 300) is None
