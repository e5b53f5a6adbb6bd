"""Why each candidate is not the verdict: the first reason its evidence supports, in one line.

A candidate that failed somewhere failed; one over the budget everywhere is ``blocked``
(it ran on the loop, or the loop ran late most of the window), ``startup`` (the loop's
sampled stalls show it starting a thread or a process: :data:`STALL_CAUSES`), ``gil``
(threads speed the work up through no thread strategy, and ``offbench check`` did not
find Python running in parallel) or ``lag``. One that qualified is judged where the
winner would do first: over the budget there, passed over for creating a worker per
call (``semantics``), slower beyond noise (``capped`` at its pool's size, ``startup``,
``shipping`` to a process, ``slower``), else a ``tie`` and what made the winner
preferred. Each reason quotes the figures it rests on; none is given without them.

The candidates are listed winner first, then by :func:`score`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from offbench.formatting import format_ms, format_rate
from offbench.judge.evidence import (
    GIL_SPEEDUP,
    MIN_EFFECT,
    NOISE,
    Cell,
    Key,
    best_speedup,
    blocked_share,
    no_speedup,
    overhead,
    pool_size,
    ratio,
)
from offbench.judge.ranking import Contest, Part, Ranking
from offbench.judge.wording import (
    count,
    full_words,
    label,
    levels,
    ms,
    pool_words,
    range_words,
    runs_on,
    signed,
    unit,
)
from offbench.model.results import Candidate, CellResult, Judgement, StallEvidence

BLOCKED_SHARE = 0.5
"""Share of a window the loop could not run the probe, from which a lagging candidate is "blocked"."""
CAP_BAND = (0.7, 1.15)
"""Above its pool size, throughput within this multiple of size × per-worker throughput is "capped"."""
QUEUE_SHARE = 0.2
"""Above its pool size, calls waiting this share of their run time (p50) or more are queueing for a worker."""
OVERHEAD_SHARE = 0.5
"""Share of a call's p50 spent reaching a worker and back from which that, not the work, is its cost."""
STALL_SHARE = 0.5
"""Share of a candidate's sampled stalls that must show one cause (:data:`STALL_CAUSES`) to name it."""

Ruling = tuple[Judgement, str]


@dataclass(frozen=True)
class StallCause:
    """A stack that names why the loop stalled: a frame of ``function`` in a file ending ``file``."""

    file: str
    functions: frozenset[str]
    where: str
    """What the loop was doing, as a reader knows it (``Thread.start()``)."""
    words: str
    """What the strategy does, to say as its reason."""


STALL_CAUSES: tuple[StallCause, ...] = (
    StallCause("threading.py", frozenset({"start", "_start_new_thread"}), "Thread.start()",
               "starts a thread per call on the loop"),
    StallCause("threading.py", frozenset({"join", "_wait_for_tstate_lock"}), "Thread.join()",
               "joins a thread per call on the loop"),
    StallCause("concurrent/futures/thread.py", frozenset({"_adjust_thread_count", "shutdown"}),
               "ThreadPoolExecutor start-up and shutdown", "starts and stops a pool per call on the loop"),
    StallCause("concurrent/futures/process.py",
               frozenset({"_adjust_process_count", "_spawn_process", "_launch_processes"}),
               "ProcessPoolExecutor starting a process", "starts worker processes on the loop"),
)
"""Causes of a stall the loop thread's stack shows (:class:`~offbench.model.results.StallEvidence`)."""


# The list of candidates.


def ranked(ranking: Ranking, winner: Key | None) -> list[Key]:
    """Return the candidates in the verdict's order: the winner, then the best :func:`score` first."""
    scores = {k: score(ranking, k) for k in ranking.cells}

    def best_first(key: Key) -> float:
        found = scores[key]
        return math.inf if found is None else -found

    others = sorted((k for k in ranking.cells if k != winner), key=best_first)
    return [winner, *others] if winner else others


def score(ranking: Ranking, key: Key) -> float | None:
    """Return the geometric mean, over its groups, of its throughput over the fastest there."""
    ratios = []
    for g in ranking.groups.values():
        cell = g.cells.get(key)
        if cell is None or not cell.result.ok:
            continue
        top = max(c.rate for c in g.cells.values() if c.result.ok)
        ratios.append(cell.rate / top if top > 0 else 0.0)
    if not ratios:
        return None
    if min(ratios) <= 0:
        return 0.0
    return math.exp(sum(math.log(r) for r in ratios) / len(ratios))


def candidate(ranking: Ranking, key: Key, ruling: Ruling) -> Candidate:
    """Return the candidate as the verdict lists it, with its ruling."""
    cells = ranking.cells[key]
    worst = max((c.lag for c in cells if c.result.ok), default=None)
    qualified = all(key in g.qualified for g in ranking.groups.values() if key in g.cells)
    return Candidate(
        strategy=key[0],
        max_workers=key[1],
        judgement=ruling[0],
        reason=ruling[1],
        qualified=qualified,
        score=score(ranking, key),
        worst_lag_p99_ms=worst if worst is not None and math.isfinite(worst) else None,
    )


