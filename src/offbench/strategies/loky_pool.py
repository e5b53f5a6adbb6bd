"""loky's reusable process pool: the standard process pool's robust, cloudpickling cousin.

Only measured when named (``-s loky``), and only where loky is installed (the
``strategies`` extra). Beside ``process-pool`` it answers what loky's choices cost
or save: workers started by fork + exec (never a bare fork), an executor reused
across calls (and across ``get_reusable_executor`` calls in one process), and
cloudpickle, which ships lambdas and closures the standard pool refuses.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, ClassVar

from offbench.model.params import Params
from offbench.strategies import Call, missing_package, register
from offbench.strategies.stdlib import ReusedPool, _init_pool_process, _start_all_workers

IDLE_TIMEOUT_S = 300
"""loky ends workers idle this long (its default, 10 s, could respawn them mid-run)."""


@register
class LokyPool(ReusedPool):
    """``loky.get_reusable_executor()``, started and warmed before the window, shut down after it."""

    name = "loky"
    summary = "await loop.run_in_executor(loky.get_reusable_executor(), fn) (cloudpickle)"
    runs_on = "process"
    sized = True
    default = False

    _users: ClassVar[int] = 0
    """Started instances in this process: loky's executor is one per process, shared by them all."""

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Return why loky cannot be used here: it is not installed."""
        return missing_package("loky")

    async def start(self, fn: Call, prepare: Call) -> Params:
        """Get loky's executor, start every worker, run ``prepare`` in each, and time it all.

        Workers ignore SIGINT, as the standard pool's do: the parent decides about Ctrl-C.
        """
        await super().start(fn, prepare)
        import loky

        began = time.perf_counter()
        pool = loky.get_reusable_executor(
            max_workers=self.max_workers,
            timeout=IDLE_TIMEOUT_S,
            initializer=_init_pool_process,
            initargs=(prepare,),
        )
        self.pool = pool
        LokyPool._users += 1
        size = int(pool._max_workers)
        await _start_all_workers(pool, size)
        return {
            "max_workers": size,
            "pool_start_method": "loky",
            "pool_startup_s": round(time.perf_counter() - began, 6),
        }

    async def stop(self) -> None:
        """Shut the executor down and kill its workers once no other instance here uses it.

        ``kill_workers=True``: no worker outlives the cell, whatever it is still running.
        """
        if self.pool is None:
            return
        pool: Any = self.pool  # loky's executor: its shutdown takes kill_workers
        self.pool = None
        LokyPool._users -= 1
        if LokyPool._users == 0:
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: pool.shutdown(wait=True, kill_workers=True)
            )
