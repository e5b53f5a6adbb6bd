"""Child processes for cells and servers: started clean, in their own process group, always reaped.

Each child gets a fresh session (``setsid``), so a Ctrl-C at the terminal reaches only
the parent, which decides, and so the parent can kill a child *and everything it
started* (process-pool workers, a forkserver) with one ``killpg``.

Two ways to start a child, chosen per call:

* ``fork`` from the parent (the default on POSIX when the parent runs a single thread).
  The parent never runs an event loop, a thread or BLAS, so each child starts from the
  same pristine state, never from another cell's; it costs a few milliseconds instead
  of the ~150 ms of a new interpreter importing asyncio, which is what lets 80 cells fit
  the time budget.
* ``spawn`` a new interpreter (``python -m offbench.run.child``) where fork is not safe:
  the parent has threads, or ``OFFBENCH_START=spawn`` asks for it.

The child's stdout and stderr go to a temporary file, never to the parent's streams,
so user code that prints cannot corrupt ``--json -``; its tail explains crashes.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, NoReturn

ChildMain = Callable[[bytes, int], None]
"""A module-level function run in the child with its input and the fd it reports on."""

START_METHODS = ("fork", "spawn")


def default_start_method() -> str:
    """Return ``fork`` where it is safe, else ``spawn``; ``OFFBENCH_START`` overrides."""
    forced = os.environ.get("OFFBENCH_START", "")
    if forced in START_METHODS:
        return forced
    if hasattr(os, "fork") and threading.active_count() == 1 and native_thread_count() in (1, None):
        return "fork"
    return "spawn"


def native_thread_count() -> int | None:
    """Return this process's threads as the kernel counts them (native ones too), if it can tell.

    Python's ``threading`` misses threads a C library started (BLAS starts a pool at
    import); a fork copies none of them, so a library that had them may hang in the child.
    """
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return None


OPEN_FILES_CAP = 1 << 16
"""The soft limit to aim for where the hard limit is unlimited (macOS)."""


def raise_open_files_limit() -> int:
    """Raise the soft limit on open files toward the hard one; return the limit now in force.

    Worker, pool and server processes inherit it, so concurrency in the hundreds does not
    fail with "too many open files" under a default soft limit of 1024 (or 256 on macOS).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = open_files_ceiling()
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def open_files_ceiling() -> int:
    """Return the most open files a process here may have: the hard limit (or a cap, if unlimited)."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return OPEN_FILES_CAP if hard == resource.RLIM_INFINITY else hard


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


def _unblock_stop_signals() -> None:
    """Let SIGINT and SIGTERM in again: a child inherits the mask its parent started it under."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})


