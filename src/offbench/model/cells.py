"""Which cell of the matrix, and what one worker process needs to measure it.

A *cell* is a workload (with its parameters) × a strategy (at one pool size) × an event
loop × a concurrency level × an interpreter. :class:`CellIdentity` names it the same way
in its spec, its result and a gate's breach; :class:`CellSpec` adds how to measure it and
travels to the worker as JSON.
"""

from __future__ import annotations

import msgspec

from offbench.model.params import Params
from offbench.model.settings import DEFAULT_EVIDENCE_THRESHOLD_MS, DEFAULT_SAMPLES


class CellIdentity(msgspec.Struct, frozen=True, kw_only=True):
    """Which cell of the matrix: the fields a cell's spec, result and gate breach all name it by."""

    workload: str
    params: Params
    strategy: str
    loop: str
    concurrency: int
    max_workers: int | None = None
    python: str = ""
    """The interpreter's label (:class:`~offbench.plan.interpreters.Interpreter`); "" = the running one."""


class CellSpec(CellIdentity, frozen=True, kw_only=True):
    """One cell of the matrix: everything its worker process needs, nothing more."""

    duration_s: float
    warmup_s: float
    probe_interval_ms: float
    stall_threshold_ms: float
    evidence_threshold_ms: float = DEFAULT_EVIDENCE_THRESHOLD_MS
    samples: int = DEFAULT_SAMPLES
    processes: int = 1
    resources: Params = {}
    utilisation: bool = True
    payload_bytes: int = 0
    dask_scheduler: str | None = None
    """Set for ``dask`` cells only: the scheduler to connect to instead of starting a local cluster."""
