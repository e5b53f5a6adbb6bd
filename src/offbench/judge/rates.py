"""The rate verdict: at each offered rate, which strategies carry the traffic, and why the others do not.

A rate cell (:mod:`offbench.measure.arrivals`) *meets* its rate when the rate was
sustained (the backlog did not grow through any unit's window), its calls' latency p99
from intended start is within the SLO (``--slo``) and its loop lag p99 within the lag
budget. Per workload, interpreter, offered rate and loop, the verdict names the one that
met it with the lowest latency p99 (the most headroom): of those within :data:`TIE` of
the lowest, the one that does least to the program (the closed-loop verdict's
:data:`~offbench.judge.verdict.TIERS`, from the strategies' registered facts: no offload,
then reused threads, then processes). It names the others that met it, and for each that
did not the first cause its evidence shows (:data:`~offbench.model.rates.RateWhy`):

* ``failed``: a unit did not measure;
* ``refused``: more than 1 % of the calls were turned away at ``--max-in-flight``;
* ``blocked``: it runs the call on the loop, which then lags by the call or falls behind;
* ``gil``: threads fell behind (or starved the loop) while the process used about one CPU
  (:data:`GIL_CORES`) of several: the work holds the GIL;
* ``capped``: the rate is at or beyond its pool's size ÷ the call's run time;
* ``lag``, ``backlog`` (latency grew through the window), ``slo`` (steady, but too slow).

Like the closed-loop verdict (:mod:`offbench.judge.verdict`), it reads only the results:
no workload name, and the figures it quotes are the cell's own.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from offbench import strategies
from offbench.formatting import format_ms, format_offered, format_rate, strategy_label
from offbench.judge.ranking import TIERS, registered_facts
from offbench.model.params import Params
from offbench.model.rates import LOST_SHARE, RateCandidate, RateRuling, RateVerdict, RateWhy
from offbench.model.results import CellResult

GIL_CORES = (0.6, 1.7)
"""CPUs used by a thread strategy's process that fell behind, between which the GIL is the cause.

One CPU of bytecode at most, and the kernel's side of the GIL's hand-offs: 1.0-1.31 measured for
pure Python through the default executor with up to 81 calls in flight (2026-12-01, 2 CPUs), and
1.53 in a full test suite on a clean clone (2026-12-02). 1.7 is that and a tenth more; a thread
pool of GIL-releasing work that fell behind fills the machine (2 CPUs here) instead."""
CAP_SHARE = 0.85
"""An offered rate from this share of a pool's ceiling (size ÷ run time) up is capped by the pool."""
TIE = (0.25, 2.0)
"""Latency p99s within this share, or these milliseconds, of the lowest that met a rate are a tie:
p99 over a few hundred calls moves by that much between runs of a quiet 2-CPU machine."""

Why = tuple[RateWhy, str]


def decide(results: Sequence[CellResult], slo_ms: float, budget_ms: float,
           cpu_count: int) -> list[RateVerdict]:
    """Return one rate verdict per workload, parameter set and interpreter with rate cells, in order."""
    groups: dict[str, tuple[str, Params, str, list[CellResult]]] = {}
    for cell in results:
        if cell.rate is None:
            continue
        key = f"{cell.workload}\0{sorted(cell.params.items())}\0{cell.python}"
        groups.setdefault(key, (cell.workload, cell.params, cell.python, []))[3].append(cell)
    return [
        RateVerdict(workload=workload, params=params, python=python, slo_ms=slo_ms, lag_budget_ms=budget_ms,
                    rulings=[ruling(rate, loop, cells, slo_ms, budget_ms, cpu_count)
                             for (rate, loop), cells in _by_rate(found).items()])
        for workload, params, python, found in groups.values()
    ]


def _by_rate(cells: Iterable[CellResult]) -> dict[tuple[float, str], list[CellResult]]:
    found: dict[tuple[float, str], list[CellResult]] = {}
    for cell in cells:
        assert cell.rate is not None
        found.setdefault((cell.rate, cell.loop), []).append(cell)
    return dict(sorted(found.items(), key=lambda item: item[0][0]))


