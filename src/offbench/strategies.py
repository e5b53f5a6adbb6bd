"""Offload strategies: the ways asyncio code can call a blocking function.

Each strategy is one small class registered by name with :func:`register`. The worker
calls :meth:`Strategy.start` before the measured window (its cost is reported as
start-up, not hidden in throughput), :meth:`Strategy.call` once per operation from
each concurrent task, and :meth:`Strategy.stop` at the end.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import ClassVar, Literal, TypeVar

from offbench.errors import UsageError, unknown_name
from offbench.workloads import Params

Call = Callable[[], object]


def default_executor_workers() -> int:
    """Return the real size of the default executor: ``min(32, cpus + 4)`` on CPython 3.11+.

    Both asyncio and uvloop build their default executor as a plain
    ``ThreadPoolExecutor()``, so a fresh one (which starts no thread) reports the same size.
    """
    with ThreadPoolExecutor() as probe:
        return int(probe._max_workers)


class Strategy(ABC):
    """How one call of the blocking function is made from a coroutine."""

    name: ClassVar[str]
    summary: ClassVar[str]
    runs_on: ClassVar[Literal["loop", "thread", "process"]]
    """Where the blocking function runs: what the verdict reasons about (GIL, pool sizes)."""
    sized: ClassVar[bool] = False
    """True when the strategy calls through one pool whose size ``max_workers`` sets."""

    def __init__(self, max_workers: int | None = None) -> None:
        self.fn: Call = _not_started
        self.max_workers = max_workers

    async def start(self, fn: Call, prepare: Call) -> Params:
        """Get ready to call ``fn`` (``prepare`` readies a process); return facts to record."""
        self.fn = fn
        return {}

    def bind(self, fn: Call) -> None:
        """Make later calls run ``fn``: one started strategy can then serve several functions."""
        self.fn = fn

    @abstractmethod
    async def call(self) -> object:
        """Run ``fn`` once and return its result, however this strategy does it."""

    async def stop(self) -> None:  # noqa: B027 - most strategies hold nothing to release
        """Release what :meth:`start` acquired."""


def _not_started() -> object:
    raise RuntimeError("strategy used before start()")


REGISTRY: dict[str, type[Strategy]] = {}
S = TypeVar("S", bound=type[Strategy])


def register(cls: S) -> S:
    """Class decorator: make the strategy available under its ``name``."""
    REGISTRY[cls.name] = cls
    return cls


def names() -> list[str]:
    """Return the registered strategy names in canonical order."""
    return list(REGISTRY)


def get(name: str) -> type[Strategy]:
    """Return the strategy class called ``name``, or raise ``UsageError`` naming the choices."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise UsageError(unknown_name("strategy", name, names())) from None


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
    """Return the start method for process pools: ``forkserver`` where available, else ``spawn``.

    Never ``fork``: forking a process that runs an event loop and threads can deadlock
    (CPython #90622) and libuv's state is unusable after fork.
    """
    methods = multiprocessing.get_all_start_methods()
    return "forkserver" if "forkserver" in methods else "spawn"


def _init_pool_process(prepare: Call) -> None:
    # The parent decides about Ctrl-C; pool workers must not die or keep taking work on it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    prepare()


def _warm_up(pause_s: float) -> int:
    time.sleep(pause_s)
    return os.getpid()


@register
class ProcessPool(Strategy):
    """One ``ProcessPoolExecutor`` per cell, created and warmed before the measured window."""

    name = "process-pool"
    summary = "await loop.run_in_executor(ProcessPoolExecutor(), fn), pool reused"
    runs_on = "process"
    sized = True

    def __init__(self, max_workers: int | None = None) -> None:
        super().__init__(max_workers)
        self.pool: ProcessPoolExecutor | None = None

    async def start(self, fn: Call, prepare: Call) -> Params:
        """Start every pool process, run ``prepare`` in each, and time it all."""
        await super().start(fn, prepare)
        method = pool_start_method()
        began = time.perf_counter()
        self.pool = ProcessPoolExecutor(
            max_workers=self.max_workers,
            mp_context=multiprocessing.get_context(method),
            initializer=_init_pool_process,
            initargs=(prepare,),
        )
        size = int(self.pool._max_workers)  # type: ignore[attr-defined]
        await _start_all_workers(self.pool, size)
        return {
            "max_workers": size,
            "pool_start_method": method,
            "pool_startup_s": round(time.perf_counter() - began, 6),
        }

    async def call(self) -> object:
        """Ship the call to a pool process and await the result."""
        assert self.pool is not None
        return await asyncio.get_running_loop().run_in_executor(self.pool, self.fn)

    async def stop(self) -> None:
        """Shut the pool down, cancelling queued calls and waiting for running ones."""
        if self.pool is not None:
            pool, self.pool = self.pool, None
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: pool.shutdown(wait=True, cancel_futures=True)
            )


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
