"""Made-up results for tests: runs, cells and their units, built the way the runner builds real ones.

Test modules import their builders from here, never from each other.
"""

from __future__ import annotations

import statistics
import xml.etree.ElementTree as ET

import msgspec

from offbench.model import histogram
from offbench.model.params import Params
from offbench.model.results import (
    CellResult,
    Durations,
    LoopLag,
    Machine,
    RunResult,
    Spread,
    Status,
    Unit,
)
from offbench.plan.settings import Choices, build_settings
from offbench.stats import mean_interval, percentile

MACHINE = Machine(
    python_version="3.11.7", python_implementation="CPython", platform="Linux",
    cpu_model="test", cpu_count=2, uvloop_version="0.21", numpy_version="2.0",
    blas=[{"internal_api": "openblas", "num_threads": 1}], gil_switch_interval_s=0.005,
    default_executor_workers=6,
)


def run_of(*cells: CellResult) -> RunResult:
    """Return a complete run of exactly ``cells``, with quick settings."""
    return RunResult(
        offbench_version="0", created="2026-01-01T00:00:00+00:00", complete=True, wall_s=1.0,
        machine=MACHINE, results=list(cells),
        settings=build_settings(Choices(quick=True, seed=1, loops=list(dict.fromkeys(c.loop for c in cells))
                                        or None)),
    )


def sample_run() -> RunResult:
    """Return a complete run of one plain direct cell."""
    return run_of(CellResult(
        workload="sleep", params={"duration_ms": 10.0}, strategy="direct", loop="asyncio",
        concurrency=1, status="ok", ops=10, elapsed_s=0.1, throughput_ops_s=100.0,
    ))


def unit(throughput: float, lags: list[float], round_index: int = 0, *, reference_ms: float = 1.0,
         cpu_s: float = 0.0, other_cpu: float = 0.0) -> Unit:
    """Return one unit: a one-second window that saw ``lags`` (ms) on its probe."""
    ordered = sorted(lags)
    return Unit(
        round=round_index, started_s=float(round_index), duration_s=1.0, ops=round(throughput),
        throughput_ops_s=throughput, op_latency_mean_ms=1000 / throughput if throughput else None,
        lag_p99_ms=ordered[int(0.99 * (len(ordered) - 1))] if ordered else None, ticks=len(ordered),
        lag_histogram=histogram.encode(ordered) if ordered else None, reference_ms=reference_ms,
        wakeup_us=20.0, cpu_s=cpu_s, other_cpu=other_cpu,
    )


def cell(
    strategy: str = "to-thread",
    loop: str = "asyncio",
    throughput: list[float] | None = None,
    lag: list[float] | None = None,
    status: Status = "ok",
    params: Params | None = None,
    *,
    concurrency: int = 1,
    workload: str = "sleep",
    max_workers: int | None = None,
    pool: int | None = None,
    rounds: list[int] | None = None,
    error: str | None = None,
    blocked: float = 0.0,
) -> CellResult:
    """Return a cell measured by one unit per value of ``throughput`` (ops/s), in rounds 0, 1, ….

    Each unit's probe saw 100 ticks: 98 of 0.05 ms and two of that unit's ``lag`` value (ms),
    so a unit's lag p99 is its ``lag``. ``pool`` is the executor size it recorded.
    """
    identity = {"workload": workload, "params": {"duration_ms": 10.0} if params is None else params,
                "strategy": strategy, "loop": loop, "concurrency": concurrency, "max_workers": max_workers}
    if status != "ok":
        return CellResult(**identity, status=status, error=error or status)  # type: ignore[arg-type]
    tp = throughput or [100.0 + i % 3 for i in range(len(lag) if lag else 5)]
    lags = lag or [1.0 + (i % 4) / 10 for i in range(len(tp))]
    which = rounds or list(range(len(tp)))
    seen = [[0.05] * 98 + [p, p] for p in lags]
    units = [unit(t, ticks, r) for t, ticks, r in zip(tp, seen, which, strict=True)]
    ticks = sorted(v for unit_ticks in seen for v in unit_ticks)
    found = mean_interval(tp)
    return CellResult(
        **identity,  # type: ignore[arg-type]
        status="ok", ops=int(sum(tp)), elapsed_s=float(len(tp)),
        throughput_ops_s=statistics.fmean(tp), normalised_ops_s=statistics.fmean(tp),
        op_latency_ms=Durations(p50=1000 / tp[0], p99=2000 / tp[0], max=3000 / tp[0]),
        loop_lag_ms=LoopLag(p50=0.05, p90=0.05, p99=_p99(ticks), p999=max(lags), max=max(lags), mean=0.1),
        lag_histogram=histogram.encode(ticks), lag_samples=len(ticks), lag_samples_raw=len(ticks),
        blocked_s=blocked * len(tp), availability=1.0, units=units,
        spread=Spread(low=found.low, high=found.high, cv=statistics.stdev(tp) / found.estimate
                      if len(tp) > 1 else 0.0, units=len(tp)),
        stopped="precise", details={} if pool is None else {"max_workers": pool},
    )


