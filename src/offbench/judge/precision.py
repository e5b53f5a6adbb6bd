"""How well a cell is known, from its units: the statistics every interval of offbench is made of.

The unit of every statistic is the unit: one worker process's window (Kalibera & Jones:
the unit is the level that varies). Slices of one window are not independent samples of
a run's noise, and ticks of one process are not independent samples of its lag.

The host's speed moves while a run measures (docs/methodology.md: by how much on the
project's machine). Every unit carries the speed
reference its worker took before its warm-up (:mod:`offbench.measure.reference`) and
the CPU time its processes used in the window. The host's speed around a unit, its
*host factor* (:func:`host_factors`), is the median over the :data:`NEIGHBOURS` units
nearest in time of each one's reference over its interpreter's median: one reference is
a millisecond of timing, as noisy as what it would correct, while the median of its
neighbours follows the host's drift over seconds.

How much of that drift shows in a throughput is not assumed: it is *measured*, per
workload, by regression adjustment (a control variate, as CUPED does for A/B tests).
Within each of a workload's cells, the units' log throughputs are regressed on their
log host factors times their CPU share (a sleep spends little of its window on a CPU
and cannot follow the host); the pooled slope is the workload's *sensitivity*
(:func:`sensitivity`), 0 to 1, and 0 unless it stands out of its standard error by
:data:`SIGNIFICANT`. It differs by workload (pure-Python work follows the host, sleeps
and NumPy's C loops hardly do: docs/methodology.md gives the figures measured here), and
dividing a workload that does not follow by the reference, as a fixed model would, only
adds the reference's noise to it. A unit's
*normalised* throughput (:func:`normalised`) is its throughput times its host factor to
the power sensitivity × CPU share: what it would have been at the run's median speed.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Literal

from offbench.model import histogram
from offbench.model.results import CellResult, Spread, Unit
from offbench.stats import Interval, cluster_bootstrap_percentile, cv, mean_interval

NEIGHBOURS = 7
"""Units (nearest in time, the unit itself included) whose references make a unit's host factor."""
SIGNIFICANT = 2.0
"""A workload's sensitivity is used only where it is this many standard errors from zero."""
LAG_CLEAR = 2.0
"""A lag p99 whose interval lies below budget ÷ this, or above budget × this, needs no more ticks."""


