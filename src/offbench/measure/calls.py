"""What is unpickled where the function runs: in pool processes, subinterpreters, Dask workers.

Everything here must stay import-light: unpickling a call in a process pool's worker
(or an ``interpreter-pool`` subinterpreter) imports this module, and must not load
msgspec (an extension that may not load in a subinterpreter), the results model or
the rest of offbench. A test imports it in a fresh interpreter and checks.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
clock = time.perf_counter_ns


class Timed(Generic[T]):
    """``fn`` that also returns when it started and finished: ``(result, started_ns, finished_ns)``.

    A module-level class holding only ``fn`` (as ``functools.partial`` does), so it
    pickles wherever ``fn`` does (process pools, loky's cloudpickle, Dask). ``fn``
    runs in the very context the strategy gives the wrapper (``to_thread``'s copy of
    the caller's contextvars included), and an exception it raises propagates
    unchanged: no stamps are returned for a call that failed.
    """

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[], T]) -> None:
        self.fn = fn

    def __call__(self) -> tuple[T, int, int]:
        """Run ``fn``; return its result with the clock read just before and just after."""
        started = clock()
        result = self.fn()
        return result, started, clock()

    def __reduce__(self) -> tuple[type[Timed[T]], tuple[Callable[[], T]]]:
        return Timed, (self.fn,)

    def __repr__(self) -> str:
        return f"Timed({self.fn!r})"


def with_payload(fn: Callable[[], object], payload_bytes: int) -> Callable[[], object]:
    """Return a callable that ships ``payload_bytes`` bytes with each call of ``fn`` and ignores them.

    What ``--payload-bytes`` does to a cell: the payload is an argument, so every call
    pickles and sends it. It pickles (plain pickle and cloudpickle) when ``fn`` does;
    ``fn`` itself when ``payload_bytes`` is 0.
    """
    if payload_bytes < 0:
        raise ValueError(f"payload_bytes must be 0 or more, got {payload_bytes}")
    if payload_bytes == 0:
        return fn
    return functools.partial(_call_ignoring, fn, bytes(payload_bytes))


def _call_ignoring(fn: Callable[[], object], payload: bytes) -> object:
    """Call ``fn()``; ``payload`` was only shipped."""
    return fn()
