"""Each child's temporary folder: made with a note of its owner, removed at its end, swept if left.

The child and everything it starts get the folder as ``TMPDIR``: a killed process pool
leaves its ``pymp-*`` folders there, and the child's end removes it all. A folder left
behind all the same (offbench and its guardian were killed together) names the offbench
that made it, so that the next offbench start can tell it is stale and sweep it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import tempfile

from offbench.processes import procfs

SCRATCH_PREFIX = "offbench-child-"
OWNER_FILE = ".offbench-owner"
"""In each child's folder: ``PID START NAMESPACE`` of the offbench that made it, for the sweep.

A file, not the folder's name: the name stays short, since the forkserver's socket lives
two folders below it and a socket's path may not exceed 108 bytes (104 on macOS)."""


def identity() -> tuple[int, int]:
    """Return this process's start time (ticks since boot) and pid namespace, 0 where unknown."""
    return _identity_of(os.getpid())  # by pid: a forked child is not its parent


@functools.cache
def _identity_of(pid: int) -> tuple[int, int]:
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        namespace = 0
    return procfs.started(pid), namespace


def make_scratch() -> str:
    """Make a child's folder, with a note of its owner (see :data:`OWNER_FILE`)."""
    scratch = tempfile.mkdtemp(prefix=SCRATCH_PREFIX)
    start, namespace = identity()
    try:
        fd = os.open(os.path.join(scratch, OWNER_FILE), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, f"{os.getpid()} {start} {namespace}\n".encode())
        finally:
            os.close(fd)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return scratch


def remove_scratch(scratch: str) -> None:
    """Remove a child's folder and all in it; most hold only the owner's note, and go in three calls."""
    with contextlib.suppress(OSError):
        if os.listdir(scratch) == [OWNER_FILE]:
            os.unlink(os.path.join(scratch, OWNER_FILE))
            os.rmdir(scratch)
            return
    shutil.rmtree(scratch, ignore_errors=True)


def scratch_owner(folder: str) -> tuple[int, int, int] | None:
    """Return (pid, start time, pid namespace) of the offbench that made ``folder``, if it says."""
    try:
        fd = os.open(os.path.join(folder, OWNER_FILE), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as owner:
        fields = owner.read(100).split()
    if len(fields) != 3 or not all(field.isdigit() for field in fields):
        return None
    pid, start, namespace = map(int, fields)
    return pid, start, namespace


def sweep_stale_scratch(folder: str | None = None) -> list[str]:
    """Remove the children's folders whose offbench is gone; return the paths removed.

    A SIGKILLed offbench whose guardian was killed too leaves its children's folders
    behind. Only this user's folders are touched, and only those whose owner is surely
    gone: it is not running, or its pid now names a process started at another time.
    Owners in another pid namespace (a container sharing ``/tmp``) cannot be seen from
    here, and folders that do not name their owner (being made, or by an older
    offbench) may still be in use: both are left alone.
    """
    folder = folder or tempfile.gettempdir()
    _, namespace = identity()
    removed = []
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            if not entry.name.startswith(SCRATCH_PREFIX):
                continue
            try:
                mine = entry.is_dir(follow_symlinks=False) and (
                    entry.stat(follow_symlinks=False).st_uid == os.getuid())
            except OSError:
                continue
            owner = scratch_owner(entry.path) if mine else None
            if owner is None or owner[2] != namespace or _owner_alive(owner[0], owner[1]):
                continue
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.path)
    return removed


def _owner_alive(pid: int, start: int) -> bool:
    if start:
        process = procfs.stat(pid)
        return process is not None and process.start == start
    return procfs.signallable(pid)
