"""The blocking functions the semantic experiments call through a strategy.

Module-level and with picklable arguments only, so a process pool can run them too.
Each reports what it could see from where it ran; the experiment compares that with
what the caller knows.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

MARK = "set by the caller"

CONTEXT_VAR: contextvars.ContextVar[str] = contextvars.ContextVar("offbench_check", default="")
"""Set in the calling task; a callee that sees :data:`MARK` in it got the caller's context."""

THREAD_STATE = threading.local()
"""Given ``mark`` on the loop thread; a callee that sees it ran on, or shares, that thread."""

_TOKENS = threading.local()


def read_context() -> str:
    """Return the context variable's value as this callee sees it."""
    return CONTEXT_VAR.get()


def read_thread_local() -> str:
    """Return the thread-local mark as this callee sees it (empty if unset here)."""
    return str(getattr(THREAD_STATE, "mark", ""))


def identity() -> tuple[int, int, str]:
    """Return (pid, thread ident, a token unique to this thread's life).

    Thread idents are recycled once a thread ends; the token is not, so a new thread
    per call shows as a new token even when the OS hands out the same ident.
    """
    token = getattr(_TOKENS, "token", None)
    if token is None:
        token = _TOKENS.token = uuid.uuid4().hex
    return os.getpid(), threading.get_ident(), token


def current_loop() -> object:
    """Return the event loop set for this thread in the policy, or None, creating nothing.

    ``asyncio.get_event_loop()`` would create a loop in a main thread, and so cause
    what it is used to look for; this reads the default policy's per-thread slot.
    """
    local = getattr(asyncio.get_event_loop_policy(), "_local", None)
    return getattr(local, "_loop", None)


def loop_state() -> tuple[bool, bool]:
    """Return (a loop is running in this thread, an event loop is set for this thread)."""
    return asyncio._get_running_loop() is not None, current_loop() is not None


def call_then(first: Callable[[], object], then: Callable[[], object]) -> object:
    """Call ``first`` (the user's function), then return what ``then`` reports from the same place."""
    first()
    return then()


def raise_error() -> None:
    """Raise ``ValueError`` from a nested frame, so a kept traceback names :func:`_deep`."""
    _deep()


def _deep() -> None:
    raise ValueError("raised in the callee")


def sleep_then_touch(path: str, seconds: float) -> str:
    """Block for ``seconds``, then create ``path``: the file says the call ran to its end."""
    time.sleep(seconds)
    Path(path).touch()
    return path


def append_to(items: list[str]) -> list[str]:
    """Append to the list it was given and return that list."""
    items.append("added by the callee")
    return items


def accept(value: object) -> None:
    """Take one argument and do nothing: shipping the argument is the experiment."""


def spin(iterations: int) -> int:
    """Pure-Python arithmetic: holds the GIL the whole time."""
    total = 0
    for i in range(iterations):
        total += i * i
    return total


def hash_blocks(size: int, rounds: int) -> str:
    """SHA-256 over a large buffer: hashlib releases the GIL for buffers over 2 KiB."""
    data = b"x" * size
    digest = b""
    for _ in range(rounds):
        digest = hashlib.sha256(data).digest()
    return digest.hex()


def noop() -> None:
    """Do nothing: what a strategy's own per-call cost is measured with."""


def schedstat_ns() -> tuple[int, int] | None:
    """Return how long this thread has been on a CPU, and runnable but waiting for one, ns (Linux).

    ``/proc/thread-self/schedstat``. A thread blocked on the GIL is neither: it sleeps
    until the holder lets go. ``None`` where the kernel does not tell.
    """
    try:
        with open("/proc/thread-self/schedstat", "rb") as stat:
            running, waiting, _ = stat.read().split()
    except (OSError, ValueError):
        return None
    return int(running), int(waiting)


def with_waiting(fn: Callable[[], object]) -> tuple[object, int | None]:
    """Call ``fn``; return its result and how long its thread waited, runnable, for a CPU meanwhile (ns).

    Two calls at once whose threads spent much of the time waiting for a CPU met a
    machine without a free one (another program had it): their speed-up then says
    nothing about what the strategy allows.
    """
    before = schedstat_ns()
    result = fn()
    after = schedstat_ns()
    return result, None if before is None or after is None else after[1] - before[1]
