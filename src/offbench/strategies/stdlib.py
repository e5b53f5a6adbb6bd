"""The five strategies the standard library offers: direct, thread pools, a process pool."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor

from offbench.model.params import Params
from offbench.processes import native_thread_count
from offbench.strategies import Call, Strategy, default_executor_workers, register


@register
class Direct(Strategy):
    """Call the function on the loop thread: the baseline every offload is compared with."""

    name = "direct"
    summary = "call it on the event loop thread (blocks the loop)"
    runs_on = "loop"

    async def call(self) -> object:
        """Yield to the loop once, as a request handler would between calls, then block it."""
        await asyncio.sleep(0)
        return self.fn()


@register
class ExecutorPerCall(Strategy):
    """A new ``ThreadPoolExecutor`` per call: the pattern the article warns against."""

    name = "executor-per-call"
    summary = "with ThreadPoolExecutor() as pool: await loop.run_in_executor(pool, fn)"
    runs_on = "thread"

    async def call(self) -> object:
        """Create a pool, run the call in it, and shut the pool down (joining its thread)."""
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor() as pool:
            return await loop.run_in_executor(pool, self.fn)


class _ThroughDefaultExecutor(Strategy):
    """Base of the strategies that call through the loop's shared default thread pool."""

    runs_on = "thread"
    sized = True
    pool_owner = "the default executor's"
    shared_pool = True

    async def start(self, fn: Call, prepare: Call) -> Params:
        """Size the default executor if asked to; record its size, above which calls queue."""
        await super().start(fn, prepare)
        if self.max_workers is None:
            return {"max_workers": default_executor_workers()}
        pool = ThreadPoolExecutor(max_workers=self.max_workers)
        asyncio.get_running_loop().set_default_executor(pool)
        return {"max_workers": self.max_workers}


@register
class DefaultExecutor(_ThroughDefaultExecutor):
    """``loop.run_in_executor(None, fn)``: the loop's shared default thread pool."""

    name = "default-executor"
    summary = "await loop.run_in_executor(None, fn) (shared default pool)"

    async def call(self) -> object:
        """Submit to the default executor and await the result."""
        return await asyncio.get_running_loop().run_in_executor(None, self.fn)


@register
class ToThread(_ThroughDefaultExecutor):
    """``asyncio.to_thread(fn)``: the default executor, plus a copy of the caller's context."""

    name = "to-thread"
    summary = "await asyncio.to_thread(fn) (default pool, copies contextvars)"

    async def call(self) -> object:
        """Run the call through ``asyncio.to_thread``."""
        return await asyncio.to_thread(self.fn)


def pool_start_method() -> str:
    """Return the start method for a process pool made now: ``fork`` while it is safe, else ``forkserver``.

    ``fork`` (CPython's default on Linux before 3.14) starts a pool in milliseconds
    where a ``forkserver`` takes a tenth of a second; it is safe only while this process
    runs a single thread (CPython #90622: a lock another thread holds stays locked in the
    child). The worker starts its pool before any thread of its own, and the pool's
    processes never touch the event loop whose state they inherit (libuv's is unusable
    after a fork, uvloop #39): they only run calls. A workload whose set-up started
    threads (a user module, a BLAS pool) gets ``forkserver``, or ``spawn`` where that is
    missing. The method is recorded in the cell's details.
    """
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1 and native_thread_count() in (1, None):
        return "fork"
    return "forkserver" if "forkserver" in methods else "spawn"


def _init_pool_process(prepare: Call) -> None:
    # The parent decides about Ctrl-C; pool workers must not die or keep taking work on it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    prepare()


def _warm_up(pause_s: float) -> int:
    time.sleep(pause_s)
    return os.getpid()


class ReusedPool(Strategy):
    """Base of the strategies that make one executor in :meth:`start` and ship every call to it."""

    def __init__(self, max_workers: int | None = None) -> None:
        super().__init__(max_workers)
        self.pool: Executor | None = None

    async def call(self) -> object:
        """Ship the call to the pool and await the result."""
        assert self.pool is not None, "strategy used before start()"
        return await asyncio.get_running_loop().run_in_executor(self.pool, self.fn)

    async def stop(self) -> None:
        """Shut the pool down, cancelling queued calls and waiting for running ones."""
        if self.pool is not None:
            pool, self.pool = self.pool, None
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: pool.shutdown(wait=True, cancel_futures=True)
            )


@register
class ProcessPool(ReusedPool):
    """One ``ProcessPoolExecutor`` per cell, created and warmed before the measured window."""

    name = "process-pool"
    summary = "await loop.run_in_executor(ProcessPoolExecutor(), fn), pool reused"
    runs_on = "process"
    sized = True

    async def start(self, fn: Call, prepare: Call) -> Params:
        """Start every pool process, run ``prepare`` in each, and time it all."""
        await super().start(fn, prepare)
        method = pool_start_method()
        began = time.perf_counter()
        pool = ProcessPoolExecutor(
            max_workers=self.max_workers,
            mp_context=multiprocessing.get_context(method),
            initializer=_init_pool_process,
            initargs=(prepare,),
        )
        self.pool = pool
        size = int(pool._max_workers)  # type: ignore[attr-defined]
        await _start_all_workers(pool, size)
        return {
            "max_workers": size,
            "pool_start_method": method,
            "pool_startup_s": round(time.perf_counter() - began, 6),
        }


async def _start_all_workers(pool: Executor, size: int, rounds: int = 20) -> None:
    # Non-fork pools start one process per submit while none is idle, so `size` slow
    # tasks at once start them all; repeat until each has answered (and initialised).
    loop = asyncio.get_running_loop()
    seen: set[int] = set()
    for _ in range(rounds):
        pids = await asyncio.gather(
            *(loop.run_in_executor(pool, _warm_up, 0.01) for _ in range(size))
        )
        seen.update(pids)
        if len(seen) >= size:
            return
