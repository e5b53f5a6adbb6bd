"""``anyio.to_thread.run_sync``: the thread offload Starlette and FastAPI code goes through.

AnyIO keeps worker threads of its own per event loop (not the loop's default executor)
and bounds the calls in flight with a capacity limiter: unless told otherwise, one
shared by all of the loop's ``run_sync`` calls, of 40 tokens. It copies the caller's
context into the thread, as ``asyncio.to_thread`` does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from offbench.model.params import Params
from offbench.strategies import Call, Strategy, missing_package, register

if TYPE_CHECKING:
    import anyio

_RunSync = Callable[..., Awaitable[object]]


@register
class AnyioThread(Strategy):
    """``await anyio.to_thread.run_sync(fn, limiter=...)``: the default limiter, or one of ``max_workers``."""

    name = "anyio-thread"
    summary = "await anyio.to_thread.run_sync(fn) (AnyIO's threads: Starlette/FastAPI's path)"
    runs_on = "thread"
    sized = True
    pool_owner = "anyio's default limiter's"
    default = False

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Say so when AnyIO is not installed."""
        return missing_package("anyio")

    def __init__(self, max_workers: int | None = None) -> None:
        super().__init__(max_workers)
        self.limiter: anyio.CapacityLimiter | None = None
        self.run_sync: _RunSync | None = None

    async def start(self, fn: Call, prepare: Call) -> Params:
        """Take the loop's default limiter, or make one of ``max_workers`` tokens; record which.

        AnyIO starts a thread per call while none is idle (up to the limiter's tokens), so
        there is nothing to start here: the first calls of the warm-up start them.
        """
        import anyio.to_thread

        await super().start(fn, prepare)
        self.run_sync = anyio.to_thread.run_sync
        if self.max_workers is None:
            tokens = anyio.to_thread.current_default_thread_limiter().total_tokens
            return {"max_workers": int(tokens), "limiter": "default"}
        self.limiter = anyio.CapacityLimiter(self.max_workers)
        return {"max_workers": self.max_workers, "limiter": "dedicated"}

    async def call(self) -> object:
        """Wait for a token of the limiter, then run the call in one of AnyIO's worker threads.

        Cancelling the awaiting task (``asyncio.timeout``) returns at once; the call runs
        on to its end in the thread, as with every thread strategy.
        """
        assert self.run_sync is not None, "strategy used before start()"
        return await self.run_sync(self.fn, limiter=self.limiter)

    async def stop(self) -> None:
        """Drop the limiter; AnyIO stops its threads itself when the loop's root task ends.

        AnyIO has no call to stop its threads sooner: it hangs their stop on the root
        task (``asyncio.run``'s main task, which the cell's worker ends right after
        this), so an idle thread exits before the loop closes, and a busy one as soon
        as its call returns. The loop never joins them.
        """
        self.limiter = None
        self.run_sync = None