# One candidate's ruling.


def ruling(ranking: Ranking, key: Key, chosen: tuple[Key, Contest] | None, parts: list[Part]) -> Ruling:
    """Return the candidate's judgement and its reason; ``chosen``: the winner and its headline's group."""
    cells = ranking.cells[key]
    if chosen is not None and key == chosen[0]:
        head = chosen[1]
        cell = head.cells[key]
        worst = max((c.lag for c in cells if c.result.ok), default=cell.lag)
        return "winner", (f"{format_rate(cell.rate)} ops/s at c={head.concurrency} ({head.loop}),"
                          f" loop lag p99 ≤ {ms(worst)} over {count(len(cells), 'cell')}")
    failure = failed(c.result for c in cells)
    if failure:
        return failure
    partial = [(p, s) for p in parts for s in p.segments if s.key == key]
    if partial:
        return "partial", "the choice " + "; ".join(
            f"at c={levels(s.levels)}" + (f" on {p.loop}" if p.loop else "") for p, s in partial)
    mine = sorted((g for g in ranking.groups.values() if key in g.cells), key=lambda g: -g.concurrency)
    if not any(key in g.qualified for g in mine):
        return over_budget(ranking, key, [g.cells[key] for g in mine])
    winner = chosen[0] if chosen else None
    # Where the winner would do first (that is where the choice was made), then anywhere.
    where = [g for g in mine if winner is None or ranking.acceptable(winner, g)]
    for g in [*where, *(g for g in mine if g not in where)]:
        if key not in g.qualified:
            judgement, reason = over_budget(ranking, key, [g.cells[key]])
            return judgement, f"at c={g.concurrency} on {g.loop}, {reason}"
        if key in g.passed_over:
            return passed_over(ranking, key, g)
        if key not in g.tied:
            return behind(ranking, key, g)
    return tie(ranking, key, winner, mine)


def over_budget(ranking: Ranking, key: Key, cells: list[Cell]) -> Ruling:
    """Return why the candidate's lag is over the budget in ``cells``, as far as the evidence shows."""
    ok = [c for c in cells if c.result.ok]
    worst = max((c.lag for c in ok), default=math.inf)
    lag = ms(worst)
    if ok and all(c.zone == "near" for c in ok):
        ranges = [c.lag_range for c in ok if c.lag_range is not None]
        low = min(r[0] for r in ranges) if ranges else worst
        high = max(r[1] for r in ranges) if ranges else worst
        return "lag", (f"loop lag p99 {lag} is near the {ranking.budget:g} ms budget"
                       f" ({format_ms(low)}–{format_ms(high)} ms) and higher beyond noise than"
                       " that of others within it")
    loop = ok[0].result.loop if ok else ranking.loops[0]
    facts = ranking.facts(key[0], loop)
    share = blocked_share(c.result for c in ok)
    if facts.runs_on == "loop":
        return "blocked", f"loop blocked {min(share, 1.0):.0%} of the time (lag p99 {lag})"
    cause = stall_cause(c.result for c in ok)
    if cause:
        found, seen, stalls = cause
        return "startup", (f"it {found.words}: {seen} of {count(stalls, 'stall')} sampled were in"
                           f" {found.where} (lag p99 {lag})")
    held = gil(ranking, key, ok, lag)
    if held:
        return "gil", held
    if share >= BLOCKED_SHARE:
        # Off the loop, the call does not block it: the loop is starved (GIL, CPU).
        return "blocked", f"the loop ran late {min(share, 1.0):.0%} of the time (lag p99 {lag})"
    return "lag", f"loop lag p99 {lag}, over the {ranking.budget:g} ms budget"


def gil(ranking: Ranking, key: Key, cells: list[Cell], lag: str) -> str | None:
    """Return why the work holds the GIL, only where the measurements show it.

    ``cells`` lag over the budget; threads through this strategy do not speed the work
    up from the lowest concurrency to the highest, nor through any other thread
    strategy of the workload (BLAS releasing the GIL speeds up through a reused pool),
    and ``offbench check`` did not find threads running Python in parallel (a
    free-threaded build). A strategy that starts a thread per call on the loop stalls
    it too: its stall evidence says so first (:data:`STALL_CAUSES`).
    """
    loop = cells[0].result.loop if cells else ranking.loops[0]
    facts = ranking.facts(key[0], loop)
    if facts.runs_on != "thread" or (facts.parallel_python and facts.parallel_python.holds):
        return None
    own = no_speedup(ranking.cells[key])
    if own is None:
        return None
    threads = [k for k in ranking.cells if ranking.facts(k[0], loop).runs_on == "thread"]
    if max(best_speedup(ranking.cells[k]) for k in threads) >= GIL_SPEEDUP:
        return None
    speedup, low, high = own
    check = (f" (offbench check: two pure-Python calls at once {facts.parallel_python.value})"
             if facts.parallel_python is not None and facts.parallel_python.holds is False else "")
    return (f"threads don't speed it up ({speedup:.2f}× from c={low} to c={high}, nor through any"
            f" thread strategy) and the loop lags {lag} p99: the work holds the GIL{check}")


