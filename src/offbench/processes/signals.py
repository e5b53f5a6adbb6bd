"""Signals: SIGINT and SIGTERM as an orderly stop, and the death signal that ties a child to offbench.

Also the other Linux process control a child relies on: becoming a *subreaper*, so that
the orphans of its descendants come to it rather than to init.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator

PARENT_VARIABLE = "OFFBENCH_PARENT_PID"
"""Tells a spawned child which process must be its parent (see :func:`die_with_parent`)."""


@contextlib.contextmanager
def deferred_stop_signals() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back for the block; one that arrived meanwhile acts at its end.

    Only the main thread receives them, and only it blocks them; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def unblock_stop_signals() -> None:
    """Let SIGINT and SIGTERM in again: a child inherits the mask its parent started it under."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})


_stopped_by: int | None = None


def install_stop_signals() -> None:
    """Make SIGINT and SIGTERM an orderly stop from now on, whatever the command is doing.

    Both raise ``KeyboardInterrupt`` in the main thread, so every ``with`` and ``finally``
    on the way out runs (children killed, folders removed), and the first of them is
    remembered for the exit code (:func:`stop_signal`). A signal the process was started
    with ignored (``nohup``) stays ignored. The CLI calls this first thing.
    """
    for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _stop)


def _stop(signum: int, frame: object) -> None:
    global _stopped_by
    if _stopped_by is None:
        _stopped_by = signum
    raise KeyboardInterrupt


def stop_signal() -> int | None:
    """Return the first stop signal received since :func:`install_stop_signals`, if any."""
    return _stopped_by


# --- Linux process controls ------------------------------------------------------------------------

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


@functools.cache
def prctl() -> Callable[..., int] | None:
    """Return libc's ``prctl`` (Linux), loaded once: the parent loads it before forking."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        function: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return function


def set_process_control(option: int, value: int) -> bool:
    """Ask the kernel for ``prctl(option, value)``; return whether it took the request."""
    function = prctl()
    return function is not None and function(option, value, 0, 0, 0) == 0


def become_subreaper() -> bool:
    """Make this process a subreaper (Linux): orphans of its descendants come to it, not to init."""
    return set_process_control(PR_SET_CHILD_SUBREAPER, 1)


def die_with_parent(parent: int | None) -> bool:
    """Have the kernel SIGKILL this process when its parent dies (Linux); leave now if it already has.

    The request counts from now on: a parent that died a moment before would go unseen,
    so if the parent is no longer ``parent`` this process exits at once. It returns
    whether the kernel took the request (it cannot outside Linux).
    """
    granted = set_process_control(PR_SET_PDEATHSIG, signal.SIGKILL)
    if parent is not None and os.getppid() != parent:
        os._exit(1)
    return granted


def die_with_parent_from_environment() -> None:
    """In a spawned child, first thing: :func:`die_with_parent` with the parent the variable names."""
    parent = os.environ.pop(PARENT_VARIABLE, "")
    die_with_parent(int(parent) if parent.isdigit() else None)
