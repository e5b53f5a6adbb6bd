"""What the verdict says about its choice: the headline, the fix that sizes a pool, how sure, the notes.

The headline stands alone: what to use (per concurrency or loop where the plan changes),
its throughput and worst lag where it was chosen, what a sized pool gains over the default
size measured beside it (or that the default size caps the choice), the tie and what
broke it. The details under it say, in this order: how sure the choice is
(:func:`confidence_lines`, always first: the reader weighs the rest by it), the plan by
concurrency and loop, the fix (the one line of code that sizes the pool, and what its
workers cost: said there once, not in the headline), where a strategy that creates a
worker per call was as fast or faster and why the choice stands, then notes on how the
choice was made (lag near the budget, cells without units, facts not checked).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from offbench import strategies
from offbench.formatting import format_rate
from offbench.judge.evidence import NOISE, Key, pool_size, ratio
from offbench.judge.ranking import TIERS, Contest, Part, Ranking, Segment
from offbench.judge.reasons import capped, failed
from offbench.judge.wording import (
    count,
    full_words,
    label,
    levels,
    more,
    ms,
    range_words,
    signed,
    span,
    unit,
)
from offbench.model.results import Confidence, ConfidenceWord


@dataclass(frozen=True)
class Sizing:
    """How a strategy's pool is given a size in code, keyed by whose size caps it (``pool_owner``)."""

    label: str
    code: str


SIZINGS: dict[str, Sizing] = {
    "the default executor's": Sizing("{strategy} with a default executor of {n} threads",
                                     "loop.set_default_executor(ThreadPoolExecutor(max_workers={n}))"),
    "anyio's default limiter's": Sizing(
        "{strategy} with a thread limiter of {n}",
        "anyio.to_thread.current_default_thread_limiter().total_tokens = {n}",
    ),
}
OTHER_SIZING = Sizing("{strategy} ({n})", "{strategy}({n})")
COSTS: dict[str, str] = {
    "thread": "each reserves a stack of virtual memory (8 MiB by default on Linux), mostly not resident",
    "process": "each a Python process with memory of its own",
}
"""What one more worker costs, by where the strategy runs the call."""
ALTERNATIVE = "bounded-to-thread"
"""Named beside a sized default executor: as many threads in its own pool; excess calls wait on the loop."""


# The headline.


def headline_group(ranking: Ranking, winner: Key, part: Part, segment: Segment) -> Contest:
    """Return the group the headline's figures come from: the winner's own, highest concurrency."""
    own = [g for g in ranking.groups.values()
           if winner in g.cells and g.concurrency in segment.levels
           and (part.loop is None or g.loop == part.loop)]
    if not own:
        own = [g for g in ranking.groups.values() if winner in g.cells]
    top = max(g.concurrency for g in own)
    return max((g for g in own if g.concurrency == top), key=lambda g: g.cells[winner].rate)


def figures(ranking: Ranking, winner: Key, part: Part, segment: Segment, head: Contest) -> str:
    """Return "600 ops/s at c=8 (asyncio), loop lag p99 ≤ 1.10 ms": the worst lag where it was chosen."""
    cell = head.cells[winner]
    mine = [g.cells[winner] for g in ranking.groups.values()
            if winner in g.cells and g.concurrency in segment.levels
            and (part.loop is None or g.loop == part.loop)]
    worst = max((c.lag for c in mine if c.result.ok), default=cell.lag)
    near = "" if worst <= ranking.budget else f" (within noise of the {ranking.budget:g} ms budget)"
    return (f"{format_rate(cell.rate)} ops/s at c={head.concurrency} ({head.loop}),"
            f" loop lag p99 ≤ {ms(worst)}{near}")


def choice_words(ranking: Ranking, parts: list[Part], winner: Key) -> str:
    """Return what to use: the winner, or the plan by concurrency, and by loop where loops differ."""
    if len(parts) == 1 and len(parts[0].segments) == 1:
        return sized_label(winner)
    if len(parts) == 1:
        return segments_words(ranking, parts[0].segments)
    return "; ".join(f"{segments_words(ranking, p.segments)} on {p.loop}" for p in parts)


