"""What the verdict reads from the cells: throughput at the host's speed, lag against the budget, ratios.

The verdict (:mod:`offbench.judge.verdict`) compares candidates only through what this
module makes of their cells, so every rule there weighs the same evidence:

* a :class:`Cell`: one cell's units normalised to the run's host speed
  (:func:`offbench.judge.precision.unit_values`), averaged by round so two cells of the
  same rounds pair, and its loop lag p99's *zone* against the budget (within, near, over,
  failed): settled by the point estimate where it is far from the budget or the units'
  own p99s all lie on one side of it, else by the bootstrap interval over units;
* a :class:`Ratio`: ``log(a / b)`` of two cells' throughputs with its 95 % interval,
  paired by round where they share rounds (host drift cancels), else Welch's on the
  units' logs, else a fixed :data:`NOISE` for cells without units (old files);
* what a cell says of its pool: its size, the share of a call spent reaching a worker
  and back, how much of the window the loop was blocked, the speed-up with concurrency.

It words nothing: the reasons and the headline are built on it elsewhere.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from offbench.judge import precision
from offbench.model.results import CellResult, Method
from offbench.stats import mean_interval, welch_interval

NOISE = 0.05
"""Throughput shortfall called a tie when cells have no units to measure their noise (old files)."""
MIN_EFFECT = 0.10
"""A difference smaller than this is a tie even beyond noise, settled by what the strategies do to the
program. Rounds paired on a quiet host make 4 % "significant" (a 10 ms sleep at c=1 through
``default-executor`` against ``to-thread``, 2026-12-01), which split the verdict by concurrency
for a difference nobody should change strategy for; 10 % is the default run's precision per
cell, and the run-to-run spread of a cell on a shared host (QUALITY.md section 5)."""
GIL_SPEEDUP = 1.3
"""Speed-up from the lowest to the highest concurrency below which threads are not running in parallel."""
CONFIDENCE = 0.95

Key = tuple[str, int | None]
"""A candidate: strategy name and executor size."""
Group = tuple[str, int]
"""Where cells compare: loop name and concurrency."""
Zone = Literal["within", "near", "over", "failed"]


@dataclass(frozen=True)
class Cell:
    """One cell while it is judged: its throughput by round at the run's host speed and its lag zone."""

    result: CellResult
    values: list[float]
    """Each unit's normalised throughput, in the order of ``result.units``."""
    rounds: dict[int, float]
    rate: float
    """Mean normalised throughput (the whole cell's throughput without units)."""
    budget: float

    @property
    def sure(self) -> Zone | None:
        """Return the zone its point estimate and units' p99s settle; ``None``: only the interval can."""
        return sure_zone(self.result, self.budget)

    @property
    def within(self) -> bool:
        """Return whether its lag p99 is within the budget, with an interval only where it may not be."""
        sure = self.sure
        if sure is not None:
            return sure == "within"
        return self.lag <= self.budget and self.zone == "within"

    @functools.cached_property
    def judged(self) -> tuple[Zone, tuple[float, float] | None]:
        """Return its zone, from the bootstrap interval of its lag p99 where that is needed."""
        sure = self.sure
        return (sure, None) if sure is not None else interval_zone(self.result, self.budget)

    @property
    def zone(self) -> Zone:
        """Where its lag p99 lies against the budget (computing the interval only if needed)."""
        return self.judged[0]

    @property
    def lag_range(self) -> tuple[float, float] | None:
        """The 95 % interval of its lag p99, where it was needed and known."""
        return self.judged[1] if self.sure is None else None

    @property
    def lag(self) -> float:
        """Its loop lag p99; infinite when the probe never woke in the window (the loop never ran it)."""
        lag = self.result.loop_lag_ms
        return lag.p99 if lag is not None else math.inf


@dataclass(frozen=True)
class Ratio:
    """``log(a / b)`` of two cells' throughputs, with its 95 % interval."""

    log: float
    low: float
    high: float
    method: Method
    rounds: int

    @property
    def worse(self) -> bool:
        """``a`` is slower than ``b`` beyond noise, and by :data:`MIN_EFFECT` at least."""
        return self.high < 0 and self.log < math.log1p(-MIN_EFFECT)

    @property
    def better(self) -> bool:
        """``a`` is faster than ``b`` beyond noise, and by :data:`MIN_EFFECT` at least."""
        return self.low > 0 and self.log > -math.log1p(-MIN_EFFECT)

    @property
    def faster(self) -> bool:
        """``a`` is faster than ``b`` beyond noise, however little: the interval excludes 0."""
        return self.low > 0

    def pct(self) -> float:
        """Return the difference in %: how much faster (negative: slower) ``a`` is than ``b``."""
        return pct(self.log)

    def range_pct(self) -> tuple[float, float] | None:
        """Return the interval in %, ``None`` when there is none (a fixed tolerance, too few units)."""
        if self.method == "fixed 5 %" or not (math.isfinite(self.low) and math.isfinite(self.high)):
            return None
        return pct(self.low), pct(self.high)


def pct(log: float) -> float:
    """Return a log ratio as a difference in % (``-100`` for nothing against something)."""
    if log == math.inf:
        return math.inf
    return 100 * math.expm1(log) if log > -math.inf else -100.0


def normalised(results: Sequence[CellResult]) -> dict[int, list[float]]:
    """Return each result's units' throughputs at the run's host speed, by ``id`` of the result."""
    return {id(r): precision.unit_values(r) for r in results}


