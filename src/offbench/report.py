"""Turn results into rich tables for the terminal; the only module that formats numbers.

Nothing here measures or decides what to run: it reads a
:class:`~offbench.results.RunResult` (fresh or loaded from a file) and renders it, so
a saved run renders exactly as it did live.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich import box
from rich.console import Console, JustifyMethod
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from offbench.catalog import Catalog, Entry
from offbench.results import CellResult, RunResult, Verdict
from offbench.settings import RunSettings, cells
from offbench.workloads import Params

BEST_MARK = "★"
CELL_OVERHEAD_S = 0.12
"""Rough cost of a cell beyond its warm-up and window (worker start, imports), for estimates."""


def print_run(run: RunResult, console: Console) -> None:
    """Print one table per workload (and parameter set), the verdicts, then the summary."""
    for workload, params in _workloads(run):
        console.print(workload_table(run, workload, params))
        console.print()
    if run.verdicts:
        console.print(verdicts(run.verdicts))
        console.print()
    console.print(summary(run))


def _workloads(run: RunResult) -> list[tuple[str, Params]]:
    seen: dict[str, tuple[str, Params]] = {}
    for r in run.results:
        seen.setdefault(workload_label(r.workload, r.params), (r.workload, r.params))
    return list(seen.values())


def workload_label(workload: str, params: Params) -> str:
    """Return ``name (key=value, ...)``, leaving out parameters that are empty."""
    shown = ", ".join(f"{k}={v}" for k, v in params.items() if v not in ("", [], {}))
    return f"{workload} ({shown})" if shown else workload


def strategy_label(strategy: str, max_workers: int | None) -> str:
    """Return the strategy's name, with its pool size when one was set: ``to-thread (32)``."""
    return strategy if max_workers is None else f"{strategy} ({max_workers})"


def workload_table(run: RunResult, workload: str, params: Params | None = None) -> Table:
    """Return the table of one workload: one row per strategy × loop × concurrency."""
    rows = [
        r for r in run.results if r.workload == workload and (params is None or r.params == params)
    ]
    budget = run.settings.lag_budget_ms
    best = best_cells(rows, budget)
    title = workload_label(workload, rows[0].params) if rows else workload
    name, _, rest = title.partition(" ")
    table = Table(
        title=f"[bold]{escape(name)}[/]" + (f" {escape(rest)}" if rest else ""),
        title_justify="left",
        caption=f"times in ms · {BEST_MARK} best throughput with loop lag p99 ≤ {budget:g} ms"
        " (per loop and concurrency)",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        caption_justify="left",
    )
    # Names never truncate; in a narrow terminal the number headers wrap instead.
    name_width = max(
        (len(f"{strategy_label(r.strategy, r.max_workers)} {BEST_MARK}") for r in rows), default=0
    )
    for index, (header, justify) in enumerate(_COLUMNS):
        table.add_column(
            header, justify=justify, no_wrap=index < 2, min_width=name_width if index == 0 else None
        )
    strategy_order = {name: i for i, name in enumerate(run.settings.strategies)}
    loop_order = {name: i for i, name in enumerate(run.settings.loops)}
    rows.sort(
        key=lambda r: (
            r.concurrency,
            strategy_order.get(r.strategy, len(strategy_order)),
            r.max_workers or 0,
            loop_order.get(r.loop, len(loop_order)),
        )
    )
    previous = None
    for row in rows:
        if previous is not None and row.concurrency != previous:
            table.add_section()
        previous = row.concurrency
        table.add_row(*_cells(row, _baseline(rows, row), row in best, budget))
    return table


_COLUMNS: tuple[tuple[str, JustifyMethod], ...] = (
    ("strategy", "left"),
    ("loop", "left"),
    ("conc", "right"),
    ("ops/s", "right"),
    ("×direct", "right"),
    ("op p50", "right"),
    ("op p99", "right"),
    ("lag p50", "right"),
    ("lag p99", "right"),
    ("lag max", "right"),
    ("avail", "right"),
)


def _cells(
    row: CellResult, baseline: CellResult | None, best: bool, budget: float
) -> list[str | Text]:
    label = escape(strategy_label(row.strategy, row.max_workers))
    name = f"{label} {BEST_MARK}" if best else label
    head: list[str | Text] = [name, escape(row.loop), str(row.concurrency)]
    if not row.ok:
        style = "red" if row.status == "error" else "yellow"
        return [*head, Text(row.status, style=style), *[""] * (len(_COLUMNS) - 4)]
    lat, lag = row.op_latency_ms, row.loop_lag_ms
    speedup = (
        row.throughput_ops_s / baseline.throughput_ops_s
        if baseline and baseline.throughput_ops_s > 0
        else None
    )
    return [
        *head,
        format_rate(row.throughput_ops_s),
        f"{speedup:.2f}×" if speedup is not None else "–",
        format_ms(lat.p50) if lat else "–",
        format_ms(lat.p99) if lat else "–",
        _lag_text(lag.p50, budget) if lag else "–",
        _lag_text(lag.p99, budget) if lag else "–",
        _lag_text(lag.max, budget) if lag else "–",
        f"{row.availability:.0%}" if row.availability is not None else "–",
    ]


def _lag_text(ms: float, budget: float) -> Text:
    style = "red" if ms > budget else ("yellow" if ms > 1.0 else "green")
    return Text(format_ms(ms), style=style)


def _baseline(rows: Iterable[CellResult], row: CellResult) -> CellResult | None:
    for other in rows:
        if (
            other.strategy == "direct"
            and other.loop == row.loop
            and other.concurrency == row.concurrency
            and other.ok
        ):
            return other
    return None


