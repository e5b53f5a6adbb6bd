"""What ``offbench check`` finds: one :class:`Finding` per experiment, per strategy and loop."""

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


class CheckReport(msgspec.Struct, frozen=True, kw_only=True):
    """What ``offbench check --json`` writes: the findings, and what produced them."""

    offbench_version: str
    python_version: str
    complete: bool
    """False if interrupted (Ctrl-C, SIGTERM): ``semantics`` holds what was checked by then."""
    semantics: list[StrategySemantics]
