"""Stall evidence: what the event loop thread was running when it stalled.

A :class:`Watchdog` is a daemon thread that a worker runs beside its event loop for
the measured window. The loop side does nothing new: the probe's every wake-up
already publishes when its next tick falls due (:attr:`LagRecorder.next_due_ns
<offbench.measure.probe.LagRecorder.next_due_ns>`), and that is the heartbeat. The watchdog
sleeps, wakes every few milliseconds, and reads it: once the next tick is overdue by
more than half the threshold the loop may be stalling, and the watchdog takes one sample
of the loop thread's stack (``sys._current_frames()``); a stall is sampled once however
long it lasts. Sampling at half the threshold, and keeping the sample only if the
stall went on past the threshold (:func:`evidence`), means the sample is taken while
the stall is still under way: sampled at the threshold, a stall just over it had often
ended by the time the watchdog looked, and the stack then showed the probe's own read.

How long each stall lasted is not measured by the watchdog (it only looks every few
milliseconds) but read afterwards from the probe: it is the lag of the tick that was
overdue, the same figure as the table's lag columns. A stall the probe never saw end
(after the window) is dropped. :func:`evidence` keeps the longest and turns their raw
stacks into :class:`~offbench.model.results.StallEvidence`: the harness frames that lead into
the user's code (the worker, its strategy, asyncio's loop) are trimmed, and each frame
gets its source line, which is how a C function such as ``time.sleep`` (it has no
Python frame) is named. Given the loop's callback timings (:mod:`offbench.measure.utilisation`),
each stall also says how many callbacks ran while its tick waited and the longest: a
stall far longer than any of them was several calls in a row, not one slow call.

Cost while nothing stalls: one attribute store per probe tick on the loop, and a
thread that wakes every few milliseconds to compare two integers (docs/guide.md, "Stall
evidence", has the measurements). Nothing here prints.
"""

from __future__ import annotations

import bisect
import linecache
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from offbench.measure.probe import NS_PER_MS, LagRecorder
from offbench.model.results import Frame, StallEvidence

if TYPE_CHECKING:
    from offbench.measure.utilisation import Check

KEEP = 5
"""Stalls kept per worker process (and per cell, after pooling): the longest."""
MAX_SAMPLES = 10_000
"""Raw samples held during one window at most (a window of back-to-back stalls)."""
MAX_DEPTH = 64
"""Frames read from the loop thread's stack per sample, innermost first."""
FRAMES_SHOWN = 8
"""Frames kept per stall once the harness around the user's code is trimmed."""
MIN_POLL_S = 0.001
MAX_POLL_S = 0.005

RawFrame = tuple[str, int, str]
"""(file name, line number, qualified function name), innermost first."""


@dataclass(frozen=True)
class Sample:
    """One stall as the watchdog saw it: which tick was overdue, and the loop thread's stack."""

    due_ns: int
    """When the overdue probe tick fell due (``perf_counter_ns``): the stall's key."""
    stack: list[RawFrame]


