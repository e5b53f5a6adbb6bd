"""Turn results into rich tables (and charts) for the terminal.

Nothing here measures or decides what to run: it reads a
:class:`~offbench.model.results.RunResult` (fresh or loaded from a file) and renders it, so
a saved run renders exactly as it did live.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from rich import box
from rich.console import Console, JustifyMethod
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from offbench.formatting import (
    format_bytes,
    format_ms,
    format_rate,
    format_spread,
    loop_label,
    strategy_label,
    workload_label,
)
from offbench.judge.compare import CellKey, Change, Comparison, Pair, regressions
from offbench.model.catalog import Catalog, Entry
from offbench.model.params import Params
from offbench.model.results import (
    DISPATCH_US,
    TOLERANCE_MS,
    CallCost,
    CellResult,
    GateResult,
    LoopUtilisation,
    PoolCost,
    RunResult,
    StallEvidence,
    Verdict,
)
from offbench.render.chart import LagScale, WorkloadChart

BEST_MARK = "★"


def print_run(run: RunResult, console: Console, charts: bool = True) -> None:
    """Print one table (and chart) per workload and parameter set, the verdicts, then the summary."""
    scale = LagScale.spanning(r.loop_lag_ms for r in run.results if r.loop_lag_ms is not None)
    for workload, params in workloads_of(run):
        console.print(workload_table(run, workload, params))
        if charts:
            rows = workload_rows(run, workload, params)
            console.print(WorkloadChart(rows, run.settings.lag_budget_ms, scale))
        split = breakdown_table(run, workload, params)
        if split is not None:
            console.print(split)
        for line in utilisation_lines(run, workload, params):
            console.print(Text(line), soft_wrap=True)
        evidence = stall_lines(run, workload, params)
        if evidence:
            console.print(Text(evidence[0], style="bold"))
            for line in evidence[1:]:
                console.print(Text(f"  {line}"), soft_wrap=True)
        console.print()
    costs = pool_cost_table(run)
    if costs is not None:
        console.print(costs)
        for line in steady_state_lines(run):
            console.print(Text(line), soft_wrap=True)
        console.print()
    if run.verdicts:
        console.print(verdicts(run.verdicts))
        console.print()
    console.print(summary(run), soft_wrap=True)


def workloads_of(run: RunResult) -> list[tuple[str, Params]]:
    """Return each workload (and parameter set) of a run once, in the order measured."""
    seen: dict[str, tuple[str, Params]] = {}
    for r in run.results:
        seen.setdefault(workload_label(r.workload, r.params), (r.workload, r.params))
    return list(seen.values())


def workload_rows(run: RunResult, workload: str, params: Params | None = None) -> list[CellResult]:
    """Return one workload's cells in table order: concurrency, strategy, pool size, loop."""
    rows = [
        r for r in run.results if r.workload == workload and (params is None or r.params == params)
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
        f" (per loop and concurrency) · ± relative std dev over the {run.settings.samples} parts"
        " of each window"
        + (f" · every call shipped {format_bytes(run.settings.payload_bytes)} of argument"
           if run.settings.payload_bytes else "")
        + (f" · {pythons_line(run)}" if run.settings.pythons else "")
    )


def workload_table(run: RunResult, workload: str, params: Params | None = None) -> Table:
    """Return the table of one workload: one row per strategy × loop × concurrency."""
    rows = workload_rows(run, workload, params)
    budget = run.settings.lag_budget_ms
    best = best_cells(rows, budget)
    title = workload_label(workload, rows[0].params) if rows else workload
    name, _, rest = title.partition(" ")
    table = Table(
        title=f"[bold]{escape(name)}[/]" + (f" {escape(rest)}" if rest else ""),
        title_justify="left",
        caption=table_caption(run),
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        caption_justify="left",
    )
    # Names never truncate; in a narrow terminal the number headers wrap instead.
    name_width = max(
        (len(f"{strategy_label(r.strategy, r.max_workers)} {BEST_MARK}") for r in rows), default=0
    )
    for index, (header, justify) in enumerate(COLUMNS):
        table.add_column(
            header, justify=justify, no_wrap=index < 2, min_width=name_width if index == 0 else None
        )
    previous = None
    for row in rows:
        if previous is not None and row.concurrency != previous:
            table.add_section()
        previous = row.concurrency
        cells = row_cells(row, baseline(rows, row), row in best)
        table.add_row(*(Text(c, style=s) for c, s in zip(cells, _styles(row, budget), strict=True)))
    return table


