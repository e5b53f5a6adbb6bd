"""User-style workloads for tests, importable as ``tests.helpers:NAME`` in worker processes."""

import gc
import os
import time


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
