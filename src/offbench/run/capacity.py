"""``--rate auto``: the capacity table, each strategy's highest rate within the SLO and the lag budget.

What a server's owner asks first: how much traffic does each way of calling my blocking
function carry before its latency or my event loop gives? For each candidate (a
workload × strategy × pool size × loop × interpreter, :func:`offbench.plan.matrix.capacity_cells`)
a search offers rates in short units, one worker process each, as a rate cell's units
are measured (:mod:`offbench.measure.arrivals`). A rate *meets* the load when the unit
sustained it (the backlog did not grow), its latency p99 from intended start is within
``slo_ms`` and its loop lag p99 within ``lag_budget_ms``.

The search starts from the candidate's closed-loop throughput at concurrency 1 when the
run measured it (one call at a time: a rate any strategy should carry), else
:data:`START_RATE`; multiplies it by :data:`STEP` while the rate is met (divides while it
is not, down to :data:`MIN_RATE`), then bisects the bracket on a log scale until its ends
are within :data:`RESOLUTION` of each other or :data:`MAX_PROBES` units were spent: from a
start 10 to 1000 times off, 7 to 11 units. Each rate is tried once: near the knee a unit's
noise can still put the answer a step either way, which the bracket (``rate_ops_s`` met,
``limit_ops_s`` not) shows.

The search runs units through a ``probe`` the runner gives it, so it starts no process
itself and is tested with a fake one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence

import msgspec

from offbench.formatting import strategy_label
from offbench.measure.wire import Measurement
from offbench.model.cells import CellSpec
from offbench.model.rates import Capacity, CapacityProbe
from offbench.model.results import CellResult, Unit
from offbench.stats import percentile

Probe = Callable[[CellSpec], Measurement | CellResult]
"""Measures one unit of a rate cell: its measurement, or the failed result."""

START_RATE = 10.0
"""Where the search starts without a closed-loop measurement of the candidate, calls/s."""
MIN_RATE = 1.0
"""Below this it stops descending: the candidate carries no useful load within the limits."""
MAX_RATE = 100_000.0
"""Above this it stops climbing: beyond what one event loop starts calls at."""
STEP = 4.0
"""The factor the search moves by until it brackets the capacity (a bracket of 4 bisects to 10 % in 4)."""
RESOLUTION = 1.1
"""The bracket's ends within this ratio end the bisection (10 %: a unit's noise near the knee)."""
MAX_PROBES = 16
KEPT_UP = 0.9
"""A unit that completed less than this share of the rate clearly fell behind: its failure needs no second."""
"""Units a candidate gets at most."""


def judge(rate: float, found: Measurement | CellResult, slo_ms: float, budget_ms: float) -> CapacityProbe:
    """Return what one unit at ``rate`` says: whether it met the load, with its figures."""
    if isinstance(found, CellResult):
        return CapacityProbe(rate=rate, met=False, sustained=False, achieved_ops_s=0.0, latency_p99_ms=None,
                             lag_p99_ms=None, error=(found.error or found.status).splitlines()[0])
    latency = percentile(sorted(found.latencies_ms), 99) if found.latencies_ms else None
    lag = percentile(sorted(found.lags_ms), 99) if found.lags_ms else None
    sustained = found.arrivals is not None and found.arrivals.sustained
    met = (sustained and latency is not None and latency <= slo_ms
           and lag is not None and lag <= budget_ms)
    return CapacityProbe(rate=rate, met=met, sustained=sustained, achieved_ops_s=found.throughput_ops_s,
                         latency_p99_ms=latency, lag_p99_ms=lag)


def limited_by(found: CapacityProbe, slo_ms: float, budget_ms: float) -> str:
    """Return why a probe did not meet the load, in the capacity table's words."""
    if found.error is not None:
        return "error"
    if not found.sustained:
        return "not sustained"
    if found.lag_p99_ms is None or found.lag_p99_ms > budget_ms:
        return "loop lag over the budget"
    if found.latency_p99_ms is None or found.latency_p99_ms > slo_ms:
        return "latency p99 over the SLO"
    return ""


