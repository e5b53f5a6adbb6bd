"""``to_thread`` behind a semaphore, on a pool of its own: the fix for a saturated default executor.

Calls beyond the bound wait on the loop, in an ``asyncio.Semaphore`` (where a timeout
or cancellation withdraws them before they run), not in a thread pool's queue; and
the pool is the strategy's own, so other users of the loop's default executor
(``to_thread`` elsewhere, ``getaddrinfo``) are never starved by these calls.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from concurrent.futures import ThreadPoolExecutor

from offbench.model.params import Params
from offbench.strategies import Call, Strategy, default_executor_workers, register


def default_bound() -> int:
    """Return the bound when none is given: the default executor's size, ``min(32, cpus + 4)``.

    The standard library's own size for a pool of blocking calls; with it, the strategy
    runs as many calls at once as ``to-thread`` does, so what differs in the tables
    is where excess calls wait and whose threads they take, not the pool size.
    """
    return default_executor_workers()


@register
class BoundedToThread(Strategy):
    """``async with Semaphore(n): await loop.run_in_executor(own_pool, copy_context().run, fn)``."""

    name = "bounded-to-thread"
    summary = "to_thread (copies contextvars) behind asyncio.Semaphore(n), on a pool of n threads of its own"
    runs_on = "thread"
    sized = True
    default = False

    def __init__(self, max_workers: int | None = None) -> None:
        super().__init__(max_workers)
        self.pool: ThreadPoolExecutor | None = None
        self.slots: asyncio.Semaphore | None = None

    async def start(self, fn: Call, prepare: Call) -> Params:
        """Make the pool and the semaphore, both of ``max_workers`` (else :func:`default_bound`)."""
        await super().start(fn, prepare)
        size = self.max_workers if self.max_workers is not None else default_bound()
        self.pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="offbench-bounded")
        self.slots = asyncio.Semaphore(size)
        return {"max_workers": size}

    async def call(self) -> object:
        """Wait for a free slot on the loop, then run the call in the pool in a copy of the context."""
        assert self.pool is not None, "strategy used before start()"
        assert self.slots is not None, "strategy used before start()"
        async with self.slots:
            context = contextvars.copy_context()
            return await asyncio.get_running_loop().run_in_executor(
                self.pool, functools.partial(context.run, self.fn)
            )

    async def stop(self) -> None:
        """Shut the pool down, waiting (off the loop) for calls still running in it."""
        if self.pool is not None:
            pool, self.pool = self.pool, None
            self.slots = None
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: pool.shutdown(wait=True, cancel_futures=True)
            )
