"""End-to-end physics of the measurement, in real worker processes, with noise-proof margins."""

from __future__ import annotations

import pytest

from offbench.measure import worker
from offbench.model.settings import QUICK
from tests.cells import assert_loop_free, measure

OFFLOADS = ["executor-per-call", "default-executor", "to-thread", "process-pool"]


@pytest.mark.workers
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_direct_sleep_blocks_the_loop_for_the_sleep(loop: str) -> None:
    result = measure("direct", loop)
    assert result.loop_lag_ms is not None
    assert result.loop_lag_ms.max >= 8.0
    # What assert_loop_free tells apart, on either loop: busy all the window, median lag ~half a sleep.
    with pytest.raises(AssertionError):
        assert_loop_free(result, 10.0)
    assert result.loop_utilisation is not None
    assert result.loop_utilisation.busy > 0.75


@pytest.mark.workers
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
@pytest.mark.parametrize("strategy", OFFLOADS)
def test_offloaded_sleep_leaves_the_loop_responsive(strategy: str, loop: str) -> None:
    # 20 ms sleeps: on the loop nearly every tick would wait behind one, lag spread over 0-20 ms
    # (median ~10 ms) and the loop busy all the window. Offloaded, what is left is the host's
    # scheduling, rare but long on a shared host (assert_loop_free says how long).
    result = measure(strategy, loop, params={"duration_ms": 20.0})
    assert_loop_free(result, 20.0)
    assert result.ops > 0


@pytest.mark.workers
def test_to_thread_overlaps_sleeps_that_direct_serialises() -> None:
    direct = measure("direct", concurrency=8)
    threaded = measure("to-thread", concurrency=8)
    # 8 tasks, 6 default-executor threads on 2 CPUs: ideal 6x; direct cannot overlap at all.
    assert threaded.throughput_ops_s >= 3 * direct.throughput_ops_s
    # Direct sleeps are serial: each op takes at least its 10 ms on the loop.
    assert direct.throughput_ops_s <= 105


@pytest.mark.workers
def test_process_pool_reports_its_startup_and_shape() -> None:
    result = measure("process-pool")
    # The worker forks its pool while it runs one thread (fast and safe), else a forkserver.
    assert result.details["pool_start_method"] in ("fork", "forkserver", "spawn")
    assert int(result.details["max_workers"]) >= 1
    assert result.startup_s > 0


@pytest.mark.workers
def test_socket_workload_round_trips_against_the_loopback_server() -> None:
    result = measure("to-thread", workload="socket", params=_socket_params())
    assert result.op_latency_ms is not None
    # The server answers after 5 ms: no op can be faster.
    assert result.op_latency_ms.p50 >= 5.0


@pytest.mark.workers
def test_numpy_workload_pins_blas_to_one_thread() -> None:
    from offbench.workloads import get

    result = measure("to-thread", workload="numpy", params=get("numpy").resolve_params({}))
    assert result.details.get("blas_threads") == 1


def _socket_params() -> dict[str, object]:
    from offbench.workloads import get

    return dict(get("socket").resolve_params({}))


@pytest.mark.workers
def test_calls_straddling_the_window_count_by_their_share_and_every_unit_sees_the_blocking() -> None:
    direct = measure("direct", params={"duration_ms": 20.0}, units=3, duration_s=0.2)
    for unit in direct.units:
        # A 20 ms call on the loop about every 20 ms: ~50 a second, counted by their share inside
        # the window (so a 0.2 s window does not read 9 or 11 calls as 45 or 55 a second).
        assert 40 < unit.throughput_ops_s < 52
        assert unit.lag_p99_ms is not None
        assert unit.lag_p99_ms >= 15.0  # every unit's probe sees the 20 ms blocking
        assert unit.op_latency_mean_ms is not None
        assert unit.op_latency_mean_ms >= 19.0
    offloaded = measure("to-thread", params={"duration_ms": 20.0}, concurrency=4, units=3, duration_s=0.2)
    # Four overlapping 20 ms sleeps: about 200 calls/s in every unit.
    assert all(150 < u.throughput_ops_s < 210 for u in offloaded.units)
    assert all(u.lag_p99_ms is not None and u.lag_p99_ms < 15.0 for u in offloaded.units)


@pytest.mark.workers
def test_calls_longer_than_the_window_are_shared_out_not_lost() -> None:
    result = measure("to-thread", params={"duration_ms": 120.0}, units=2, duration_s=0.05, warmup_s=0.0)
    # 50 ms windows, 120 ms calls: a window rarely completes a call, yet each gets ~0.4 of one.
    assert all(4.0 < u.throughput_ops_s < 12.0 for u in result.units), result.units


@pytest.mark.workers
def test_a_slow_call_sizes_the_window_to_a_few_calls_per_task() -> None:
    # Left to size it, the first unit times the warm-up's calls and measures 3 per task.
    result = measure("to-thread", params={"duration_ms": 100.0}, concurrency=2, duration_s=None,
                     warmup_s=None)
    (unit,) = result.units
    assert 0.29 < unit.duration_s < 0.5  # 3 calls of ~100 ms (+ the hop), not the 0.15 s floor
    # 6 calls fit: 3 per task. Each task completes at least 2 whole ones in a window of 3 call
    # lengths even where the host holds one call up for most of a call's length (the worker
    # taken away 60-90 ms at a time beside a busy core; a full suite under load read 4 of 6,
    # 2026-12-02): fewer than 2 per task would be a window not sized to the calls.
    assert result.ops >= 4


@pytest.mark.workers
def test_a_cell_measured_by_two_units_pools_both() -> None:
    result = measure("direct", params={"duration_ms": 20.0}, units=2, duration_s=0.25)
    assert len(result.units) == 2
    assert len({u.round for u in result.units}) == 2
    assert result.elapsed_s == pytest.approx(0.5)
    # Each unit's worker blocks its own loop for each 20 ms sleep: both see it.
    assert all(u.lag_p99_ms is not None and u.lag_p99_ms >= 15.0 for u in result.units)
    # About 50 sleeps a second in each unit, counted once: not doubled, not halved.
    assert 35 < result.throughput_ops_s < 55
    assert 15 <= result.ops <= 27
    assert result.lag_samples == sum(u.ticks for u in result.units)


@pytest.mark.parametrize("call_ms", [150.0, 500.0])
def test_a_slow_function_at_c1_gets_a_window_of_five_whole_calls_with_room(call_ms: float) -> None:
    # The window opens as the warm-up's call returns and the next starts; five back to back end
    # at 5 × call_ms. A window of exactly that counted the fifth in part when the host lagged.
    window = worker.window_seconds(QUICK, call_ms, concurrency=1)
    assert window >= QUICK.calls_per_unit * call_ms / 1000 * 1.05
    assert window <= (QUICK.calls_per_unit + 1) * call_ms / 1000
