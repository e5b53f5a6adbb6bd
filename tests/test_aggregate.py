"""Pooling the raw measurements of a cell's worker processes, and dealing out its window."""

from __future__ import annotations

import pytest

from offbench.measure.wire import Measurement
from offbench.model import histogram
from offbench.model.cells import CellSpec
from offbench.model.results import Samples
from offbench.plan.matrix import process_shares
from offbench.run.aggregate import cell_result


def spec(samples: int = 10, processes: int = 2, duration_s: float = 1.0) -> CellSpec:
    return CellSpec(
        workload="sleep", params={"duration_ms": 10.0}, strategy="to-thread", loop="asyncio",
        concurrency=1, duration_s=duration_s, warmup_s=0.1, probe_interval_ms=1.0,
        stall_threshold_ms=10.0, samples=samples, processes=processes,
    )


def measured(lags: list[float], latencies: list[float], throughput: list[float], pid: int) -> Measurement:
    return Measurement(
        elapsed_s=0.5, latencies_ms=latencies, lags_ms=lags, lag_samples_raw=len(lags) - 1,
        stalled_s=0.1, blocked_s=0.2,
        samples=Samples(part_s=0.1, throughput_ops_s=throughput, lag_p99_ms=[max(lags)] * len(throughput),
                        op_latency_mean_ms=[10.0] * len(throughput)),
        startup_s=0.002 * pid, loop_version="asyncio 3.11", details={"max_workers": 6}, worker_pid=pid,
    )


@pytest.mark.parametrize(
    ("samples", "processes", "counts"),
    [(10, 2, [5, 5]), (10, 3, [4, 3, 3]), (7, 1, [7]), (4, 4, [1, 1, 1, 1])],
)
def test_processes_share_the_parts_and_the_window_evenly(
    samples: int, processes: int, counts: list[int]
) -> None:
    shares = process_shares(spec(samples, processes))
    assert [s.samples for s in shares] == counts
    assert all(s.processes == 1 for s in shares)
    assert sum(s.duration_s for s in shares) == pytest.approx(1.0)
    assert {round(s.duration_s / s.samples, 9) for s in shares} == {round(1.0 / samples, 9)}


def test_pooled_figures_come_from_every_process() -> None:
    low = measured([0.0, 1.0, 2.0], [10.0, 11.0], [100.0] * 5, pid=1)
    high = measured([50.0, 60.0, 70.0], [30.0, 31.0, 32.0], [80.0] * 5, pid=2)
    result = cell_result(spec(), [low, high])
    assert result.ok
    assert result.processes == 2
    assert result.worker_pid == 1
    assert result.ops == 5
    assert result.elapsed_s == pytest.approx(1.0)
    assert result.throughput_ops_s == pytest.approx(90.0)
    assert result.samples is not None
    assert result.samples.throughput_ops_s == [100.0] * 5 + [80.0] * 5
    assert result.loop_lag_ms is not None
    assert result.loop_lag_ms.max == 70.0
    assert result.loop_lag_ms.p50 == pytest.approx(26.0)  # median of 0, 1, 2, 50, 60, 70
    assert result.op_latency_ms is not None
    assert result.op_latency_ms.p50 == 30.0
    assert result.lag_samples == 6
    assert result.lag_samples_raw == 4
    assert result.stalled_s == pytest.approx(0.2)
    assert result.availability == pytest.approx(0.8)
    assert result.startup_s == pytest.approx(0.003)


def test_one_process_pools_to_its_own_figures() -> None:
    only = measured([1.0, 2.0, 3.0, 4.0], [10.0], [100.0, 90.0], pid=7)
    result = cell_result(spec(samples=2, processes=1), [only])
    assert result.processes == 1
    assert result.throughput_ops_s == pytest.approx(95.0)
    assert result.loop_lag_ms is not None
    assert result.loop_lag_ms.p50 == pytest.approx(2.5)
    assert result.loop_lag_ms.mean == pytest.approx(2.5)


def test_the_pooled_histogram_holds_every_lag_of_every_process() -> None:
    first = [0.1 * i for i in range(1, 301)]
    second = [0.05 * i for i in range(1, 501)]
    cell = cell_result(spec(processes=2), [measured(first, [1.0], [1.0] * 5, pid=1),
                                           measured(second, [1.0], [1.0] * 5, pid=2)])
    assert cell.lag_histogram is not None
    assert cell.loop_lag_ms is not None
    assert histogram.count(cell.lag_histogram) == len(first) + len(second) == cell.lag_samples
    top = histogram.spectrum(cell.lag_histogram)[-1]
    assert top.percentile == 100.0
    assert top.lag_ms == pytest.approx(cell.loop_lag_ms.max, rel=0.01)
