"""Measure one real cell for a test: a short window in fresh worker processes."""

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
    processes: int = 1,
    payload_bytes: int = 0,
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
        duration_s=0.5,
        warmup_s=0.1,
        probe_interval_ms=1.0,
        stall_threshold_ms=10.0,
        processes=processes,
        payload_bytes=payload_bytes,
    )
    result = runner.run_cell(cell, timeout_s=timeout_s)
    assert result.ok, result.error
    return result