def behind(ranking: Ranking, key: Key, g: Contest) -> Ruling:
    """Return why the candidate is slower than the best in ``g`` beyond noise."""
    assert g.best is not None
    rival = g.best
    found = ratio(g.cells[key], g.cells[rival])
    versus = (f" ({format_rate(g.cells[key].rate)} vs {format_rate(g.cells[rival].rate)} ops/s"
              f" at c={g.concurrency} on {g.loop})")
    cap = capped(ranking, key, g)
    if cap:
        return "capped", f"{cap}{versus}"
    slower = f"{-found.pct():.0f}% slower than {label(rival)}"
    facts = ranking.facts(key[0], g.loop)
    low = lowest(ranking, key, g.loop)
    around = overhead(low.result) if low is not None else None
    spent = (f"{format_ms(around[1])} of each call's {format_ms(around[2])} ms p50 is"
             if around else "")
    if facts.reuse is False:
        cause = stall_cause(c.result for c in ranking.cells[key] if c.result.ok)
        if cause:
            return "startup", f"{slower}: it {cause[0].words} ({cause[1]} of {cause[2]} stalls){versus}"
        if around and around[0] >= OVERHEAD_SHARE:
            return "startup", f"{slower}: it creates a worker per call ({spent} getting there){versus}"
    if facts.runs_on == "process" and around and around[0] >= OVERHEAD_SHARE:
        return "shipping", f"{slower}: {spent} reaching a process and back (pickling, IPC){versus}"
    return "slower", f"{slower}{range_words(found)}{versus}"


def lowest(ranking: Ranking, key: Key, loop: str) -> Cell | None:
    """Return the candidate's cell at its lowest concurrency on ``loop`` (within its pool's size)."""
    own = [g.cells[key] for g in ranking.groups.values() if g.loop == loop and key in g.cells
           and g.cells[key].result.ok]
    return min(own, key=lambda c: c.result.concurrency, default=None)


def capped(ranking: Ranking, key: Key, g: Contest) -> str | None:
    """Return "capped at N threads, whose size" when the pool's size, not the work, held it back.

    Above its size a pool's throughput levels off at size × its per-worker throughput
    (within :data:`CAP_BAND`), or its calls wait for a worker (:data:`QUEUE_SHARE`);
    and a qualified rival there is faster beyond noise.
    """
    cell = g.cells.get(key)
    size = pool_size(cell.result) if cell is not None else None
    if cell is None or size is None or g.concurrency <= size:
        return None
    low = lowest(ranking, key, g.loop)
    plateau = False
    if low is not None and low.result.concurrency < g.concurrency and low.rate > 0:
        ceiling = size * low.rate / min(low.result.concurrency, size)
        plateau = CAP_BAND[0] * ceiling <= cell.rate <= CAP_BAND[1] * ceiling
    parts = cell.result.breakdown_ms
    queued = parts is not None and parts.queue_wait.p50 >= QUEUE_SHARE * parts.run.p50
    rivals = [k for k in g.qualified if k != key and ratio(g.cells[k], cell).better]
    if not (plateau or queued) or not rivals:
        return None
    noun = unit(runs_on(key[0]))
    words = f"capped at {pool_words(cell.result, size, noun)}"
    if queued and parts is not None:
        words += f"; calls wait {format_ms(parts.queue_wait.p50)} ms p50 for a {noun}"
    return words


def passed_over(ranking: Ranking, key: Key, g: Contest, rival: Key | None = None) -> Ruling:
    """Return why a worker-per-call candidate faster than ``rival`` (the choice in ``g``) is not it."""
    chosen = rival if rival is not None else g.chosen
    assert chosen is not None
    found = ratio(g.cells[key], g.cells[chosen])
    cap = capped(ranking, chosen, g)
    because = f"; the gap is {label(chosen)}'s pool: {cap}" if cap else ""
    return "semantics", (f"{signed(found.pct())} against {label(chosen)} at c={g.concurrency} on"
                         f" {g.loop}{range_words(found)}, but it creates a worker per call:"
                         f" {label(chosen)} reuses its pool{because}")