class Child:
    """A started child process: its pid, exit status, captured output, and its group's end."""

    def __init__(
        self, pid: int, log: IO[bytes], popen: subprocess.Popen[bytes] | None, scratch: str
    ) -> None:
        self.pid = pid
        self.scratch = scratch
        """The child's temporary directory (``TMPDIR``), removed with everything in it on close."""
        self.start_method = "spawn" if popen else "fork"
        self._log = log
        self._popen = popen
        self.returncode: int | None = None

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
        while (code := self.poll()) is None and time.monotonic() < deadline:
            time.sleep(0.005)
        return code

    def signal_group(self, signum: int) -> None:
        """Send ``signum`` to the child's whole process group, if any member is left."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signum)

    def stop(self, grace: float = 0.0) -> None:
        """End the child and everything in its group: SIGTERM, ``grace`` seconds, SIGKILL; reap.

        Safe to call more than once and after the child exited on its own: members of the
        group it left behind (pool workers, a forkserver) are killed too. A Ctrl-C or
        SIGTERM arriving meanwhile (the user's second Ctrl-C) waits until the group is
        killed and reaped, so impatience never leaves a process behind.
        """
        with deferred_stop_signals():
            if grace > 0 and self.poll() is None:
                self.signal_group(signal.SIGTERM)
                self.wait(grace)
            self.signal_group(signal.SIGKILL)
            if self.poll() is None:
                self.wait(5.0)

    def close(self) -> None:
        """Stop the child (see :meth:`stop`), discard its captured output and its temporary files.

        All of it or nothing: a Ctrl-C meanwhile acts once the folder is gone.
        """
        with deferred_stop_signals():
            self.stop()
            self._log.close()
            shutil.rmtree(self.scratch, ignore_errors=True)

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


def start_child(
    main: ChildMain, payload: bytes, report_fd: int, method: str | None = None,
    executable: str | None = None,
) -> Child:
    """Start ``main(payload, report_fd)`` in a new child process in its own session.

    With ``executable`` (another interpreter, with offbench installed) the child is
    always spawned with it, never forked.

    The caller keeps its copy of ``report_fd`` and must close it after this returns, so
    that reading the other end sees EOF when the child exits. The child and everything it
    starts get a temporary directory of their own (``TMPDIR``): a killed process pool
    leaves its ``pymp-*`` folders there, and :meth:`Child.close` removes it all.
    """
    log = tempfile.TemporaryFile()  # noqa: SIM115 - owned and closed by the Child
    scratch = tempfile.mkdtemp(prefix="offbench-child-")
    method = "spawn" if executable else (method or default_start_method())
    if method == "fork":
        return Child(_fork(main, payload, report_fd, log.fileno(), scratch), log, None, scratch)
    target = f"{main.__module__}:{main.__qualname__}"
    try:
        popen = _spawn(target, report_fd, log, scratch, executable or sys.executable)
    except BaseException:
        log.close()
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    assert popen.stdin is not None
    with contextlib.suppress(BrokenPipeError):
        popen.stdin.write(payload)
    popen.stdin.close()
    return Child(popen.pid, log, popen, scratch)


def _spawn(
    target: str, report_fd: int, log: IO[bytes], scratch: str, executable: str
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [executable, "-m", "offbench.run.child", target, str(report_fd)],
        stdin=subprocess.PIPE,
        stdout=log,
        stderr=log,
        pass_fds=(report_fd,),
        start_new_session=True,
        env={**os.environ, "TMPDIR": scratch},
    )


def _fork(main: ChildMain, payload: bytes, report_fd: int, log_fd: int, scratch: str) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        os.setsid()
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _unblock_stop_signals()
        os.environ["TMPDIR"] = scratch
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


def report_and_exit(report_fd: int, report: bytes) -> NoReturn:
    """End a child: write ``report`` to ``report_fd``, flush its output, leave with ``os._exit(0)``.

    ``os._exit`` skips interpreter shutdown, which would wait for threads stuck in a
    blocking call (a hung workload) and run pools' exit hooks: the report is already out.
    """
    with open(report_fd, "wb", closefd=True) as out:
        out.write(report)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def child_entry(argv: list[str]) -> None:
    """Run a spawned child: ``offbench.run.child MODULE:FUNCTION REPORT_FD``, payload on stdin."""
    target, fd = argv
    _unblock_stop_signals()
    module_name, _, func_name = target.partition(":")
    main = getattr(importlib.import_module(module_name), func_name)
    payload = sys.stdin.buffer.read()
    main(payload, int(fd))


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
    executable: str | None = None,
) -> ChildOutcome:
    """Run ``main(payload, fd)`` in a child, collect what it writes to ``fd`` until it exits.

    ``on_wait`` is called about every ``poll_s`` seconds while waiting (progress
    refresh). After ``timeout`` seconds the child's whole group is killed. However this
    returns, including by ``KeyboardInterrupt``, no process of the child's group is left.
    ``executable`` spawns the child with another interpreter (see :func:`start_child`).
    """
    with contextlib.ExitStack() as owned:
        # A Ctrl-C between making the child (its folder, its process) and owning it here
        # would leave both behind: it waits until the child is in the stack.
        with deferred_stop_signals():
            read_fd, write_fd = os.pipe()
            try:
                child = owned.enter_context(start_child(main, payload, write_fd, method, executable))
            except BaseException:
                os.close(read_fd)
                raise
            finally:
                os.close(write_fd)
            reader = owned.enter_context(os.fdopen(read_fd, "rb", buffering=0))
        report, timed_out = _read_until_eof(reader, time.monotonic() + timeout, on_wait, poll_s)
        if timed_out:
            child.stop(grace=0.5)
        else:
            child.wait(5.0)
            child.stop()
        return ChildOutcome(
            report=report,
            returncode=child.poll(),
            timed_out=timed_out,
            output=child.output_tail(),
            pid=child.pid,
            start_method=child.start_method,
        )


def _read_until_eof(
    reader: IO[bytes], deadline: float, on_wait: Callable[[], None], poll_s: float
) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return b"".join(chunks), True
        ready, _, _ = select.select([reader], [], [], min(poll_s, remaining))
        if not ready:
            on_wait()
            continue
        chunk = reader.read(65536)
        if not chunk:
            return b"".join(chunks), False
        chunks.append(chunk)
