"""What the rest of a run will take: the units each cell will likely get, and their seconds.

The progress bar's ETA and ``--time-budget`` read it. A cell's likely units follow the
rules that stop it (:func:`offbench.judge.precision.settled`), projected from its units so
far: enough for its throughput's 95 % t-interval to reach the effort's precision at the
spread seen (the other cells' typical spread until it has two units, a prior one until
any cell has), and enough pooled probe ticks for its lag p99 unless that is already
clear of the lag budget. A unit costs
what the cell's last units took; the runner's own work between units is added in the
proportion the rounds so far showed.
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

PRIOR_CV = 0.05
"""The units' spread assumed until some cell of the run has two units: about the median of
the normalised spreads measured on a shared 2-core host (1 % for sleeps to 9 % for
pure-Python work; benchmarks/QUALITY.md section 5)."""
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
    typical = typical_cv(values)
    units = 0
    seconds = 0.0
    for state, found in zip(states, values, strict=True):
        if state.active:
            more = max(0, likely_units(state, settings, typical, found) - len(state.units))
            units += more
            seconds += more * unit_seconds(state, settings)
    walls = sum(sum(s.walls) for s in states)
    if rounds_s is not None and walls > 0:
        seconds *= max(1.0, rounds_s / walls)
    return Outlook(units, seconds)


def likely_units(state: CellState, settings: RunSettings, typical: float | None = None,
                 values: Sequence[float] | None = None) -> int:
    """Return how many units ``state`` will probably get, from its units so far.

    ``values`` are its units' throughputs as the stop rule reads them (normalised to the
    host), its raw ones if not given. A cell with fewer than two has no spread of its own
    yet: the other cells' typical one (``typical``, from :func:`typical_cv`) stands in, or
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


def typical_cv(values: Sequence[Sequence[float]]) -> float | None:
    """Return the median coefficient of variation of the cells with two units or more, if any."""
    known = [spread for spread in map(cv, values) if spread is not None]
    return statistics.median(known) if known else None


def unit_seconds(state: CellState, settings: RunSettings) -> float:
    """Return what ``state``'s next unit will likely take: its last units' median, else an estimate."""
    if state.walls:
        return statistics.median(state.walls[-3:])
    window = state.spec.duration_s if state.spec.duration_s is not None else settings.effort.min_window_s
    return window + (state.spec.warmup_s or 0.05) + UNIT_OVERHEAD_S


def fits(states: Sequence[CellState], settings: RunSettings, began: float) -> bool:
    """Return whether another round fits the time budget (always, without one)."""
    if settings.time_budget_s is None:
        return True
    next_round = sum(unit_seconds(s, settings) for s in states if s.active)
    return time.monotonic() - began + next_round <= settings.time_budget_s
