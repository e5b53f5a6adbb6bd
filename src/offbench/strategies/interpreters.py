"""``InterpreterPoolExecutor`` (Python 3.14+): threads of this process, each running its own interpreter.

Each worker interpreter has a GIL of its own, so pure-Python calls run in parallel as
in a process pool, without starting processes; but, as with a process pool, the
function, its arguments and its result are pickled on every call, the function's
module is imported afresh in each interpreter, and extension modules that do not
support subinterpreters (NumPy among them) cannot be imported there at all.
"""

from __future__ import annotations

import asyncio
import importlib
import platform
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from offbench.model.params import Params
from offbench.strategies import Call, register
from offbench.strategies.stdlib import ReusedPool

WARM_UP_S = 0.01
"""How long each warm-up call sleeps, so that all of them are in flight at once."""


def executor_class() -> type[ThreadPoolExecutor]:
    """Return ``concurrent.futures.InterpreterPoolExecutor`` (a ``ThreadPoolExecutor`` subclass).

    Looked up at run time: it does not exist before Python 3.14.
    """
    found: type[ThreadPoolExecutor] = importlib.import_module("concurrent.futures").InterpreterPoolExecutor
    return found


@register
class InterpreterPool(ReusedPool):
    """One ``InterpreterPoolExecutor`` per cell, its interpreters started before the measured window.

    ``runs_on`` is "process": the verdict's GIL reasoning (threads that do not speed
    up hold the GIL) is true of threads sharing one interpreter, false of these; like
    a process pool's workers they run Python in parallel and take pickled copies.
    """

    name = "interpreter-pool"
    summary = "await loop.run_in_executor(InterpreterPoolExecutor(), fn) (a GIL per interpreter, 3.14+)"
    runs_on = "process"
    sized = True
    default = False

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Say so before Python 3.14, or where the interpreters module cannot load."""
        if sys.version_info < (3, 14):
            return (
                "needs Python 3.14+ (concurrent.futures.InterpreterPoolExecutor);"
                f" this is {platform.python_version()}"
            )
        try:
            executor_class()
        except (ImportError, AttributeError) as exc:
            return f"concurrent.futures.InterpreterPoolExecutor is not usable here: {exc}"
        return None

    async def start(self, fn: Call, prepare: Call) -> Params:
        """Start every worker interpreter, run ``prepare`` in each (pickled), and time it all.

        A thread pool starts a worker per submit while none is idle, so ``size`` calls at
        once start them all; each worker creates its interpreter as it starts.
        """
        await super().start(fn, prepare)
        began = time.perf_counter()
        pool = executor_class()(max_workers=self.max_workers, initializer=prepare)
        self.pool = pool
        size = int(pool._max_workers)
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(pool, time.sleep, WARM_UP_S) for _ in range(size)))
        return {"max_workers": size, "pool_startup_s": round(time.perf_counter() - began, 6)}
