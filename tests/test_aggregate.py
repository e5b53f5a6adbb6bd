"""Pooling the units of a cell: the raw measurements of the worker processes that measured it."""

from __future__ import annotations

import pytest

from offbench.measure.wire import Measurement
from offbench.model import histogram
from offbench.model.cells import CellSpec
from offbench.run.aggregate import availability, cell_result, unit


def spec(duration_s: float | None = 0.5) -> CellSpec:
    return CellSpec(
        workload="sleep", params={"duration_ms": 10.0}, strategy="to-thread", loop="asyncio",
        concurrency=1, duration_s=duration_s, warmup_s=0.1, probe_interval_ms=1.0, stall_threshold_ms=10.0,
    )


def measured(lags: list[float], latencies: list[float], throughput: float, pid: int, *,
             late_s: float = 0.05, details: dict[str, object] | None = None) -> Measurement:
    return Measurement(
        elapsed_s=0.5, throughput_ops_s=throughput, latencies_ms=latencies, lags_ms=lags,
        lag_samples_raw=len(lags) - 1, stalled_s=0.1, blocked_s=0.2, late_s=late_s, first_call_ms=20.0 * pid,
        reference_ms=1.0, wakeup_us=20.0, cpu_s=0.1, cpu_total_s=0.3,
        startup_s=0.002 * pid, loop_version="asyncio 3.11",
        details={"max_workers": 6} if details is None else details, worker_pid=pid,  # type: ignore[arg-type]
    )


def units_of(*found: Measurement) -> list[object]:
    return [unit(m, index, float(index), 0.0) for index, m in enumerate(found)]


def test_pooled_figures_come_from_every_unit() -> None:
    low = measured([0.0, 1.0, 2.0], [10.0, 11.0], 100.0, pid=1)
    high = measured([50.0, 60.0, 70.0], [30.0, 31.0, 32.0], 80.0, pid=2)
    units = units_of(low, high)
    result = cell_result(spec(), [low, high], units, [100.0, 80.0], "precise")  # type: ignore[arg-type]
    assert result.ok
    assert result.units == units
    assert result.stopped == "precise"
    assert result.worker_pid == 1
    assert result.ops == 5
    assert result.elapsed_s == pytest.approx(1.0)
    assert result.throughput_ops_s == pytest.approx(90.0)
    assert result.normalised_ops_s == pytest.approx(90.0)
    assert result.spread is not None
    assert result.spread.units == 2
    assert result.spread.low < 90.0 < result.spread.high
    assert result.loop_lag_ms is not None
    assert result.loop_lag_ms.max == 70.0
    assert result.loop_lag_ms.p50 == pytest.approx(26.0)  # median of 0, 1, 2, 50, 60, 70
    assert result.op_latency_ms is not None
    assert result.op_latency_ms.p50 == 30.0
    assert result.lag_samples == 6
    assert result.lag_samples_raw == 4
    assert result.stalled_s == pytest.approx(0.2)
    assert result.late_s == pytest.approx(0.1)
    assert result.availability == pytest.approx(0.9)
    assert result.startup_s == pytest.approx(0.003)
    assert result.first_call_ms == 20.0  # the first unit's first call


def test_a_unit_keeps_its_own_figures_for_the_statistics() -> None:
    found = unit(measured([float(i) for i in range(100)], [4.0, 6.0], 50.0, pid=3), 4, 12.5, 0.3)
    assert found.round == 4
    assert found.started_s == 12.5
    assert found.throughput_ops_s == 50.0
    assert found.op_latency_mean_ms == 5.0
    assert found.ticks == 100
    assert found.lag_p99_ms == pytest.approx(98.01)
    assert found.other_cpu == 0.3
    assert found.lag_histogram is not None
    assert histogram.count(found.lag_histogram) == 100


def test_the_pooled_histogram_holds_every_lag_of_every_unit() -> None:
    first = [0.1 * i for i in range(1, 301)]
    second = [0.05 * i for i in range(1, 501)]
    both = [measured(first, [1.0], 1.0, pid=1), measured(second, [1.0], 1.0, pid=2)]
    cell = cell_result(spec(), both, units_of(*both), [1.0, 1.0], "fixed")  # type: ignore[arg-type]
    assert cell.lag_histogram is not None
    assert cell.loop_lag_ms is not None
    assert histogram.count(cell.lag_histogram) == len(first) + len(second) == cell.lag_samples
    top = histogram.spectrum(cell.lag_histogram)[-1]
    assert top.percentile == 100.0
    assert top.lag_ms == pytest.approx(cell.loop_lag_ms.max, rel=0.01)


def test_descendants_left_running_add_up_over_units() -> None:
    left = [measured([1.0], [1.0], 1.0, pid=p, details={"left_running": n})
            for p, n in ((1, 2), (2, 0), (3, 1))]
    cell = cell_result(spec(), left, units_of(*left), [1.0] * 3, "fixed")  # type: ignore[arg-type]
    assert cell.details["left_running"] == 3


@pytest.mark.parametrize(("lag_ms", "share"), [(9.9, 1.0), (10.1, 0.999), (11.0, 0.99), (20.0, 0.9)])
def test_availability_has_no_cliff_at_the_threshold(lag_ms: float, share: float) -> None:
    # Ten stalls of lag_ms over a 10 ms threshold in one second: each adds lag - threshold of lateness.
    late = 10 * max(0.0, lag_ms - 10.0) / 1000
    assert availability(late, 1.0) == pytest.approx(share, abs=1e-9)
