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

from offbench.results import CellResult, RunResult

LAG_BUDGET_MS = 10.0
"""A strategy is marked best only if its loop lag p99 stays within this budget."""

BEST_MARK = "★"


def print_run(run: RunResult, console: Console) -> None:
    """Print one table per workload, then the summary."""
    for name in _workloads(run):
        console.print(workload_table(run, name))
        console.print()
    console.print(summary(run))


def _workloads(run: RunResult) -> list[str]:
    return list(dict.fromkeys(r.workload for r in run.results))


def workload_table(run: RunResult, workload: str) -> Table:
    """Return the table of one workload: one row per strategy × loop × concurrency."""
    rows = [r for r in run.results if r.workload == workload]
    best = best_cells(rows)
    params = ", ".join(f"{k}={v}" for k, v in rows[0].params.items()) if rows else ""
    table = Table(
        title=f"[bold]{escape(workload)}[/]" + (f" ({escape(params)})" if params else ""),
        title_justify="left",
        caption=f"times in ms · {BEST_MARK} best throughput with loop lag p99 ≤ {LAG_BUDGET_MS:g} ms"
        " (per loop and concurrency)",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        caption_justify="left",
    )
    # Names never truncate; in a narrow terminal the number headers wrap instead.
    name_width = max((len(f"{r.strategy} {BEST_MARK}") for r in rows), default=0)
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
            loop_order.get(r.loop, len(loop_order)),
        )
    )
    previous = None
    for row in rows:
        if previous is not None and row.concurrency != previous:
            table.add_section()
        previous = row.concurrency
        table.add_row(*_cells(row, _baseline(rows, row), row in best))
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


def _cells(row: CellResult, baseline: CellResult | None, best: bool) -> list[str | Text]:
    name = f"{escape(row.strategy)} {BEST_MARK}" if best else escape(row.strategy)
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
        _lag_text(lag.p50) if lag else "–",
        _lag_text(lag.p99) if lag else "–",
        _lag_text(lag.max) if lag else "–",
        f"{row.availability:.0%}" if row.availability is not None else "–",
    ]


def _lag_text(ms: float) -> Text:
    style = "red" if ms > LAG_BUDGET_MS else ("yellow" if ms > 1.0 else "green")
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


def best_cells(rows: Iterable[CellResult]) -> list[CellResult]:
    """Return, per (loop, concurrency), the fastest ok cell whose lag p99 is within budget."""
    best: dict[tuple[str, int], CellResult] = {}
    for row in rows:
        if not row.ok or row.loop_lag_ms is None or row.loop_lag_ms.p99 > LAG_BUDGET_MS:
            continue
        key = (row.loop, row.concurrency)
        if key not in best or row.throughput_ops_s > best[key].throughput_ops_s:
            best[key] = row
    return list(best.values())


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
        text.append(f"  {r.workload} / {r.strategy} / {r.loop} / {r.concurrency}: ", style="red")
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
    where = f"{result.workload} {result.strategy} {result.loop} c={result.concurrency}"
    if not result.ok:
        return f"{where}: {result.status}: {result.error}"
    lag = result.loop_lag_ms
    lag_text = f", lag p99 {format_ms(lag.p99)} ms" if lag else ""
    return f"{where}: {format_rate(result.throughput_ops_s)} ops/s{lag_text}"
