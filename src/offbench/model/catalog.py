"""What ``offbench list`` shows: the workloads, strategies, loops and scenarios of this installation."""

from __future__ import annotations

import msgspec

from offbench.model.params import Params


class Entry(msgspec.Struct, frozen=True, kw_only=True):
    """One named thing offbench can run, with a one-line description."""

    name: str
    summary: str
    params: Params | None = None
    """A workload's parameters and their defaults."""
    runs_on: str | None = None
    """Where a strategy runs the blocking function: loop, thread or process."""
    available: bool = True
    """False for a strategy or loop that cannot run here (its summary then says why)."""
    default: bool = True
    """False for a strategy or loop measured only when named."""


class Catalog(msgspec.Struct, frozen=True, kw_only=True):
    """Everything ``offbench list`` shows."""

    workloads: list[Entry]
    strategies: list[Entry]
    loops: list[Entry]
    scenarios: list[Entry]