def best_cells(rows: Iterable[CellResult], budget_ms: float) -> list[CellResult]:
    """Return, per (loop, concurrency), the fastest ok cell whose lag p99 is within budget."""
    best: dict[tuple[str, int], CellResult] = {}
    for row in rows:
        if not row.ok or row.loop_lag_ms is None or row.loop_lag_ms.p99 > budget_ms:
            continue
        key = (row.loop, row.concurrency)
        if key not in best or row.throughput_ops_s > best[key].throughput_ops_s:
            best[key] = row
    return list(best.values())


def verdicts(found: Iterable[Verdict]) -> Text:
    """Return the verdict block: per workload, the strategy to use and why each other lost."""
    found = list(found)
    text = Text()
    budget = found[0].lag_budget_ms if found else 0.0
    text.append(f"Verdict (best throughput with loop lag p99 ≤ {budget:g} ms)\n", style="bold")
    for verdict in found:
        text.append(f"  {workload_label(verdict.workload, verdict.params)}: ", style="bold")
        text.append(f"{verdict.text}\n", style="green" if verdict.winner else "red")
        for candidate in verdict.candidates:
            if candidate == verdict.winner:
                continue
            name = strategy_label(candidate.strategy, candidate.max_workers)
            text.append(f"    {name}: {candidate.reason}\n", style="dim")
    text.rstrip()
    return text


def plan(settings: RunSettings) -> Text:
    """Return what a run of ``settings`` would measure, and roughly how long it would take."""
    matrix = cells(settings)
    per_cell = settings.warmup_s + settings.window_s + CELL_OVERHEAD_S
    text = Text()
    source = f" from {settings.scenario}" if settings.scenario else ""
    text.append(f"{len(matrix)} cells{source}, about {len(matrix) * per_cell:.0f} s\n", style="bold")
    sizes = ", ".join("default" if n is None else str(n) for n in settings.max_workers)
    lines = [
        ("workloads", ", ".join(workload_label(w.name, w.params) for w in settings.workloads)),
        ("strategies", ", ".join(settings.strategies)),
        ("loops", ", ".join(settings.loops)),
        ("concurrency", ", ".join(map(str, settings.concurrency))),
        ("pool sizes", sizes),
        ("window", f"{settings.window_s:g} s after {settings.warmup_s:g} s warm-up, "
                   f"cell timeout {settings.cell_timeout_s:g} s"),
        ("probe", f"every {settings.probe_interval_ms:g} ms; stall above "
                  f"{settings.stall_threshold_ms:g} ms; lag budget {settings.lag_budget_ms:g} ms"),
    ]
    for name, value in lines:
        text.append(f"  {name:<12}", style="dim")
        text.append(f"{value}\n")
    text.rstrip()
    return text


def print_catalog(found: Catalog, console: Console) -> None:
    """Print the workloads, strategies, loops and shipped scenarios, one line each."""
    sections: list[tuple[str, list[Entry]]] = [
        ("Workloads", found.workloads),
        ("Strategies", found.strategies),
        ("Loops", found.loops),
        ("Scenarios (offbench run NAME)", found.scenarios),
    ]
    for title, entries in sections:
        table = Table(title=f"[bold]{title}[/]", title_justify="left", box=None, show_header=False,
                      pad_edge=False)
        table.add_column(no_wrap=True, style="cyan")
        table.add_column()
        for entry in entries:
            detail = entry.summary
            if entry.params:
                detail += " [" + ", ".join(f"{k}={v!r}" for k, v in entry.params.items()) + "]"
            if entry.runs_on:
                detail += f" (runs on the {entry.runs_on})" if entry.runs_on == "loop" else (
                    f" (runs in a {entry.runs_on})")
            table.add_row(escape(entry.name), Text(detail, style="" if entry.available else "dim"))
        console.print(table)
        console.print()


def summary(run: RunResult) -> Text:
    """Return the closing lines: cell counts, failures with their reasons, and the wall time."""
    failed = [r for r in run.results if not r.ok]
    text = Text()
    state = "" if run.complete else " (interrupted: partial results)"
    text.append(
        f"{len(run.results)} cells, {len(run.results) - len(failed)} ok, "
        f"{len(failed)} failed in {run.wall_s:.1f} s{state}\n",
        style="bold" if not failed and run.complete else "bold red",
    )
    for r in failed:
        where = f"{r.workload} / {strategy_label(r.strategy, r.max_workers)} / {r.loop} / {r.concurrency}"
        text.append(f"  {where}: ", style="red")
        text.append(f"{r.status}: {r.error}\n")
    machine = run.machine
    text.append(
        f"Python {machine.python_version} on {machine.cpu_model} ({machine.cpu_count} CPUs); "
        f"default executor {machine.default_executor_workers} threads; "
        f"GIL switch interval {machine.gil_switch_interval_s * 1000:g} ms",
        style="dim",
    )
    return text


def format_rate(value: float) -> str:
    """Format operations per second: no decimals from 100 up, thousands separated."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def format_ms(value: float) -> str:
    """Format milliseconds with three significant figures (0.0123, 1.23, 123)."""
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def cell_line(result: CellResult) -> str:
    """Return a one-line plain-text account of a finished cell (for logs)."""
    strategy = strategy_label(result.strategy, result.max_workers)
    where = f"{result.workload} {strategy} {result.loop} c={result.concurrency}"
    if not result.ok:
        return f"{where}: {result.status}: {result.error}"
    lag = result.loop_lag_ms
    lag_text = f", lag p99 {format_ms(lag.p99)} ms" if lag else ""
    return f"{where}: {format_rate(result.throughput_ops_s)} ops/s{lag_text}"