def ruling(rate: float, loop: str, cells: Sequence[CellResult], slo_ms: float, budget_ms: float,
           cpu_count: int) -> RateRuling:
    """Return the verdict at one offered rate on one loop: the best that met it, and every other's why."""
    judged = [(cell, judge(cell, slo_ms, budget_ms, cpu_count)) for cell in cells]
    # The ones that met it first, the most headroom first; then the others as measured.
    judged.sort(key=lambda pair: (0, *_headroom(pair[0])) if pair[1][0] == "met" else (1, 0, 0.0, 0.0))
    met = [cell for cell, (why, _) in judged if why == "met"]
    tied = _tied(met)
    if tied:
        judged.sort(key=lambda pair: pair[0] is not tied[0])
    missed = [(cell, found) for cell, found in judged if found[0] != "met"]
    candidates = [RateCandidate(strategy=c.strategy, max_workers=c.max_workers, why=why, reason=reason,
                                latency_p99_ms=_latency(c), lag_p99_ms=_lag(c))
                  for c, (why, reason) in judged]
    at = f"{_rate(rate)} on {loop}"
    limits = f"latency p99 ≤ {slo_ms:g} ms with loop lag p99 ≤ {budget_ms:g} ms"
    if tied:
        best = tied[0]
        tie = (f" (as low as {', '.join(_label(c) for c in tied[1:])} within noise; it "
               f"{TIERS[_tier(best.strategy)].words})" if tied[1:] else "")
        others = [c for c in met if c not in tied]
        also = f"; also within them: {', '.join(_label(c) for c in others)}" if others else ""
        text = f"at {at}, use {_label(best)}: {_figures(best)}{tie}{also}"
        return RateRuling(rate=rate, loop=loop, best=_label(best), text=text, candidates=candidates)
    text = f"at {at}, nothing meets {limits}"
    if missed:
        closest = min(missed, key=lambda pair: _headroom(pair[0]))
        text += f"; closest: {_label(closest[0])} ({closest[1][1]})"
    return RateRuling(rate=rate, loop=loop, best=None, text=text, candidates=candidates)


def _tied(met: Sequence[CellResult]) -> list[CellResult]:
    """Return the cells whose latency p99 ties the lowest (:data:`TIE`), the one preferred first."""
    if not met:
        return []
    lowest = _latency(met[0]) or 0.0
    reach = max(lowest * (1 + TIE[0]), lowest + TIE[1])
    tied = [c for c in met if (_latency(c) or 0.0) <= reach]
    return sorted(tied, key=lambda c: (_tier(c.strategy), _headroom(c)))


def _tier(strategy: str) -> int:
    """Return the strategy's place in the closed-loop verdict's :data:`TIERS`, from its registered facts."""
    facts = registered_facts(strategy)
    return next(index for index, tier in enumerate(TIERS) if tier.admits(facts))


def _headroom(cell: CellResult) -> tuple[int, float, float]:
    """Order cells best first: measured before failed, then by latency p99, then by lag p99."""
    latency, lag = _latency(cell), _lag(cell)
    inf = float("inf")
    return (0 if cell.ok else 1, latency if latency is not None else inf, lag if lag is not None else inf)