def _p99(ordered: list[float]) -> float:
    return percentile(ordered, 99)


def with_lags(found: CellResult, lags_ms: list[float]) -> CellResult:
    """Return ``found`` with one unit's probe having seen ``lags_ms``, pooled figures to match."""
    ordered = sorted(lags_ms)
    return msgspec.structs.replace(
        found,
        loop_lag_ms=LoopLag(p50=percentile(ordered, 50), p90=percentile(ordered, 90),
                            p99=percentile(ordered, 99), p999=percentile(ordered, 99.9), max=ordered[-1],
                            mean=sum(ordered) / len(ordered)),
        lag_histogram=histogram.encode(ordered), lag_samples=len(ordered),
        units=[msgspec.structs.replace(u, lag_histogram=histogram.encode(ordered), ticks=len(ordered))
               for u in found.units],
    )


def measured(
    strategy: str,
    concurrency: int,
    ops_s: float,
    lag_p99: float | None,
    loop: str = "asyncio",
    *,
    status: Status = "ok",
    error: str | None = None,
    workload: str = "work",
) -> CellResult:
    """Return a cell of three alike units at ``ops_s`` whose lag p99 is ``lag_p99`` (``None``: no tick)."""
    found = cell(strategy, loop, [ops_s] * 3, [lag_p99 or 0.0] * 3, status, {}, concurrency=concurrency,
                 workload=workload, error=error)
    if status == "ok" and lag_p99 is None:
        return msgspec.structs.replace(found, loop_lag_ms=None, lag_histogram=None, lag_samples=0)
    return found


def synthetic(direct_lag_ms: float = 10.0) -> RunResult:
    """Return direct, to-thread and process-pool on two loops; direct's ticks lag up to ``direct_lag_ms``."""
    quiet = [0.05 * (1 + i % 20) for i in range(1000)]
    # A blocking call: every tick lags somewhere up to the call's duration.
    blocked = [direct_lag_ms * (i + 1) / 1000 for i in range(1000)]
    cells = [
        with_lags(cell(strategy, loop=loop), blocked if strategy == "direct" else quiet)
        for strategy in ("direct", "to-thread", "process-pool") for loop in ("asyncio", "uvloop")
    ]
    return run_of(*cells)


SVG = "{http://www.w3.org/2000/svg}"
"""The SVG namespace, as ElementTree writes it in tags."""


def series(svg_text: str) -> dict[str, ET.Element]:
    """Return the SVG groups that are data series, by id (``row0:spectrum:asyncio:direct``)."""
    root = ET.fromstring(svg_text)
    return {g.get("id", ""): g for g in root.iter(f"{SVG}g") if ":" in g.get("id", "")}
