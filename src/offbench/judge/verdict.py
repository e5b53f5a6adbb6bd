"""The verdict: which strategy to use for each workload, decided from the measurements alone.

A *candidate* is one strategy at one executor size; its cells are all its results for
the workload (every loop and concurrency). It *qualifies* when every cell measured and
kept loop lag p99 within the budget. Its *score* is its throughput relative to the
fastest candidate, averaged over the (loop, concurrency) groups it measured. The winner
is the qualified candidate with the best score; every other one gets the first reason
that fits: failed, blocked, gil, lag, capped or slower. Workload names are never read.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import msgspec

from offbench import strategies
from offbench.formatting import format_ms, format_rate, strategy_label
from offbench.model.params import Params
from offbench.model.results import Candidate, CellResult, Judgement, Verdict
from offbench.model.semantics import StrategySemantics
from offbench.semantics import experiments

BLOCKED_SHARE = 0.5
"""Share of a window the loop could not run the probe, from which a lagging candidate is "blocked"."""
GIL_SPEEDUP = 1.3
"""Speed-up from the lowest to the highest concurrency below which threads are not running in parallel."""
NOISE = 0.05
"""Score shortfall, relative to the winner's, that is called a tie."""
CAP_BAND = (0.7, 1.15)
"""Above its pool size, throughput within this multiple of size × per-worker throughput is "capped"."""

Key = tuple[str, int | None]
"""A candidate: strategy name and executor size."""
Group = tuple[str, int]
"""Where cells compare: loop name and concurrency."""
Ruling = tuple[Judgement, str]


@dataclass(frozen=True)
class _Entry:
    """One candidate while it is judged: its cells and the figures the rules read."""

    strategy: str
    max_workers: int | None
    cells: list[CellResult]
    score: float | None
    worst_lag: float | None
    """Worst lag p99 of the ok cells: ``inf`` if one saw no probe tick, ``None`` if none is ok."""
    qualified: bool


