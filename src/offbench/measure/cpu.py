"""CPU time of a process and everything it started, read from ``/proc`` (Linux).

A unit's throughput follows the host's speed only as far as its processes compute:
a call that sleeps 10 ms takes 10 ms on a slow host too, a pure-Python call takes
longer. The worker reads the CPU time of its process tree at the start and the end of
its window; the share of the window spent on a CPU says how much of the host's speed
shows in the unit's throughput (:mod:`offbench.run.aggregate`). Process pools, a
forkserver, Dask's workers: all are descendants, found through
``/proc/PID/task/TID/children``.

Elsewhere (no ``/proc``) :func:`tree_cpu_s` returns ``None`` and throughput is not
normalised.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

PROC = Path("/proc")
TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu_s(pid: int) -> float | None:
    """Return the CPU seconds ``pid`` has used, or ``None`` if it cannot be read.

    The sum of its threads' ``schedstat`` (nanoseconds), else ``stat``'s user + system
    time (whole clock ticks: 10 ms, too coarse for a 50 ms window).
    """
    threads = _threads_cpu_s(pid)
    if threads is not None:
        return threads
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = stat[stat.rfind(")") + 2 :].split()
    try:
        return (int(fields[11]) + int(fields[12])) / TICKS_PER_S
    except (IndexError, ValueError):
        return None


def _threads_cpu_s(pid: int) -> float | None:
    """Return the summed on-CPU time of ``pid``'s living threads from ``schedstat``, or ``None``."""
    try:
        tasks = list((PROC / str(pid) / "task").iterdir())
    except OSError:
        return None
    total = 0
    for task in tasks:
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
    return total / 1e9


def children(pid: int) -> list[int]:
    """Return the pids of ``pid``'s children, from every one of its threads' ``children`` list."""
    found: list[int] = []
    try:
        tasks = list((PROC / str(pid) / "task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            found.extend(int(child) for child in (task / "children").read_text().split())
        except (OSError, ValueError):
            continue
    return found


def descendants(pid: int) -> list[int]:
    """Return every process below ``pid``: its children, theirs, and so on."""
    found: list[int] = []
    pending = children(pid)
    while pending:
        child = pending.pop()
        found.append(child)
        pending.extend(children(child))
    return found


def tree_cpu_s(pid: int | None = None) -> float | None:
    """Return the CPU seconds ``pid`` (default: this process) and its living descendants have used.

    ``None`` where ``/proc`` cannot tell (not Linux).
    """
    root = os.getpid() if pid is None else pid
    if root == os.getpid():
        # Every thread's time, including threads that have ended (a thread per call).
        own: float | None = time.process_time()
        if not PROC.is_dir():
            return None
    else:
        own = process_cpu_s(root)
    if own is None:
        return None
    return own + sum(process_cpu_s(child) or 0.0 for child in descendants(root))


def machine_jiffies() -> tuple[int, int] | None:
    """Return (busy, total) CPU time of the whole machine since boot, in clock ticks (``/proc/stat``).

    Busy is everything but idle and iowait; guest time is already inside user time.
    """
    try:
        with open(PROC / "stat", encoding="ascii") as stat:
            first = stat.readline().split()
    except OSError:
        return None
    if not first or first[0] != "cpu":
        return None
    values = [int(v) for v in first[1:9]]
    idle = values[3] + values[4]
    total = sum(values)
    return total - idle, total
