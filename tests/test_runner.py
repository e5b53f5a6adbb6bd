"""The runner survives misbehaving workloads and leaves nothing behind."""

from __future__ import annotations

import os
import time

import psutil
import pytest

from offbench.model.cells import CellSpec
from offbench.model.settings import RunSettings, WorkloadSpec
from offbench.plan import settings
from offbench.run import runner

pytestmark = pytest.mark.workers


def cell(workload: str, strategy: str = "direct", duration_s: float = 0.2) -> CellSpec:
    return CellSpec(
        workload=workload,
        params={},
        strategy=strategy,
        loop="asyncio",
        concurrency=2,
        duration_s=duration_s,
        warmup_s=0.05,
        probe_interval_ms=1.0,
        stall_threshold_ms=10.0,
    )


def test_a_raising_workload_is_an_error_cell() -> None:
    result = runner.run_cell(cell("tests.helpers:boom", "to-thread"), timeout_s=20)
    assert result.status == "error"
    assert result.error == "ValueError: boom from the workload"
    assert result.traceback is not None
    assert "boom" in result.traceback


def test_a_hanging_workload_times_out_and_its_worker_is_killed() -> None:
    result = runner.run_cell(cell("tests.helpers:hang", "direct"), timeout_s=2)
    assert result.status == "timeout"
    assert "2 s" in (result.error or "")


def test_a_worker_that_dies_is_an_error_with_its_exit_code() -> None:
    result = runner.run_cell(cell("tests.helpers:die", "direct"), timeout_s=20)
    assert result.status == "error"
    assert "code 3" in (result.error or "")


def test_a_callable_that_is_not_callable_is_an_error_cell() -> None:
    result = runner.run_cell(cell("tests.helpers:not_callable", "direct"), timeout_s=20)
    assert result.status == "error"
    assert "not callable" in (result.error or "")


def test_no_worker_or_pool_process_survives_a_run() -> None:
    run_settings = settings.build_settings(settings.Choices(
        workloads=[WorkloadSpec(name=n) for n in ["sleep", "socket", "tests.helpers:hang"]],
        strategies=["process-pool", "to-thread"],
        loops=["uvloop"],
        concurrency=[2],
        duration_s=0.2,
        warmup_s=0.05,
        cell_timeout_s=3,
        rounds=1,
    ))
    result = runner.run(run_settings)
    assert result.complete
    statuses = {(r.workload, r.strategy): r.status for r in result.results}
    assert statuses[("sleep", "process-pool")] == "ok"
    assert statuses[("socket", "to-thread")] == "ok"
    # Offloaded, a hung call leaves the loop free: the window ends with no call done.
    hung = [r for r in result.results if r.workload == "tests.helpers:hang"]
    assert all(r.status == "timeout" and "no call completed" in (r.error or "") for r in hung)
    worker_pids = {r.worker_pid for r in result.results if r.worker_pid}
    assert worker_pids
    for process in psutil.process_iter(["pid"]):
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                continue
            assert process.pid not in worker_pids
            assert process.ppid() not in worker_pids
            assert os.getpgid(process.pid) not in worker_pids, process.cmdline()
        except (psutil.NoSuchProcess, ProcessLookupError):
            continue


def test_a_workload_that_raises_on_some_calls_is_an_error_cell() -> None:
    result = runner.run_cell(cell("tests.helpers:flaky", "to-thread"), timeout_s=20)
    assert result.status == "error"
    assert result.error == "ConnectionResetError: call 3 lost its connection"
    assert result.traceback is not None
    assert "flaky" in result.traceback


def test_a_workload_that_fails_only_in_pool_processes() -> None:
    threaded = runner.run_cell(cell("tests.helpers:fails_in_pool", "to-thread"), timeout_s=20)
    assert threaded.ok, threaded.error
    pooled = runner.run_cell(cell("tests.helpers:fails_in_pool", "process-pool"), timeout_s=20)
    assert pooled.status == "error"
    assert pooled.error == "LookupError: no configuration in a pool process"


@pytest.mark.parametrize("strategy", ["to-thread", "process-pool"])
def test_a_call_that_never_returns_off_the_loop_is_a_timeout_at_the_window_end(strategy: str) -> None:
    began = time.monotonic()
    result = runner.run_cell(cell("tests.helpers:hang", strategy), timeout_s=20)
    assert result.status == "timeout"
    assert "no call completed" in (result.error or "")
    # Reported when the window ends, not after the cell timeout.
    assert time.monotonic() - began < 10


def test_a_pool_process_that_dies_breaks_the_pool_and_the_cell() -> None:
    result = runner.run_cell(cell("tests.helpers:die", "process-pool"), timeout_s=20)
    assert result.status == "error"
    assert (result.error or "").startswith("BrokenProcessPool: ")


def test_a_worker_killed_by_a_signal_says_which() -> None:
    result = runner.run_cell(cell("tests.helpers:kill_self", "direct"), timeout_s=20)
    assert result.status == "error"
    assert "killed by SIGKILL" in (result.error or "")


def _preload_child(payload: bytes, report_fd: int) -> None:
    import json

    from offbench import processes, workloads
    loaded = workloads.get("numpy").preload()
    from threadpoolctl import threadpool_info

    blas = [i["num_threads"] for i in threadpool_info() if i.get("user_api") == "blas"]
    facts = {
        "loaded": loaded,
        "threads": processes.native_thread_count(),
        "start": processes.default_start_method(),
        "blas_threads": blas,
        "variables": [v for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS") if v in os.environ],
    }
    with open(report_fd, "w") as out:
        json.dump(facts, out)


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="threads counted from /proc")
def test_preloading_numpy_leaves_the_runner_single_threaded_and_its_environment_as_it_was(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import json

    from offbench.processes import run_child

    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "OFFBENCH_START"):
        monkeypatch.delenv(variable, raising=False)
    outcome = run_child(_preload_child, b"", 60.0, method="spawn")
    facts = json.loads(outcome.report)
    assert facts == {
        "loaded": True,
        "threads": 1,
        "start": "fork",
        "blas_threads": [1],
        "variables": [],
    }


def test_a_run_with_a_user_function_preloads_nothing() -> None:
    def choices(*names: str) -> RunSettings:
        return settings.build_settings(settings.Choices(
            workloads=[WorkloadSpec(name=n) for n in names], strategies=["direct"],
            loops=["asyncio"], concurrency=[1]))

    assert runner.preload(choices("sleep", "tests.helpers:boom")) == []
    assert runner.preload(choices("sleep")) == []


def test_a_worker_does_not_count_the_heap_it_was_forked_with_as_its_own_garbage(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A forked worker inherits the parent's heap; collecting it is the harness's cost, not the unit's.

    Physics: a full collection walks every tracked object; a million and a half lists take
    well over 20 ms on this machine (offbench's own grown heap took 30-45 ms in a late
    worker of a run, blocking its loop). The worker freezes what it inherited: a call that
    collects then walks only what the worker itself holds, a few milliseconds at most here.
    """
    monkeypatch.setenv("OFFBENCH_START", "fork")
    heap = [[i] for i in range(1_500_000)]
    try:
        result = runner.run_cell(cell("tests.helpers:collect_garbage", duration_s=0.3), timeout_s=60.0)
    finally:
        del heap
    assert result.ok, result.error
    assert result.op_latency_ms is not None
    assert result.op_latency_ms.p50 < 15.0, result.op_latency_ms
