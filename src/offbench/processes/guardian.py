"""The guardian: one small process per offbench process, that cleans up should offbench be SIGKILLed.

offbench cannot clean up after itself when it is SIGKILLed (a CI timeout, the OOM
killer). Its children die with it (``PR_SET_PDEATHSIG``), but not what they started in
sessions of their own, and not their temporary folders. So with its first child, an
offbench process starts a guardian: a process in a session of its own, detached (not
offbench's child: it lives as long as offbench, not as long as one child), reading a
pipe that only offbench writes. Offbench tells it each child as it starts (pid, start
time, folder) and again as it ends. When the pipe closes, offbench is gone: the guardian
kills the tree and the process group of every child still registered, removes their
folders, and exits; after an orderly end nothing is registered, and it just exits.

Telling the guardian is a write on a pipe: a child costs offbench no process but its
own. A guardian that is gone (killed) is replaced at the next word, and told again
every child still running.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NoReturn

from offbench.processes import frames, orphans, procfs, signals

GUARDIAN_CODE = "from offbench.processes import guard; guard()"
"""What a spawned guardian runs (``python -c``), where this process may not fork."""
DISMISS_WITHIN_S = 2.0
"""How long an orderly exit waits for its guardian to leave, before it kills it."""
FOLDERS_GONE_WITHIN_S = 2.0
"""How long the guardian retries removing folders that dying processes may still write to."""


@dataclass
class _Guardian:
    pid: int
    pipe: int
    """The write end of the guardian's pipe: only this process holds it."""
    exited: int | None
    """A pidfd of the guardian (Linux), readable once it has exited."""
    owner: int
    """The pid of the offbench process it guards: a fork of it must not use it."""


_lock = threading.Lock()
_guardian: _Guardian | None = None
_registered: dict[int, bytes] = {}
"""Each running child's record, as the guardian was told it: told again to a new guardian."""
_exit_hook = False


def register(pid: int, start: int, scratch: str) -> None:
    """Tell the guardian of a new child: ``pid``, started at ``start`` ticks, with folder ``scratch``."""
    record = b"+ %d %d %s\n" % (pid, start, os.fsencode(scratch).hex().encode())
    with _lock:
        _registered[pid] = record
        _tell(record)


def release(pid: int) -> None:
    """Tell the guardian that the child ``pid`` is cleaned up: killed, reaped, its folder removed."""
    with _lock:
        if _registered.pop(pid, None) is not None and _guardian is not None:
            _tell(b"- %d\n" % pid)


def forget() -> None:
    """In a just-forked child: the parent's guardian is not this process's (its pipe is closed)."""
    global _guardian, _lock
    _guardian = None
    _registered.clear()
    _lock = threading.Lock()


def _tell(record: bytes) -> None:
    """Write ``record`` to the guardian, starting one (and telling it every child) if there is none."""
    global _guardian
    for _ in range(2):
        if _guardian is None or _guardian.owner != os.getpid():
            _guardian = _start()
            if _guardian is None:
                return
            record = b"".join(_registered.values())
        try:
            frames.write_all(_guardian.pipe, record)
            return
        except OSError:  # it is gone (killed): a new one is told all that runs
            _abandon(_guardian)
            _guardian = None


def _start() -> _Guardian | None:
    """Start a detached guardian and return it, or ``None`` if it cannot be started."""
    global _exit_hook
    read_fd, write_fd = os.pipe()
    try:
        pid = _start_forked(read_fd) if procfs.fork_is_safe() else _start_spawned(read_fd)
    except (OSError, ValueError):
        os.close(write_fd)
        return None
    finally:
        os.close(read_fd)
    orphans.parent_only.add(write_fd)
    orphans.tracked.add(pid)  # where this process adopts orphans, the guardian comes back to it
    exited = None
    with contextlib.suppress(AttributeError, OSError):
        exited = os.pidfd_open(pid)
    if not _exit_hook:
        atexit.register(_at_exit)
        _exit_hook = True
    return _Guardian(pid, write_fd, exited, os.getpid())


def _start_forked(read_fd: int) -> int:
    """Fork a guardian through a short-lived intermediate, which says the guardian's pid and leaves."""
    said, say = os.pipe()
    try:
        intermediate = os.fork()
        if intermediate == 0:
            _detach(read_fd, say)
        os.close(say)
        say = -1
        answer = os.read(said, 32)
        os.waitpid(intermediate, 0)
    finally:
        os.close(said)
        if say >= 0:
            os.close(say)
    return int(answer)


def _detach(read_fd: int, say: int) -> NoReturn:
    """In the intermediate: a session of its own, fork the guardian, say its pid, leave."""
    try:
        os.setsid()
        pid = os.fork()
        if pid:
            os.write(say, b"%d\n" % pid)
        else:
            os.dup2(read_fd, 0)
            null = os.open(os.devnull, os.O_RDWR)
            os.dup2(null, 1)
            os.dup2(null, 2)
            _close_all_but_standard_streams()
            _guard(0)
    finally:
        os._exit(0)


