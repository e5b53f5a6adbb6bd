"""Orphans: what a child leaves to offbench when it dies, and the parent's note of what is its own.

The CLI's process is a *subreaper* (:func:`adopt_orphans`): a worker that dies without
reporting leaves its descendants to offbench, not to init. At each child's end the
parent looks among its own children (not through every process on the machine) for
those it did not start itself, kills them with all they started, and reaps them.
"""

from __future__ import annotations

import contextlib
import os
import time

from offbench.processes import procfs, signals

tracked: set[int] = set()
"""Pids this process started through this package and has not closed: never taken for orphans."""
adopted: set[int] = set()
"""Orphans killed here that may still need reaping."""
parent_only: set[int] = set()
"""File descriptors no child may keep: the guardian's pipe, the parent's end of report sockets."""

_adopting = False


def adopt_orphans() -> bool:
    """Make this process a subreaper (Linux): orphans of its descendants come to it, not to init.

    The CLI's process does this at start: a worker that dies without reporting leaves its
    descendants to offbench, which finds, kills and reaps them at the child's end. A
    library caller (a test) is left as it is. Returns whether the kernel took the request.
    """
    global _adopting
    _adopting = signals.become_subreaper() or _adopting
    return _adopting


def close_parent_only() -> None:
    """In a just-forked child: close what only the parent may hold, forget the parent's notes."""
    for fd in parent_only:
        with contextlib.suppress(OSError):
            os.close(fd)
    parent_only.clear()
    tracked.clear()
    adopted.clear()


ORPHANS_REAPED_WITHIN_S = 1.0
"""How long killed orphans are waited for, to be reaped, before they are left to a later end."""


def end_orphans(group: int, since: int) -> list[procfs.Process]:
    """Kill and reap what a child left to this process; return the processes killed.

    Orphans of the child whose group is ``group`` and which started at ``since`` (ticks
    since boot): members of its group, and any process started after it. Only where this
    process adopts them (:func:`adopt_orphans`); elsewhere they went to init.
    """
    if not _adopting:
        return []
    me = os.getpid()
    killed: list[procfs.Process] = []
    deadline = time.monotonic() + ORPHANS_REAPED_WITHIN_S
    while True:
        mine = (procfs.stat(pid) for pid in procfs.children(me) if pid not in tracked)
        orphans = [
            p for p in mine
            if p is not None and p.ppid == me and (p.pgid == group or p.pid in adopted or p.start >= since)
        ]
        for orphan in orphans:
            if orphan.state != "Z" and orphan.pid not in adopted:
                adopted.add(orphan.pid)
                killed += [orphan, *procfs.kill_tree(orphan.pid, keep_root=False)]
        for orphan in orphans:
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(orphan.pid, os.WNOHANG)[0] == 0:
                    continue
            adopted.discard(orphan.pid)
        if not orphans or time.monotonic() > deadline:
            return killed
        time.sleep(0.005)