@dataclass
class Watchdog:
    """A thread that samples the loop thread's stack once per stall longer than half ``threshold_ns``.

    Start it on the loop thread (whose stack it samples) with :meth:`start`; :meth:`stop`
    joins it, so no thread outlives the window. The heartbeat is ``recorder.next_due_ns``.
    """

    recorder: LagRecorder
    threshold_ns: int
    clock: Callable[[], int] = time.perf_counter_ns
    samples: list[Sample] = field(default_factory=list)
    prompt_stop: bool = False
    """Wait on an event between looks, so that :meth:`stop` returns at once rather than after the
    current sleep, for twice the CPU per look: for watchdogs started and stopped often (one per test)."""
    _stopping: bool = False
    _woken: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _loop_thread: int = 0

    @property
    def poll_s(self) -> float:
        """How long the thread sleeps between looks: a quarter of the threshold, 1 to 5 ms."""
        return min(MAX_POLL_S, max(MIN_POLL_S, self.threshold_ns / NS_PER_MS / 4000))

    def start(self) -> None:
        """Start watching the calling thread (the loop's)."""
        self._loop_thread = threading.get_ident()
        self._thread = threading.Thread(target=self._watch, name="offbench-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> list[Sample]:
        """Stop the thread, wait for it, and return what it sampled."""
        self._stopping = True
        self._woken.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        return self.samples

    def _watch(self) -> None:
        sampled = 0
        poll = self.poll_s
        # A plain sleep, not Event.wait (unless prompt_stop): half the CPU per look (docs/guide.md,
        # "Stall evidence"). Stopping then waits out the current sleep, at most MAX_POLL_S.
        wait = self._woken.wait if self.prompt_stop else time.sleep
        while not self._stopping:
            wait(poll)
            due = self.recorder.next_due_ns
            if self._stopping or due == sampled or due == 0 or self.clock() - due <= self.threshold_ns // 2:
                continue
            sampled = due
            frame = sys._current_frames().get(self._loop_thread)
            if frame is not None and len(self.samples) < MAX_SAMPLES:
                self.samples.append(Sample(due, _stack(frame)))
            del frame


def _stack(frame: FrameType) -> list[RawFrame]:
    """Read a frame chain into plain tuples at once: holding frames would keep their locals alive."""
    stack: list[RawFrame] = []
    current: FrameType | None = frame
    while current is not None and len(stack) < MAX_DEPTH:
        code = current.f_code
        stack.append((code.co_filename, current.f_lineno or 0, code.co_qualname))
        current = current.f_back
    return stack


Explain = Callable[[int, int], "Check"]
"""Given a late tick's deadline and lag (ns), the callbacks that ran meanwhile (:meth:`Meter.check
<offbench.measure.utilisation.Meter.check>`)."""


def evidence(
    samples: Sequence[Sample],
    recorder: LagRecorder,
    threshold_ns: int = 0,
    keep: int = KEEP,
    explain: Explain | None = None,
) -> list[StallEvidence]:
    """Return the ``keep`` longest sampled stalls beyond ``threshold_ns``, longest first, with their lags.

    A stall's duration is the lag of its overdue tick; a sample whose tick the probe
    never recorded (the stall outlasted the window), or whose stall ended before the
    threshold (the watchdog samples at half of it), is dropped. With ``explain`` (the
    loop's callback timings), each stall also says how many callbacks it was made of.
    """
    measured: list[tuple[int, Sample]] = []
    for sample in samples:
        index = bisect.bisect_left(recorder.deadlines, sample.due_ns)
        found = index < len(recorder.deadlines) and recorder.deadlines[index] == sample.due_ns
        if found and recorder.samples[index] > threshold_ns:
            measured.append((recorder.samples[index], sample))
    measured.sort(key=lambda pair: pair[0], reverse=True)
    return [_stall(lag, sample, explain) for lag, sample in measured[:keep]]


def _stall(lag_ns: int, sample: Sample, explain: Explain | None) -> StallEvidence:
    callbacks = longest_ms = None
    if explain is not None:
        check = explain(sample.due_ns, lag_ns)
        callbacks, longest_ms = check.callbacks, check.longest_ns / NS_PER_MS
    return StallEvidence(duration_ms=lag_ns / NS_PER_MS, frames=frames(sample.stack),
                         callbacks=callbacks, longest_callback_ms=longest_ms)


def frames(stack: Sequence[RawFrame], shown: int = FRAMES_SHOWN) -> list[Frame]:
    """Return the innermost frames of ``stack``, cut where offbench's harness called the user's code.

    The innermost frame of offbench's own (a strategy's ``self.fn()``, the user-callable
    wrapper; not a built-in workload's) is where the code measured begins: it and the
    frames outside it (the worker, asyncio's loop, the process start-up) are dropped,
    and whatever the user's code calls (even asyncio or threading, as when it blocks
    on a future) is kept. A stack with nothing inside the harness (a C function called
    straight from a strategy, a stall in the loop itself) is kept whole.
    """
    harness = next((i for i, (file, _, _) in enumerate(stack) if _harness(file)), len(stack))
    kept = stack[:harness] or stack
    return [
        Frame(file=short_path(file), line=line, function=function, code=_source(file, line))
        for file, line, function in kept[:shown]
    ]


_OFFBENCH = Path(__file__).resolve().parent.parent
_MEASURED = {_OFFBENCH / "workloads" / name for name in ("sleep.py", "cpu.py", "numpy_matmul.py",
                                                          "socket_io.py")}


def _harness(file: str) -> bool:
    """Return whether ``file`` is offbench's own code, but for the built-in workloads' (measured)."""
    path = Path(file).resolve()
    return path.is_relative_to(_OFFBENCH) and path not in _MEASURED


def short_path(file: str) -> str:
    """Return ``file`` relative to the ``sys.path`` entry it was imported from (its module path).

    ``.../site-packages/offbench/workloads/sleep.py`` becomes ``offbench/workloads/sleep.py``;
    a file outside every ``sys.path`` entry keeps its path relative to the working
    directory, or its absolute path.
    """
    if file.startswith("<"):
        return file
    absolute = os.path.abspath(file)
    best = ""
    for entry in sys.path:
        root = os.path.abspath(entry or os.curdir)
        if absolute.startswith(root + os.sep) and len(root) > len(best):
            best = root
    if best:
        return absolute[len(best) + 1 :]
    return os.path.relpath(absolute) if absolute.startswith(os.getcwd() + os.sep) else absolute


def _source(file: str, line: int) -> str:
    return linecache.getline(file, line).strip() if line else ""