def _start_spawned(read_fd: int) -> int:
    """Spawn a guardian (:data:`GUARDIAN_CODE`): it forks itself away and says its pid on stdout."""
    popen = subprocess.Popen(
        [sys.executable, "-P", "-c", GUARDIAN_CODE],
        stdin=read_fd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    with popen:
        assert popen.stdout is not None
        answer = popen.stdout.readline()
    return int(answer)


def _close_all_but_standard_streams() -> None:
    """Close every file this process has open but 0, 1 and 2 (the limit may allow a million)."""
    try:
        fds: Iterable[int] = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        fds = range(3, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    for fd in fds:
        if fd > 2:
            with contextlib.suppress(OSError):
                os.close(fd)


def _abandon(guardian: _Guardian) -> None:
    """Let go of a guardian: close its pipe (it then leaves), reap it if it came back to us."""
    if guardian.pipe >= 0:
        orphans.parent_only.discard(guardian.pipe)
        with contextlib.suppress(OSError):
            os.close(guardian.pipe)
        guardian.pipe = -1
    if guardian.exited is not None:
        os.close(guardian.exited)
        guardian.exited = None
    with contextlib.suppress(ChildProcessError):
        os.waitpid(guardian.pid, os.WNOHANG)
    orphans.tracked.discard(guardian.pid)


def _at_exit() -> None:
    """At an orderly exit: close the guardian's pipe and wait until it has left.

    So that offbench leaves no process behind when it returns, not even for a moment. A
    child never closed is still registered: the guardian kills it, as if offbench had died.
    A stop signal meanwhile waits until this is done, and is not a traceback.
    """
    global _guardian
    guardian = _guardian
    if guardian is None or guardian.owner != os.getpid():
        return
    _guardian = None
    with contextlib.suppress(KeyboardInterrupt), signals.deferred_stop_signals():
        orphans.parent_only.discard(guardian.pipe)
        os.close(guardian.pipe)
        guardian.pipe = -1
        if not _wait_gone(guardian, DISMISS_WITHIN_S) and not _registered:
            with contextlib.suppress(OSError):
                os.kill(guardian.pid, signal.SIGKILL)
            _wait_gone(guardian, DISMISS_WITHIN_S)
        _abandon(guardian)


def _wait_gone(guardian: _Guardian, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for the guardian to exit; return whether it has."""
    deadline = time.monotonic() + timeout
    while True:
        if guardian.exited is not None:
            left = max(0.0, deadline - time.monotonic())
            gone = bool(select.select([guardian.exited], [], [], left)[0])
        else:
            gone = not _running(guardian.pid)
        if gone or time.monotonic() >= deadline:
            return gone
        time.sleep(0.005)


def _running(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    if not procfs.signallable(pid):
        return False
    process = procfs.stat(pid)
    return process is None or process.state != "Z"


# --- the guardian's side ------------------------------------------------------------------------


def guard() -> None:
    """Entry of a spawned guardian (``python -c``): the parent's pipe on stdin, its pid said on stdout.

    It forks itself away at once, so that it is not its starter's child, and guards.
    """
    pid = os.fork()
    if pid:
        os.write(1, b"%d\n" % pid)
        os._exit(0)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 1)
    os.dup2(null, 2)
    _guard(0)


def _guard(fd: int) -> None:
    """Note the children offbench tells of on ``fd``; when it closes, clean up after those still running."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    signals.unblock_stop_signals()
    registered: dict[int, tuple[int, str]] = {}
    pending = b""
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except OSError:
            chunk = b""
        if not chunk:
            break
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            _note(registered, line.split())
    _clean_up(registered)


def _note(registered: dict[int, tuple[int, str]], fields: list[bytes]) -> None:
    if len(fields) == 4 and fields[0] == b"+":
        registered[int(fields[1])] = (int(fields[2]), os.fsdecode(bytes.fromhex(fields[3].decode())))
    elif len(fields) == 2 and fields[0] == b"-":
        registered.pop(int(fields[1]), None)


def _clean_up(registered: dict[int, tuple[int, str]]) -> None:
    """Kill each child still registered, its tree and its process group; remove their folders.

    A child is handled only if it is still the process started at its start time (its
    pid may have been reused meanwhile), and so is every member of its process group.
    """
    for pid, (start, _) in registered.items():
        process = procfs.stat(pid)
        if process is not None and process.start == start and process.state != "Z":
            procfs.kill_tree(pid, keep_root=False)
    members = procfs.processes() if any(start for start, _ in registered.values()) else []
    for pid, (start, _) in registered.items():
        if not start:
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
            continue
        for member in members:
            if member.pgid == pid and member.start >= start:
                with contextlib.suppress(OSError):
                    os.kill(member.pid, signal.SIGKILL)
    folders = [scratch for _, scratch in registered.values()]
    deadline = time.monotonic() + FOLDERS_GONE_WITHIN_S
    while folders:  # dying processes may still be closing files in them
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
        folders = [folder for folder in folders if os.path.lexists(folder)]
        if not folders or time.monotonic() > deadline:
            return
        time.sleep(0.02)
