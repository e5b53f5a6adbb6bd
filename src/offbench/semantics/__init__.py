"""What each strategy does to a program's semantics, found by experiment, never from a table.

For every strategy on every loop a worker process runs the registered
:class:`~offbench.semantics.experiments.Experiment` s (context variables, thread-locals,
where the call runs, worker reuse, loop side effects, exceptions, cancellation,
argument copying, parallelism, shutdown). Each returns a :class:`Finding`: the yes/no
answer to its question, what was measured, and one sentence on why when the answer
is no. ``offbench check`` prints them; ``offbench run`` stores them in its results
(``semantics``) so the verdict can warn.
"""

from __future__ import annotations

import msgspec


class Finding(msgspec.Struct, frozen=True, kw_only=True):
    """One experiment's answer for one strategy on one loop."""

    experiment: str
    holds: bool | None
    """The answer to the experiment's question (see ``offbench check --help``); None: no yes/no."""
    value: str
    """What was seen, briefly: ``copied``, ``other process``, ``1.9×``, ``+200 ms``."""
    measured: float | None = None
    """The number behind ``value``, if any, in ``unit``."""
    unit: str = ""
    detail: str = ""
    """More of what was measured, e.g. a pool's start-up and first call."""
    why: str = ""
    """One sentence explaining a ``holds = false`` (or an error), for the footnotes."""


class StrategySemantics(msgspec.Struct, frozen=True, kw_only=True):
    """Every finding for one strategy on one loop."""

    strategy: str
    loop: str
    target: str | None = None
    """The user function the target-aware experiments called (``module:function``), if any."""
    findings: list[Finding]
    error: str | None = None
    """Why the experiments could not run at all (the worker crashed or timed out)."""

    def finding(self, experiment: str) -> Finding | None:
        """Return the finding of ``experiment``, if it ran."""
        return next((f for f in self.findings if f.experiment == experiment), None)


def caveats(strategy: str, found: list[StrategySemantics], caveat_of: dict[str, str]) -> list[str]:
    """Return the warnings for ``strategy``: each experiment answered no on some loop, once."""
    said: dict[str, None] = {}
    for s in found:
        if s.strategy != strategy:
            continue
        for f in s.findings:
            if f.holds is False and caveat_of.get(f.experiment):
                said.setdefault(f"{strategy}: {caveat_of[f.experiment]}")
    return list(said)


class CheckReport(msgspec.Struct, frozen=True, kw_only=True):
    """What ``offbench check --json`` writes: the findings, and what produced them."""

    offbench_version: str
    python_version: str
    complete: bool
    """False if interrupted (Ctrl-C, SIGTERM): ``semantics`` holds what was checked by then."""
    semantics: list[StrategySemantics]