def judged_cell(result: CellResult, values: list[float], budget: float) -> Cell:
    """Return ``result`` as the verdict weighs it, from its units' normalised throughputs ``values``."""
    by_round: dict[int, list[float]] = {}
    for unit, value in zip(result.units, values, strict=True):
        by_round.setdefault(unit.round, []).append(value)
    rate = sum(values) / len(values) if values else result.throughput_ops_s
    return Cell(result, values, {r: sum(v) / len(v) for r, v in by_round.items()}, rate, budget)


def sure_zone(result: CellResult, budget: float) -> Zone | None:
    """Return where a cell's lag p99 lies against the budget when that needs no interval, else ``None``.

    Far from the budget (by :data:`precision.LAG_CLEAR`) the point estimate settles it;
    without units or with one, too. The pooled p99 of any resample of units lies between
    the lowest and the highest of the units' own p99s (each unit has 1 % of its ticks
    above its p99, so the pool has 1 % above the highest): where they all lie on one side
    of the budget, so does the interval.
    """
    if not result.ok:
        return "failed"
    p99 = result.loop_lag_ms.p99 if result.loop_lag_ms is not None else math.inf
    if not math.isfinite(p99) or p99 >= budget * precision.LAG_CLEAR:
        return "over"
    if p99 <= budget / precision.LAG_CLEAR:
        return "within"
    own = [u.lag_p99_ms for u in result.units if u.lag_histogram]
    known = [p for p in own if p is not None]
    if len(own) < 2:
        return "within" if p99 <= budget else "over"
    if len(known) == len(own) and max(known) <= budget and p99 <= budget:
        return "within"
    if len(known) == len(own) and min(known) > budget and p99 > budget:
        return "over"
    return None


def interval_zone(result: CellResult, budget: float) -> tuple[Zone, tuple[float, float] | None]:
    """Return where a cell's lag p99 lies against the budget by its bootstrap interval over units.

    Within: the interval lies under the budget; over: above it; near: it straddles it.
    """
    p99 = result.loop_lag_ms.p99 if result.loop_lag_ms is not None else math.inf
    low, high = precision.lag_p99_interval(result.units)
    if not (math.isfinite(low) and math.isfinite(high)):
        return ("within" if p99 <= budget else "over"), None
    if high <= budget:
        return "within", (low, high)
    return ("over" if low > budget else "near"), (low, high)


def ratio(a: Cell, b: Cell) -> Ratio:
    """Return ``log(a / b)`` with its interval, as well as the units allow.

    Paired by round where they share two rounds or more; else Welch's interval where each
    has two units or more; else a fixed tolerance (one unit has no spread to measure).
    """
    shared = [r for r in a.rounds if r in b.rounds and a.rounds[r] > 0 and b.rounds[r] > 0]
    if len(shared) >= 2:
        found = mean_interval([math.log(a.rounds[r] / b.rounds[r]) for r in shared], CONFIDENCE)
        return Ratio(found.estimate, found.low, found.high, "paired by round", len(shared))
    logs_a = [math.log(v) for v in a.values if v > 0]
    logs_b = [math.log(v) for v in b.values if v > 0]
    if len(logs_a) >= 2 and len(logs_b) >= 2:
        found = welch_interval(logs_b, logs_a, CONFIDENCE)
        return Ratio(found.estimate, found.low, found.high, "welch", found.units)
    if a.rate <= 0 or b.rate <= 0:
        log = 0.0 if a.rate <= 0 and b.rate <= 0 else (-math.inf if a.rate <= 0 else math.inf)
    else:
        log = math.log(a.rate / b.rate)
    reach = -math.log1p(-NOISE)
    return Ratio(log, log - reach, log + reach, "fixed 5 %", 0)


def speedups(cells: Iterable[Cell]) -> list[tuple[float, int, int]]:
    """Return, per loop, the throughput at the highest concurrency over that at the lowest."""
    levels: dict[str, dict[int, float]] = {}
    for c in cells:
        if c.result.ok:
            mine = levels.setdefault(c.result.loop, {})
            mine[c.result.concurrency] = max(mine.get(c.result.concurrency, 0.0), c.rate)
    found = []
    for by_level in levels.values():
        low, high = min(by_level), max(by_level)
        if high >= 2 and high > low and by_level[low] > 0:
            found.append((by_level[high] / by_level[low], low, high))
    return found


def no_speedup(cells: Iterable[Cell]) -> tuple[float, int, int] | None:
    """Return the first loop's speed-up below :data:`GIL_SPEEDUP`, with its concurrencies; else ``None``."""
    return next((s for s in speedups(cells) if s[0] < GIL_SPEEDUP), None)


def best_speedup(cells: Iterable[Cell]) -> float:
    """Return the highest speed-up over the loops (0 where none was measured)."""
    return max((s[0] for s in speedups(cells)), default=0.0)


def blocked_share(cells: Iterable[CellResult]) -> float:
    """Return the largest share of a window in which the loop could not run the probe."""
    return max((c.blocked_s / c.elapsed_s for c in cells if c.ok and c.elapsed_s > 0), default=0.0)


def overhead(cell: CellResult) -> tuple[float, float, float] | None:
    """Return the share of a call's p50 spent reaching a worker and back, that time, and the call's."""
    parts = cell.breakdown_ms
    if parts is None:
        return None
    around = parts.queue_wait.p50 + parts.hop_back.p50
    total = around + parts.run.p50
    return (around / total, around, total) if total > 0 else None


def pool_size(cell: CellResult) -> int | None:
    """Return the size of the pool the cell ran on, as its strategy recorded it; ``None``: unknown."""
    size = cell.details.get("max_workers")
    return size if isinstance(size, int) and not isinstance(size, bool) and size > 0 else None
