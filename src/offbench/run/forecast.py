"""What the rest of a run will take: the units each cell will likely get, and their seconds.

The progress bar's ETA and ``--time-budget`` read it. A cell's likely units follow the
rules that stop it (:func:`offbench.judge.precision.settled`), projected from its units so
far: enough for its throughput's 95 % t-interval to reach the effort's precision at the
spread seen (until it has two units, the mean of what the other cells' spreads would give
it; of what prior spreads would, until any cell has two), and enough pooled probe ticks for its lag p99
unless that is already clear of the lag budget. A unit costs what the cell's last units
took (before its first, what the run's measured cells' first units took); the runner's
own work between units is added in the proportion the rounds so far showed.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Sequence
from typing import NamedTuple

from offbench.judge.precision import LAG_CLEAR
from offbench.model.settings import RunSettings
from offbench.run.state import CellState, normalised_values
from offbench.stats import cv, t_quantile

PRIOR_CVS = (0.0003, 0.0011, 0.0023, 0.0039, 0.0064, 0.0109, 0.0193, 0.0278, 0.0439, 0.0765)
"""The spreads of two units assumed until some cell of the run has two: the 5th, 15th, … 95th
percentiles of 924 closed-loop cells' first two units (benchmarks/QUALITY.md's runs of
2026-12-02: ten quick and five default runs of the four built-in workloads). A cell's likely
units are the mean of what each would give it: one typical spread (5 %) made every cell of a
quick run take its cap, and the ETA of the run's first round a quarter too long (QUALITY.md 8c)."""
PRIOR_CV = statistics.median(PRIOR_CVS)
"""The single spread :func:`likely_units` assumes when asked without one."""
UNIT_OVERHEAD_S = 0.06
"""A unit's cost beyond its warm-up and window (worker start, reference, report), for estimates."""


class Outlook(NamedTuple):
    """What the runner expects of the rest of the rounds."""

    units: int
    """Units still to measure, every active cell up to its likely stop."""
    seconds: float
    """Their likely time, seconds, with the runner's own work between them."""


def outlook(states: Sequence[CellState], settings: RunSettings, rounds_s: float | None = None) -> Outlook:
    """Return the units still to measure, and their time.

    ``rounds_s``, the time the rounds have taken so far, scales the units' own times up by
    the share the runner's work between units took of it.
    """
    values = normalised_values(states)
    spreads = [spread for spread in map(cv, values) if spread is not None]
    first = [s.walls[0] for s in states if s.walls]
    first_wall = statistics.median(first) if first else None
    units = 0
    seconds = 0.0
    for state, found in zip(states, values, strict=True):
        if state.active:
            more = max(0, expected_units(state, settings, spreads, found) - len(state.units))
            units += round(more)
            seconds += more * unit_seconds(state, settings, first_wall)
    walls = sum(sum(s.walls) for s in states)
    if rounds_s is not None and walls > 0:
        seconds *= max(1.0, rounds_s / walls)
    return Outlook(units, seconds)


def expected_units(state: CellState, settings: RunSettings, spreads: Sequence[float],
                   values: Sequence[float]) -> float:
    """Return how many units ``state`` will get on average, from its units and the run's other cells.

    A cell with a spread of its own is projected from it (:func:`likely_units`). One without
    gets the mean of what each spread seen in the run (``spreads``) would give it: the
    cells of a run differ (a sleep's units agree to 1 %, pure Python's scatter by 9 %), and
    the median spread's count overstated the units of a run of mixed cells by a fifth
    (QUALITY.md 8c). Before any cell has two units, :data:`PRIOR_CVS` stand in.
    """
    if cv(values) is not None:
        return likely_units(state, settings, None, values)
    return statistics.fmean(likely_units(state, settings, spread, values) for spread in spreads or PRIOR_CVS)


def likely_units(state: CellState, settings: RunSettings, typical: float | None = None,
                 values: Sequence[float] | None = None) -> int:
    """Return how many units ``state`` will probably get, from its units so far.

    ``values`` are its units' throughputs as the stop rule reads them (normalised to the
    host), its raw ones if not given. A cell with fewer than two has no spread of its own
    yet: ``typical`` (one of the other cells' spreads, :func:`expected_units`) stands in, or
    :data:`PRIOR_CV` before any cell has two.
    """
    effort = settings.effort
    if settings.rounds is not None:
        return settings.rounds
    found = [u.throughput_ops_s for u in state.units] if values is None else list(values)
    least = max(effort.min_units, len(state.units))
    lags = [u.lag_p99_ms for u in state.units if u.lag_p99_ms is not None]
    if lags and min(lags) >= settings.lag_budget_ms * LAG_CLEAR:
        return least  # over the budget whatever its throughput: it stops when first judged
    spread = cv(found)
    spread = (PRIOR_CV if typical is None else typical) if spread is None else spread
    wanted = units_for_precision(spread, effort.precision_pct, least, effort.max_units)
    ticks = [u.ticks for u in state.units]
    if ticks and not (lags and max(lags) <= settings.lag_budget_ms / LAG_CLEAR):
        wanted = max(wanted, math.ceil(effort.ticks / max(1.0, statistics.fmean(ticks))))
    return min(effort.max_units, max(least, wanted))


def units_for_precision(cv: float, precision_pct: float, least: int, most: int) -> int:
    """Return the fewest units (``least`` to ``most``) whose mean is known to ±``precision_pct`` (95 %).

    The half-width of that interval is t(n − 1) · cv / √n of the mean; with two units t is
    12.7, with five 2.8: a cell of 5 % spread needs 3 units for ±15 %, 5 for ±10 % (4 gives 7.9 %).
    """
    for n in range(max(2, least), most + 1):
        if t_quantile(n - 1) * cv / math.sqrt(n) * 100 <= precision_pct:
            return n
    return most


def unit_seconds(state: CellState, settings: RunSettings, first_wall: float | None = None) -> float:
    """Return what ``state``'s next unit will likely take: its last units' median, else an estimate.

    A cell not yet measured costs what the run's measured cells' first units took
    (``first_wall``, their median), when any has: a unit's start-up, warm-up and report
    vary with the machine far more than the window, and the constant estimate below was
    two thirds over on this project's machine (QUALITY.md 8c).
    """
    if state.walls:
        return statistics.median(state.walls[-3:])
    if first_wall is not None:
        return first_wall
    window = state.spec.duration_s if state.spec.duration_s is not None else settings.effort.min_window_s
    return window + (state.spec.warmup_s or 0.05) + UNIT_OVERHEAD_S


def fits(states: Sequence[CellState], settings: RunSettings, began: float) -> bool:
    """Return whether another round fits the time budget (always, without one)."""
    if settings.time_budget_s is None:
        return True
    next_round = sum(unit_seconds(s, settings) for s in states if s.active)
    return time.monotonic() - began + next_round <= settings.time_budget_s
