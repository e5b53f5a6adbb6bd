"""One cell's result from the raw measurements of the worker processes that measured it.

A cell is measured by ``processes`` worker processes in turn, each over its share of
the window (see :func:`offbench.plan.settings.process_shares`). Each sends back a
:class:`Measurement`: raw lags and call latencies, not percentiles, because
percentiles of separate processes cannot be combined. :func:`cell_result` pools
them: percentiles over every tick and call, sums of counts and times, and the window
parts of all processes side by side, so the spread of the parts includes the
difference between processes (a pure-Python CPU cell can settle into a 5 ms or a
10 ms loop-lag pattern for a process's lifetime; within one process the parts never
see the other pattern).
"""

from __future__ import annotations

from collections.abc import Sequence

from offbench.measure import breakdown, utilisation, watchdog
from offbench.measure.wire import Measurement
from offbench.model import histogram
from offbench.model.cells import CellSpec
from offbench.model.results import Breakdown, CellResult, Durations, LoopLag, Samples, StallEvidence, identity
from offbench.stats import mean, percentile


def cell_result(cell: CellSpec, measured: Sequence[Measurement]) -> CellResult:
    """Pool the measurements of a cell's worker processes into its result."""
    first = measured[0]
    elapsed = sum(m.elapsed_s for m in measured)
    latencies = sorted(ms for m in measured for ms in m.latencies_ms)
    lags = sorted(ms for m in measured for ms in m.lags_ms)
    stalled = sum(m.stalled_s for m in measured)
    parts = [v for m in measured for v in m.samples.throughput_ops_s]
    return CellResult(
        **identity(cell),
        status="ok",
        ops=len(latencies),
        elapsed_s=elapsed,
        # The parts are of equal length, so their mean is the window's rate with each call
        # counted by its share inside the window: calls straddling either edge count in
        # part, and a window not much longer than a call is not biased low.
        throughput_ops_s=mean(parts),
        op_latency_ms=op_latency(latencies),
        breakdown_ms=pooled_breakdown(measured),
        loop_lag_ms=loop_lag(lags),
        lag_histogram=histogram.encode(lags) if lags else None,
        lag_samples=len(lags),
        lag_samples_raw=sum(m.lag_samples_raw for m in measured),
        stalled_s=stalled,
        blocked_s=sum(m.blocked_s for m in measured),
        availability=availability(stalled, elapsed) if lags else None,
        samples=Samples(
            part_s=first.samples.part_s,
            throughput_ops_s=parts,
            lag_p99_ms=[v for m in measured for v in m.samples.lag_p99_ms],
            op_latency_mean_ms=[v for m in measured for v in m.samples.op_latency_mean_ms],
        ),
        startup_s=mean([m.startup_s for m in measured]),
        loop_version=first.loop_version,
        details=first.details,
        worker_pid=first.worker_pid,
        processes=len(measured),
        stall_evidence=longest_stalls(measured),
        loop_utilisation=utilisation.pool([m.utilisation for m in measured if m.utilisation]),
    )


def pooled_breakdown(measured: Sequence[Measurement]) -> Breakdown | None:
    """Return the breakdown over the calls of every process; ``None`` if no process split its calls."""
    if all(m.splits_ms is None for m in measured):
        return None
    return breakdown.summarise([s for m in measured for s in m.splits_ms or []])


def longest_stalls(measured: Sequence[Measurement], keep: int = watchdog.KEEP) -> list[StallEvidence]:
    """Return the ``keep`` longest stalls the cell's processes sampled, longest first."""
    pooled = [stall for m in measured for stall in m.stall_evidence]
    return sorted(pooled, key=lambda stall: stall.duration_ms, reverse=True)[:keep]


def op_latency(ordered_ms: Sequence[float]) -> Durations | None:
    """Return the percentiles of sorted call latencies; ``None`` if no call completed."""
    if not ordered_ms:
        return None
    return Durations(
        p50=percentile(ordered_ms, 50), p99=percentile(ordered_ms, 99), max=ordered_ms[-1]
    )


def loop_lag(ordered_ms: Sequence[float]) -> LoopLag | None:
    """Return the percentiles of sorted probe lags; ``None`` if the probe never ticked."""
    if not ordered_ms:
        return None
    return LoopLag(
        p50=percentile(ordered_ms, 50),
        p90=percentile(ordered_ms, 90),
        p99=percentile(ordered_ms, 99),
        p999=percentile(ordered_ms, 99.9),
        max=ordered_ms[-1],
        mean=mean(ordered_ms),
    )


def availability(stalled_s: float, window_s: float) -> float:
    """Return the share of the window the loop was not stalled beyond the threshold."""
    return 1.0 - min(1.0, stalled_s / window_s) if window_s > 0 else 1.0
