"""What open-loop load reads as: the rate table, the capacity table, the rate verdict and the knee's points.

Written once for every frame, as :mod:`offbench.render.texts` is for the closed-loop
tables: :mod:`offbench.render.view` assembles these cells into tables and sections, the
terminal chart (:class:`offbench.render.chart.KneeChart`) and the HTML report's
(:func:`offbench.render.plots.knee_figure`) draw :func:`knee`'s points.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from offbench.formatting import (
    format_ms,
    format_offered,
    format_rate,
    loop_label,
    strategy_label,
    workload_label,
)
from offbench.model.params import Params
from offbench.model.rates import LOST_SHARE, Capacity, RateFigures, RateRuling, RateVerdict
from offbench.model.results import CellResult, RunResult
from offbench.render.texts import BEST_MARK, Cell, Tone, lag_tone

RATE_COLUMNS: tuple[tuple[str, Literal["left", "right"]], ...] = (
    ("strategy", "left"), ("loop", "left"), ("offered/s", "right"), ("achieved/s", "right"),
    ("lat p50", "right"), ("lat p99", "right"), ("lat p99.9", "right"), ("lat max", "right"),
    ("lag p99", "right"), ("in flight", "right"), ("sustained", "right"),
)
"""The header and justification of each column of a workload's rate table."""
SUSTAINED, NOT_SUSTAINED = "✓", "✗"
CAPACITY_HEADERS = ("strategy", "loop", "sustains", "lat p99", "lag p99", "next rate tried", "units")


def rate_rows(run: RunResult, workload: str, params: Params | None = None) -> list[CellResult]:
    """Return one workload's rate cells in table order: rate, strategy, pool size, loop, interpreter."""
    strategy_order = {name: i for i, name in enumerate(run.settings.strategies)}
    loop_order = {name: i for i, name in enumerate(run.settings.loops)}
    python_order = {python.label: i for i, python in enumerate(run.settings.pythons)}
    rows = [r for r in run.results if r.rate is not None and r.workload == workload
            and (params is None or r.params == params)]
    rows.sort(key=lambda r: (r.rate or 0.0, strategy_order.get(r.strategy, len(strategy_order)),
                             r.max_workers or 0, loop_order.get(r.loop, len(loop_order)),
                             python_order.get(r.python, len(python_order))))
    return rows


def best_of(run: RunResult, row: CellResult) -> bool:
    """Return whether the rate verdict named ``row`` the best at its rate and loop."""
    return any(v.workload == row.workload and v.params == row.params and v.python == row.python
               and ruling.rate == row.rate and ruling.loop == row.loop
               and ruling.best == strategy_label(row.strategy, row.max_workers)
               for v in run.rate_verdicts for ruling in v.rulings)


def rate_cells(row: CellResult, best: bool, slo_ms: float, budget_ms: float) -> list[Cell]:
    """Return the cells of one rate row: latency toned against the SLO, lag against the budget."""
    label = strategy_label(row.strategy, row.max_workers)
    head = [Cell(f"{label} {BEST_MARK}" if best else label), Cell(loop_label(row.loop, row.python)),
            Cell(format_offered(row.rate or 0.0))]
    found = row.open_loop
    if not row.ok or found is None:
        status = Cell(row.status, "bad" if row.status == "error" else "warn")
        return [*head, status, *[Cell("")] * (len(RATE_COLUMNS) - 4)]
    latency, lag = found.latency_ms, row.loop_lag_ms
    in_flight = str(found.in_flight_max) + (f" ({found.refused} refused)" if found.refused else "")
    return [
        *head,
        Cell(format_rate(found.achieved_ops_s)),
        Cell(format_ms(latency.p50) if latency else "–"),
        Cell(format_ms(latency.p99), slo_tone(latency.p99, slo_ms)) if latency else Cell("–"),
        Cell(format_ms(latency.p999) if latency else "–"),
        Cell(format_ms(latency.max) if latency else "–"),
        Cell(format_ms(lag.p99), lag_tone(lag.p99, budget_ms)) if lag else Cell("–"),
        Cell(in_flight, "warn" if found.refused else ""),
        Cell(SUSTAINED, "good") if found.sustained else Cell(not_sustained(found), "bad"),
    ]


def not_sustained(found: RateFigures) -> str:
    """Return why a rate was not sustained, in a table cell: ``✗ +139 ms/s``, ``✗ refused``."""
    said = [f"+{found.latency_growth_ms_s:.0f} ms/s"] if found.latency_growth_ms_s >= 1 else []
    if found.refused > LOST_SHARE * max(found.issued, 1):
        said.append("refused")
    if found.unfinished > LOST_SHARE * max(found.issued, 1):
        said.append("unfinished")
    return " ".join([NOT_SUSTAINED, *said])


def slo_tone(ms: float, slo_ms: float) -> Tone:
    """Return a latency p99's tone against the SLO: within it, or over."""
    return "good" if ms <= slo_ms else "bad"


def rate_title(label: str) -> str:
    """Return the rate table's title after the workload's label."""
    return f"{label}: open loop, calls started on a schedule"


def rate_caption(run: RunResult) -> str:
    """Return the legend under a rate table."""
    s = run.settings
    bound = f"at most {s.max_in_flight} in flight, more refused" if s.max_in_flight else "in flight unbounded"
    return (
        f"times in ms, each call's from its intended start (a late start counts: corrected for coordinated "
        f"omission) · {s.arrivals} arrivals, {bound} · {BEST_MARK} the lowest latency p99 of those within "
        f"the {s.slo_ms:g} ms SLO and the {s.lag_budget_ms:g} ms lag budget at that rate · in flight: the "
        f"most calls at once · sustained {SUSTAINED}: latency did not grow through the window, at most 1 % "
        f"of the calls refused or unfinished ({NOT_SUSTAINED}: it grew so much per second)"
    )