COLUMNS: tuple[tuple[str, JustifyMethod], ...] = (
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


def row_cells(row: CellResult, baseline: CellResult | None, best: bool) -> list[str]:
    """Return the plain-text cells of one result row (shared by the terminal and markdown)."""
    label = strategy_label(row.strategy, row.max_workers)
    head = [f"{label} {BEST_MARK}" if best else label, loop_label(row.loop, row.python), str(row.concurrency)]
    if not row.ok:
        return [*head, row.status, *[""] * (len(COLUMNS) - 4)]
    lat, lag, samples = row.op_latency_ms, row.loop_lag_ms, row.samples
    speedup = (
        row.throughput_ops_s / baseline.throughput_ops_s
        if baseline and baseline.throughput_ops_s > 0
        else None
    )
    return [
        *head,
        format_rate(row.throughput_ops_s) + format_spread(samples.throughput_ops_s if samples else []),
        f"{speedup:.2f}×" if speedup is not None else "–",
        format_ms(lat.p50) if lat else "–",
        format_ms(lat.p99) if lat else "–",
        format_ms(lag.p50) if lag else "–",
        format_ms(lag.p99) + format_spread(samples.lag_p99_ms if samples else []) if lag else "–",
        format_ms(lag.max) if lag else "–",
        f"{row.availability:.0%}" if row.availability is not None else "–",
    ]


TOLERANCE_TEXT = f"{TOLERANCE_MS:g} ms + {DISPATCH_US:g} µs per callback"
BREAKDOWN_TITLE = "where the time goes"
BREAKDOWN_HEADERS = ("strategy", "loop", "conc", "wait p50", "wait p99", "run p50", "run p99",
                     "hop p50", "hop p99", "busy", "cb p99", "cb max", "agree")
BREAKDOWN_CAPTION = (
    "times in ms · offloaded calls: wait: submitted → started on a worker · run: the function · "
    "hop: finished → the awaiting task resumed on the loop · the loop: busy: share of the window "
    "its thread spent in callbacks · cb: one callback's duration · agree: probe stalls the "
    "callbacks account for, of those checked"
)


def breakdown_rows(run: RunResult, workload: str, params: Params | None = None) -> list[list[str]]:
    """Return the rows of "where the time goes": one per ok cell with a breakdown or utilisation."""
    rows = []
    for r in workload_rows(run, workload, params):
        if not r.ok or (r.breakdown_ms is None and r.loop_utilisation is None):
            continue
        b = r.breakdown_ms
        parts = () if b is None else (b.queue_wait, b.run, b.hop_back)
        split = [format_ms(getattr(q, p)) for q in parts for p in ("p50", "p99")] or ["–"] * 6
        rows.append([
            strategy_label(r.strategy, r.max_workers), loop_label(r.loop, r.python), str(r.concurrency),
            *split, *utilisation_cells(r.loop_utilisation),
        ])
    return rows


def utilisation_cells(found: LoopUtilisation | None) -> list[str]:
    """Return the busy share, callback p99 and max, and the probe agreement of one cell (``–`` if none)."""
    if found is None:
        return ["–"] * 4
    durations = found.callback_ms
    seen = "" if found.coverage == "every callback" else "*"
    return [
        f"{found.busy:.0%}{seen}",
        format_ms(durations.p99) if durations else "–",
        format_ms(durations.max) if durations else "–",
        f"{found.stalls_agreeing}/{found.stalls_checked}" if found.stalls_checked else "–",
    ]


def utilisation_lines(run: RunResult, workload: str, params: Params | None = None) -> list[str]:
    """Return what the loop-utilisation check against the probe found for a workload's cells.

    One line for the agreement over all cells, then one per cell where callbacks left
    probe stalls unexplained beyond the tolerance: time the loop thread spent outside
    callbacks (waiting for the GIL, or in uvloop's own callbacks, which it cannot see).
    """
    cells = [r for r in workload_rows(run, workload, params) if r.ok and r.loop_utilisation]
    checked = [r for r in cells if r.loop_utilisation and r.loop_utilisation.stalls_checked]
    lines = []
    if any(r.loop_utilisation and r.loop_utilisation.coverage != "every callback" for r in cells):
        lines.append("* uvloop: only callbacks scheduled through the loop's methods are timed, "
                     "not its transports' own")
    if not checked:
        return lines
    total = sum(r.loop_utilisation.stalls_checked for r in checked if r.loop_utilisation)
    agreeing = sum(r.loop_utilisation.stalls_agreeing for r in checked if r.loop_utilisation)
    check_ms = max(r.loop_utilisation.check_ms for r in checked if r.loop_utilisation)
    lines.insert(0, f"Loop utilisation against the probe: callbacks account for {agreeing} of {total} "
                    f"probe stalls ≥ {check_ms:g} ms within {TOLERANCE_TEXT}")
    for r in checked:
        found = r.loop_utilisation
        if found is None or found.stalls_agreeing == found.stalls_checked or found.worst_gap_ms is None:
            continue
        where = (f"{strategy_label(r.strategy, r.max_workers)} / {loop_label(r.loop, r.python)} / "
                 f"c={r.concurrency}")
        unseen = "" if found.coverage == "every callback" else ", or in uvloop's own callbacks"
        lines.append(f"{where}: {found.stalls_checked - found.stalls_agreeing} of {found.stalls_checked} "
                     f"not accounted for, up to {format_ms(found.worst_gap_ms)} ms outside callbacks "
                     f"(waiting for the GIL or a CPU{unseen})")
    return lines


def breakdown_table(run: RunResult, workload: str, params: Params | None = None) -> Table | None:
    """Return the table of where the offloaded calls' time went; ``None`` if no cell has a breakdown."""
    rows = breakdown_rows(run, workload, params)
    if not rows:
        return None
    table = Table(title=BREAKDOWN_TITLE, title_justify="left",
                  caption=BREAKDOWN_CAPTION, caption_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for index, header in enumerate(BREAKDOWN_HEADERS):
        table.add_column(header, justify="left" if index < 2 else "right", no_wrap=index < 2)
    previous = None
    for row in rows:
        if previous is not None and row[2] != previous:
            table.add_section()
        previous = row[2]
        table.add_row(*row)
    return table


POOL_COST_TITLE = "what a process pool costs here"


def pool_cost_headers(run: RunResult) -> list[str]:
    """Return the pool-cost table's headers; the payload column names its size."""
    sizes = {call.payload_bytes for cost in run.pool_costs for call in cost.calls if call.payload_bytes}
    shipped = f"{format_bytes(max(sizes))} call" if sizes else "payload call"
    return ["pool", "start", "workers", "start-up", "no-op call", shipped, "of which pickling"]


def pool_cost_caption(run: RunResult) -> str:
    """Return the legend under the pool-cost table."""
    return (
        "times in ms · start-up: creating the pool until every worker answered · calls: round trip "
        "through the warm pool, one at a time, p50 (p99) · pickling: pickle and unpickle the argument "
        "in one process; the rest of the payload's extra time is the pipe between processes"
    )


def pool_cost_rows(run: RunResult) -> list[list[str]]:
    """Return the plain-text rows of the pool-cost table: one per pool and start method."""
    return [_pool_cost_row(cost) for cost in run.pool_costs]


def _pool_cost_row(cost: PoolCost) -> list[str]:
    pool = f"{cost.pool} · {cost.python}" if cost.python else cost.pool
    if cost.error is not None:
        return [pool, cost.start_method or "–", "–", f"error: {cost.error}", "", "", ""]
    noop = next((c for c in cost.calls if c.payload_bytes == 0), None)
    shipped = next((c for c in cost.calls if c.payload_bytes > 0), None)
    return [
        pool, cost.start_method, str(cost.workers), format_ms(cost.startup_s * 1000),
        _round_trip(noop), _round_trip(shipped),
        format_ms(shipped.pickle_ms) if shipped else "–",
    ]


def _round_trip(call: CallCost | None) -> str:
    if call is None:
        return "–"
    return f"{format_ms(call.round_trip_ms.p50)} ({format_ms(call.round_trip_ms.p99)})"


def steady_state_lines(run: RunResult) -> list[str]:
    """Return, per costed pool, what shipping a call cost in the run's own cells at c=1: steady state.

    At concurrency 1 a call never waits for a busy worker, so its queue wait plus hop
    back is the per-call price of the pool (pickling, the pipes, the pool's threads)
    with the real workload's arguments and results.
    """
    lines = []
    for pool in dict.fromkeys(cost.pool for cost in run.pool_costs):
        cells = [r for r in run.results if r.ok and r.strategy == pool and r.concurrency == 1
                 and r.breakdown_ms is not None and r.op_latency_ms is not None]
        if not cells:
            continue
        shipping = [r.breakdown_ms.queue_wait.p50 + r.breakdown_ms.hop_back.p50
                    for r in cells if r.breakdown_ms is not None]
        shares = [100 * ship / r.op_latency_ms.p50 for ship, r in zip(shipping, cells, strict=True)
                  if r.op_latency_ms is not None and r.op_latency_ms.p50 > 0]
        lines.append(
            f"steady state, {pool} at c=1 in this run: shipping a call there and back (wait + hop p50) "
            f"took {_span(shipping, format_ms)} ms over {len(cells)} cell{'s' * (len(cells) != 1)}, "
            f"{_span(shares, lambda v: f'{v:.0f}')} % of the op time"
        )
    return lines


def _span(values: Sequence[float], shown: Callable[[float], str]) -> str:
    low, high = shown(min(values)), shown(max(values))
    return low if low == high else f"{low}–{high}"


def pool_cost_table(run: RunResult) -> Table | None:
    """Return the table of the run's process-pool costs by start method; ``None`` if none was measured."""
    rows = pool_cost_rows(run)
    if not rows:
        return None
    table = Table(title=POOL_COST_TITLE, title_justify="left", caption=pool_cost_caption(run),
                  caption_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for index, header in enumerate(pool_cost_headers(run)):
        table.add_column(header, justify="left" if index < 2 else "right", no_wrap=index < 2)
    for row in rows:
        table.add_row(*(escape(text) for text in row))
    return table


def _styles(row: CellResult, budget: float) -> list[str]:
    """Return the terminal style of each cell of a row: failures and lags in colour."""
    plain = [""] * len(COLUMNS)
    if not row.ok:
        plain[3] = "red" if row.status == "error" else "yellow"
        return plain
    if row.loop_lag_ms is not None:
        lag = row.loop_lag_ms
        plain[7], plain[8], plain[9] = (_lag_style(v, budget) for v in (lag.p50, lag.p99, lag.max))
    return plain


def _lag_style(ms: float, budget: float) -> str:
    return "red" if ms > budget else ("yellow" if ms > 1.0 else "green")


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


def verdicts(found: Iterable[Verdict]) -> Text:
    """Return the verdict block: per workload, the strategy to use and why each other lost."""
    found = list(found)
    text = Text()
    budget = found[0].lag_budget_ms if found else 0.0
    text.append(f"Verdict (best throughput with loop lag p99 ≤ {budget:g} ms)\n", style="bold")
    for verdict in found:
        text.append(f"  {verdict_label(verdict)}: ", style="bold")
        text.append(f"{verdict.text}\n", style="green" if verdict.winner else "red")
        for warning in verdict.warnings:
            text.append(f"    ⚠ {warning}\n", style="yellow")
        for candidate in verdict.candidates:
            if candidate == verdict.winner:
                continue
            name = strategy_label(candidate.strategy, candidate.max_workers)
            text.append(f"    {name}: {candidate.reason}\n", style="dim")
    text.rstrip()
    return text


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


def plan(headline: str, lines: Sequence[tuple[str, str]]) -> Text:
    """Return what a run would measure (:func:`offbench.plan.matrix.outline`) as the terminal shows it."""
    text = Text()
    text.append(f"{headline}\n", style="bold")
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
            if entry.available and not entry.default:
                detail += " [only when named]"
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
        where = (f"{r.workload} / {strategy_label(r.strategy, r.max_workers)} / "
                 f"{loop_label(r.loop, r.python)} / {r.concurrency}")
        text.append(f"  {where}: ", style="red")
        text.append(f"{r.status}: {r.error}\n")
    text.append(gate_lines(run.gates))
    machine = run.machine
    text.append(
        f"Python {machine.python_version} on {machine.cpu_model} ({machine.cpu_count} CPUs); "
        f"default executor {machine.default_executor_workers} threads; "
        f"GIL switch interval {machine.gil_switch_interval_s * 1000:g} ms"
        + (f"; probe ticks on {machine.probe_ticks}" if machine.probe_ticks else ""),
        style="dim",
    )
    if run.settings.pythons:
        text.append(f"\n{pythons_line(run)}", style="dim")
    return text


def gate_lines(found: Sequence[GateResult]) -> Text:
    """Return one line per gate that held, per cell that broke one, per gate that chose no cell."""
    text = Text()
    for result in found:
        for b in result.broken_by:
            where = (f"{workload_label(b.workload, b.params)} / {strategy_label(b.strategy, b.max_workers)}"
                     f" / {loop_label(b.loop, b.python)} / c={b.concurrency}")
            text.append(f'gate "{result.gate}" broken by {where}: ', style="red")
            text.append(f"{format_ms(b.value) if b.value is not None else b.reason}\n")
        if not result.cells:
            text.append(f'gate "{result.gate}": no cell measured to judge it on\n', style="yellow")
        elif not result.broken_by:
            text.append(f'gate "{result.gate}" held in {result.cells} cell{"s" * (result.cells != 1)}\n')
    return text


def workload_notes(run: RunResult, workload: str, params: Params | None = None) -> list[str]:
    """Return the plain lines under a workload's tables: the utilisation check, the stall evidence."""
    return [*utilisation_lines(run, workload, params), *stall_lines(run, workload, params)]


def stall_lines(run: RunResult, workload: str, params: Params | None = None) -> list[str]:
    """Return a heading and one line per cell of the workload with stall evidence; [] if none has.

    Each line tells the cell's longest stall: how long the loop could not answer, the
    source line it was in (which names a C function like ``time.sleep``), and where.
    """
    lines = [stall_line(r) for r in workload_rows(run, workload, params) if r.ok and r.stall_evidence]
    if not lines:
        return []
    threshold = run.settings.evidence_threshold_ms
    return [f"Stall evidence (each cell's longest stall beyond {threshold:g} ms)", *lines]


def stall_line(result: CellResult) -> str:
    """Return ``sleep / direct / asyncio / c=1: the loop was blocked for 100 ms in ... called from ...``."""
    stall = result.stall_evidence[0]
    where = (f"{result.workload} / {strategy_label(result.strategy, result.max_workers)} / "
             f"{loop_label(result.loop, result.python)} / c={result.concurrency}")
    text = f"{where}: the loop was blocked for {format_ms(stall.duration_ms)} ms{_made_of(stall)}"
    if not stall.frames:
        return text
    top, *callers = stall.frames
    text += f" in {top.code or top.function}, called from {top.file}:{top.line} ({top.function})"
    return text + "".join(f" ← {f.file}:{f.line} ({f.function})" for f in callers[:2])


def _made_of(stall: StallEvidence) -> str:
    """Return what the stall was made of, from the callback timings: `` (3 callbacks in a row, ...)``."""
    if stall.callbacks is None or stall.longest_callback_ms is None:
        return ""
    if stall.callbacks == 0:
        return " (no timed callback was running)"
    if stall.callbacks == 1:
        return " (one callback)"
    return f" ({stall.callbacks} callbacks in a row, the longest {format_ms(stall.longest_callback_ms)} ms)"


def cell_line(result: CellResult) -> str:
    """Return a one-line plain-text account of a finished cell (for logs)."""
    strategy = strategy_label(result.strategy, result.max_workers)
    where = f"{result.workload} {strategy} {loop_label(result.loop, result.python)} c={result.concurrency}"
    if not result.ok:
        return f"{where}: {result.status}: {result.error}"
    lag = result.loop_lag_ms
    lag_text = f", lag p99 {format_ms(lag.p99)} ms" if lag else ""
    return f"{where}: {format_rate(result.throughput_ops_s)} ops/s{lag_text}"


def print_comparison(
    comparison: Comparison, console: Console, fail_on_regression: float | None = None
) -> None:
    """Print one table per workload of what changed, what is only on one side, and the tally."""
    for label, pairs in comparison_groups(comparison):
        console.print(comparison_table(comparison, label, pairs))
        console.print()
    console.print(comparison_summary(comparison, fail_on_regression), soft_wrap=True)


def comparison_groups(comparison: Comparison) -> list[tuple[str, list[Pair]]]:
    """Return the pairs grouped by workload (and parameters), in the order they were measured."""
    groups: dict[str, list[Pair]] = {}
    for p in comparison.pairs:
        groups.setdefault(workload_label(p.key.workload, p.key.params), []).append(p)
    return list(groups.items())


COMPARISON_HEADERS = ("strategy", "loop", "conc", "ops/s", "change", "lag p99", "change")


def comparison_title(comparison: Comparison) -> str:
    """Return what is compared with what: ``new.json vs base.json`` or ``uvloop vs asyncio``."""
    return f"{comparison.new} vs {comparison.base}"


def comparison_row(comparison: Comparison, p: Pair) -> list[str]:
    """Return the plain-text cells of one pair (shared by the terminal and markdown tables)."""
    loop = p.new_loop if comparison.by == "loop" else p.key.loop
    head = [strategy_label(p.key.strategy, p.key.max_workers), loop_label(loop, p.key.python),
            str(p.key.concurrency)]
    if p.status != "compared" or p.throughput is None or p.lag_p99 is None:
        return [*head, p.status, "", "", ""]
    tp, lag = p.throughput, p.lag_p99
    return [
        *head,
        f"{format_rate(tp.base)} → {format_rate(tp.new)}",
        format_change(tp),
        f"{format_ms(lag.base)} → {format_ms(lag.new)}",
        format_change(lag),
    ]


def format_change(c: Change) -> str:
    """Format a change as ``+12.3% [+8.1, +15.0] slower``; ``n.s.`` when not significant.

    A ``*`` marks a significant change that ``--fail-on-regression`` does not count.
    """
    if c.percent is None:
        return "n/a" + (f" ({c.note})" if c.note else "")
    interval = (
        f" [{_signed(c.low)}, {_signed(c.high)}]" if c.low is not None and c.high is not None else ""
    )
    word = "n.s." if c.direction == "not significant" else c.direction + ("" if c.gated else "*")
    return f"{c.percent:+.1f}%{interval} {word}"


def _signed(value: float) -> str:
    return f"{value:+.1f}"


_CHANGE_STYLE = {"faster": "green", "slower": "red", "not significant": "dim"}


def comparison_table(comparison: Comparison, label: str, pairs: Sequence[Pair]) -> Table:
    """Return the terminal table of one workload's pairs."""
    name, _, rest = label.partition(" ")
    table = Table(
        title=f"[bold]{escape(name)}[/]" + (f" {escape(rest)}" if rest else "")
        + f": {escape(comparison_title(comparison))}",
        title_justify="left",
        caption=f"change: Hodges–Lehmann shift of the window parts "
        f"[{comparison.confidence:.0%} confidence interval]; n.s. = not significant"
        + (f"; lag changes under {comparison.lag_floor_ms:g} ms count as noise"
           if comparison.lag_floor_ms else ""),
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for index, header in enumerate(COMPARISON_HEADERS):
        table.add_column(header, justify="left" if index < 2 else "right", no_wrap=index < 2)
    previous = None
    for p in pairs:
        if previous is not None and p.key.concurrency != previous:
            table.add_section()
        previous = p.key.concurrency
        styles = _row_styles(p)
        table.add_row(*(Text(cell, style=style) for cell, style in zip(
            comparison_row(comparison, p), styles, strict=True)))
    return table


def _row_styles(p: Pair) -> list[str]:
    if p.throughput is None or p.lag_p99 is None:
        return ["", "", "", "green" if p.status == "fixed" else "red", "", "", ""]
    return ["", "", "", "", _CHANGE_STYLE[p.throughput.direction], "", _CHANGE_STYLE[p.lag_p99.direction]]


def comparison_tally(comparison: Comparison, fail_on_regression: float | None) -> list[str]:
    """Return the closing lines as plain text: counts, one-sided cells, notes, regressions."""
    changes = [c for p in comparison.pairs for c in (p.throughput, p.lag_p99) if c is not None]
    count = {d: sum(c.direction == d for c in changes) for d in _CHANGE_STYLE}
    failing = sum(p.status == "now failing" for p in comparison.pairs)
    lines = [
        f"{len(comparison.pairs)} cells compared ({comparison_title(comparison)}): "
        f"{count['faster']} figures faster, {count['slower']} slower, "
        f"{count['not significant']} not significant" + (f"; {failing} now failing" if failing else "")
    ]
    for side, keys in ((comparison.base, comparison.only_base), (comparison.new, comparison.only_new)):
        for key in keys:
            lines.append(f"only in {side}: {_key_text(key)}")
    lines.extend(f"note: {note}" for note in comparison.notes)
    ungated = sum(not c.gated and c.direction != "not significant" for c in changes)
    if ungated:
        lines.append(
            f"note: {ungated} change(s) marked * are of loop lag over the lag budget in both runs: "
            "shown, not gated (a strategy over budget is disqualified either way)"
        )
    if fail_on_regression is not None:
        found = regressions(comparison, fail_on_regression)
        lines.append(
            f"{len(found)} regression(s) beyond {fail_on_regression:g}%"
            if found
            else f"no significant regression beyond {fail_on_regression:g}%"
        )
        lines.extend(f"regression: {_key_text(p.key, p.new_loop)}: {why}" for p, why in found)
    return lines


def comparison_summary(comparison: Comparison, fail_on_regression: float | None) -> Text:
    """Return :func:`comparison_tally` styled for the terminal."""
    text = Text()
    for line in comparison_tally(comparison, fail_on_regression):
        style = "red" if line.startswith(("regression", "only in")) or "regression(s)" in line else (
            "dim" if line.startswith("note") else "bold"
        )
        text.append(line + "\n", style=style)
    text.rstrip()
    return text


def _key_text(key: CellKey, loop: str | None = None) -> str:
    return (
        f"{workload_label(key.workload, key.params)} / {strategy_label(key.strategy, key.max_workers)}"
        f" / {loop_label(loop or key.loop, key.python)} / c={key.concurrency}"
    )
