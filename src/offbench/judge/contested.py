"""Which cells the verdict cannot decide between yet: the runner measures them further.

A cell stops when its own throughput is known to the run's precision
(:func:`offbench.judge.precision.settled`); that says nothing of whether it is known well
enough *against the others of its group*, and the verdict decides on the ratios
(:func:`offbench.judge.evidence.ratio`). With two units a paired interval takes
t = 12.7: a socket call at c=8 through the default pool of 6 threads read 25 % slower
than through a pool of 8, with an interval across 0, in 6 of 10 quick runs
(2026-12-02), and the verdict tied them; the next run decided it. So, as an adaptive
trial stops on its decision and not on each arm's precision, a candidate whose point
estimate is slower than the group's best by more than
:data:`~offbench.judge.evidence.MIN_EFFECT` (enough to matter) but not beyond noise
(its interval reaches 0) is *contested*, and so is that best: both keep measuring, in
the same rounds so they stay paired, up to the effort's cap.

A difference under ``MIN_EFFECT`` is a tie whatever the units say, and one beyond noise
is decided: neither needs more units for the verdict.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from offbench.judge.evidence import MIN_EFFECT, Cell, ratio
from offbench.judge.ranking import registered_facts


def reuses(strategy: str) -> bool:
    """Return whether ``strategy`` reuses its workers, by its registered facts.

    The verdict's best is never a strategy that creates a worker per call beside one that
    reuses its workers, so neither is the best a contest is measured against.
    """
    return registered_facts(strategy).reuse is not False


def undecided(cell: Cell, best: Cell) -> bool:
    """Return whether ``cell`` reads slower than ``best`` by enough to matter, but not beyond noise."""
    found = ratio(cell, best)
    return found.log < math.log1p(-MIN_EFFECT) and not found.worse


def contested(group: Sequence[Cell]) -> set[int]:
    """Return the positions in ``group`` (one workload, loop, concurrency, interpreter) still contested.

    The best is the fastest of the cells that measured and whose lag p99 is not over the
    budget beyond doubt, among those that reuse their workers if any does (as the verdict
    chooses it: :meth:`offbench.judge.ranking.Ranking._contest`).
    """
    usable = [i for i, cell in enumerate(group) if cell.result.ok and cell.zone != "over"]
    if len(usable) < 2:
        return set()
    eligible = [i for i in usable if reuses(group[i].result.strategy)] or usable
    best = max(eligible, key=lambda i: group[i].rate)
    found = {i for i in usable if i != best and undecided(group[i], group[best])}
    return found | {best} if found else set()