def capacity_rows(run: RunResult, workload: str, params: Params) -> list[list[Cell]]:
    """Return the capacity table's rows of one workload: one per strategy, pool size, loop, interpreter."""
    return [capacity_cells(found, run.settings.slo_ms, run.settings.lag_budget_ms) for found in run.capacity
            if found.workload == workload and found.params == params]


def capacity_cells(found: Capacity, slo_ms: float, budget_ms: float) -> list[Cell]:
    """Return one strategy's capacity: the rate it met, its figures there, and the rate it did not."""
    head = [Cell(strategy_label(found.strategy, found.max_workers)),
            Cell(loop_label(found.loop, found.python))]
    lowest = min((p.rate for p in found.probes), default=0.0)
    if found.rate_ops_s is None:
        rate = Cell(f"< {format_offered(lowest)}/s", "bad")
    else:
        beyond = "≥ " if found.limit_ops_s is None else ""
        rate = Cell(f"{beyond}{format_offered(found.rate_ops_s)}/s", "good")
    latency = found.latency_p99_ms
    lag = found.lag_p99_ms
    limit = (f"{format_offered(found.limit_ops_s)}/s: {found.limited_by}" if found.limit_ops_s is not None
             else "none failed")
    return [*head, rate,
            Cell(format_ms(latency), slo_tone(latency, slo_ms)) if latency is not None else Cell("–"),
            Cell(format_ms(lag), lag_tone(lag, budget_ms)) if lag is not None else Cell("–"),
            Cell(limit, "dim"), Cell(str(len(found.probes)))]


def capacity_title(run: RunResult) -> str:
    """Return the capacity table's title: what its rates are the highest of."""
    s = run.settings
    return (f"capacity: the highest rate each strategy sustains with latency p99 ≤ {s.slo_ms:g} ms and "
            f"loop lag p99 ≤ {s.lag_budget_ms:g} ms")


CAPACITY_CAPTION = (
    "--rate auto: rates stepped by 4 from the closed loop's c=1 throughput, then bisected to 10 %, one "
    "short unit each; the capacity lies between the rate it sustained and the next rate tried"
)


def verdict_heading(run: RunResult) -> str:
    """Return the rate verdict's heading: the limits a strategy must keep at a rate."""
    s = run.settings
    return (f"Rate verdict (latency p99 ≤ {s.slo_ms:g} ms from intended start, "
            f"loop lag p99 ≤ {s.lag_budget_ms:g} ms)")


def verdict_label(verdict: RateVerdict) -> str:
    """Return what a rate verdict is about: the workload, and the interpreter when one was chosen."""
    label = workload_label(verdict.workload, verdict.params)
    return f"{label} on Python {verdict.python}" if verdict.python else label


def verdict_lines(ruling: RateRuling) -> list[Cell]:
    """Return the lines under a ruling: each strategy that did not meet it, and why."""
    return [Cell(f"{strategy_label(c.strategy, c.max_workers)}: {c.why}: {c.reason}", "dim")
            for c in ruling.candidates if c.why != "met"]


@dataclass(frozen=True)
class KneePoint:
    """One point of the knee: a series' latency percentiles at one offered rate."""

    rate: float
    p50: float | None
    p99: float
    p999: float | None
    sustained: bool


@dataclass(frozen=True)
class KneeSeries:
    """One line of the knee: a strategy (at a pool size) on a loop, its points by rising rate."""

    label: str
    strategy: str
    max_workers: int | None
    loop: str
    points: tuple[KneePoint, ...]
    capacity: float | None = None
    """Its capacity, where ``--rate auto`` searched it."""


def knee(run: RunResult, workload: str, params: Params) -> list[KneeSeries]:
    """Return the knee's lines for one workload: latency against offered rate, a line per strategy and loop.

    From the rate cells where the run has them, else from the capacity search's units (p99 only).
    """
    series: dict[Where, list[KneePoint]] = {}
    for row in rate_rows(run, workload, params):
        found = row.open_loop
        if row.ok and found is not None and found.latency_ms is not None and row.rate is not None:
            lat = found.latency_ms
            point = KneePoint(row.rate, lat.p50, lat.p99, lat.p999, found.sustained)
            series.setdefault((row.strategy, row.max_workers, row.loop, row.python), []).append(point)
    capacities = {(c.strategy, c.max_workers, c.loop, c.python): c for c in run.capacity
                  if c.workload == workload and c.params == params}
    if not series:
        for where, searched in capacities.items():
            points = [KneePoint(p.rate, None, p.latency_p99_ms, None, p.sustained)
                      for p in searched.probes if p.latency_p99_ms is not None]
            if points:
                series[where] = sorted(points, key=lambda point: point.rate)
    one_loop = len({(loop, python) for _, _, loop, python in series}) < 2
    return [
        KneeSeries(
            label=strategy_label(strategy, size) + ("" if one_loop else f" · {loop_label(loop, python)}"),
            strategy=strategy, max_workers=size, loop=loop_label(loop, python), points=tuple(points),
            capacity=capacities[where].rate_ops_s if where in capacities else None,
        )
        for where, points in series.items()
        for strategy, size, loop, python in [where]
    ]


Where = tuple[str, int | None, str, str]
"""A knee's line: strategy, pool size, loop, interpreter."""


def has_rates(run: RunResult, workload: str, params: Params) -> bool:
    """Return whether a workload has rate cells or capacities to show."""
    return bool(rate_rows(run, workload, params)) or any(
        c.workload == workload and c.params == params for c in run.capacity)
