"""The results of open-loop load (``--rate``): a rate cell's figures, the rate verdict, the capacity.

Their own module beside :mod:`offbench.model.results`, which holds them in its
:class:`~offbench.model.results.CellResult` (``open_loop``) and
:class:`~offbench.model.results.RunResult` (``rate_verdicts``, ``capacity``).
"""

from __future__ import annotations

from typing import Literal

import msgspec

from offbench.model.params import Params
from offbench.model.settings import Arrivals

LOST_SHARE = 0.01
"""Share of a window's calls that may be refused or unfinished and its rate still count as sustained."""


class CallLatency(msgspec.Struct, frozen=True, kw_only=True):
    """Latency of a rate cell's calls, from each call's *intended* start to its result, milliseconds.

    Measured from when the schedule said the call should start, not from when the loop
    got round to starting it: a loop blocked for 200 ms makes every call due meanwhile
    late by its share of the 200 ms, as HdrHistogram's corrected recording would.
    """

    p50: float
    p90: float
    p99: float
    p999: float
    max: float


class RateFigures(msgspec.Struct, frozen=True, kw_only=True):
    """What a rate cell measured: the load it was offered, what it did with it, and whether it kept up."""

    offered_ops_s: float
    """Calls per second the schedule started (the cell's ``rate``)."""
    arrivals: Arrivals
    """``fixed``: one call every 1/rate; ``poisson``: exponential gaps of mean 1/rate (seeded)."""
    achieved_ops_s: float
    """Calls per second that completed in the window (mean over units)."""
    latency_ms: CallLatency | None
    """Latency from intended start, pooled over units; ``None`` if no call was due in a window."""
    issued: int
    """Calls due in the windows (refused ones included)."""
    refused: int
    """Calls due at the in-flight bound (``max_in_flight``), not started: counted, not hidden."""
    unfinished: int
    """Calls due in a window still in flight after the drain; in the latencies at their lower bound."""
    in_flight_max: int
    """The most calls in flight at once in a window (the high-water mark)."""
    max_in_flight: int | None = None
    """The bound on calls in flight; ``None``: unbounded."""
    latency_growth_ms_s: float
    """How fast latency grew through the window: second half's median minus the first's, per second
    (mean over units). About (rate ÷ capacity − 1) × 1000 when the rate is more than the strategy does."""
    sustained: bool
    """The backlog did not grow in any unit: latency did not grow beyond noise, and at most 1 % of the calls
    were refused or unfinished (:mod:`offbench.measure.arrivals`)."""


RateWhy = Literal["met", "failed", "blocked", "gil", "capped", "refused", "lag", "backlog", "slo"]
"""How a rate verdict judged a strategy at one offered rate. ``met``: latency p99 within the SLO and loop
lag p99 within the budget, the backlog steady; else the first cause the evidence shows: ``failed`` (a
unit did not measure), ``blocked`` (it runs on the loop, which then lags or falls behind), ``gil``
(threads saturated while the process used about one CPU), ``capped`` (the rate is beyond its pool's size
÷ run time), ``refused`` (calls turned away at the in-flight bound), ``lag``, ``backlog`` (latency grew
through the window), ``slo`` (steady, but latency p99 over the SLO)."""


class RateCandidate(msgspec.Struct, frozen=True, kw_only=True):
    """One strategy (at one pool size) at one offered rate, as the rate verdict judged it."""

    strategy: str
    max_workers: int | None = None
    why: RateWhy
    reason: str
    """The one-line why, with its figures."""
    latency_p99_ms: float | None
    lag_p99_ms: float | None


class RateRuling(msgspec.Struct, frozen=True, kw_only=True):
    """The rate verdict at one offered rate on one loop: who met the SLO within the lag budget."""

    rate: float
    """The offered rate, calls/s."""
    loop: str
    best: str | None
    """The strategy (label) with the lowest latency p99 among those that met it; ``None``: none did."""
    text: str
    """The headline: what to use at this rate, its figures, who else met it."""
    candidates: list[RateCandidate]
    """The best first, then the others that met it, then those that did not."""


class RateVerdict(msgspec.Struct, frozen=True, kw_only=True):
    """Which strategies carry a workload's traffic at each offered rate (:mod:`offbench.judge.rates`)."""

    workload: str
    params: Params
    python: str = ""
    slo_ms: float
    lag_budget_ms: float
    rulings: list[RateRuling]


class CapacityProbe(msgspec.Struct, frozen=True, kw_only=True):
    """One rate the capacity search tried: one short unit at that rate."""

    rate: float
    met: bool
    """Sustained, latency p99 within the SLO, loop lag p99 within the budget."""
    sustained: bool
    achieved_ops_s: float
    latency_p99_ms: float | None
    lag_p99_ms: float | None
    error: str | None = None
    """Why the unit did not measure (it then did not meet the rate)."""


class Capacity(msgspec.Struct, frozen=True, kw_only=True):
    """The highest rate a strategy sustains with latency p99 ≤ SLO and lag p99 ≤ budget (``--rate auto``)."""

    workload: str
    params: Params
    strategy: str
    max_workers: int | None = None
    loop: str
    python: str = ""
    rate_ops_s: float | None
    """The highest rate that met the SLO within the lag budget; ``None``: not even the lowest tried."""
    limit_ops_s: float | None
    """The lowest rate that did not (the search's upper bracket); ``None``: none failed up to the top."""
    limited_by: str
    """Why ``limit_ops_s`` failed: ``latency p99 over the SLO``, ``not sustained``, ``loop lag over the
    budget``, ``error``; "" when nothing failed."""
    latency_p99_ms: float | None
    """Latency p99 at ``rate_ops_s``."""
    lag_p99_ms: float | None
    """Loop lag p99 at ``rate_ops_s``."""
    probes: list[CapacityProbe]
    """Every rate tried, in the order tried."""
