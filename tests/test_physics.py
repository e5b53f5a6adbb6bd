"""End-to-end physics of the measurement, in real worker processes, with noise-proof margins."""

from __future__ import annotations

import pytest

from offbench import runner
from offbench.results import CellResult
from offbench.settings import CellSpec

OFFLOADS = ["executor-per-call", "default-executor", "to-thread", "process-pool"]


def measure(strategy: str, loop: str = "asyncio", concurrency: int = 1, **extra: object) -> CellResult:
    cell = CellSpec(
        workload=str(extra.get("workload", "sleep")),
        params=dict(extra.get("params", {"duration_ms": 10.0})),  # type: ignore[arg-type]
        strategy=strategy,
        loop=loop,
        concurrency=concurrency,
        window_s=0.5,
        warmup_s=0.1,
        probe_interval_ms=1.0,
        stall_threshold_ms=10.0,
    )
    result = runner.run_cell(cell, timeout_s=30)
    assert result.ok, result.error
    return result


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