def judge(cell: CellResult, slo_ms: float, budget_ms: float, cpu_count: int) -> Why:
    """Return whether ``cell`` met its rate, else the first cause its evidence shows, with its figures."""
    found = cell.open_loop
    if not cell.ok or found is None:
        return "failed", (cell.error or cell.status).splitlines()[0]
    latency, lag = _latency(cell), _lag(cell)
    lagging = lag is None or lag > budget_ms
    slow = latency is None or latency > slo_ms
    if found.sustained and not lagging and not slow:
        return "met", _figures(cell)
    keeps_up = f"it completes {format_rate(found.achieved_ops_s)} of {_rate(found.offered_ops_s)}"
    lag_text = f"loop lag p99 {_ms(lag)}"
    if found.refused > LOST_SHARE * max(found.issued, 1):
        return "refused", (f"{found.refused} of {found.issued} calls refused at {found.max_in_flight} in "
                           f"flight; latency p99 {_ms(latency)}")
    runs_on = _runs_on(cell.strategy)
    if runs_on == "loop":
        behind = "" if found.sustained else f"; {keeps_up}"
        return "blocked", f"runs each call on the loop: {lag_text}, latency p99 {_ms(latency)}{behind}"
    cores = _cores(cell)
    if (runs_on == "thread" and (lagging or not found.sustained) and cores is not None and cpu_count > 1
            and GIL_CORES[0] <= cores <= GIL_CORES[1]):
        return "gil", (f"threads hold the GIL: the process used {cores:.1f} of {cpu_count} CPUs; {lag_text}"
                       + ("" if found.sustained else f"; {keeps_up}"))
    capped = _capped(cell)
    if capped is not None and (slow or not found.sustained):
        return "capped", f"{capped}; latency p99 {_ms(latency)}"
    if lagging:
        return "lag", f"{lag_text}, over the {budget_ms:g} ms budget"
    if not found.sustained:
        return "backlog", (f"the backlog grew: latency rose {found.latency_growth_ms_s:.0f} ms per second; "
                           f"{keeps_up}")
    run = cell.breakdown_ms.run.p50 if cell.breakdown_ms else None
    itself = f"; the call itself runs {format_ms(run)} ms" if run is not None and run > slo_ms / 2 else ""
    return "slo", f"latency p99 {_ms(latency)}, over the {slo_ms:g} ms SLO{itself}"


def _capped(cell: CellResult) -> str | None:
    """Return "capped at N threads: N ÷ run ms = C/s" where the offered rate reaches the pool's ceiling."""
    size = cell.details.get("max_workers")
    parts = cell.breakdown_ms
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        return None
    if parts is None or parts.run.p50 <= 0:
        return None
    assert cell.rate is not None
    ceiling = size * 1000 / parts.run.p50
    if cell.rate < CAP_SHARE * ceiling:
        return None
    unit = {"thread": "thread", "process": "process"}.get(_runs_on(cell.strategy) or "", "worker")
    plural = unit + ("es" if unit.endswith("s") else "s")
    wait = parts.queue_wait.p50
    waits = f"; calls waited {format_ms(wait)} ms p50 for one" if wait > 0 else ""
    return (f"capped at {size} {unit if size == 1 else plural}: {size} ÷ {format_ms(parts.run.p50)} ms = "
            f"{_rate(ceiling)}{waits}")


def _cores(cell: CellResult) -> float | None:
    """Return the CPUs the cell's processes used on average in their windows (``None``: not measured)."""
    used = [u.cpu_s / u.duration_s for u in cell.units if u.cpu_s is not None and u.duration_s > 0]
    return sum(used) / len(used) if used else None


def _runs_on(strategy: str) -> str | None:
    cls = strategies.REGISTRY.get(strategy)
    return cls.runs_on if cls is not None else None


def _latency(cell: CellResult) -> float | None:
    found = cell.open_loop
    return found.latency_ms.p99 if found is not None and found.latency_ms is not None else None


def _lag(cell: CellResult) -> float | None:
    return cell.loop_lag_ms.p99 if cell.loop_lag_ms else None


def _figures(cell: CellResult) -> str:
    return f"latency p99 {_ms(_latency(cell))}, loop lag p99 {_ms(_lag(cell))}"


def _label(cell: CellResult) -> str:
    return strategy_label(cell.strategy, cell.max_workers)


def _rate(rate: float) -> str:
    return f"{format_offered(rate)}/s"


def _ms(value: float | None) -> str:
    return f"{format_ms(value)} ms" if value is not None else "–"
