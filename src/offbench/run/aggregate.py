"""One cell's result from its units: the raw measurements of the worker processes that measured it.

A cell is measured by several units, one worker process per round
(:mod:`offbench.run.runner`). Each sends back a :class:`~offbench.measure.wire.Measurement`:
raw lags and call latencies, not percentiles, because percentiles of separate processes
cannot be combined. :func:`unit` keeps what each one measured, for the statistics
(:mod:`offbench.judge.precision`), and :func:`cell_result` pools them: percentiles over
every tick and call, sums of counts and times. Units differ for real: a pure-Python CPU
cell can settle into a 5 ms or a 10 ms loop-lag pattern for a process's lifetime, and
the host's speed moves between rounds.
"""

from __future__ import annotations

from collections.abc import Sequence

from offbench.judge import precision
from offbench.measure import arrivals, breakdown, utilisation, watchdog
from offbench.measure.wire import Measurement
from offbench.model import histogram
from offbench.model.cells import CellSpec
from offbench.model.params import Params
from offbench.model.results import (
    Breakdown,
    CellResult,
    Durations,
    LoopLag,
    StallEvidence,
    Stop,
    Unit,
    identity,
)
from offbench.stats import mean, percentile


def unit(measured: Measurement, round_index: int, started_s: float, other_cpu: float | None) -> Unit:
    """Return what one worker process measured, as the unit the statistics read."""
    lags = sorted(measured.lags_ms)
    return Unit(
        round=round_index,
        started_s=round(started_s, 4),
        duration_s=measured.elapsed_s,
        ops=len(measured.latencies_ms),
        throughput_ops_s=measured.throughput_ops_s,
        op_latency_mean_ms=mean(measured.latencies_ms) if measured.latencies_ms else None,
        lag_p99_ms=percentile(lags, 99) if lags else None,
        ticks=len(lags),
        lag_histogram=histogram.encode(lags) if lags else None,
        reference_ms=measured.reference_ms,
        wakeup_us=measured.wakeup_us,
        cpu_s=measured.cpu_s,
        other_cpu=None if other_cpu is None else round(other_cpu, 4),
        sustained=measured.arrivals.sustained if measured.arrivals is not None else None,
        latency_p99_ms=percentile(sorted(measured.latencies_ms), 99)
        if measured.arrivals is not None and measured.latencies_ms else None,
    )


def cell_result(
    cell: CellSpec,
    measured: Sequence[Measurement],
    units: Sequence[Unit],
    normalised: Sequence[float],
    stopped: Stop,
) -> CellResult:
    """Pool the units of a cell into its result.

    ``normalised`` is each unit's throughput at the run's host speed
    (:func:`offbench.judge.precision.normalised`), in the order of ``units``.
    """
    first = measured[0]
    elapsed = sum(m.elapsed_s for m in measured)
    latencies = sorted(ms for m in measured for ms in m.latencies_ms)
    lags = sorted(ms for m in measured for ms in m.lags_ms)
    late = sum(m.late_s for m in measured)
    return CellResult(
        **identity(cell),
        status="ok",
        ops=len(latencies),
        elapsed_s=elapsed,
        # The windows of a cell's units are alike, so the mean of their rates is the rate
        # over all of them.
        throughput_ops_s=mean([m.throughput_ops_s for m in measured]),
        op_latency_ms=op_latency(latencies),
        breakdown_ms=pooled_breakdown(measured),
        loop_lag_ms=loop_lag(lags),
        lag_histogram=histogram.encode(lags) if lags else None,
        lag_samples=len(lags),
        lag_samples_raw=sum(m.lag_samples_raw for m in measured),
        stalled_s=sum(m.stalled_s for m in measured),
        blocked_s=sum(m.blocked_s for m in measured),
        late_s=late,
        availability=availability(late, elapsed) if lags else None,
        units=list(units),
        spread=precision.spread(normalised),
        normalised_ops_s=mean(normalised) if normalised else None,
        first_call_ms=first.first_call_ms,
        stopped=stopped,
        startup_s=mean([m.startup_s for m in measured]),
        loop_version=first.loop_version,
        details=pooled_details(measured),
        worker_pid=first.worker_pid,
        stall_evidence=longest_stalls(measured),
        loop_utilisation=utilisation.pool([m.utilisation for m in measured if m.utilisation]),
        open_loop=arrivals.pool([m.arrivals for m in measured if m.arrivals], latencies,
                                [m.throughput_ops_s for m in measured])
        if first.arrivals is not None else None,
    )


def pooled_details(measured: Sequence[Measurement]) -> Params:
    """Return the first unit's details, with the descendants every unit left running added up."""
    details = dict(measured[0].details)
    left = [m.details.get("left_running") for m in measured]
    if any(isinstance(n, int) for n in left):
        details["left_running"] = sum(n for n in left if isinstance(n, int) and not isinstance(n, bool))
    return details


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


def availability(late_s: float, window_s: float) -> float:
    """Return the share of the window an event arriving at random would be answered within the threshold.

    ``late_s`` is the time the loop could not answer within the stall threshold
    (:attr:`~offbench.model.results.CellResult.late_s`): continuous in the stalls'
    lengths, so 9.9 and 10.1 ms stalls over a 10 ms threshold read almost the same.
    """
    return 1.0 - min(1.0, late_s / window_s) if window_s > 0 else 1.0
