"""The optional strategies beyond the five: anyio-thread, bounded-to-thread, interpreter-pool."""

from __future__ import annotations

import asyncio
import contextvars
import importlib.util
import json
import platform
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from offbench import strategies
from offbench.model.results import CellResult
from offbench.semantics.check import CheckSpec, check_one
from offbench.strategies import anyio_thread, bounded
from offbench.strategies import interpreters as interpreter_pool
from tests.cells import assert_loop_free, measure
from tests.run_cli import offbench

NEW = ["anyio-thread", "bounded-to-thread", "interpreter-pool"]
THREADED = ["anyio-thread", "bounded-to-thread"]
SLEEP_MS = 20.0


def sleeps(strategy: str, concurrency: int = 1, max_workers: int | None = None) -> CellResult:
    """Measure SLEEP_MS sleeps through ``strategy``."""
    return measure(strategy, concurrency=concurrency, max_workers=max_workers,
                   params={"duration_ms": SLEEP_MS}, timeout_s=30)


# --- physics ---------------------------------------------------------------------------------------


@pytest.mark.workers
def test_direct_sleep_lags_the_loop_by_about_the_sleep() -> None:
    result = sleeps("direct")
    assert result.loop_lag_ms is not None
    assert result.loop_lag_ms.p99 >= 0.75 * SLEEP_MS
    # What assert_loop_free tells apart: the calls keep the loop busy and its median lag near half a sleep.
    with pytest.raises(AssertionError):
        assert_loop_free(result, SLEEP_MS)
    assert result.loop_utilisation is not None
    assert result.loop_utilisation.busy > 0.75


@pytest.mark.workers
@pytest.mark.parametrize("strategy", THREADED)
def test_offloaded_sleep_leaves_the_loop_responsive(strategy: str) -> None:
    result = sleeps(strategy)
    assert_loop_free(result, SLEEP_MS)
    assert result.ops > 0


@pytest.mark.parametrize(
    ("strategy", "limiter"), [("bounded-to-thread", None), ("anyio-thread", "dedicated")]
)
@pytest.mark.workers
def test_two_workers_cap_eight_callers_near_two_calls_per_sleep(strategy: str, limiter: str | None) -> None:
    capped = sleeps(strategy, concurrency=8, max_workers=2)
    assert capped.details["max_workers"] == 2
    if limiter:
        assert capped.details["limiter"] == limiter
    # Two 20 ms sleeps at a time: at most 2 / 0.02 = 100 calls/s, whatever the machine does.
    assert capped.throughput_ops_s < 150
    assert capped.throughput_ops_s > 60  # more than one at a time (one would be 50)
    # The other six callers wait their turn (about three sleeps each), yet the loop stays free.
    assert capped.op_latency_ms is not None
    assert capped.op_latency_ms.p50 > 2.5 * SLEEP_MS
    assert_loop_free(capped, SLEEP_MS)


@pytest.mark.workers
def test_to_thread_at_the_same_concurrency_is_not_capped_at_two() -> None:
    free = sleeps("to-thread", concurrency=8)
    # min(32, CPUs + 4) default-executor threads (6 on 2 CPUs) overlap their sleeps.
    assert free.throughput_ops_s > 200


@pytest.mark.workers
def test_sizes_without_max_workers_are_recorded() -> None:
    anyio_default = sleeps("anyio-thread")
    assert anyio_default.details == {"max_workers": 40, "limiter": "default"}
    bounded_default = sleeps("bounded-to-thread")
    assert bounded_default.details["max_workers"] == strategies.default_executor_workers()


# --- behaviour, in this process, without timing -----------------------------------------------------


def test_bounded_calls_beyond_the_bound_wait_on_the_loop_not_in_the_pool() -> None:
    release = threading.Event()
    started: list[int] = []

    def block() -> None:
        started.append(threading.get_ident())
        release.wait(10)

    async def main() -> None:
        strategy = bounded.BoundedToThread(max_workers=2)
        await strategy.start(block, lambda: None)
        calls = [asyncio.create_task(strategy.call()) for _ in range(5)]
        while len(started) < 2:
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.05)
        assert strategy.pool is not None
        assert strategy.slots is not None
        assert len(started) == 2
        assert strategy.slots.locked()
        assert strategy.pool._work_queue.qsize() == 0  # nothing queued inside the pool
        calls[-1].cancel()  # a waiting call withdrawn never runs
        release.set()
        await asyncio.gather(*calls, return_exceptions=True)
        assert len(started) == 4
        await strategy.stop()

    asyncio.run(main())


@pytest.mark.parametrize("strategy", THREADED)
def test_context_variables_reach_the_function(strategy: str) -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")

    async def main() -> object:
        offload = strategies.get(strategy)(max_workers=2)
        await offload.start(var.get, lambda: None)
        var.set("from the caller")
        try:
            return await offload.call()
        finally:
            await offload.stop()

    assert asyncio.run(main()) == "from the caller"


