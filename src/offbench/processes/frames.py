"""The report a child sends its parent: *frames* over a socket, and the child's side of it.

A child reports its phase (``importing 'mod'``) and, at its end, its report, each as one
frame (a marker, a kind, a length, the bytes). The parent reads frames until the report
is whole or the child itself has exited, never until EOF: a process the user's function
forked may hold the socket open for ever. Only the child's own process may report; a
copy the user's code forked from it, reaching the harness, leaves silently.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import struct
import sys
import threading
from typing import NoReturn

from offbench.processes import signals

MAGIC = b"\x00OFFBENCH"
_HEADER = struct.Struct(f"!{len(MAGIC)}scQ")
REPORT, PHASE = b"R", b"P"
_channel: tuple[int, int] | None = None
"""(pid, fd) of this process's report socket, when it is a child started here."""
_channel_lock = threading.Lock()


def become_child(report_fd: int) -> None:
    """Set up a just-started child: a subreaper, owning its report socket (not its descendants)."""
    global _channel
    _channel = (os.getpid(), report_fd)
    signals.become_subreaper()
    with contextlib.suppress(OSError):
        os.set_inheritable(report_fd, False)  # forks keep it, but programs they run do not


def frame(kind: bytes, payload: bytes) -> bytes:
    """Return ``payload`` as one frame of ``kind`` (:data:`REPORT` or :data:`PHASE`)."""
    return _HEADER.pack(MAGIC, kind, len(payload)) + payload


def _owns_channel(report_fd: int) -> bool:
    """Return False in a copy of a child forked by the user's code: its reports are not the child's."""
    return _channel is None or _channel[1] != report_fd or _channel[0] == os.getpid()


def announce(phase: str) -> None:
    """Tell the parent what this child is doing now (``importing 'mod'``); ``""`` when it is done.

    A child killed at its timeout is then said to have been killed *while* doing it. Does
    nothing outside a child started here, and in processes the child forked.
    """
    if _channel is None or _channel[0] != os.getpid():
        return
    with _channel_lock, contextlib.suppress(OSError):
        write_all(_channel[1], frame(PHASE, phase.encode()))


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd``, however many writes it takes."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def report_and_exit(report_fd: int, report: bytes) -> NoReturn:
    """End a child: send ``report`` on ``report_fd``, flush its output, leave with ``os._exit(0)``.

    The report goes as one frame; the child then waits until the parent has killed what
    it started and lets it go (or is gone), so its tree is whole when the parent looks.
    ``os._exit`` skips interpreter shutdown, which would wait for threads stuck in a
    blocking call (a hung workload) and run pools' exit hooks: the report is already out.
    A process the user's code forked from the child, reaching here, leaves silently.
    """
    if _owns_channel(report_fd):
        with _channel_lock, contextlib.suppress(OSError):
            write_all(report_fd, frame(REPORT, report))
        sys.stdout.flush()
        sys.stderr.flush()
        with contextlib.suppress(OSError):
            os.read(report_fd, 1)
    os._exit(0)


def child_entry(argv: list[str]) -> None:
    """Run a spawned child: ``offbench.run.child MODULE:FUNCTION REPORT_FD``, payload on stdin."""
    target, fd = argv
    become_child(int(fd))
    signals.unblock_stop_signals()
    module_name, _, func_name = target.partition(":")
    main = getattr(importlib.import_module(module_name), func_name)
    payload = sys.stdin.buffer.read()
    main(payload, int(fd))


class Frames:
    """What a child sent: its phase and its report, read frame by frame as bytes arrive.

    Bytes that do not start with a frame are a child writing its report unframed (a
    helper that writes JSON and returns): they are all of its report.
    """

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.raw = False
        self.report: bytes | None = None
        self.phase = ""

    def feed(self, data: bytes) -> None:
        """Take the next bytes read from the child."""
        self.buffer += data
        while not self.raw and self.report is None:
            if not MAGIC.startswith(bytes(self.buffer[: len(MAGIC)])):
                self.raw = True
            if self.raw or len(self.buffer) < _HEADER.size:
                return
            _, kind, size = _HEADER.unpack_from(self.buffer)
            if len(self.buffer) < _HEADER.size + size:
                return
            payload = bytes(self.buffer[_HEADER.size : _HEADER.size + size])
            del self.buffer[: _HEADER.size + size]
            if kind == REPORT:
                self.report = payload
            elif kind == PHASE:
                self.phase = payload.decode("utf-8", "replace")

    def result(self) -> bytes:
        """Return the report: the framed one, or the unframed bytes; nothing for a torn frame."""
        if self.report is not None:
            return self.report
        return bytes(self.buffer) if self.raw else b""
