"""What a worker process sends its parent: the raw measurement of its window, or why it failed.

Raw lags and call latencies travel, not percentiles, because percentiles of separate
processes cannot be combined; the parent pools them (:mod:`offbench.run.aggregate`).
"""

from __future__ import annotations

import msgspec

from offbench.measure.utilisation import UtilisationRaw
from offbench.model.params import Params
from offbench.model.results import CellResult, Samples, StallEvidence


class Measurement(msgspec.Struct, frozen=True, kw_only=True):
    """What one worker process measured in its window, raw enough to pool with others."""

    elapsed_s: float
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
    samples: Samples
    startup_s: float
    loop_version: str
    details: Params
    worker_pid: int
    stall_evidence: list[StallEvidence] = []
    """This process's longest stalls beyond the evidence threshold (:mod:`offbench.measure.watchdog`)."""
    utilisation: UtilisationRaw | None = None
    """How busy callbacks kept this process's loop, and the check against its probe."""


class WorkerReport(msgspec.Struct, frozen=True, kw_only=True):
    """What a worker process sends back: its measurement, or why the cell failed."""

    measurement: Measurement | None = None
    failure: CellResult | None = None