def test_no_anyio_thread_outlives_the_loop() -> None:
    def threads() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "AnyIO worker thread" and t.is_alive()]

    async def main() -> int:
        offload = anyio_thread.AnyioThread()
        await offload.start(threading.get_ident, lambda: None)
        idents = await asyncio.gather(*(offload.call() for _ in range(4)))
        await offload.stop()
        return len(threads()) if idents else 0

    assert asyncio.run(main()) >= 1
    # AnyIO told its threads to stop when asyncio.run's main task ended; idle, they are gone.
    for thread in threads():
        thread.join(2)
    assert not threads()


def test_interpreter_pool_starts_every_worker_before_the_window(monkeypatch: pytest.MonkeyPatch) -> None:
    # No Python 3.14 here: a ThreadPoolExecutor (its base class) stands in for the executor.
    monkeypatch.setattr(interpreter_pool, "executor_class", lambda: ThreadPoolExecutor)
    prepared: list[int] = []

    async def main() -> tuple[dict[str, object], object]:
        offload = interpreter_pool.InterpreterPool(max_workers=3)
        details = await offload.start(lambda: 42, lambda: prepared.append(threading.get_ident()))
        try:
            return dict(details), await offload.call()
        finally:
            await offload.stop()

    details, result = asyncio.run(main())
    assert result == 42
    assert details["max_workers"] == 3
    assert isinstance(details["pool_startup_s"], float)
    assert len(set(prepared)) == 3  # `prepare` ran once in each worker, all before the first call


def test_anyio_thread_says_how_to_get_anyio_when_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    assert anyio_thread.AnyioThread.unavailable_reason() is None
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    assert anyio_thread.AnyioThread.unavailable_reason() == "needs anyio (pip install 'offbench[strategies]')"


def test_interpreter_pool_says_why_it_cannot_run(monkeypatch: pytest.MonkeyPatch) -> None:
    if sys.version_info < (3, 14):
        reason = interpreter_pool.InterpreterPool.unavailable_reason()
        assert reason is not None
        assert reason == (
            "needs Python 3.14+ (concurrent.futures.InterpreterPoolExecutor);"
            f" this is {platform.python_version()}"
        )
    # A 3.14 whose concurrent.futures lacks the executor is refused with what went wrong.
    monkeypatch.setattr(sys, "version_info", (3, 14, 0, "final", 0))
    monkeypatch.setattr(interpreter_pool, "executor_class", _missing)
    assert "not usable here: no _interpreters" in str(interpreter_pool.InterpreterPool.unavailable_reason())


def _missing() -> type[ThreadPoolExecutor]:
    raise ImportError("no _interpreters")


# --- the command line --------------------------------------------------------------------------------


@pytest.mark.workers
@pytest.mark.skipif(sys.version_info >= (3, 14), reason="InterpreterPoolExecutor exists here")
@pytest.mark.parametrize("command", ["run", "check"])
def test_interpreter_pool_is_refused_on_this_python_in_one_line(command: str) -> None:
    done = offbench(command, "-s", "interpreter-pool")
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("offbench: error: strategy 'interpreter-pool' is not available here: ")
    assert "needs Python 3.14+" in line


@pytest.mark.workers
def test_catalog_lists_them_as_optional() -> None:
    done = offbench("list", "--json")
    assert done.returncode == 0, done.stderr
    listed = {entry["name"]: entry for entry in json.loads(done.stdout)["strategies"]}
    for name in NEW:
        assert listed[name]["default"] is False
    assert listed["anyio-thread"]["available"] is True
    assert listed["bounded-to-thread"]["available"] is True
    assert listed["anyio-thread"]["runs_on"] == listed["bounded-to-thread"]["runs_on"] == "thread"
    assert listed["interpreter-pool"]["runs_on"] == "process"
    assert listed["interpreter-pool"]["available"] is (sys.version_info >= (3, 14))
    names = list(listed)
    assert names.index("process-pool") < names.index("anyio-thread") < names.index("bounded-to-thread")
    assert names.index("bounded-to-thread") < names.index("interpreter-pool")
    # The default matrix is unchanged: none of them is measured unless named.
    assert not set(NEW) & set(strategies.default_names())


@pytest.mark.workers
@pytest.mark.parametrize("strategy", THREADED)
def test_check_finds_context_copied_a_thread_and_workers_reused(strategy: str) -> None:
    found = check_one(CheckSpec(strategy=strategy, loop="asyncio"))
    assert found.error is None, found.error
    answers = {f.experiment: f for f in found.findings}
    assert answers["context"].holds is True
    assert answers["context"].value == "copied"
    assert answers["runs_on"].value == "thread"
    assert answers["reuse"].holds is True
    assert answers["exceptions"].holds is True
    assert all(f.value != "error" for f in found.findings), [f for f in found.findings if f.value == "error"]
