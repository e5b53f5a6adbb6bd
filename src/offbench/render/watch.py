"""The words for loops measured in others' programs and tests: ``offbench watch``'s report, a stall's line.

``offbench watch`` (:mod:`offbench.run.watch`) runs the program and reads what it
reported; the pytest plugin (:mod:`offbench.pytest_plugin`) judges a test's figures.
Both then say what was measured, and that is written here, from the structs of
:mod:`offbench.model.watched` alone: the watch report for the terminal (:func:`render`)
and one call site's stall evidence (:func:`describe`), in the words ``offbench run``
uses for its own (:func:`offbench.render.notes.made_of`, :func:`~offbench.render.notes.blocked_in`).
"""

from __future__ import annotations

import shlex

from offbench.formatting import format_ms
from offbench.model.watched import EXIT_OVER_BUDGET, CallSite, LoopFigures, WatchResult, statistic
from offbench.render.notes import blocked_in, made_of

LAG_COLUMNS = (("p50", "p50"), ("p90", "p90"), ("p99", "p99"), ("p999", "p99.9"), ("max", "max"))


def render(result: WatchResult) -> str:
    """Return the report for the terminal: how the program ended, each loop's lag, busy share, stalls."""
    ended = (f"killed by {result.killed_by}" if result.killed_by else f"exit code {result.exit_code}")
    lines = [f"offbench watch: {shlex.join(result.command)}: {ended} after {result.elapsed_s:.2f} s"]
    if result.report == "snapshot":
        lines.append("  (figures from the last snapshot: the program ended without running its exit hooks)")
    if result.error:
        lines.append(f"  {result.error}")
    if not result.loops:
        if not result.error:
            lines.append("  the program ran no event loop")
        return "\n".join(lines)
    lags = [f"lag {label}" for _, label in LAG_COLUMNS]
    rows = [["thread / loop", "runs", "ran for", "ticks", *lags, "busy"]]
    for figures in result.loops:
        lag = figures.lag_ms
        rows.append([
            f"{figures.thread} / {figures.loop}", str(figures.runs), f"{figures.running_s:.2f} s",
            f"{figures.ticks:,}",
            *[f"{format_ms(statistic(lag, name))} ms" if lag else "-" for name, _ in LAG_COLUMNS],
            f"{figures.busy:.0%}" if figures.busy is not None else "-",
        ])
    lines += _table(rows)
    for figures in result.loops:
        lines += _stalls(figures, len(result.loops) > 1)
    if result.lag_budget_ms is not None:
        label = dict(LAG_COLUMNS)[result.statistic]
        if result.over_budget:
            code = f" (exit code {EXIT_OVER_BUDGET})" if result.exit_code == 0 else ""
            lines.append(f"  over the budget: lag {label} of {', '.join(result.over_budget)} is over "
                         f"{result.lag_budget_ms:g} ms{code}")
        else:
            lines.append(f"  within the budget: every loop's lag {label} is at most "
                         f"{result.lag_budget_ms:g} ms")
    return "\n".join(lines)


def _table(rows: list[list[str]]) -> list[str]:
    """Return ``rows`` as aligned lines: the first column to the left, numbers to the right."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in
                             enumerate(zip(row, widths, strict=True))) for row in rows]


def _stalls(figures: LoopFigures, name_loop: bool) -> list[str]:
    """Return the stall evidence of a loop by call site, each with how to measure its fixes."""
    if not figures.sites:
        return []
    which = f" on {figures.thread} / {figures.loop}" if name_loop else ""
    lines = [f"  stalls beyond {figures.evidence_ms:g} ms{which}, by call site "
             "(how often, how long in all, the worst):"]
    for site in figures.sites:
        times = "once" if site.stalls == 1 else f"{site.stalls} times"
        lines.append(f"    {site.file}:{site.line} ({site.function}): {times}, "
                     f"{format_ms(site.total_ms)} ms in all, the worst {format_ms(site.worst_ms)} ms")
        lines.append(f"      the worst: {describe(site, tally=False)}")
        lines.append(f"      to measure the offload strategies for it: {site.measure}")
    return lines


def describe(site: CallSite, tally: bool = True) -> str:
    """Return the stall evidence of ``site`` in ``offbench run``'s words, with how often it blocked.

    ``the loop was blocked for 51.2 ms in time.sleep(0.05), called from test_x.py:7 (test_blocks)``;
    for several stalls, ``the loop was blocked 3 times, 152 ms in all, the longest 51.2 ms in ...``
    (without ``tally``, the first form, for the longest).
    """
    stall = site.worst
    if site.stalls == 1 or not tally:
        text = f"the loop was blocked for {format_ms(stall.duration_ms)} ms{made_of(stall)}"
    else:
        text = (f"the loop was blocked {site.stalls} times, {format_ms(site.total_ms)} ms in all, "
                f"the longest {format_ms(stall.duration_ms)} ms{made_of(stall)}")
    return text + blocked_in(stall)
