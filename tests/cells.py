"""Measure one real cell for a test: a short fixed window in fresh worker processes, one after the other."""

from __future__ import annotations

from offbench.model.cells import CellSpec
from offbench.model.params import Params
from offbench.model.results import CellResult
from offbench.run import runner


def measure(
    strategy: str,
    loop: str = "asyncio",
    concurrency: int = 1,
    *,
    workload: str = "sleep",
    params: Params | None = None,
    max_workers: int | None = None,
    units: int = 1,
    payload_bytes: int = 0,
    duration_s: float | None = 0.5,
    warmup_s: float | None = 0.1,
    timeout_s: float = 60.0,
) -> CellResult:
    """Run ``workload`` (a 10 ms sleep unless told) through ``strategy``; fail unless it measured."""
    cell = CellSpec(
        workload=workload,
        params={"duration_ms": 10.0} if params is None else params,
        strategy=strategy,
        loop=loop,
        concurrency=concurrency,
        max_workers=max_workers,
        duration_s=duration_s,
        warmup_s=warmup_s,
        probe_interval_ms=1.0,
        stall_threshold_ms=10.0,
        payload_bytes=payload_bytes,
    )
    result = runner.run_cell(cell, timeout_s=timeout_s, units=units)
    assert result.ok, result.error
    return result
