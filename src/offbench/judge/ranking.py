"""Who qualifies, who ties, who is preferred: the rules that order one workload's candidates.

In each *group* (one loop, one concurrency) a candidate qualifies when every one of its
cells measured and its lag p99 here is within the budget, or near it (its interval
straddles the budget) and either under it or not higher beyond noise than a candidate
within it, or near it where nothing is clearly within (:mod:`offbench.judge.evidence`
settles the zones). The fastest qualified candidate is the best; the *tied set* is every
qualified one not slower than it beyond noise, or than a tied twin on the same shared pool
(:meth:`Ranking.twin_tied`), ordered by :data:`TIERS`: what a strategy does to the
program (``offbench check``'s findings, else its registered facts), then the library's
default size before a set one (unless the default pool is full there:
:meth:`Ranking.full`), then the registry's order. A strategy that creates a worker per
call is never the best beside one that reuses its workers: faster beyond noise, it is
*passed over*.

Across groups, the *plan* is the candidate acceptable (in the tied set, itself or
through the default-size pool it is the same as there) at every concurrency, else one
per run of concurrencies, for all loops together if one plan fits them, else per loop.
Nothing here writes words but the tiers' own: the reasons and the headline read these
rankings (:mod:`offbench.judge.reasons`, :mod:`offbench.judge.recommendation`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from offbench import strategies
from offbench.judge.evidence import Cell, Group, Key, judged_cell, pool_size, ratio
from offbench.model.results import CellResult
from offbench.model.semantics import Finding, StrategySemantics


@dataclass(frozen=True)
class Facts:
    """What a strategy does to a program, as far as the verdict weighs it."""

    runs_on: str | None
    """``loop``, ``thread`` or ``process``; ``None`` for a strategy nothing is known about."""
    context: bool | None
    """Keeps the calling task's context variables."""
    reuse: bool | None
    """Reuses its workers (``False``: a worker per call)."""
    parallel_python: Finding | None
    """``offbench check``'s answer to "two pure-Python calls at once run in parallel"."""
    checked: bool
    """From ``offbench check`` (else from the strategy's registered facts)."""


def registered_facts(strategy: str) -> Facts:
    """Return what the strategy's registration says of it, where ``offbench check`` has not spoken.

    Runs on the loop: keeps the context, nothing to reuse. Calls through one sized pool:
    reuses its workers. Unknown (not registered here): nothing known.
    """
    cls = strategies.REGISTRY.get(strategy)
    runs_on = cls.runs_on if cls is not None else None
    return Facts(runs_on=runs_on, context=True if runs_on == "loop" else None,
                 reuse=None if cls is None else (runs_on == "loop" or cls.sized),
                 parallel_python=None, checked=False)


@dataclass(frozen=True)
class Tier:
    """One step of the preference within a tie: which strategies it admits, and why it comes first."""

    words: str
    admits: Callable[[Facts], bool]


TIERS: tuple[Tier, ...] = (
    Tier("runs on the loop: nothing to offload", lambda f: f.runs_on == "loop"),
    Tier("keeps context variables and reuses its threads",
         lambda f: f.runs_on == "thread" and f.reuse is not False and f.context is True),
    Tier("reuses its threads", lambda f: f.runs_on == "thread" and f.reuse is not False),
    Tier("reuses its processes", lambda f: f.runs_on == "process" and f.reuse is not False),
    Tier("nothing known about it", lambda f: f.reuse is not False),
    Tier("creates a worker per call", lambda f: True),
)
"""The preference within a tie, first admitted first: what keeps the program's semantics comes first."""
FULL_SHARE = 0.8
"""Share of its size's speed-up at which a default-size pool is full (:meth:`Ranking.full`)."""


@dataclass(frozen=True)
class Contest:
    """One (loop, concurrency): who qualified, the tied set in order of preference, the choice."""

    loop: str
    concurrency: int
    cells: dict[Key, Cell]
    qualified: list[Key]
    near: bool
    """Nothing was clearly within the budget: ``qualified`` are those near it."""
    best: Key | None
    tied: list[Key]
    passed_over: list[Key]
    """Worker-per-call candidates faster than ``best`` beyond noise, not chosen for what they do."""

    @property
    def chosen(self) -> Key | None:
        """The choice here: the first of the tied set; ``None`` where nothing qualified."""
        return self.tied[0] if self.tied else None


@dataclass(frozen=True)
class Segment:
    """Consecutive concurrencies (of one loop, or of every loop) with one choice."""

    levels: tuple[int, ...]
    key: Key | None
    """``None``: nothing qualified there."""
    tied: tuple[Key, ...]
    """Acceptable at every one of ``levels``, in order of preference (``key`` first)."""


@dataclass(frozen=True)
class Part:
    """The choice for one loop (``None``: every loop), concurrency by concurrency."""

    loop: str | None
    segments: tuple[Segment, ...]