def segments_words(ranking: Ranking, segments: Sequence[Segment]) -> str:
    """Return "A up to c=2, B at c=4–6, then C", and where nothing qualified."""
    chosen = [s for s in segments if s.key is not None]
    words: list[str] = []
    for index, s in enumerate(chosen):
        assert s.key is not None
        what = sized_label(s.key)
        if len(chosen) == 1:
            words.append(what if len(segments) == 1 else f"{what} at c={levels(s.levels)}")
        elif index == 0:
            words.append(f"{what} up to c={s.levels[-1]}")
        elif index == len(chosen) - 1:
            words.append(f"then {what}")
        else:
            words.append(f"{what} at c={levels(s.levels)}")
    text = ", ".join(words) or "nothing"
    for s in segments:
        if s.key is None:
            text += f" (nothing within the {ranking.budget:g} ms budget at c={levels(s.levels)})"
    return text


def sized_label(key: Key) -> str:
    """Return the candidate as its sizing names it: "to-thread with a default executor of 8 threads"."""
    strategy, size = key
    if size is None:
        return strategy
    return _sizing(strategy).label.format(strategy=strategy, n=size)


def tie_clause(ranking: Ranking, segment: Segment, head: Contest) -> str:
    """Return " (tie with B; chosen: why)", or nothing where the winner was not tied."""
    winner, others = segment.tied[0], segment.tied[1:]
    if not others:
        return ""
    how = "chosen" if ranking.facts(winner[0], head.loop).checked else "chosen by registered facts"
    tier = ranking.tier(winner, [head.loop])
    why = TIERS[tier].words
    level = [k for k in others if ranking.tier(k, [head.loop]) == tier]
    if level:
        default = winner[1] is None and all(k[1] is not None for k in level)
        full = ranking.full(winner[0], head.loop, head.concurrency) if winner[1] is not None else None
        if full is not None and (winner[0], None) in level:
            why += ", " + full_words(winner[0], full, head.concurrency)
        else:
            why += ", the library's default size" if default else ", listed first"
    return f" (tie with {', '.join(label(k) for k in others)}; {how}: {why})"


def alone_clause(ranking: Ranking, winner: Key, head: Contest) -> str:
    """Return what to do instead where a worker-per-call strategy wins because nothing else qualified."""
    if not ranking.per_call(winner, head.loop):
        return ""
    n = head.concurrency
    return (f"; the only strategy within the budget here, and it creates a worker per call:"
            f" reuse a pool of {n} instead (to-thread with --max-workers {n} measures one)")


# The fix.


def fix(ranking: Ranking, winner: Key, head: Contest) -> tuple[str | None, str, list[str]]:
    """Return the line of code that sizes the winner's pool, the headline's clause, the detail lines.

    The code is in the detail lines only: the headline says what the size gains.
    """
    strategy, size = winner
    cls = strategies.REGISTRY.get(strategy)
    sizing = _sizing(strategy)
    noun = unit(cls.runs_on if cls is not None else None)
    cost = COSTS.get(cls.runs_on if cls is not None else "", "")
    default = head.cells.get((strategy, None))
    if size is not None:
        code = sizing.code.format(strategy=strategy, n=size)
        pool = pool_size(default.result) if default is not None else None
        if default is None or pool is None or pool >= size:
            return code, "", [f"the fix: {code}: a pool of {count(size, noun)}{'; ' + cost if cost else ''}"]
        gain = ratio(head.cells[winner], default)
        lines = [cost_line(code, size, pool, noun, cls)]
        return code, (f"; {more(size - pool, noun)} than the default {pool},"
                      f" {signed(gain.pct())} at c={head.concurrency}{range_words(gain)}"), lines
    cap = capped(ranking, winner, head)
    sized = [k for k in head.cells if k[0] == strategy and k[1] is not None]
    if cap is None or sized:  # a measured larger pool that did not win: size is not the fix
        return None, "", []
    n = head.concurrency
    code = sizing.code.format(strategy=strategy, n=n)
    return code, f"; {cap}: {count(n, noun)} should lift it (not measured in this run)", [
        f"at c={n} on {head.loop}, {label(winner)} is {cap}: {code} should lift it;"
        f" run with --sized-pools (and no --max-workers) to measure it"]


