"""How the verdict writes its figures: percents and their intervals, milliseconds, counts, pools.

The headline, the details and every candidate's reason quote the same quantities; they
are written here once so a difference reads "+32%" and an interval "+31% to +34%"
wherever it appears (a minus sign, not a hyphen; a decimal where whole percents would
hide it), a lag with no figures "unbounded", a pool "6 threads, the default executor's
size".
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from offbench import strategies
from offbench.formatting import format_ms, strategy_label
from offbench.judge.evidence import Key, Ratio
from offbench.model.results import CellResult


def label(key: Key) -> str:
    """Return a candidate as the reader knows it: ``to-thread``, ``to-thread (8)``."""
    return strategy_label(*key)


def signed(pct: float | None) -> str:
    """Return "+12%", "−0.5%", "+∞" or "?" (unknown)."""
    if pct is None or not math.isfinite(pct):
        return "?" if pct is None else ("+∞" if pct > 0 else "−∞")
    return (f"{pct:+.0f}%" if abs(pct) >= 1 else f"{pct:+.1f}%").replace("-", "−")


def span(low: float | None, high: float | None) -> str:
    """Return "−3% to +4%", with a decimal where whole percents would show the ends equal."""
    ends = signed(low), signed(high)
    if ends[0] == ends[1] and low is not None and high is not None and math.isfinite(low):
        ends = (f"{low:+.1f}%".replace("-", "−"), f"{high:+.1f}%".replace("-", "−"))
    return f"{ends[0]} to {ends[1]}"


def range_words(found: Ratio) -> str:
    """Return " (−3% to +4%)", the ratio's interval, or nothing where it has none."""
    spread = found.range_pct()
    return f" ({span(*spread)})" if spread else ""


def levels(concurrencies: Sequence[int]) -> str:
    """Return "4" or "1–8": consecutive concurrencies by their ends."""
    return str(concurrencies[0]) if len(concurrencies) == 1 else f"{concurrencies[0]}–{concurrencies[-1]}"


def ms(value: float | None) -> str:
    """Return "1.10 ms", or "unbounded" for a lag without figures."""
    return f"{format_ms(value)} ms" if value is not None and math.isfinite(value) else "unbounded"


def count(n: int, noun: str) -> str:
    """Return "1 thread", "2 threads", "2 processes"."""
    plural = noun + ("es" if noun.endswith("s") else "s")
    return f"{n} {noun if n == 1 else plural}"


def more(n: int, noun: str) -> str:
    """Return "1 more thread", "2 more processes"."""
    return f"{n} more {noun if n == 1 else count(n, noun).split(' ', 1)[1]}"


def runs_on(strategy: str) -> str | None:
    """Return where a registered strategy runs the call (``loop``, ``thread``, ``process``)."""
    cls = strategies.REGISTRY.get(strategy)
    return cls.runs_on if cls else None


def unit(where: str | None) -> str:
    """Return what a pool of a strategy running calls ``where`` is made of: threads, processes, workers."""
    return {"thread": "thread", "process": "process"}.get(where or "", "worker")


def pool_words(cell: CellResult, size: int, noun: str) -> str:
    """Return "6 threads, the default executor's size": the pool's size and whose default it is."""
    cls = strategies.REGISTRY.get(cell.strategy)
    whose = cls.pool_owner if cls is not None and cell.max_workers is None else "the pool's"
    return f"{count(size, noun)}, {whose} size"


def full_words(strategy: str, full: tuple[int, float, int], level: int) -> str:
    """Return why ``strategy`` sized to the concurrency is preferred in a tie.

    "the default pool of 6 threads is full at c=8 (5.9× c=1)", from :meth:`Ranking.full`;
    "processes" for a strategy that runs calls in processes.
    """
    pool, speedup, low = full
    cls = strategies.REGISTRY.get(strategy)
    noun = "process" if cls is not None and cls.runs_on == "process" else "thread"
    return f"the default pool of {count(pool, noun)} is full at c={level} ({speedup:.1f}× c={low})"
