"""What a worker process sends its parent: the raw measurement of its window, or why it failed.

Raw lags and call latencies travel, not percentiles, because percentiles of separate
processes cannot be combined; the parent pools them (:mod:`offbench.run.aggregate`).
"""

from __future__ import annotations

import msgspec

from offbench.measure.arrivals import ArrivalsRaw
from offbench.measure.utilisation import UtilisationRaw
from offbench.model.params import Params
from offbench.model.results import CellResult, StallEvidence


class Measurement(msgspec.Struct, frozen=True, kw_only=True):
    """What one worker process measured in its window, raw enough to pool with others."""

    elapsed_s: float
    """The window."""
    throughput_ops_s: float
    """Calls per second in the window, each counted by the share of its duration inside it."""
    latencies_ms: list[float]
    """Submit-to-result time of each call that completed inside the window."""
    splits_ms: list[tuple[float, float, float]] | None = None
    """(queue wait, run, hop back) of the same calls (:mod:`offbench.measure.breakdown`); ``None`` when
    the strategy's calls are not split (``direct``, a remote Dask scheduler)."""
    lags_ms: list[float]
    """Loop lag of every probe tick, back-filled ones included."""
    lag_samples_raw: int
    """Ticks the probe actually took (the rest were back-filled)."""
    stalled_s: float
    blocked_s: float
    late_s: float = 0.0
    """Time the loop could not answer within the stall threshold (the probe's ``late_ns``)."""
    first_call_ms: float | None = None
    """The first call this process completed (in its warm-up)."""
    warmup_latency_ms: float | None = None
    """The median call of the warm-up, which sized the window when it was not fixed."""
    reference_ms: float | None = None
    """The speed reference before the warm-up (:mod:`offbench.measure.reference`)."""
    wakeup_us: float | None = None
    cpu_s: float | None = None
    """CPU time of this process and its descendants during the window (:mod:`offbench.measure.cpu`)."""
    cpu_total_s: float | None = None
    """The same over the process's whole life, up to its report: what the parent subtracts from the
    machine's busy time to find other programs'."""
    startup_s: float
    loop_version: str
    details: Params
    worker_pid: int
    stall_evidence: list[StallEvidence] = []
    """This process's longest stalls beyond the evidence threshold (:mod:`offbench.measure.watchdog`)."""
    utilisation: UtilisationRaw | None = None
    """How busy callbacks kept this process's loop, and the check against its probe."""
    arrivals: ArrivalsRaw | None = None
    """A rate cell's open-loop figures (:mod:`offbench.measure.arrivals`); its ``latencies_ms`` then run
    from each call's intended start, and ``throughput_ops_s`` is the rate of completions."""


class WorkerReport(msgspec.Struct, frozen=True, kw_only=True):
    """What a worker process sends back: its measurement, or why the cell failed."""

    measurement: Measurement | None = None
    failure: CellResult | None = None