def cost_line(code: str, size: int, pool: int, noun: str, cls: type[strategies.Strategy] | None) -> str:
    """Return what the sized pool costs: its workers beyond the default, and the alternative."""
    cost = COSTS.get(cls.runs_on if cls is not None else "", "")
    line = (f"the fix: {code}: {count(size, noun)} instead of the default {pool},"
            f" {more(size - pool, noun)}{'; ' + cost if cost else ''}")
    shared = cls is not None and cls.pool_owner == "the default executor's"
    if shared and ALTERNATIVE in strategies.REGISTRY:
        line += (f"; or {ALTERNATIVE}({size}): a pool of its own, calls beyond {size} wait on the loop"
                 " where a timeout withdraws them")
    return line


def _sizing(strategy: str) -> Sizing:
    cls = strategies.REGISTRY.get(strategy)
    return SIZINGS.get(cls.pool_owner, OTHER_SIZING) if cls is not None else OTHER_SIZING


# How sure.


def confidence(ranking: Ranking, winner: Key, head: Contest) -> Confidence:
    """Return how clear the choice was in the headline's group, against the closest candidate."""
    mine = head.cells[winner]
    # Worker-per-call strategies count only when the winner is one: else they were never in the running.
    counted = [k for k in head.qualified if k != winner
               and (ranking.per_call(winner, head.loop) or not ranking.per_call(k, head.loop))]
    others = [k for k in counted if k not in head.passed_over]
    tied = [k for k in head.tied if k in counted]
    if not others:
        return Confidence(word="alone", loop=head.loop, concurrency=head.concurrency, against=None,
                          margin_pct=None, low_pct=None, high_pct=None, method=None,
                          rounds=len(mine.rounds), rounds_agreeing=len(mine.rounds))
    pool = tied or others
    against = max(pool, key=lambda k: head.cells[k].rate)
    found = ratio(mine, head.cells[against])
    spread = found.range_pct()
    outside = [head.cells[k] for k in others if k not in tied]
    agreeing = sum(1 for r, v in mine.rounds.items() if all(c.rounds.get(r, 0.0) <= v for c in outside))
    word: ConfidenceWord
    if tied:
        word = "tie"
    elif found.better and spread is not None and agreeing == len(mine.rounds):
        word = "clear"
    else:
        word = "likely"
    margin = found.pct()
    return Confidence(
        word=word, loop=head.loop, concurrency=head.concurrency, against=label(against),
        margin_pct=0.0 if tied else (margin if math.isfinite(margin) else None),
        low_pct=spread[0] if spread else None, high_pct=spread[1] if spread else None,
        method=found.method, rounds=len(mine.rounds), rounds_agreeing=agreeing,
    )


def confidence_lines(winner: Key, head: Contest, c: Confidence) -> list[str]:
    """Say how clear the choice was where the headline's figures come from."""
    where = f"at c={c.concurrency} on {c.loop}"
    rounds = f"; {c.rounds_agreeing} of {c.rounds} rounds agree" if c.rounds else ""
    spread = (f" ({span(c.low_pct, c.high_pct)}, {c.method})"
              if c.low_pct is not None and c.high_pct is not None else f" ({c.method})")
    if c.word == "alone":
        reusing = " reusing its workers" if head.passed_over else ""
        return [f"{where}: {label(winner)} was the only strategy{reusing} within the budget"]
    if c.word == "tie":
        return [f"{where}: {label(winner)} and {c.against} tie{spread}{rounds}"]
    return [f"{where}: {label(winner)} is {signed(c.margin_pct)} against {c.against}{spread}"
            f"{rounds}: {c.word}"]


# Notes under the headline.


