"""User-style workloads for tests, importable as ``tests.helpers:NAME`` in worker processes.

And :class:`RunQueueWait`, a witness of what a busy host takes from a test's own thread.
"""

from __future__ import annotations

import gc
import os
import time
from types import TracebackType


def noop() -> None:
    """Do nothing: the cheapest possible call."""


def collect_garbage() -> None:
    """Run a full garbage collection: it walks every object the collector tracks in this process."""
    gc.collect()


def boom() -> None:
    """Raise on every call."""
    raise ValueError("boom from the workload")


def hang() -> None:
    """Block far longer than any test's cell timeout."""
    time.sleep(3600)


def die() -> None:
    """Kill the calling process without cleanup, like a segfault would."""
    os._exit(3)


not_callable = 42


_calls = 0


def flaky() -> None:
    """Succeed twice, then raise on the third call (counted per process)."""
    global _calls
    _calls += 1
    if _calls % 3 == 0:
        raise ConnectionResetError(f"call {_calls} lost its connection")
    time.sleep(0.001)


def fails_in_pool() -> None:
    """Work in the cell's worker, fail in a process pool's worker (it lacks the parent's state)."""
    import multiprocessing

    if multiprocessing.parent_process() is not None:
        raise LookupError("no configuration in a pool process")


def kill_self() -> None:
    """Die by SIGKILL, as the OOM killer would do it."""
    import signal

    os.kill(os.getpid(), signal.SIGKILL)


class RunQueueWait:
    """Witness how long the kernel kept the thread that enters it runnable but off every CPU.

    Linux counts a thread's run-queue wait (``/proc/thread-self/schedstat``, second field,
    ns): time it was ready to run and another program (or another test) had the CPU. It
    is what a busy host takes from a timed stretch of code, measured, not guessed: a test
    reads it at both ends of the stretch (:meth:`now_ns`, one ``pread``, a few µs) and
    widens its margin by the difference. Sleeping, or waiting on a lock, is not counted,
    so a wait the code itself makes still shows. Nor is a hypervisor's steal of the
    virtual CPU (``/proc/stat`` showed none here under a busy core, 2026-12-02). Where the
    kernel does not count it (not Linux, no ``CONFIG_SCHED_INFO``) it reads 0 and the
    margin is physics alone. ``taken_ms`` is what was taken inside the ``with``.
    """

    def __init__(self) -> None:
        self._fd = -1
        self._began = 0
        self.taken_ms = 0.0

    def __enter__(self) -> RunQueueWait:
        try:
            self._fd = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
        except OSError:
            self._fd = -1
        self._began = self.now_ns()
        return self

    def now_ns(self) -> int:
        """Return the entering thread's run-queue wait so far, in ns (0 where it is not counted)."""
        if self._fd < 0:
            return 0
        return int(os.pread(self._fd, 128, 0).split()[1])

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.taken_ms = (self.now_ns() - self._began) / 1e6
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
