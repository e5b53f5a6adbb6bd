"""The matrix: the cells a run's settings expand to, and what a run of them would be."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from offbench import strategies
from offbench.formatting import format_bytes, workload_label
from offbench.model.cells import CellSpec
from offbench.model.params import Params
from offbench.model.settings import RATE_CALLS, RATE_WINDOW_CAP, RunSettings, WorkloadSpec, rate_window_s

T = TypeVar("T")

SIZED = ("to-thread",)
"""The strategies :func:`cells` also sizes to the highest concurrency (``sized_pools``): the reused
pool that keeps context variables, which the verdict prefers when it is as fast."""


def cells(settings: RunSettings) -> list[CellSpec]:
    """Expand settings into cells: workload × strategy × executor size × loop × interpreter × load.

    The load is each concurrency level, then each offered rate (a rate cell, concurrency 0).
    Strategies without a pool of their own (``direct``, ``executor-per-call``) run once,
    whatever executor sizes are swept. With ``sized_pools``, where the highest concurrency
    exceeds the default executor's threads and no size was chosen, ``to-thread`` is also
    measured with a default executor of that many threads, at the concurrencies above the
    default size: the fix the verdict can then name with a measurement.
    """
    found = [
        _cell(settings, w.name, w.params, strategy, size, loop, python, level)
        for w, strategy, size, loop, python in _candidates(settings)
        for level in settings.concurrency
    ]
    rated = [
        _cell(settings, w.name, w.params, strategy, size, loop, python, 0, rate)
        for w, strategy, size, loop, python in _candidates(settings)
        for rate in settings.rate
    ]
    return found + sized_cells(settings) + rated


def capacity_cells(settings: RunSettings) -> list[CellSpec]:
    """Return what ``--rate auto`` searches: one rate cell (its rate still unset) per candidate.

    A candidate is a workload × strategy × executor size × loop × interpreter, as in :func:`cells`.
    """
    if not settings.rate_auto:
        return []
    return [_cell(settings, w.name, w.params, strategy, size, loop, python, 0, None, rated=True)
            for w, strategy, size, loop, python in _candidates(settings)]


def _candidates(settings: RunSettings) -> list[tuple[WorkloadSpec, str, int | None, str, str]]:
    return [
        (w, strategy, size, loop, python)
        for w in settings.workloads
        for strategy in settings.strategies
        for size in _unique(settings.max_workers if strategies.get(strategy).sized else [None])
        for loop in settings.loops
        for python in [i.label for i in settings.pythons] or [""]
    ]


def sized_cells(settings: RunSettings) -> list[CellSpec]:
    """Return the cells ``sized_pools`` adds: :data:`SIZED` strategies sized to the highest concurrency."""
    default = strategies.default_executor_workers()
    top = max(settings.concurrency, default=0)
    if not settings.sized_pools or settings.max_workers != [None] or top <= default:
        return []
    return [
        _cell(settings, w.name, w.params, strategy, top, loop, python, level)
        for w in settings.workloads
        for strategy in settings.strategies if strategy in SIZED
        for loop in settings.loops
        for python in [i.label for i in settings.pythons] or [""]
        for level in settings.concurrency if level > default
    ]


def _cell(settings: RunSettings, workload: str, params: Params, strategy: str, size: int | None,
          loop: str, python: str, level: int, rate: float | None = None, rated: bool = False) -> CellSpec:
    open_loop = rate is not None or rated
    return CellSpec(
        workload=workload,
        params=params,
        strategy=strategy,
        loop=loop,
        concurrency=level,
        max_workers=size,
        duration_s=settings.duration_s,
        warmup_s=settings.warmup_s,
        probe_interval_ms=settings.probe_interval_ms,
        stall_threshold_ms=settings.stall_threshold_ms,
        evidence_threshold_ms=settings.evidence_threshold_ms,
        effort=settings.effort,
        utilisation=settings.utilisation,
        payload_bytes=settings.payload_bytes,
        dask_scheduler=settings.dask_scheduler if strategy == "dask" else None,
        python=python,
        rate=rate,
        arrivals=settings.arrivals if open_loop else "fixed",
        max_in_flight=settings.max_in_flight if open_loop else None,
        seed=settings.seed if open_loop else 0,
    )


def rate_lines(settings: RunSettings) -> list[tuple[str, str]]:
    """Return what the outline says of rate cells and the capacity search; nothing without ``--rate``."""
    if not settings.rate and not settings.rate_auto:
        return []
    bound = (f"at most {settings.max_in_flight} in flight (more are refused)" if settings.max_in_flight
             else "in flight unbounded")
    slo = f"latency p99 SLO {settings.slo_ms:g} ms from each call's intended start"
    lines = []
    if settings.rate:
        rates = ", ".join(f"{rate:g}" for rate in settings.rate)
        effort = settings.effort
        most = RATE_WINDOW_CAP * effort.min_window_s
        window = (f"{settings.duration_s:g} s" if settings.duration_s is not None else
                  f"{RATE_CALLS} calls, {effort.min_window_s:g} to {most:g} s")
        lines.append(("rates", f"{rates} calls/s, {settings.arrivals} arrivals, {bound}; windows of "
                               f"{window}; {slo}"))
    if settings.rate_auto:
        searched = len(capacity_cells(settings))
        lines.append(("capacity", f"{searched} searched: each one's highest rate with latency p99 ≤ "
                                  f"{settings.slo_ms:g} ms and lag p99 ≤ {settings.lag_budget_ms:g} ms "
                                  f"({SEARCH_PROBES[0]} to {SEARCH_PROBES[1]} short units each; "
                                  f"{settings.arrivals} arrivals, {bound})"))
    return lines


def _unique(items: Sequence[T]) -> list[T]:
    return list(dict.fromkeys(items))


UNIT_OVERHEAD_S = 0.06
"""Rough cost of a unit beyond its warm-up and window (worker start, speed reference, report)."""
WARMUP_GUESS_S = 0.03
"""Rough warm-up of a fast call, for estimates before anything is measured."""


SEARCH_PROBES = (6, 16)
"""Rough least and most short units the capacity search (``--rate auto``) takes per candidate."""
SEARCH_RATE_GUESS = 100.0
"""A rate typical of the search's units, whose window sizes them in estimates."""


