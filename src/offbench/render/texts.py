"""What each figure of a run reads as, and its tone: the strings every frame shows.

Every format (terminal, markdown, HTML) shows the very same strings, so they are
written once, here, from a :class:`~offbench.model.results.RunResult`; a frame only
lays them out. :mod:`offbench.render.view` assembles them into tables, notes and
sections; the charts take their rows from :func:`workload_rows` so they list the
cells in the tables' order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from offbench.formatting import (
    format_bytes,
    format_ms,
    format_rate,
    load_label,
    loop_label,
    strategy_label,
    workload_label,
)
from offbench.model.params import Params
from offbench.model.results import (
    BUSY_SHARE,
    CellResult,
    RunResult,
    Verdict,
)
from offbench.model.settings import RunSettings

Tone = Literal["", "good", "warn", "bad", "worse", "dim", "strong", "alarm", "accent"]
"""How a piece of text is emphasised, said once so every frame shows the same emphasis.

``good``/``warn``/``bad``: a figure within, near or past its limit (green, yellow, red);
``worse``: what got worse in a comparison, or fails in the new run (red; bold in
markdown, where a CI summary has no colour); ``dim``: a side remark; ``strong``: a
heading or a label; ``alarm``: the run as a whole failed (bold red); ``accent``: a name
to look up (the catalog's). Each frame maps them to its own styling.
"""


@dataclass(frozen=True)
class Cell:
    """A piece of text with its tone: a table cell, or a span of a line."""

    text: str
    tone: Tone = ""


Line = tuple[Cell, ...]
"""A line of text in spans, each with its own tone (a title, a closing line)."""

BEST_MARK = "★"
COLUMNS: tuple[tuple[str, Literal["left", "right"]], ...] = (
    ("strategy", "left"), ("loop", "left"), ("conc", "right"), ("ops/s", "right"), ("×direct", "right"),
    ("op p50", "right"), ("op p99", "right"), ("lag p50", "right"), ("lag p99", "right"),
    ("lag max", "right"), ("avail", "right"),
)
"""The header and justification of each column of a workload's table."""


def workloads_of(run: RunResult) -> list[tuple[str, Params]]:
    """Return each workload (and parameter set) of a run once, in the order measured."""
    seen: dict[str, tuple[str, Params]] = {}
    for r in run.results:
        seen.setdefault(workload_label(r.workload, r.params), (r.workload, r.params))
    return list(seen.values())


def workload_rows(run: RunResult, workload: str, params: Params | None = None) -> list[CellResult]:
    """Return one workload's concurrency cells in table order: concurrency, strategy, pool size, loop.

    Rate cells have tables of their own (:mod:`offbench.render.rates`).
    """
    rows = [
        r for r in run.results
        if r.workload == workload and (params is None or r.params == params) and r.rate is None
    ]
    strategy_order = {name: i for i, name in enumerate(run.settings.strategies)}
    loop_order = {name: i for i, name in enumerate(run.settings.loops)}
    python_order = {python.label: i for i, python in enumerate(run.settings.pythons)}
    rows.sort(
        key=lambda r: (
            r.concurrency,
            strategy_order.get(r.strategy, len(strategy_order)),
            r.max_workers or 0,
            loop_order.get(r.loop, len(loop_order)),
            python_order.get(r.python, len(python_order)),
        )
    )
    return rows


def table_caption(run: RunResult) -> str:
    """Return the legend under a workload table."""
    return (
        f"times in ms · {BEST_MARK} best throughput with loop lag p99 ≤ {run.settings.lag_budget_ms:g} ms"
        " (per loop and concurrency) · ± the 95 % interval of the throughput over the cell's units"
        " (worker processes, one per round), at the run's host speed"
        + (f" · {BUSY_MARK} other programs took over {BUSY_SHARE:.0%} of the CPUs during one of its units"
           if any(busy(r) for r in run.results) else "")
        + (f" · every call shipped {format_bytes(run.settings.payload_bytes)} of argument"
           if run.settings.payload_bytes else "")
        + (f" · {pythons_line(run)}" if run.settings.pythons else "")
    )


def row_cells(row: CellResult, baseline: CellResult | None, best: bool, budget_ms: float) -> list[Cell]:
    """Return the cells of one result row: failures and loop lags toned against the budget."""
    label = strategy_label(row.strategy, row.max_workers)
    head = [Cell(f"{label} {BEST_MARK}" if best else label), Cell(loop_label(row.loop, row.python)),
            Cell(str(row.concurrency))]
    if not row.ok:
        status = Cell(row.status, "bad" if row.status == "error" else "warn")
        return [*head, status, *[Cell("")] * (len(COLUMNS) - 4)]
    lat, lag = row.op_latency_ms, row.loop_lag_ms
    speedup = (
        row.throughput_ops_s / baseline.throughput_ops_s
        if baseline and baseline.throughput_ops_s > 0
        else None
    )
    return [
        *head,
        Cell(format_rate(row.throughput_ops_s) + spread_text(row) + (f" {BUSY_MARK}" if busy(row) else "")),
        Cell(f"{speedup:.2f}×" if speedup is not None else "–"),
        Cell(format_ms(lat.p50) if lat else "–"),
        Cell(format_ms(lat.p99) if lat else "–"),
        Cell(format_ms(lag.p50), lag_tone(lag.p50, budget_ms)) if lag else Cell("–"),
        Cell(format_ms(lag.p99), lag_tone(lag.p99, budget_ms)) if lag else Cell("–"),
        Cell(format_ms(lag.max), lag_tone(lag.max, budget_ms)) if lag else Cell("–"),
        Cell(f"{row.availability:.0%}" if row.availability is not None else "–"),
    ]


BUSY_MARK = "!"
"""Marks a cell some of whose units ran while other programs took a good share of the CPUs."""


def busy(row: CellResult) -> bool:
    """Return whether other programs took over :data:`BUSY_SHARE` of the CPUs in one of ``row``'s units."""
    return any((u.other_cpu or 0.0) > BUSY_SHARE for u in row.units)


def spread_text(row: CellResult) -> str:
    """Return `` ±2.1%``: half the throughput's 95 % interval over units, relative; `` ±?`` with one unit."""
    spread, centre = row.spread, row.normalised_ops_s
    if spread is None or not centre:
        return ""
    if spread.low is None or spread.high is None:
        return " ±?"
    half = 100 * (spread.high - spread.low) / 2 / centre
    return f" ±{half:.0f}%" if half >= 10 else f" ±{half:.1f}%"


def lag_tone(ms: float, budget_ms: float) -> Tone:
    """Return a loop lag's tone: past the budget, past 1 ms (a user can feel it), or fine."""
    return "bad" if ms > budget_ms else ("warn" if ms > 1.0 else "good")


def baseline(rows: Iterable[CellResult], row: CellResult) -> CellResult | None:
    """Return the ok ``direct`` cell at ``row``'s loop, interpreter and concurrency: the ×direct base."""
    for other in rows:
        if (
            other.strategy == "direct"
            and other.loop == row.loop
            and other.python == row.python
            and other.concurrency == row.concurrency
            and other.ok
        ):
            return other
    return None


def best_cells(rows: Iterable[CellResult], budget_ms: float) -> list[CellResult]:
    """Return, per (loop, interpreter, concurrency), the fastest ok cell whose lag p99 is within budget."""
    best: dict[tuple[str, str, int], CellResult] = {}
    for row in rows:
        if not row.ok or row.loop_lag_ms is None or row.loop_lag_ms.p99 > budget_ms:
            continue
        key = (row.loop, row.python, row.concurrency)
        if key not in best or row.throughput_ops_s > best[key].throughput_ops_s:
            best[key] = row
    return list(best.values())


def verdict_label(verdict: Verdict) -> str:
    """Return what a verdict is about: the workload, and the interpreter when one was chosen."""
    label = workload_label(verdict.workload, verdict.params)
    return f"{label} on Python {verdict.python}" if verdict.python else label


def pythons_line(run: RunResult) -> str:
    """Return the interpreters of a ``--python`` run, with their GIL state; "" without ``--python``."""
    if not run.settings.pythons:
        return ""
    shown = [f"{p.label} ({p.implementation}, GIL {'on' if p.gil_enabled else 'off'})"
             for p in run.settings.pythons]
    return "Pythons: " + ", ".join(shown)


def cell_line(result: CellResult) -> str:
    """Return a one-line plain-text account of a finished cell (for logs)."""
    strategy = strategy_label(result.strategy, result.max_workers)
    where = (f"{result.workload} {strategy} {loop_label(result.loop, result.python)} "
             f"{load_label(result.concurrency, result.rate)}")
    if not result.ok:
        return f"{where}: {result.status}: {result.error}"
    lag = result.loop_lag_ms
    lag_text = f", lag p99 {format_ms(lag.p99)} ms" if lag else ""
    return f"{where}: {format_rate(result.throughput_ops_s)} ops/s{lag_text}"


def measuring_lines(settings: RunSettings) -> list[tuple[str, str]]:
    """Return how a run measured: its windows, its units and their rule, its budget and seed."""
    effort = settings.effort
    window = (f"{settings.duration_s:g} s" if settings.duration_s is not None else
              f"sized per cell ({effort.calls_per_task} calls per task, at least {effort.min_window_s:g} s)")
    warmup = (f"{settings.warmup_s:g} s" if settings.warmup_s is not None
              else "until each task's first call returned")
    units = (f"{settings.rounds} per cell" if settings.rounds is not None else
             f"{effort.min_units} to {effort.max_units} per cell, until throughput was known to "
             f"±{effort.precision_pct:g} % and lag p99 from {effort.ticks} ticks")
    return [
        ("window", f"{window}, after a warm-up {warmup}"),
        ("units", f"{units}; one worker process per round, cells in a random order (seed {settings.seed})"),
        *([("time budget", f"{settings.time_budget_s:g} s")] if settings.time_budget_s is not None else []),
    ]


def host_lines(run: RunResult) -> list[tuple[str, Tone]]:
    """Return how steady the machine was, and what the run's precision came to, as closing lines."""
    host = run.host
    if host is None:
        return []
    lines: list[tuple[str, Tone]] = []
    moved = (f"Host: the pure-Python reference took {host.reference_ms:.2f} ms; its speed moved "
             f"{host.drift_pct:.0f} % between rounds and {host.scatter_pct:.0f} % from unit to unit")
    if host.other_cpu_mean is None:
        lines.append((moved, "dim"))
    else:
        lines.append((f"{moved}; other programs took {host.other_cpu_mean:.0%} of the CPUs on average "
                      f"(at most {host.other_cpu_max or 0:.0%})", "dim"))
    if host.busy_cells:
        lines.append((f"{BUSY_MARK} {host.busy_units} units of {host.busy_cells} cells ran while other "
                      f"programs took over {BUSY_SHARE:.0%} of the CPUs: their figures carry that load",
                      "warn"))
    lines.extend(sensitivity_lines(run))
    lines.extend(precision_lines(run))
    return lines


def sensitivity_lines(run: RunResult) -> list[tuple[str, Tone]]:
    """Return how much of the host's speed each workload's throughput followed, as the run measured it."""
    found: dict[str, float] = {}
    for r in run.results:
        if r.ok and r.units and r.host_sensitivity is not None and r.rate is None:
            found.setdefault(r.workload, r.host_sensitivity)
    if not found:
        return []
    followed = [f"{name} {value:.2f}" for name, value in found.items() if value > 0]
    steady = [name for name, value in found.items() if value <= 0]
    parts = []
    if followed:
        parts.append(f"{', '.join(followed)} of it (corrected)")
    if steady:
        parts.append(f"{', '.join(steady)} not beyond noise (left as measured)")
    return [(f"Host speed in the throughputs: {'; '.join(parts)}", "dim")]


def precision_lines(run: RunResult) -> list[tuple[str, Tone]]:
    """Return what the run's precision came to: how many cells were known to the precision asked for."""
    ok = [r for r in run.results if r.ok and r.units]
    if not ok:
        return []
    stops: dict[str, int] = {}
    for r in ok:
        stops[r.stopped] = stops.get(r.stopped, 0) + 1
    units = [len(r.units) for r in ok]
    said = ", ".join(f"{count} {why}" for why, count in stops.items())
    line = (f"Precision: {len(ok)} cells in {len(run.rounds)} rounds, {min(units)} to {max(units)} units "
            f"each ({said}); throughput to ±{run.settings.effort.precision_pct:g} % asked")
    loose = [r for r in ok if r.stopped in ("most units", "time budget")]
    tone: Tone = "dim"
    if loose:
        worst = max(loose, key=_half_width)
        line += (f"; {len(loose)} cells stopped short of it, the loosest "
                 f"{worst.workload} / {strategy_label(worst.strategy, worst.max_workers)} / "
                 f"{loop_label(worst.loop, worst.python)} / {load_label(worst.concurrency, worst.rate)}"
                 f"{spread_text(worst)}")
        tone = "warn" if any(r.stopped == "time budget" for r in loose) else "dim"
    return [(line, tone)]


def _half_width(row: CellResult) -> float:
    spread, centre = row.spread, row.normalised_ops_s
    if spread is None or not centre or spread.low is None or spread.high is None:
        return math.inf
    return (spread.high - spread.low) / 2 / centre


def verdict_details(verdict: Verdict) -> list[str]:
    """Return the lines under a verdict's headline: the judge's own sentences (its confidence first).

    How sure the choice is is said once, by the judge (:mod:`offbench.judge.verdict`),
    which knows which comparison it rests on; its figures are also in ``verdict.confidence``.
    """
    return list(verdict.details)