def tie(ranking: Ranking, key: Key, winner: Key | None, mine: list[Contest]) -> Ruling:
    """Return how the candidate compares with the winner where both were measured, and why it lost.

    In the tied set it is as fast as the best, but a worker-per-call candidate may still
    be faster than the winner beyond noise (the winner preferred among the tied is not
    the best): that is no tie, it was passed over for what it does.
    """
    shared = [g for g in mine if winner is not None and winner in g.cells]
    g = shared[0] if shared else mine[0]
    rival = winner if winner is not None and winner in g.cells else g.chosen
    if rival is None or rival == key:
        return "tie", f"as fast as the choice wherever it was measured; {label(key)} was not chosen"
    found = ratio(g.cells[key], g.cells[rival])
    if found.faster and ranking.per_call(key, g.loop) and not ranking.per_call(rival, g.loop):
        return passed_over(ranking, key, g, rival)
    versus = (f" ({format_rate(g.cells[key].rate)} vs {format_rate(g.cells[rival].rate)} ops/s"
              f" at c={g.concurrency} on {g.loop})")
    why = contrast(ranking, key, rival, g.loop, g.concurrency)
    twin = next((t for t in g.tied if ranking.same_pool(key, t)), None)
    if found.worse and twin is not None:  # tied through its twin (Ranking.twin_tied)
        return "tie", (f"tied through {label(twin)}, on the same pool: {signed(found.pct())} against"
                       f" {label(rival)}{range_words(found)}{versus}; {label(rival)} preferred: {why}")
    if found.method == "fixed 5 %":
        within = f"within a fixed {NOISE:.0%}"
    elif found.low > 0 or found.high < 0:  # beyond noise, but less than a difference that matters
        within = f"within {MIN_EFFECT:.0%}{range_words(found)}"
    else:
        within = f"within noise{range_words(found)}"
    return "tie", f"as fast as {label(rival)} {within}{versus}; {label(rival)} preferred: {why}"


def contrast(ranking: Ranking, key: Key, winner: Key, loop: str, level: int = 0) -> str:
    """Return what makes ``winner`` preferred to ``key`` in a tie, naming who does what.

    "executor-per-call creates a worker per call and loses context variables"; "it needs no
    offload at all" (``it``: the winner, named just before in the reason).
    """
    mine, theirs = ranking.facts(key[0], loop), ranking.facts(winner[0], loop)
    faults = [words for applies, words in (
        (mine.reuse is False and theirs.reuse is not False, "creates a worker per call"),
        (theirs.runs_on == "thread" and mine.runs_on == "process", "pickles arguments to another process"),
        (theirs.context is True and mine.context is False, "loses context variables"),
    ) if applies]
    said = ["it needs no offload at all"] if theirs.runs_on == "loop" and mine.runs_on != "loop" else []
    if faults:
        said.append(f"{label(key)} {', '.join(faults[:-1])}{' and ' if len(faults) > 1 else ''}{faults[-1]}")
    if said:
        return "; ".join(said)
    default_of_winner = winner[1] is not None and key == (winner[0], None)
    full = ranking.full(winner[0], loop, level) if default_of_winner else None
    if full is not None:
        return full_words(winner[0], full, level)
    if winner[1] is None and key[1] is not None:
        return "the library's default size, fewer workers"
    if key[1] is not None and winner[1] is not None and winner[1] < key[1]:
        return "fewer workers"
    return "listed first" if theirs.checked else "listed first (registered facts)"


# Evidence read into reasons.


def failed(cells: Iterable[CellResult]) -> Ruling | None:
    """Return "error in 1 of 2 cells: ..." where a cell did not measure; ``None`` where all did."""
    every = list(cells)
    bad = [c for c in every if not c.ok]
    if not bad:
        return None
    first = bad[0]
    what = "timed out" if first.status == "timeout" else "error"
    detail = first.error.splitlines()[0] if first.error else first.status
    return "failed", f"{what} in {len(bad)} of {count(len(every), 'cell')}: {detail}"


def stall_cause(cells: Iterable[CellResult]) -> tuple[StallCause, int, int] | None:
    """Return the cause most of the cells' sampled stalls show, with its count and the stalls'."""
    stalls = [s for c in cells for s in c.stall_evidence]
    counts: dict[StallCause, int] = {}
    for stall in stalls:
        cause = next((k for k in STALL_CAUSES if _shows(stall, k)), None)
        if cause is not None:
            counts[cause] = counts.get(cause, 0) + 1
    if not counts:
        return None
    cause = max(counts, key=lambda k: counts[k])
    return (cause, counts[cause], len(stalls)) if counts[cause] >= STALL_SHARE * len(stalls) else None


def _shows(stall: StallEvidence, cause: StallCause) -> bool:
    return any(f.file.endswith(cause.file) and f.function in cause.functions for f in stall.frames)
