"""Processes as Linux's ``/proc`` shows them: who is whose child, and how to kill a whole tree.

A tree is walked from its root down, through each process's ``/proc/PID/task/TID/children``
(the children of each of its threads): what it costs grows with the tree, not with the
machine. Where the kernel has no such files, every process in ``/proc`` is read instead.
Without ``/proc`` at all (macOS) nothing is found: callers then handle the root alone.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import threading
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Process:
    """One process as ``/proc/PID/stat`` shows it."""

    pid: int
    ppid: int
    pgid: int
    state: str
    start: int
    """Start time in clock ticks since boot: with the pid, names a process for good."""


def read(path: str, *, whole: bool = False) -> bytes | None:
    """Return a ``/proc`` file's bytes, or ``None`` if it cannot be read (its process is gone).

    Plain system calls: a Python file object costs more than the read itself here. One
    read holds all of a ``stat``; a list (``whole``) is read to its end.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        data = os.read(fd, 4096)
        while whole and data and (more := os.read(fd, 1 << 16)):
            data += more
        return data
    except OSError:
        return None
    finally:
        os.close(fd)


def stat(pid: int) -> Process | None:
    """Return what ``/proc`` says of ``pid``, or ``None`` if it is not there."""
    data = read(f"/proc/{pid}/stat")
    if not data:
        return None
    # "pid (comm) state ppid pgrp session ... starttime (field 22)": comm may hold anything.
    fields = data[data.rindex(b")") + 2 :].split()
    return Process(pid, int(fields[1]), int(fields[2]), fields[0].decode(), int(fields[19]))


def signallable(pid: int) -> bool:
    """Return whether a process ``pid`` exists (signal 0: one of another user's counts too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def started(pid: int) -> int:
    """Return when ``pid`` started (ticks since boot), 0 if it cannot be told."""
    process = stat(pid)
    return process.start if process else 0


def processes() -> list[Process]:
    """Return every process in ``/proc``: the slow way, for what no tree walk can find."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    found = (stat(int(name)) for name in names if name.isdigit())
    return [process for process in found if process is not None]


@functools.cache
def has_children_files() -> bool:
    """Return whether the kernel lists each thread's children (``CONFIG_PROC_CHILDREN``)."""
    return os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children")


def children(pid: int) -> list[int]:
    """Return the pids of ``pid``'s children (of any of its threads), zombies included."""
    if not has_children_files():
        return [process.pid for process in processes() if process.ppid == pid]
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    found: list[int] = []
    for thread in threads:
        listed = read(f"/proc/{pid}/task/{thread}/children", whole=True)
        if listed:
            found.extend(map(int, listed.split()))
    return found


def descendants(root: int) -> list[Process]:
    """Return every process below ``root`` (children, their children, ...), zombies left out."""
    if not has_children_files():
        return _descendants_by_scan(root)
    found: list[Process] = []
    todo = [root]
    while todo:
        for pid in children(todo.pop()):
            process = stat(pid)
            if process is None:
                continue
            todo.append(pid)
            if process.state != "Z":
                found.append(process)
    return found


def _descendants_by_scan(root: int) -> list[Process]:
    by_parent: dict[int, list[Process]] = {}
    for process in processes():
        by_parent.setdefault(process.ppid, []).append(process)
    found: list[Process] = []
    todo = [root]
    while todo:
        for process in by_parent.get(todo.pop(), []):
            todo.append(process.pid)
            if process.state != "Z":
                found.append(process)
    return found


FREEZE_PASSES = 50
"""Walks of a tree, stopping each new process, before what was found is killed regardless."""


def kill_tree(root: int, *, keep_root: bool) -> list[Process]:
    """Kill every descendant of ``root`` (and ``root`` unless ``keep_root``); return the descendants.

    ``root`` is stopped first, and each descendant as it is found, so that none can fork
    or be re-parented out of sight while the tree is walked; then all are killed at once.
    A kept ``root`` is let go on again. Without ``/proc`` only ``root`` itself is handled.
    """
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(root, signal.SIGSTOP)
    seen: dict[int, Process] = {}
    for _ in range(FREEZE_PASSES):
        new = [p for p in descendants(root) if p.pid not in seen]
        if not new:
            break
        for process in new:
            seen[process.pid] = process
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(process.pid, signal.SIGSTOP)
    for pid in seen:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(root, signal.SIGCONT if keep_root else signal.SIGKILL)
    return list(seen.values())


def native_thread_count() -> int | None:
    """Return this process's threads as the kernel counts them (native ones too), if it can tell.

    Python's ``threading`` misses threads a C library started (BLAS starts a pool at
    import); a fork copies none of them, so a library that had them may hang in the child.
    """
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return None


def fork_is_safe() -> bool:
    """Return whether this process may fork and run Python in the copy: it runs one thread only."""
    return hasattr(os, "fork") and threading.active_count() == 1 and native_thread_count() in (1, None)