def decide(
    results: Sequence[CellResult], lag_budget_ms: float, found: Sequence[StrategySemantics] = ()
) -> list[Verdict]:
    """Return one verdict per workload, parameter set and interpreter, in order of first appearance.

    Under ``--python`` each interpreter gets its own verdicts: strategies are compared
    only with each other under the same interpreter.

    ``found`` (the run's semantics) adds warnings about the winner: the experiments it
    answered no to that have a caveat, e.g. context variables lost.
    """
    verdicts = [
        msgspec.structs.replace(_verdict(workload, params, cells, lag_budget_ms), python=cells[0].python)
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


def _verdict(workload: str, params: Params, cells: list[CellResult], budget: float) -> Verdict:
    entries = _entries(cells, budget)
    winner = _winner(entries)
    candidates = [_candidate(e, _judge(e, winner, budget)) for e in _ranked(entries, winner)]
    return Verdict(
        workload=workload,
        params=params,
        lag_budget_ms=budget,
        winner=candidates[0] if winner else None,
        text=_text(entries, winner, budget),
        candidates=candidates,
    )


def _entries(cells: list[CellResult], budget: float) -> list[_Entry]:
    best = _fastest(cells)
    found: dict[Key, list[CellResult]] = {}
    for cell in cells:
        found.setdefault((cell.strategy, cell.max_workers), []).append(cell)
    return [_entry(key, own, best, budget) for key, own in found.items()]


def _entry(key: Key, cells: list[CellResult], best: dict[Group, float], budget: float) -> _Entry:
    worst = max((_lag(c) for c in cells if c.ok), default=None)
    qualified = all(c.ok for c in cells) and worst is not None and worst <= budget
    return _Entry(key[0], key[1], cells, _score(cells, best), worst, qualified)


def _fastest(cells: Iterable[CellResult]) -> dict[Group, float]:
    best: dict[Group, float] = {}
    for cell in cells:
        if cell.ok:
            group = (cell.loop, cell.concurrency)
            best[group] = max(best.get(group, 0.0), cell.throughput_ops_s)
    return best


def _by_loop(cells: Iterable[CellResult]) -> dict[str, dict[int, float]]:
    levels: dict[str, dict[int, float]] = {}
    for (loop, concurrency), ops_s in _fastest(cells).items():
        levels.setdefault(loop, {})[concurrency] = ops_s
    return levels


def _score(cells: list[CellResult], best: dict[Group, float]) -> float | None:
    mine = _fastest(cells)
    if not mine:
        return None
    ratios = [ops_s / best[group] if best[group] > 0 else 0.0 for group, ops_s in mine.items()]
    return sum(ratios) / len(ratios)


def _lag(cell: CellResult) -> float:
    # No lag figures means the probe never woke in the window: the loop never ran it.
    return cell.loop_lag_ms.p99 if cell.loop_lag_ms is not None else math.inf


def _winner(entries: list[_Entry]) -> _Entry | None:
    return max((e for e in entries if e.qualified), key=_score_key, default=None)


def _score_key(entry: _Entry) -> float:
    return entry.score if entry.score is not None else -math.inf


def _ranked(entries: list[_Entry], winner: _Entry | None) -> list[_Entry]:
    others = sorted((e for e in entries if e is not winner), key=_score_key, reverse=True)
    return [winner, *others] if winner else others


def _candidate(entry: _Entry, ruling: Ruling) -> Candidate:
    worst = entry.worst_lag
    return Candidate(
        strategy=entry.strategy,
        max_workers=entry.max_workers,
        judgement=ruling[0],
        reason=ruling[1],
        qualified=entry.qualified,
        score=entry.score,
        worst_lag_p99_ms=worst if worst is not None and math.isfinite(worst) else None,
    )


def _text(entries: list[_Entry], winner: _Entry | None, budget: float) -> str:
    if winner:
        return f"use {_label(winner)}: {_headline(winner)}"
    measured = [e for e in entries if e.worst_lag is not None]
    if not measured:
        return "no cell measured"
    least = min(measured, key=lambda e: e.worst_lag or 0.0)
    text = (
        f"no strategy kept loop lag p99 within {budget:g} ms;"
        f" least lag: {_label(least)} ({_ms(least.worst_lag)})"
    )
    failure = _failed(least)
    return f"{text} but {failure[1]}" if failure else text


def _judge(entry: _Entry, winner: _Entry | None, budget: float) -> Ruling:
    if entry is winner:
        return "winner", f"{_headline(entry)} over {_count(len(entry.cells), 'cell')}"
    return _failed(entry) or _over_budget(entry, budget) or _behind(entry, winner)


def _failed(entry: _Entry) -> Ruling | None:
    bad = [c for c in entry.cells if not c.ok]
    if not bad:
        return None
    first = bad[0]
    what = "timed out" if first.status == "timeout" else "error"
    detail = first.error.splitlines()[0] if first.error else first.status
    return "failed", f"{what} in {len(bad)} of {_count(len(entry.cells), 'cell')}: {detail}"


def _over_budget(entry: _Entry, budget: float) -> Ruling | None:
    if entry.qualified:
        return None
    lag = _ms(entry.worst_lag)
    runs_on = _runs_on(entry.strategy)
    share = _blocked_share(entry.cells)
    if runs_on == "loop":
        return "blocked", f"loop blocked {min(share, 1.0):.0%} of the time (lag p99 {lag})"
    stuck = _no_speedup(entry.cells) if runs_on == "thread" else None
    if stuck:
        speedup, low, high = stuck
        return "gil", (
            f"threads don't speed it up ({speedup:.2f}× from c={low} to c={high})"
            f" and the loop lags {lag} p99: the work holds the GIL"
        )
    if share >= BLOCKED_SHARE:
        # Off the loop, the call does not block it: the loop is starved (GIL, CPU).
        return "blocked", f"the loop ran late {min(share, 1.0):.0%} of the time (lag p99 {lag})"
    return "lag", f"loop lag p99 {lag}, over the {budget:g} ms budget"


def _runs_on(strategy: str) -> str | None:
    cls = strategies.REGISTRY.get(strategy)
    return cls.runs_on if cls else None


def _blocked_share(cells: Iterable[CellResult]) -> float:
    return max((c.blocked_s / c.elapsed_s for c in cells if c.ok and c.elapsed_s > 0), default=0.0)


def _no_speedup(cells: Iterable[CellResult]) -> tuple[float, int, int] | None:
    for levels in _by_loop(cells).values():
        low, high = min(levels), max(levels)
        if high >= 2 and high > low and levels[low] > 0:
            speedup = levels[high] / levels[low]
            if speedup < GIL_SPEEDUP:
                return speedup, low, high
    return None


def _behind(entry: _Entry, winner: _Entry | None) -> Ruling:
    assert winner is not None, "a qualified loser implies a winner"
    score, best = entry.score or 0.0, winner.score or 0.0
    rival = _label(winner)
    if score >= (1 - NOISE) * best:
        return "slower", f"as fast as {rival} within {NOISE:.0%}{_versus(entry, winner)}"
    capped = _capped(entry, winner)
    if capped:
        return "capped", capped
    return "slower", f"{1 - score / best:.0%} slower than {rival} on average{_versus(entry, winner)}"


def _capped(entry: _Entry, winner: _Entry) -> str | None:
    levels, theirs = _by_loop(entry.cells), _fastest(winner.cells)
    for cell in sorted(entry.cells, key=lambda c: -c.concurrency):
        size, ops_s = _pool_size(cell), levels[cell.loop][cell.concurrency]
        low = min(levels[cell.loop])
        if size is None or cell.concurrency <= max(size, low):
            continue
        ceiling = size * levels[cell.loop][low] / min(low, size)
        rival = theirs.get((cell.loop, cell.concurrency), 0.0)
        if 0 < CAP_BAND[0] * ceiling <= ops_s <= CAP_BAND[1] * ceiling and rival > ops_s:
            group = (cell.loop, cell.concurrency)
            return f"capped at {_pool_words(cell, size)}{_versus(entry, winner, group)}"
    return None


def _pool_size(cell: CellResult) -> int | None:
    size = cell.details.get("max_workers")
    return size if isinstance(size, int) and not isinstance(size, bool) and size > 0 else None


def _pool_words(cell: CellResult, size: int) -> str:
    runs_on = _runs_on(cell.strategy)
    unit = {"thread": "thread", "process": "process"}.get(runs_on or "", "worker")
    cls = strategies.REGISTRY.get(cell.strategy)
    whose = cls.pool_owner if cls is not None and cell.max_workers is None else "the pool's"
    return f"{_count(size, unit)}, {whose} size"


def _versus(entry: _Entry, winner: _Entry, group: Group | None = None) -> str:
    mine, theirs = _fastest(entry.cells), _fastest(winner.cells)
    shared = [g for g in mine if g in theirs]
    if group is None and shared:
        group = max(shared, key=lambda g: g[1])
    if group is None or group not in mine or group not in theirs:
        return ""
    loop, concurrency = group
    return (
        f" ({format_rate(mine[group])} vs {format_rate(theirs[group])} ops/s"
        f" at c={concurrency} on {loop})"
    )


def _headline(entry: _Entry) -> str:
    top = max(c.concurrency for c in entry.cells)
    best = max((c for c in entry.cells if c.concurrency == top), key=lambda c: c.throughput_ops_s)
    return (
        f"{format_rate(best.throughput_ops_s)} ops/s at c={top} ({best.loop}),"
        f" loop lag p99 ≤ {_ms(entry.worst_lag)}"
    )


def _label(entry: _Entry) -> str:
    return strategy_label(entry.strategy, entry.max_workers)


def _ms(value: float | None) -> str:
    return f"{format_ms(value)} ms" if value is not None and math.isfinite(value) else "unbounded"


def _count(n: int, noun: str) -> str:
    plural = noun + ("es" if noun.endswith("s") else "s")
    return f"{n} {noun if n == 1 else plural}"


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
