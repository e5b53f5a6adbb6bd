"""Which cell of the matrix, and what one worker process needs to measure it.

A *cell* is a workload (with its parameters) × a strategy (at one pool size) × an event
loop × a load × an interpreter. The load is a concurrency level (closed loop: that many
tasks call back to back) or, for a *rate cell*, an offered rate (open loop, ``--rate``:
calls start on a schedule whatever is still in flight; :mod:`offbench.measure.arrivals`).
A rate cell's ``concurrency`` is 0: it has no calling tasks, and its in-flight bound
(``--max-in-flight``) is a setting of the run, not a level of the matrix.
:class:`CellIdentity` names a cell the same way in its spec, its result and a gate's
breach; :class:`CellSpec` adds how to measure it and travels to the worker as JSON.
"""

from __future__ import annotations

import msgspec

from offbench.model.params import Params
from offbench.model.settings import DEFAULT_EVIDENCE_THRESHOLD_MS, EFFORT, Arrivals, Effort


class CellIdentity(msgspec.Struct, frozen=True, kw_only=True):
    """Which cell of the matrix: the fields a cell's spec, result and gate breach all name it by."""

    workload: str
    params: Params
    strategy: str
    loop: str
    concurrency: int
    """Tasks calling back to back (closed loop); 0 in a rate cell, which has none."""
    max_workers: int | None = None
    python: str = ""
    """The interpreter's label (:class:`~offbench.plan.interpreters.Interpreter`); "" = the running one."""
    rate: float | None = None
    """Offered calls per second of a rate cell (open loop, ``--rate``); ``None`` in a concurrency cell."""


class CellSpec(CellIdentity, frozen=True, kw_only=True):
    """One unit of a cell: everything its worker process needs, nothing more."""

    duration_s: float | None
    """The window; ``None``: calibrate it from the warm-up (the cell's first unit)."""
    warmup_s: float | None
    """The warm-up; ``None``: until each task's first call has returned."""
    probe_interval_ms: float
    stall_threshold_ms: float
    evidence_threshold_ms: float = DEFAULT_EVIDENCE_THRESHOLD_MS
    effort: Effort = EFFORT
    """The calibration rules (the window's least length, calls per task)."""
    resources: Params = {}
    utilisation: bool = True
    payload_bytes: int = 0
    dask_scheduler: str | None = None
    """Set for ``dask`` cells only: the scheduler to connect to instead of starting a local cluster."""
    arrivals: Arrivals = "fixed"
    """A rate cell's schedule: a call every 1/rate, or Poisson-spaced (seeded by ``seed``)."""
    max_in_flight: int | None = None
    """A rate cell's bound on calls in flight; a call due at the bound is refused (and counted)."""
    seed: int = 0
    """Seeds a rate cell's Poisson arrivals: the run's seed plus the unit's round."""