def search(cell: CellSpec, probe: Probe, slo_ms: float, budget_ms: float, start: float = START_RATE,
           on_probe: Callable[[CellSpec, int], None] | None = None) -> Capacity:
    """Return ``cell``'s capacity: the highest rate it met, found by steps of :data:`STEP`, then bisection."""
    probes: list[CapacityProbe] = []

    def once(rate: float) -> CapacityProbe:
        spec = msgspec.structs.replace(cell, rate=rate)
        if on_probe is not None:
            on_probe(spec, len(probes))
        found = judge(rate, probe(spec), slo_ms, budget_ms)
        probes.append(found)
        return found

    def attempt(rate: float) -> CapacityProbe:
        found = once(rate)
        behind = found.achieved_ops_s < KEPT_UP * rate
        if found.met or behind or found.error is not None or len(probes) >= MAX_PROBES:
            return found
        again = once(rate)
        return again if again.met else found

    met: CapacityProbe | None = None
    missed: CapacityProbe | None = None

    def settle(rate: float) -> None:
        """Attempt ``rate``: it becomes the highest rate met so far, or the lowest missed."""
        nonlocal met, missed
        found = attempt(rate)
        if found.met:
            met = found
        else:
            missed = found

    rate = _nice(min(MAX_RATE, max(MIN_RATE, start)))
    settle(rate)
    step = STEP if met is not None else 1 / STEP
    while len(probes) < MAX_PROBES and (met is None or missed is None):
        previous, rate = rate, _nice(min(MAX_RATE, max(MIN_RATE, rate * step)))
        if rate == previous:
            break
        settle(rate)
    while met is not None and missed is not None and len(probes) < MAX_PROBES:
        if missed.rate / met.rate <= RESOLUTION:
            break
        rate = _nice(math.sqrt(met.rate * missed.rate))
        if rate in (met.rate, missed.rate):
            break
        settle(rate)
    return Capacity(
        workload=cell.workload, params=cell.params, strategy=cell.strategy, max_workers=cell.max_workers,
        loop=cell.loop, python=cell.python,
        rate_ops_s=met.rate if met else None,
        limit_ops_s=missed.rate if missed else None,
        limited_by=limited_by(missed, slo_ms, budget_ms) if missed else "",
        latency_p99_ms=met.latency_p99_ms if met else None,
        lag_p99_ms=met.lag_p99_ms if met else None,
        probes=probes,
    )


def _nice(rate: float) -> float:
    """Return ``rate`` to three significant figures: rates a reader can repeat with ``--rate``."""
    return float(f"{rate:.3g}")


def start_rates(measured: Iterable[tuple[CellSpec, Sequence[Unit]]]) -> dict[str, float]:
    """Return each candidate's mean closed-loop throughput at concurrency 1, by :func:`candidate_key`."""
    return {candidate_key(cell): sum(u.throughput_ops_s for u in units) / len(units)
            for cell, units in measured
            if cell.rate is None and cell.concurrency == 1 and units
            and sum(u.throughput_ops_s for u in units) > 0}


def candidate_key(cell: CellSpec | CellResult) -> str:
    """Return what names a candidate of the search: the cell's identity without its load."""
    return msgspec.json.encode([cell.workload, cell.params, strategy_label(cell.strategy, cell.max_workers),
                                cell.loop, cell.python]).decode()


def search_all(cells: Sequence[CellSpec], probe: Probe, slo_ms: float, budget_ms: float,
               starts: Mapping[str, float], found: list[Capacity],
               on_probe: Callable[[CellSpec, int], None] | None = None) -> None:
    """Search each candidate in turn; append each capacity to ``found`` as it comes (kept if interrupted)."""
    for cell in cells:
        start = starts.get(candidate_key(cell), START_RATE)
        found.append(search(cell, probe, slo_ms, budget_ms, start, on_probe))