def plan_lines(ranking: Ranking, parts: list[Part]) -> list[str]:
    """Return the choice at each run of concurrencies (and loop), where it is not one for all."""
    if len(parts) == 1 and len(parts[0].segments) == 1:
        return []
    lines = []
    for part in parts:
        for s in part.segments:
            where = f"c={levels(s.levels)}" + (f" on {part.loop}" if part.loop else "")
            if s.key is None:
                lines.append(f"{where}: nothing within the {ranking.budget:g} ms budget")
                continue
            tie = f" (tie with {', '.join(label(k) for k in s.tied[1:])})" if len(s.tied) > 1 else ""
            lines.append(f"{where}: {label(s.key)}{tie}")
    return lines


def per_call_lines(ranking: Ranking, winner: Key, head: Contest) -> list[str]:
    """Say where a worker-per-call strategy was as fast or faster, and why it is not the verdict.

    Faster beyond noise (its interval against the winner excludes 0), it is said to be
    faster, by how much, and why the winner stands: never "as fast".
    """
    if ranking.per_call(winner, head.loop):
        return []
    lines = []
    for key in head.qualified:
        if key == winner or not ranking.per_call(key, head.loop):
            continue
        found = ratio(head.cells[key], head.cells[winner])
        if found.worse:
            continue
        where = f"at c={head.concurrency} on {head.loop}"
        if found.faster:
            beyond = range_words(found) or f" (beyond a fixed {NOISE:.0%})"
            lines.append(f"{label(key)} is {signed(found.pct()).lstrip('+')} faster than {label(winner)}"
                         f" {where}{beyond}, but creates a worker per call: {label(winner)} stands,"
                         f" {_stands(ranking, key, winner, head.loop)}")
            continue
        how = "as fast as" if key in head.tied else f"{signed(found.pct())} against"
        lines.append(f"{label(key)} is {how} {label(winner)} {where}{range_words(found)}, but creates a"
                     " worker per call: not recommended while a reused pool keeps the loop within budget")
    return lines


def _stands(ranking: Ranking, per_call: Key, winner: Key, loop: str) -> str:
    """Return why ``winner`` is chosen over a faster worker-per-call one: what it keeps, and the rule."""
    mine, theirs = ranking.facts(per_call[0], loop), ranking.facts(winner[0], loop)
    kept = ("running on the loop" if theirs.runs_on == "loop"
            else f"reusing its {unit(theirs.runs_on)}s")
    if theirs.context is True and mine.context is False:
        kept += f" and keeping context variables, which {label(per_call)} loses"
    return (f"{kept}; a strategy that creates a worker per call is chosen only where it alone"
            " is within the budget")


def notes(ranking: Ranking) -> list[str]:
    """Return how the choice was made where that is not the rule: lag near the budget, old cells, facts."""
    lines = [f"c={g.concurrency} on {g.loop}: nothing clearly within the {ranking.budget:g} ms budget;"
             " chosen among those whose lag p99 interval straddles it"
             for g in ranking.groups.values() if g.near]
    if any(len(c.result.units) < 2 for cells in ranking.cells.values() for c in cells if c.result.ok):
        lines.append(f"cells with fewer than two units (an older results file, --rounds 1) have no"
                     f" spread to compare: their ties are a fixed {NOISE:.0%}")
    if not ranking.found and any(len(g.tied) > 1 for g in ranking.groups.values()):
        lines.append("ties broken by the strategies' registered facts, not by offbench check"
                     " (--semantics weighs context variables)")
    return lines


def nothing(ranking: Ranking) -> str:
    """Return the headline where nothing qualified: the least lag, and its failure if it failed."""
    measured = [(k, c) for k, cells in ranking.cells.items() for c in cells if c.result.ok]
    if not measured:
        return "no cell measured"
    worst = {k: max(c.lag for c in ranking.cells[k] if c.result.ok) for k, _ in measured}
    least = min(worst, key=lambda k: worst[k])
    text = (f"no strategy kept loop lag p99 within {ranking.budget:g} ms;"
            f" least lag: {label(least)} ({ms(worst[least])})")
    failure = failed(c.result for c in ranking.cells[least])
    return f"{text} but {failure[1]}" if failure else text