def estimate_s(settings: RunSettings, matrix: Sequence[CellSpec]) -> tuple[float, float]:
    """Return the least and the most a run of the cells of ``matrix`` would measure for, seconds.

    Fast calls assumed (a slow one sizes its windows up); the least is every cell
    precise at its first chance, the most every cell at its most units; a time budget
    caps both. A rate cell's window holds :data:`~offbench.model.settings.RATE_CALLS`
    calls; the capacity search (``--rate auto``) comes on top, not capped by the budget.
    """
    effort = settings.effort
    extra = (settings.warmup_s or WARMUP_GUESS_S) + UNIT_OVERHEAD_S

    def window(cell: CellSpec) -> float:
        fixed = settings.duration_s
        return fixed or (rate_window_s(effort, cell.rate) if cell.rate else effort.min_window_s)

    units = sum(window(cell) + extra for cell in matrix)
    fewest = settings.rounds or effort.min_units
    most = settings.rounds or effort.max_units
    low, high = fewest * units, most * units
    if settings.time_budget_s is not None:
        low, high = min(low, settings.time_budget_s), min(high, settings.time_budget_s)
    search = len(capacity_cells(settings)) * (rate_window_s(effort, SEARCH_RATE_GUESS) + extra)
    return low + SEARCH_PROBES[0] * search, high + SEARCH_PROBES[1] * search


def outline(settings: RunSettings) -> tuple[str, list[tuple[str, str]]]:
    """Return what a run of ``settings`` would measure: a headline with the estimate, and named lines."""
    matrix = cells(settings)
    added = sized_cells(settings)
    low, high = estimate_s(settings, matrix)
    source = f" from {settings.scenario}" if settings.scenario else ""
    headline = f"{len(matrix)} cells{source}, measured for about {low:.0f} to {high:.0f} s"
    sizes = ", ".join("default" if n is None else str(n) for n in settings.max_workers)
    effort = settings.effort
    units = (f"{settings.rounds} per cell, fixed" if settings.rounds else
             f"{effort.min_units} to {effort.max_units} per cell, until throughput is known to "
             f"±{effort.precision_pct:g} % and lag p99 from {effort.ticks} ticks")
    window = (f"{settings.duration_s:g} s" if settings.duration_s is not None else
              f"sized per cell: {effort.calls_per_task} calls per task, at least {effort.min_window_s:g} s")
    warmup = f"{settings.warmup_s:g} s" if settings.warmup_s is not None else "until each task's first call"
    lines = [
        ("workloads", ", ".join(workload_label(w.name, w.params) for w in settings.workloads)),
        ("strategies", ", ".join(settings.strategies)),
        ("loops", ", ".join(settings.loops)),
        *([("pythons", ", ".join(f"{p.title} ({p.given})" for p in settings.pythons))]
          if settings.pythons else []),
        ("concurrency", ", ".join(map(str, settings.concurrency)) or "none: rate cells only"),
        *rate_lines(settings),
        ("pool sizes", sizes),
        *([("sized", f"{len(added)} cells of {', '.join(SIZED)} with a default executor of "
                     f"{added[0].max_workers} threads (the fix if the default one caps)")] if added else []),
        ("units", units + " (one worker process per round, cells in a random order each round)"),
        ("window", f"{window}, after a warm-up {warmup}"),
        *([("budget", f"{settings.time_budget_s:g} s: rounds stop when the next would not fit")]
          if settings.time_budget_s is not None else []),
        ("probe", f"every {settings.probe_interval_ms:g} ms; stall above "
                  f"{settings.stall_threshold_ms:g} ms; lag budget {settings.lag_budget_ms:g} ms"),
        *([("payload", f"{format_bytes(settings.payload_bytes)} shipped with every call")]
          if settings.payload_bytes else []),
        *([("fail if", "; ".join(settings.fail_if))] if settings.fail_if else []),
    ]
    return headline, lines