def host_factors(units: Sequence[Unit], kinds: Sequence[Hashable]) -> list[float | None]:
    """Return, for each of ``units`` (a run's, any order), how slow the host was around it: 1.1 = 10 % slower.

    ``kinds`` names each unit's interpreter: a reference timed by Python 3.13 is not
    comparable with one timed by 3.11, its ratio to its own interpreter's median is.
    """
    medians: dict[Hashable, float] = {}
    for kind in set(kinds):
        found = [u.reference_ms for u, k in zip(units, kinds, strict=True) if k == kind and u.reference_ms]
        if found:
            medians[kind] = statistics.median(found)
    timed = sorted((u.started_s, index, u.reference_ms / medians[k])
                   for index, (u, k) in enumerate(zip(units, kinds, strict=True)) if u.reference_ms)
    found_factors: list[float | None] = [None] * len(units)
    for position, (_, index, _) in enumerate(timed):
        low = max(0, min(position - NEIGHBOURS // 2, len(timed) - NEIGHBOURS))
        found_factors[index] = statistics.median(ratio for _, _, ratio in timed[low : low + NEIGHBOURS])
    return found_factors


def elasticity(unit: Unit) -> float:
    """Return the share of ``unit``'s window its processes spent on a CPU, 0 to 1: how much host can show."""
    if unit.cpu_s is None or unit.duration_s <= 0:
        return 0.0
    return min(1.0, max(0.0, unit.cpu_s / unit.duration_s))


def sensitivity(cells: Sequence[Sequence[tuple[Unit, float | None]]]) -> float:
    """Return how much of the host's speed shows in one workload's throughput, 0 to 1.

    ``cells`` holds each cell's units with their host factors. The slope of log
    throughput on ``elasticity × log factor``, within cells (each cell's means removed,
    so a strategy's own speed is not mistaken for the host's), pooled over cells; 0 if
    it is not :data:`SIGNIFICANT` standard errors from 0 or the units cannot tell.
    """
    xs: list[float] = []
    ys: list[float] = []
    groups = 0
    for units in cells:
        pairs = [(elasticity(u) * math.log(f), math.log(u.throughput_ops_s))
                 for u, f in units if f is not None and f > 0 and u.throughput_ops_s > 0]
        if len(pairs) < 2:
            continue
        groups += 1
        mx = statistics.fmean(x for x, _ in pairs)
        my = statistics.fmean(y for _, y in pairs)
        xs.extend(x - mx for x, _ in pairs)
        ys.extend(y - my for _, y in pairs)
    sxx = sum(x * x for x in xs)
    freedom = len(xs) - groups - 1
    if freedom < 2 or sxx <= 0:
        return 0.0
    slope = -sum(x * y for x, y in zip(xs, ys, strict=True)) / sxx  # a slower host lowers throughput
    residual = sum((y + slope * x) ** 2 for x, y in zip(xs, ys, strict=True)) / freedom
    error = math.sqrt(residual / sxx)
    if error <= 0 or slope < SIGNIFICANT * error:
        return 0.0
    return min(1.0, slope)


def normalised(unit: Unit, factor: float | None, sensitivity: float | None) -> float:
    """Return ``unit``'s throughput at the run's median host speed.

    A host 10 % slower around a unit (``factor`` 1.1) of a workload of sensitivity 1
    whose processes were on a CPU the whole window is multiplied back by 1.1.
    """
    if factor is None or not sensitivity or factor <= 0:
        return unit.throughput_ops_s
    return float(unit.throughput_ops_s * factor ** (sensitivity * elasticity(unit)))


@dataclass(frozen=True)
class HostCorrection:
    """A run's host correction: each cell's units' host factors and its workload's sensitivity."""

    factors: list[list[float | None]]
    sensitivities: list[float]

    def values(self, cells: Sequence[Sequence[Unit]]) -> list[list[float]]:
        """Return each cell's units' normalised throughputs, cells and units in order."""
        return [[normalised(u, f, s) for u, f in zip(units, factors, strict=True)]
                for units, factors, s in zip(cells, self.factors, self.sensitivities, strict=True)]


def correct(cells: Sequence[Sequence[Unit]], workloads: Sequence[Hashable],
            kinds: Sequence[Hashable]) -> HostCorrection:
    """Return the host correction of ``cells``; ``workloads`` and ``kinds`` (interpreters) per cell."""
    every = [u for units in cells for u in units]
    unit_kinds = [k for units, k in zip(cells, kinds, strict=True) for _ in units]
    flat = iter(host_factors(every, unit_kinds))
    factors = [[next(flat) for _ in units] for units in cells]
    found: dict[Hashable, float] = {}
    for workload in set(workloads):
        found[workload] = sensitivity([list(zip(units, f, strict=True))
                                       for units, f, w in zip(cells, factors, workloads, strict=True)
                                       if w == workload])
    return HostCorrection(factors, [found[w] for w in workloads])


def unit_values(result: CellResult) -> list[float]:
    """Return a saved cell's units' normalised throughputs, from what the runner recorded."""
    return [normalised(u, u.host_factor, result.host_sensitivity) for u in result.units]


def throughput_interval(values: Sequence[float]) -> Interval:
    """Return the mean of the units' throughputs with its 95 % t-interval."""
    return mean_interval(values)


def spread(values: Sequence[float]) -> Spread | None:
    """Return the throughput's :class:`~offbench.model.results.Spread` over units; ``None`` for none."""
    if not values:
        return None
    found = throughput_interval(values)
    spread_cv = cv(values) or 0.0
    bounded = math.isfinite(found.low) and math.isfinite(found.high)
    return Spread(low=found.low if bounded else None, high=found.high if bounded else None,
                  cv=spread_cv, units=len(values))


def precise(values: Sequence[float], precision_pct: float) -> bool:
    """Return whether the mean of ``values`` is known to ±``precision_pct`` % at 95 % confidence."""
    return throughput_interval(values).half_width * 100 <= precision_pct


def unit_lags(unit: Unit) -> Sequence[tuple[float, int]]:
    """Return a unit's corrected lags as sorted ``(ms, count)`` pairs (empty without a histogram)."""
    if not unit.lag_histogram:
        return ()
    return histogram.counts_ms(unit.lag_histogram)


def lag_p99_interval(units: Sequence[Unit]) -> tuple[float, float]:
    """Return a 95 % interval of the pooled lag p99, resampling whole units (cluster bootstrap)."""
    return cluster_bootstrap_percentile([pairs for pairs in (unit_lags(u) for u in units) if pairs], 99)


def settled(values: Sequence[float], units: Sequence[Unit], lag_budget_ms: float,
            precision_pct: float, ticks: int) -> Literal["precise", "over budget"] | None:
    """Return why a cell needs no more units, from its units so far; ``None`` while it does.

    ``precise``: its throughput is known to ±``precision_pct`` (:func:`precise`) and its
    lag p99 well enough: ``ticks`` pooled, or its interval (:func:`lag_p99_interval`) clear
    of the budget, below ``budget / LAG_CLEAR`` or above ``budget × LAG_CLEAR`` (more ticks
    could not move it across). ``over budget``: its lag p99 interval lies above
    ``budget × LAG_CLEAR``: it is out of the verdict however fast, and more units would
    only sharpen a figure nothing is decided on. The bootstrap runs at most once.
    """
    known = precise(values, precision_pct)
    if known and sum(u.ticks for u in units) >= ticks:
        return "precise"
    low, high = lag_p99_interval(units)
    if math.isinf(low) or math.isinf(high):
        return None
    if known and high <= lag_budget_ms / LAG_CLEAR:
        return "precise"
    if low >= lag_budget_ms * LAG_CLEAR:
        return "precise" if known else "over budget"
    return None
