"""What the notes under a workload's table say: where the time went, stalls, pool costs.

Where each call's time went, how busy the loop was, what it was blocked in, and what a
process pool costs on this machine.

Like :mod:`offbench.render.texts` (the tables' cells and the verdict's lines), these are
the strings every frame shows alike; :mod:`offbench.render.view` places them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from offbench.formatting import format_bytes, format_ms, load_label, loop_label, strategy_label
from offbench.model.params import Params
from offbench.model.results import (
    DISPATCH_US,
    TOLERANCE_MS,
    CallCost,
    CellResult,
    LoopUtilisation,
    PoolCost,
    RunResult,
    StallEvidence,
)
from offbench.render.texts import workload_rows

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
        unseen = "" if found.coverage == "every callback" else ", or in uvloop's own callbacks"
        lines.append(f"{_where(r, workload=False)}: {found.stalls_checked - found.stalls_agreeing} of "
                     f"{found.stalls_checked} not accounted for, up to {format_ms(found.worst_gap_ms)} ms "
                     f"outside callbacks (waiting for the GIL or a CPU{unseen})")
    return lines


def stall_heading(run: RunResult) -> str:
    """Return the heading of the stall evidence lines."""
    return f"Stall evidence (each cell's longest stall beyond {run.settings.evidence_threshold_ms:g} ms)"


def stall_lines(run: RunResult, workload: str, params: Params | None = None) -> list[str]:
    """Return one line per cell of the workload with stall evidence, in table order."""
    return [stall_line(r) for r in workload_rows(run, workload, params) if r.ok and r.stall_evidence]


def stall_line(result: CellResult) -> str:
    """Return ``sleep / direct / asyncio / c=1: the loop was blocked for 100 ms in ... called from ...``.

    It tells the cell's longest stall: how long the loop could not answer, the source
    line it was in (which names a C function like ``time.sleep``), and where.
    """
    stall = result.stall_evidence[0]
    return (f"{_where(result)}: the loop was blocked for {format_ms(stall.duration_ms)} ms"
            f"{made_of(stall)}{blocked_in(stall)}")


def blocked_in(stall: StallEvidence) -> str:
    """Return where the loop was blocked: `` in time.sleep(0.05), called from app.py:7 (query) ← ...``.

    Empty when no stack was sampled; :func:`offbench.render.watch.describe` ends the same way.
    """
    if not stall.frames:
        return ""
    top, *callers = stall.frames
    text = f" in {top.code or top.function}, called from {top.file}:{top.line} ({top.function})"
    return text + "".join(f" ← {f.file}:{f.line} ({f.function})" for f in callers[:2])


def made_of(stall: StallEvidence) -> str:
    """Return what the stall was made of, from the callback timings: `` (3 callbacks in a row, ...)``."""
    if stall.callbacks is None or stall.longest_callback_ms is None:
        return ""
    if stall.callbacks == 0:
        return " (no timed callback was running)"
    if stall.callbacks == 1:
        return " (one callback)"
    return f" ({stall.callbacks} callbacks in a row, the longest {format_ms(stall.longest_callback_ms)} ms)"


def _where(r: CellResult, workload: bool = True) -> str:
    """Return ``sleep / to-thread / asyncio / c=1``: a cell named in a line of text."""
    cell = (f"{strategy_label(r.strategy, r.max_workers)} / {loop_label(r.loop, r.python)} / "
            f"{load_label(r.concurrency, r.rate)}")
    return f"{r.workload} / {cell}" if workload else cell


POOL_COST_TITLE = "what a process pool costs here"
POOL_COST_CAPTION = (
    "times in ms · start-up: creating the pool until every worker answered · calls: round trip "
    "through the warm pool, one at a time, p50 (p99) · pickling: pickle and unpickle the argument "
    "in one process; the rest of the payload's extra time is the pipe between processes"
)


def pool_cost_headers(run: RunResult) -> list[str]:
    """Return the pool-cost table's headers; the payload column names its size."""
    sizes = {call.payload_bytes for cost in run.pool_costs for call in cost.calls if call.payload_bytes}
    shipped = f"{format_bytes(max(sizes))} call" if sizes else "payload call"
    return ["pool", "start", "workers", "start-up", "no-op call", shipped, "of which pickling"]


def pool_cost_rows(run: RunResult) -> list[list[str]]:
    """Return the rows of the pool-cost table: one per pool and start method."""
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
