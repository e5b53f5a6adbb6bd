"""End-to-end physics of the measurement, in real worker processes, with noise-proof margins."""

from __future__ import annotations

import pytest

from tests.cells import measure

OFFLOADS = ["executor-per-call", "default-executor", "to-thread", "process-pool"]


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_direct_sleep_blocks_the_loop_for_the_sleep(loop: str) -> None:
    result = measure("direct", loop)
    assert result.loop_lag_ms is not None
    assert result.loop_lag_ms.max >= 8.0


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
@pytest.mark.parametrize("strategy", OFFLOADS)
def test_offloaded_sleep_leaves_the_loop_responsive(strategy: str, loop: str) -> None:
    result = measure(strategy, loop)
    assert result.loop_lag_ms is not None
    assert result.loop_lag_ms.p99 < 5.0
    assert result.ops > 0


def test_to_thread_overlaps_sleeps_that_direct_serialises() -> None:
    direct = measure("direct", concurrency=8)
    threaded = measure("to-thread", concurrency=8)
    # 8 tasks, 6 default-executor threads on 2 CPUs: ideal 6x; direct cannot overlap at all.
    assert threaded.throughput_ops_s >= 3 * direct.throughput_ops_s
    # Direct sleeps are serial: each op takes at least its 10 ms on the loop.
    assert direct.throughput_ops_s <= 105


def test_process_pool_reports_its_startup_and_shape() -> None:
    result = measure("process-pool")
    assert result.details["pool_start_method"] in ("forkserver", "spawn")
    assert int(result.details["max_workers"]) >= 1
    assert result.startup_s > 0


def test_socket_workload_round_trips_against_the_loopback_server() -> None:
    result = measure("to-thread", workload="socket", params=_socket_params())
    assert result.op_latency_ms is not None
    # The server answers after 5 ms: no op can be faster.
    assert result.op_latency_ms.p50 >= 5.0


def test_numpy_workload_pins_blas_to_one_thread() -> None:
    from offbench.workloads import get

    result = measure("to-thread", workload="numpy", params=get("numpy").resolve_params({}))
    assert result.details.get("blas_threads") == 1


def _socket_params() -> dict[str, object]:
    from offbench.workloads import get

    return dict(get("socket").resolve_params({}))


def test_window_parts_add_up_and_each_sees_the_blocking() -> None:
    direct = measure("direct", params={"duration_ms": 20.0})
    parts = direct.samples
    assert parts is not None
    assert len(parts.throughput_ops_s) == 10
    assert parts.part_s == pytest.approx(0.05, rel=0.01)
    # Shares of calls add up to the window's completed calls, give or take one at each edge.
    assert sum(parts.throughput_ops_s) / 10 == pytest.approx(direct.ops / direct.elapsed_s, abs=2 / 0.5)
    # Every 50 ms part holds a 20 ms blocking call, and its probe ticks see it.
    assert all(lag is not None and lag >= 15.0 for lag in parts.lag_p99_ms)
    assert all(ms is not None and ms >= 19.0 for ms in parts.op_latency_mean_ms)

    offloaded = measure("to-thread", params={"duration_ms": 20.0}, concurrency=4)
    assert offloaded.samples is not None
    # Four overlapping 20 ms sleeps: about 200 calls/s in every part, whatever the part length.
    assert all(100 < tp < 250 for tp in offloaded.samples.throughput_ops_s)
    assert all(lag is not None and lag < 15.0 for lag in offloaded.samples.lag_p99_ms)


def test_calls_longer_than_a_part_are_shared_out_not_lost() -> None:
    result = measure("to-thread", params={"duration_ms": 120.0})
    assert result.samples is not None
    # 50 ms parts, 120 ms calls: no part completes a call on average, yet each gets ~0.4 of one.
    assert all(4.0 < tp < 12.0 for tp in result.samples.throughput_ops_s), result.samples
    assert None in result.samples.op_latency_mean_ms


def test_a_cell_split_over_two_processes_pools_both_halves() -> None:
    result = measure("direct", params={"duration_ms": 20.0}, processes=2)
    assert result.processes == 2
    assert result.elapsed_s == pytest.approx(0.5)
    assert result.samples is not None
    assert len(result.samples.throughput_ops_s) == 10
    assert result.samples.part_s == pytest.approx(0.05, rel=0.01)
    # Each process blocks its own loop for each 20 ms sleep: every part of both sees it.
    assert all(lag is not None and lag >= 15.0 for lag in result.samples.lag_p99_ms)
    # About 50 sleeps a second in each half, counted once: not doubled, not halved.
    assert 35 < result.throughput_ops_s < 55
    assert 15 <= result.ops <= 27
