"""What measuring loops offbench did not start yields: per-loop figures, a program's report, a watch's result.

The pytest plugin and ``offbench watch`` attach offbench's probe to other people's loops
(:mod:`offbench.measure.attach`, summed up by :mod:`offbench.measure.totals`). What that
measured crosses three boundaries: from the watched program to ``offbench watch``
(:class:`ProgramReport`, JSON through a file), from ``offbench watch`` to the user
(:class:`WatchResult`, ``-o FILE``), and from the measuring code to the text that shows it
(:mod:`offbench.render.watch`, which may not import ``measure`` nor ``run``). So the
structs live here, with the vocabulary every side reads; they import nothing but the
results model.
"""

from __future__ import annotations

import msgspec

from offbench.model.results import Coverage, LoopLag, StallEvidence

STATISTICS = ("p50", "p90", "p99", "p999", "max")
"""The lag statistics a budget can be set on: fields of :class:`~offbench.model.results.LoopLag`."""
EXIT_OVER_BUDGET = 1
"""``offbench watch``'s exit code when the program exited 0 but a loop's lag went over the budget."""


def statistic(lag: LoopLag, name: str) -> float:
    """Return ``lag``'s statistic called ``name`` (one of :data:`STATISTICS`)."""
    value: float = getattr(lag, name)
    return value


class CallSite(msgspec.Struct, kw_only=True):
    """The stalls sampled at one line of the user's code: how often, how long in all, the worst."""

    file: str
    """The innermost frame of the user's code in the stall (not the standard library's, nor a package's)."""
    line: int
    function: str
    code: str
    """That line's source."""
    stalls: int
    total_ms: float
    worst_ms: float
    worst: StallEvidence
    """The longest of them, as ``offbench run`` reports stall evidence."""
    measure: str
    """How to measure the offload strategies for it: an ``offbench run -w`` command, or what to wrap."""


class LoopFigures(msgspec.Struct, kw_only=True):
    """What a loop (or the loops of one thread, one after the other) did while attached."""

    loop: str
    """``asyncio`` or ``uvloop`` (the package of the loop's class)."""
    thread: str
    runs: int
    """Times the loop was started (``run_forever``, ``run_until_complete``, ``asyncio.run``)."""
    running_s: float
    """Time the loop ran while attached."""
    ticks: int
    """Probe ticks that fell due, each counted (coordinated omission corrected)."""
    lag_ms: LoopLag | None
    """How late the loop ran the probe's ticks; ``None`` if none fell due."""
    blocked_s: float
    """Sum of the lags longer than one probe interval: time the loop could not run the probe."""
    busy: float | None
    """Share of ``running_s`` the loop spent inside timed callbacks; ``None`` if not timed."""
    coverage: Coverage | None
    evidence_ms: float
    stalls: int
    """Stalls longer than ``evidence_ms`` whose stack was sampled."""
    sites: list[CallSite]
    """Those stalls by call site, most blocking (total time) first; at most
    :data:`~offbench.measure.totals.SITES_KEPT`."""


class ProgramReport(msgspec.Struct, kw_only=True):
    """What a watched program hands to ``offbench watch``: one entry per loop and thread."""

    loops: list[LoopFigures] = msgspec.field(default_factory=list)
    final: bool = True
    """False for a snapshot written while the program ran (it ended without running its exit hooks)."""
    error: str | None = None
    """Why the hook stopped measuring, if it did (the figures are then those measured before)."""


class WatchResult(msgspec.Struct, kw_only=True):
    """What ``offbench watch -o FILE`` writes: how the program ended, and each of its loops' figures."""

    offbench_version: str
    command: list[str]
    exit_code: int
    """The program's exit code; 128 + N if signal N killed it."""
    killed_by: str | None = None
    """The signal that killed the program (``SIGKILL``), if one did."""
    elapsed_s: float
    lag_budget_ms: float | None
    statistic: str
    over_budget: list[str]
    """The loops (``thread / loop``) whose lag statistic went over the budget."""
    report: str
    """``final`` (written at the program's exit), ``snapshot`` (the last one written while it ran: it
    ended without running its exit hooks), or ``missing``."""
    error: str | None = None
    """Why the figures are missing or incomplete, if they are."""
    loops: list[LoopFigures]
