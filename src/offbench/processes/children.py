"""Starting a child, running it to its report, and ending it with everything it started.

A child is forked where that is safe (see the package's docstring) or spawned, in a
session of its own, with its output in a temporary file and a temporary folder of its
own (``TMPDIR``). Its end is waited for on a pidfd (Linux), not by polling.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, TypeAlias

from offbench.processes import frames, guardian, orphans, procfs, scratch, signals

ChildMain = Callable[[bytes, int], None]
"""A module-level function run in the child with its input and the fd it reports on."""

START_METHODS = ("fork", "spawn")


def default_start_method() -> str:
    """Return ``fork`` where it is safe, else ``spawn``; ``OFFBENCH_START`` overrides."""
    forced = os.environ.get("OFFBENCH_START", "")
    if forced in START_METHODS:
        return forced
    return "fork" if procfs.fork_is_safe() else "spawn"


def wait_readable(fds: list[int], timeout: float) -> list[int]:
    """Wait up to ``timeout`` seconds for any of ``fds`` to be readable; return those that are."""
    if not hasattr(select, "poll"):
        return select.select(fds, [], [], timeout)[0]
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    return [fd for fd, _ in poller.poll(max(0, int(timeout * 1000 + 0.999)))]


class Child:
    """A started child process: its pid, exit status, captured output, and its group's end."""

    def __init__(
        self, pid: int, log: IO[bytes], popen: subprocess.Popen[bytes] | None, scratch: str
    ) -> None:
        self.pid = pid
        self.scratch = scratch
        """The child's temporary directory (``TMPDIR``), removed with everything in it on close."""
        self.start_method = "spawn" if popen else "fork"
        self.left_running = 0
        """Processes started under the child, outside its process group, killed at its end."""
        self._log = log
        self._popen = popen
        self.started = procfs.started(pid)
        """When the child started (ticks since boot, 0 if unknown): with its pid, names it for good."""
        self._pidfd = _pidfd(pid)
        self._released = False
        self.returncode: int | None = None
        orphans.tracked.add(pid)

    @property
    def exit_fd(self) -> int | None:
        """A file descriptor that becomes readable when the child exits (Linux), else ``None``."""
        return self._pidfd

    def poll(self) -> int | None:
        """Return the exit code (negative: killed by that signal) or ``None`` while running."""
        if self.returncode is not None:
            return self.returncode
        if self._popen is not None:
            self.returncode = self._popen.poll()
            return self.returncode
        pid, status = os.waitpid(self.pid, os.WNOHANG)
        if pid == 0:
            return None
        self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` seconds for the child to exit; return its exit code or ``None``."""
        deadline = time.monotonic() + timeout
        while (code := self.poll()) is None:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if self._pidfd is not None:
                wait_readable([self._pidfd], left)
            else:
                time.sleep(min(left, 0.005))
        return code

    def signal_group(self, signum: int) -> None:
        """Send ``signum`` to the child's whole process group, if any member is left."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signum)

    def settle(self) -> None:
        """Kill every process started under the child, keeping the child (it reported and waits)."""
        with signals.deferred_stop_signals():
            if self.poll() is None:
                self._count(procfs.kill_tree(self.pid, keep_root=True))

    def stop(self, grace: float = 0.0) -> None:
        """End the child and everything started under it: SIGTERM, ``grace`` seconds, SIGKILL; reap.

        What the child started is killed first, at once, wherever it went (its process
        group, a session of its own); the child itself gets the grace period. Safe to call
        more than once and after the child exited on its own: members of the group it left
        behind (pool workers, a forkserver) are killed too, and orphans it left to this
        process (when it adopts them, see :func:`~offbench.processes.adopt_orphans`) as
        well. A Ctrl-C or SIGTERM arriving meanwhile (the user's second Ctrl-C) waits until
        all is killed and reaped, so impatience never leaves a process behind.
        """
        with signals.deferred_stop_signals():
            if self.poll() is None:
                self._count(procfs.kill_tree(self.pid, keep_root=True))
            if grace > 0 and self.poll() is None:
                self.signal_group(signal.SIGTERM)
                self.wait(grace)
            if self.poll() is None:
                self._count(procfs.kill_tree(self.pid, keep_root=False))
            self.signal_group(signal.SIGKILL)
            if self.poll() is None:
                self.wait(5.0)
            self._count(orphans.end_orphans(self.pid, self.started))

    def _count(self, killed: list[procfs.Process]) -> None:
        self.left_running += sum(1 for process in killed if process.pgid != self.pid)

    def close(self) -> None:
        """Stop the child (see :meth:`stop`), discard its captured output and its temporary files.

        All of it or nothing: a Ctrl-C meanwhile acts once the folder is gone. The
        guardian is told last, once nothing is left for it to do.
        """
        with signals.deferred_stop_signals():
            self.stop()
            self._log.close()
            if os.path.lexists(self.scratch):
                scratch.remove_scratch(self.scratch)
            if not self._released:
                guardian.release(self.pid)
                self._released = True
            if self._pidfd is not None:
                os.close(self._pidfd)
                self._pidfd = None
            orphans.tracked.discard(self.pid)

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def output_tail(self, limit: int = 2000) -> str:
        """Return the last ``limit`` characters the child wrote to stdout/stderr."""
        if self._log.closed:
            return ""
        self._log.seek(0, os.SEEK_END)
        size = self._log.tell()
        self._log.seek(max(0, size - limit))
        return self._log.read().decode("utf-8", "replace").strip()


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


Launcher: TypeAlias = str | Sequence[str]
"""How a spawned child starts: an interpreter (``python -m offbench.run.child``), or a whole command."""


def start_child(
    main: ChildMain, payload: bytes, report_fd: int, method: str | None = None,
    executable: Launcher | None = None,
) -> Child:
    """Start ``main(payload, report_fd)`` in a new child process in its own session.

    With ``executable`` the child is always spawned, never forked: another interpreter
    with offbench installed (run as ``python -m offbench.run.child``), or the whole
    command that starts such a child (an environment's python with offbench put on its
    path first: :func:`offbench.plan.interpreters.launcher`).

    The caller keeps its copy of ``report_fd`` and must close it after this returns, so
    that reading the other end sees EOF when the child exits. The child and everything it
    starts get a temporary directory of their own (``TMPDIR``): a killed process pool
    leaves its ``pymp-*`` folders there, and :meth:`Child.close` removes it all. The
    guardian is told of both should offbench die (see :mod:`offbench.processes.guardian`).
    """
    signals.prctl()  # loaded here, so that a forked child needs no import to ask for its death signal
    log = tempfile.TemporaryFile()  # noqa: SIM115 - owned and closed by the Child
    try:
        folder = scratch.make_scratch()
    except BaseException:
        log.close()
        raise
    method = "spawn" if executable else (method or default_start_method())
    popen = None
    try:
        if method == "fork":
            pid = _fork(main, payload, report_fd, log.fileno(), folder)
        else:
            target = f"{main.__module__}:{main.__qualname__}"
            popen = _spawn(target, report_fd, log, folder, executable or sys.executable)
            pid = popen.pid
    except BaseException:
        log.close()
        scratch.remove_scratch(folder)
        raise
    child = Child(pid, log, popen, folder)
    try:
        guardian.register(pid, child.started, folder)
    except BaseException:
        child.close()
        raise
    if popen is not None:
        assert popen.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            popen.stdin.write(payload)
        popen.stdin.close()
    return child


def _spawn(
    target: str, report_fd: int, log: IO[bytes], folder: str, executable: Launcher
) -> subprocess.Popen[bytes]:
    command = [executable, "-m", "offbench.run.child"] if isinstance(executable, str) else list(executable)
    return subprocess.Popen(
        [*command, target, str(report_fd)],
        stdin=subprocess.PIPE,
        stdout=log,
        stderr=log,
        pass_fds=(report_fd,),
        start_new_session=True,
        env={**os.environ, "TMPDIR": folder, signals.PARENT_VARIABLE: str(os.getpid())},
    )


def _fork(main: ChildMain, payload: bytes, report_fd: int, log_fd: int, folder: str) -> int:
    parent = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        signals.die_with_parent(parent)
        os.setsid()
        orphans.close_parent_only()
        guardian.forget()
        frames.become_child(report_fd)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signals.unblock_stop_signals()
        os.environ["TMPDIR"] = folder
        tempfile.tempdir = None  # forget the parent's choice; the next use reads TMPDIR
        main(payload, report_fd)
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


# --- running a child to its report ----------------------------------------------------------------


def exit_description(returncode: int | None) -> str:
    """Say how a worker ended: ``exited with code 3``, or ``was killed by SIGKILL``."""
    if returncode is not None and returncode < 0:
        try:
            return f"worker was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            pass
    return f"worker exited with code {returncode}"


@dataclass(frozen=True)
class ChildOutcome:
    """How a child run by :func:`run_child` ended, and what it reported."""

    report: bytes
    returncode: int | None
    timed_out: bool
    output: str
    pid: int
    start_method: str
    left_running: int = 0
    """Processes started under the child outside its process group, killed at its end."""
    phase: str = ""
    """What the child said it was doing last (``importing 'mod' ...``), if it had not said it was done."""

    def exit_summary(self) -> str:
        """Say how the child ended, with the last line it printed: what a user needs first."""
        last = self.output.strip().splitlines()[-1:] or ["no output"]
        return f"{exit_description(self.returncode)} before reporting: {last[0]}"


def run_child(
    main: ChildMain,
    payload: bytes,
    timeout: float,
    on_wait: Callable[[], None] = lambda: None,
    method: str | None = None,
    poll_s: float = 0.25,
    executable: Launcher | None = None,
) -> ChildOutcome:
    """Run ``main(payload, fd)`` in a child; collect its report until it is whole or the child exits.

    ``on_wait`` is called about every ``poll_s`` seconds while waiting (progress
    refresh). After ``timeout`` seconds the child and all it started are killed. However
    this returns, including by ``KeyboardInterrupt``, no process started under the child
    is left. ``executable`` spawns the child with another interpreter (see :func:`start_child`).
    """
    with contextlib.ExitStack() as owned:
        # A Ctrl-C between making the child (its folder, its process) and owning it here
        # would leave both behind: it waits until the child is in the stack.
        with signals.deferred_stop_signals():
            ours, theirs = (end.detach() for end in socket.socketpair())
            orphans.parent_only.add(ours)
            owned.callback(_close_ours, ours)
            try:
                child = owned.enter_context(start_child(main, payload, theirs, method, executable))
            finally:
                os.close(theirs)
        received, timed_out = _collect(child, ours, time.monotonic() + timeout, on_wait, poll_s)
        if timed_out:
            child.stop(grace=0.5)
        else:
            if received.report is not None and child.poll() is None:
                child.settle()
                with contextlib.suppress(OSError):
                    os.write(ours, b"x")  # the child may go now
                # While the kernel tears the child down: all it started is dead, and a
                # file it makes from now on has no folder to go to (close checks again).
                scratch.remove_scratch(child.scratch)
            child.wait(5.0)
            child.stop()
        return ChildOutcome(
            report=received.result(),
            returncode=child.poll(),
            timed_out=timed_out,
            output=child.output_tail(),
            pid=child.pid,
            start_method=child.start_method,
            left_running=child.left_running,
            phase=received.phase,
        )


def _close_ours(fd: int) -> None:
    orphans.parent_only.discard(fd)
    os.close(fd)


EXIT_POLL_S = 0.05
"""How often the child's exit is checked where it cannot be waited on (no pidfd)."""


def _collect(
    child: Child, fd: int, deadline: float, on_wait: Callable[[], None], poll_s: float
) -> tuple[frames.Frames, bool]:
    """Read ``child``'s frames until its report is whole, it has exited, or ``deadline`` passed.

    Returns what was read and whether the deadline passed. Not until EOF: a process the
    child's code forked may hold the socket open long after the child is gone.
    """
    received = frames.Frames()
    waited_on = [fd] if child.exit_fd is None else [fd, child.exit_fd]
    next_wait = time.monotonic() + poll_s
    while received.report is None:
        now = time.monotonic()
        if now >= deadline:
            return received, True
        if now >= next_wait:
            on_wait()
            next_wait = now + poll_s
        pause = min(next_wait, deadline) - now
        ready = wait_readable(waited_on, pause if child.exit_fd is not None else min(pause, EXIT_POLL_S))
        if fd in ready:
            chunk = os.read(fd, 1 << 16)
            if not chunk:  # every copy of the child's end is closed
                break
            received.feed(chunk)
        elif child.poll() is not None:  # all it wrote before exiting is buffered here
            received.feed(_drain(fd))
            break
    return received, False


def _drain(fd: int) -> bytes:
    os.set_blocking(fd, False)
    chunks = []
    with contextlib.suppress(BlockingIOError, InterruptedError):
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
    os.set_blocking(fd, True)
    return b"".join(chunks)