class Ranking:
    """One workload's cells (one parameter set, one interpreter), ranked group by group and planned."""

    def __init__(
        self, cells: list[CellResult], budget: float, normalised: dict[int, list[float]],
        found: list[StrategySemantics],
    ) -> None:
        self.budget = budget
        self.found = found
        """The run's semantics (``offbench check``); empty: the registered facts break ties."""
        self.known: dict[tuple[str, str], Facts] = {}
        self.cells: dict[Key, list[Cell]] = {}
        """Each candidate's cells, in the order of the results."""
        by_group: dict[Group, dict[Key, Cell]] = {}
        for result in cells:
            judged = judged_cell(result, normalised.get(id(result), []), budget)
            key = (result.strategy, result.max_workers)
            self.cells.setdefault(key, []).append(judged)
            by_group.setdefault((result.loop, result.concurrency), {})[key] = judged
        self.loops = list(dict.fromkeys(c.loop for c in cells))
        self.groups = {g: self._contest(g, own) for g, own in by_group.items()}

    # What is known about each strategy.

    def facts(self, strategy: str, loop: str) -> Facts:
        """Return the strategy's facts on ``loop``: ``offbench check``'s, else its registered ones."""
        if (strategy, loop) not in self.known:
            self.known[(strategy, loop)] = self._facts(strategy, loop)
        return self.known[(strategy, loop)]

    def _facts(self, strategy: str, loop: str) -> Facts:
        checked = [s for s in self.found if s.strategy == strategy and s.error is None and s.findings]
        mine = next((s for s in checked if s.loop == loop), checked[0] if checked else None)
        if mine is None:
            return registered_facts(strategy)
        registered = registered_facts(strategy).runs_on
        where = mine.finding("runs_on")
        context, reuse = mine.finding("context"), mine.finding("reuse")
        return Facts(
            runs_on=where.value if where is not None and where.value in ("loop", "thread", "process")
            else registered,
            context=context.holds if context is not None else None,
            reuse=reuse.holds if reuse is not None else None,
            parallel_python=mine.finding("parallel_python"),
            checked=True,
        )

    def tier(self, key: Key, loops: Iterable[str]) -> int:
        """Return the candidate's place in :data:`TIERS`: the worst over ``loops``."""
        return max(next(i for i, t in enumerate(TIERS) if t.admits(self.facts(key[0], loop)))
                   for loop in loops)

    def preference(self, key: Key, loops: Iterable[str],
                   levels: Iterable[int] = ()) -> tuple[int, int, int, int, str]:
        """Order within a tie: tier, size, registry.

        The library's default size comes before a set one (smaller first), except a pool
        sized to the concurrency where the default one is full there (:meth:`full`): its size,
        not the work, is then what caps the calls, and the sized pool is the fix.
        """
        names = strategies.names()
        order = names.index(key[0]) if key[0] in names else len(names)
        size = key[1] if key[1] is not None else 0
        loops, top = list(loops), max(levels, default=0)
        lifts = key[1] is not None and key[1] >= top and bool(loops) and all(
            self.full(key[0], loop, top) is not None for loop in loops)
        return self.tier(key, loops), -1 if lifts else int(key[1] is not None), size, order, key[0]

    def full(self, strategy: str, loop: str, level: int) -> tuple[int, float, int] | None:
        """Return the default-size pool's size, speed-up and lowest concurrency where it is full at ``level``.

        Full: smaller than ``level``, and its throughput there at least :data:`FULL_SHARE`
        of what its size allows over the lowest concurrency (a pool of 6 at c=8 against
        c=1: 6×). A 10 ms sleep's or a socket call's pool reaches 5.8–6.1× at c=8 on 6
        threads, numpy's 1.6–2.0× (two cores: the CPU caps it, not the pool; quick and
        default runs, 2026-12-02). ``None`` where it is not full or was not measured.
        """
        cells = {c.result.concurrency: c for c in self.cells.get((strategy, None), [])
                 if c.result.loop == loop and c.result.ok}
        if level not in cells:
            return None
        low = min(cells)
        pool = pool_size(cells[level].result)
        if pool is None or not low < pool < level or cells[low].rate <= 0:
            return None
        speedup = cells[level].rate / cells[low].rate
        return (pool, speedup, low) if speedup >= FULL_SHARE * pool / low else None

    def per_call(self, key: Key, loop: str) -> bool:
        """Return whether the candidate creates a worker per call on ``loop``."""
        return self.facts(key[0], loop).reuse is False

    # One group.

    def _contest(self, group: Group, cells: dict[Key, Cell]) -> Contest:
        loop, concurrency = group
        # A candidate that failed anywhere qualifies nowhere: an error is not noise.
        sound = {k: c for k, c in cells.items() if all(o.result.ok for o in self.cells[k])}
        # An interval is needed where it can decide: under the budget, where it may reach over it;
        # over it, only where nothing is within (a cell near the budget then qualifies).
        within = [k for k, c in sound.items() if c.within]
        near = [k for k, c in sound.items() if not c.within and c.zone == "near"]
        if within:
            # Near the budget beside one within it: it qualifies too where its lag p99 is under the
            # budget, or, over it, unless it is higher beyond noise (its interval above that one's
            # p99). Two strategies on one pool hover about the same p99; which of them falls under
            # the budget is the run's luck. And a p99 under the budget whose interval reaches over
            # it meets the budget as far as the run can tell: excluded for its interval, a pool of
            # 8 threads for numpy at c=8 (8.57 ms, 7.29-11.3) left the tie in 1 of 5 default runs
            # where it read 4.8-6.3 ms (2026-12-02), and the verdict moved with it.
            worst_within = max(sound[k].lag for k in within)
            near = [k for k in near if sound[k].lag <= sound[k].budget
                    or (sound[k].lag_range or (math.inf, 0.0))[0] <= worst_within]
        qualified = within + near
        empty = Contest(loop, concurrency, cells, qualified, not within and bool(near), None, [], [])
        if not qualified:
            return empty
        eligible = [k for k in qualified if not self.per_call(k, loop)] or qualified
        best = max(eligible, key=lambda k: cells[k].rate)
        tied = [k for k in eligible if not ratio(cells[k], cells[best]).worse]
        tied += [k for k in eligible if k not in tied and self.twin_tied(k, tied, cells)]
        passed_over: list[Key] = []
        for k in (k for k in qualified if k not in eligible):
            found = ratio(cells[k], cells[best])
            if found.better:
                passed_over.append(k)
            elif not found.worse:
                tied.append(k)
        tied.sort(key=lambda k: self.preference(k, [loop], [concurrency]))
        return Contest(loop, concurrency, cells, qualified, empty.near, best, tied, passed_over)

    def twin_tied(self, key: Key, tied: list[Key], cells: dict[Key, Cell]) -> bool:
        """Return whether ``key`` shares its pool with a member of ``tied`` and ties with it.

        ``to-thread`` and ``default-executor`` run every call on the same executor (one
        adds a context copy, about a microsecond): judged each against the best alone, one
        fell just beyond noise and the other just inside in runs of identical code (a
        numpy call at c=1: -14 % [-23, -4] and -7 % [-24, +13], quick runs, 2026-12-02), and
        the tied set, hence the verdict, moved by noise. A twin that does not differ from
        its tied twin beyond noise is tied with it; one that does (a call so short the
        context copy shows) is judged on its own.
        """
        return any(self.same_pool(key, other) and not ratio(cells[key], cells[other]).worse
                   for other in tied)

    @staticmethod
    def same_pool(a: Key, b: Key) -> bool:
        """Return whether ``a`` and ``b`` are two strategies on one shared pool of one size."""
        first, second = strategies.REGISTRY.get(a[0]), strategies.REGISTRY.get(b[0])
        return (a != b and a[1] == b[1] and first is not None and second is not None
                and first.shared_pool and second.shared_pool and first.pool_owner == second.pool_owner)

    def stand_in(self, key: Key, group: Contest) -> Key | None:
        """Return the default-size candidate that is the same pool as ``key`` in ``group``, if any.

        A pool sized to N threads and the default pool of P threads both run every call
        at once while the concurrency is at most N and P: there they are one strategy.
        """
        strategy, size = key
        default = group.cells.get((strategy, None))
        if size is None or key in group.cells or default is None:
            return None
        pool = pool_size(default.result)
        return (strategy, None) if pool is not None and min(pool, size) >= group.concurrency else None

    def acceptable(self, key: Key, group: Contest) -> bool:
        """Return whether ``key`` would do in ``group``: in its tied set, itself or through its stand-in.

        A strategy that creates a worker per call would do only where it is the choice:
        where nothing else qualified.
        """
        if self.per_call(key, group.loop):
            return key == group.chosen
        if key in group.cells:
            return key in group.tied
        stand_in = self.stand_in(key, group)
        return stand_in is not None and stand_in in group.tied

    # Across groups.

    def plan(self) -> list[Part]:
        """Return the choice: one part for all loops if one plan by concurrency fits, else one per loop."""
        joint = self._segments(self.loops)
        if joint is not None:
            return [Part(None, joint)]
        return [Part(loop, self._segments([loop]) or ()) for loop in self.loops]

    def _segments(self, loops: list[str]) -> tuple[Segment, ...] | None:
        levels = sorted({c for (loop, c) in self.groups if loop in loops})
        found: list[Segment] = []
        running: list[Key] | None = None
        span: list[int] = []
        for level in levels:
            here = [self.groups[(loop, level)] for loop in loops if (loop, level) in self.groups]
            accepted: list[Key] | None = None
            if any(g.qualified for g in here):
                accepted = [k for k in self.cells if all(self.acceptable(k, g) for g in here)]
                if not accepted:
                    return None  # the loops disagree at this concurrency
            if span and accepted is None and running is None:
                span.append(level)
                continue
            if span and accepted is not None and running is not None:
                merged = [k for k in running if k in accepted]
                if merged:
                    running = merged
                    span.append(level)
                    continue
            if span:
                found.append(self._segment(span, running, loops))
            running, span = accepted, [level]
        if span:
            found.append(self._segment(span, running, loops))
        return tuple(found)

    def _segment(self, levels: list[int], keys: list[Key] | None, loops: list[str]) -> Segment:
        if keys is None:
            return Segment(tuple(levels), None, ())
        ordered = sorted(keys, key=lambda k: self.preference(k, loops, levels))
        return Segment(tuple(levels), ordered[0], tuple(ordered))
