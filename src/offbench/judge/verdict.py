"""The verdict: which strategy to use for each workload, decided from the measurements alone.

A *candidate* is one strategy at one executor size. Candidates are compared where their
cells were measured side by side: per *group* (one loop, one concurrency), under one
interpreter. In a group a candidate *qualifies* when its cell measured and its loop lag
p99 is within the budget: its bootstrap interval over units (:mod:`offbench.judge.precision`)
lies under it. One whose interval straddles the budget is *near* it: it qualifies where
no candidate is clearly within, and beside those within unless its lag p99 is higher
than theirs beyond noise (its interval's low end above their p99), so that of two
strategies on one pool, whose p99s hover at the budget together, the run's luck does not
pick the one that happened to fall under it.

Among the qualified, the fastest (mean throughput at the run's host speed) is the best,
and the *tied set* is every qualified candidate not slower than it beyond noise: the
interval of the mean per-round log ratio of their throughputs, so host drift between
rounds cancels (Welch on the units' logs where they share fewer than two rounds; a fixed
5 % for old files without units). Within a tie, what the strategy does to the program
decides (:data:`TIERS`, from ``offbench check``'s findings, else the strategies' registered
facts): no offload at all, then threads that keep context variables, then reused threads,
then processes; the library's default size before a larger pool, unless the default pool
is full at that concurrency (:meth:`~offbench.judge.ranking.Ranking.full`). A strategy that creates
a worker per call is chosen only where it alone qualifies; faster than the choice beyond
noise, it is said to be faster, and why the choice stands.

Across groups, a candidate acceptable (in the tied set) in every group is the verdict;
else the choice is given per concurrency ("to-thread up to c=4, then process-pool") and,
where the loops disagree, per loop. A pool sized to the concurrency (``to-thread (8)``,
measured by the run beside the default size) stands in for its default size where both
pools are larger than the concurrency: there they are the same pool. The winner's sized
pool is recommended with its line of code and its cost, a capped default-size pool with
the line that should lift it: in the details, once, the headline saying what the size
gains. The details open with how sure the choice is. Every other candidate gets the first
reason its evidence supports. Workload names are never read.

This module decides and assembles; the parts live beside it, each importing only those
before it: :mod:`~offbench.judge.evidence` (cells, lag zones, throughput ratios),
:mod:`~offbench.judge.wording` (how figures are written), :mod:`~offbench.judge.ranking`
(qualifying, ties, tiers, the plan across groups), :mod:`~offbench.judge.reasons` (each
other candidate's ruling) and :mod:`~offbench.judge.recommendation` (the headline, the fix,
the confidence, the details). The vocabulary they define is re-exported here (``__all__``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import msgspec

from offbench.judge import reasons, recommendation
from offbench.judge.evidence import (
    CONFIDENCE,
    GIL_SPEEDUP,
    MIN_EFFECT,
    NOISE,
    Group,
    Key,
    Zone,
    normalised,
)
from offbench.judge.ranking import TIERS, Facts, Ranking, Tier
from offbench.judge.reasons import (
    BLOCKED_SHARE,
    CAP_BAND,
    OVERHEAD_SHARE,
    QUEUE_SHARE,
    STALL_CAUSES,
    STALL_SHARE,
    Ruling,
    StallCause,
)
from offbench.judge.recommendation import ALTERNATIVE, COSTS, OTHER_SIZING, SIZINGS, Sizing
from offbench.judge.wording import label
from offbench.model.params import Params
from offbench.model.results import CellResult, Verdict
from offbench.model.semantics import StrategySemantics
from offbench.semantics import experiments

__all__ = [
    "ALTERNATIVE",
    "BLOCKED_SHARE",
    "CAP_BAND",
    "CONFIDENCE",
    "COSTS",
    "GIL_SPEEDUP",
    "MIN_EFFECT",
    "NOISE",
    "OTHER_SIZING",
    "OVERHEAD_SHARE",
    "QUEUE_SHARE",
    "SIZINGS",
    "STALL_CAUSES",
    "STALL_SHARE",
    "TIERS",
    "Facts",
    "Group",
    "Key",
    "Ruling",
    "Sizing",
    "StallCause",
    "Tier",
    "Zone",
    "caveats",
    "decide",
]


def decide(
    results: Sequence[CellResult], lag_budget_ms: float, found: Sequence[StrategySemantics] = ()
) -> list[Verdict]:
    """Return one verdict per workload, parameter set and interpreter, in order of first appearance.

    Under ``--python`` each interpreter gets its own verdicts: strategies are compared
    only with each other under the same interpreter.

    ``found`` (the run's semantics) breaks ties by what each strategy does to the program
    and adds warnings about the winner: the experiments it answered no to that have a
    caveat, e.g. context variables lost. Without it, the strategies' registered facts
    break ties, and the verdict says so.
    """
    values = normalised(results)
    verdicts = [
        msgspec.structs.replace(
            _verdict(Ranking(cells, lag_budget_ms, values, list(found)), workload, params),
            python=cells[0].python,
        )
        for workload, params, cells in _by_workload(results)
    ]
    caveat_of = {e.name: e.caveat for e in experiments.REGISTRY.values()}
    return [
        msgspec.structs.replace(v, warnings=caveats(v.winner.strategy, list(found), caveat_of))
        if v.winner and found else v
        for v in verdicts
    ]


def _by_workload(results: Iterable[CellResult]) -> list[tuple[str, Params, list[CellResult]]]:
    found: list[tuple[str, Params, list[CellResult]]] = []
    for cell in results:
        for workload, params, cells in found:
            if cell.workload == workload and cell.params == params and cell.python == cells[0].python:
                cells.append(cell)
                break
        else:
            found.append((cell.workload, cell.params, [cell]))
    return found


def _verdict(ranking: Ranking, workload: str, params: Params) -> Verdict:
    """Return one workload's verdict: the plan's choice where the headline's figures come from."""
    parts = ranking.plan()
    chosen = [(part, s) for part in parts for s in part.segments if s.key is not None]
    if not chosen:
        candidates = [reasons.candidate(ranking, k, reasons.ruling(ranking, k, None, parts))
                      for k in reasons.ranked(ranking, None)]
        return Verdict(workload=workload, params=params, lag_budget_ms=ranking.budget, winner=None,
                       text=recommendation.nothing(ranking), candidates=candidates,
                       details=recommendation.notes(ranking))
    part, segment = next(((p, s) for p, s in reversed(chosen) if p is parts[0]), chosen[-1])
    winner = segment.key
    assert winner is not None
    head = recommendation.headline_group(ranking, winner, part, segment)
    fix, fix_clause, fix_lines = recommendation.fix(ranking, winner, head)
    text = (f"use {recommendation.choice_words(ranking, parts, winner)}:"
            f" {recommendation.figures(ranking, winner, part, segment, head)}{fix_clause}"
            f"{recommendation.tie_clause(ranking, segment, head)}"
            f"{recommendation.alone_clause(ranking, winner, head)}")
    candidates = [reasons.candidate(ranking, k, reasons.ruling(ranking, k, (winner, head), parts))
                  for k in reasons.ranked(ranking, winner)]
    confidence = recommendation.confidence(ranking, winner, head)
    return Verdict(
        workload=workload,
        params=params,
        lag_budget_ms=ranking.budget,
        winner=candidates[0],
        text=text,
        candidates=candidates,
        tied=[label(k) for k in segment.tied],
        # How sure comes first: the reader weighs every other line by it.
        details=[*recommendation.confidence_lines(winner, head, confidence),
                 *recommendation.plan_lines(ranking, parts), *fix_lines,
                 *recommendation.per_call_lines(ranking, winner, head), *recommendation.notes(ranking)],
        fix=fix,
        confidence=confidence,
    )


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
