"""Attach offbench's probe, stall watchdog and loop utilisation to an event loop offbench did not start.

``offbench run`` measures loops it creates, for a window it chooses. The pytest plugin
(:mod:`offbench.pytest_plugin`) and ``offbench watch`` (:mod:`offbench.measure.watched`)
measure the loops of someone else's tests and programs, for as long as those run: an
:class:`Attachment` is started on a loop's thread (the loop running or about to run),
stopped there, and may be started again when the loop runs again. What it measured
goes into a :class:`~offbench.measure.totals.Totals`, which several attachments may fill
in turn (a program that calls ``asyncio.run`` once per request) and which
:meth:`~offbench.measure.totals.Totals.figures` summarises (:mod:`offbench.measure.totals`
keeps that bookkeeping; this module drives the measuring parts on the loop's thread).

It reuses the measuring parts as they are: the probe's :class:`~offbench.measure.probe.LagRecorder`
(and its coordinated-omission correction) and tick sources' clock (``timerfd``, else the
loop's timers), the :class:`~offbench.measure.watchdog.Watchdog` and its
:func:`~offbench.measure.watchdog.evidence`, the utilisation :class:`~offbench.measure.utilisation.Meter`.
Two things differ from a worker's window, for reasons of the programs it is put in:

* The probe ticks from a reader (or timer) callback, not from a task. A probe task would
  show in ``asyncio.all_tasks()``, which programs gather at shutdown (and would wait on
  for ever) and tests count; and a task cannot stop while its loop is stopped, where a
  callback is removed at once. The lag is the same measure: how late the loop runs a
  callback that fell due.
* Memory stays bounded however long the program runs: every :data:`FOLD_S` the ticks
  recorded so far are folded into a histogram of counts
  (:class:`~offbench.measure.totals.LagCounts`), and the stalls the watchdog sampled into
  per-call-site totals (:class:`~offbench.model.watched.CallSite`), then dropped.

A loop blocked by the very code that stops the attachment (an async test whose body
never awaits) never ran the probe: :meth:`Attachment.stop` reads the ticks that fell due
meanwhile before it stops, so that stall counts too.
"""

from __future__ import annotations

import asyncio
import bisect
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from offbench.measure import watchdog
from offbench.measure.probe import NS_PER_MS, LagRecorder, default_source, open_timerfd
from offbench.measure.totals import Totals
from offbench.measure.utilisation import Meter
from offbench.model.results import Coverage

FOLD_S = 1.0
"""How often an attachment folds its raw ticks and stall samples into totals, seconds."""
FOREVER_NS = 2**63 - 1
"""The end of an open-ended window."""
clock = time.perf_counter_ns


@dataclass(frozen=True)
class Options:
    """What to measure: how often the probe ticks, from how long a stall gets its stack sampled."""

    interval_ms: float = 1.0
    evidence_ms: float = 10.0
    """Stalls longer than this get the loop thread's stack sampled (the watchdog samples at half of it)."""
    utilisation: bool = True
    """Time every callback the loop runs (the loop's busy share, and what each stall was made of)."""
    fold_s: float = FOLD_S
    prompt_stop: bool = True
    """Stop the watchdog at once (its ``prompt_stop``): tests and short loop runs stop one each time."""


class _Ticks(Protocol):
    def close(self) -> int | None: ...


class _TimerfdTicks:
    """The probe's ``timerfd`` tick source as a reader callback: the kernel keeps the schedule."""

    def __init__(self, loop: asyncio.AbstractEventLoop, recorder: LagRecorder, start_ns: int) -> None:
        self.loop, self.recorder, self.due = loop, recorder, start_ns
        self.fd: int | None = open_timerfd(start_ns, recorder.interval_ns)
        loop.add_reader(self.fd, self.read)

    def read(self) -> None:
        """Record every tick that fell due since the last read (none: the read would block)."""
        if self.fd is None:
            return
        try:
            expired = int.from_bytes(os.read(self.fd, 8), sys.byteorder)
        except BlockingIOError:
            return
        except OSError:  # the program closed our descriptor (a daemon closing every fd): stop ticking
            self.fd = None
            return
        self.due += self.recorder.record(clock() - self.due, self.due, expired) * self.recorder.interval_ns

    def close(self) -> int | None:
        """Record the ticks due now, then stop; return when the loop stopped answering, if it had.

        The loop may be blocked by the very callback that stops the probe (an async test
        whose body never awaits): the ticks that fell due meanwhile are read here.
        """
        due = self.due
        self.read()
        fd, self.fd = self.fd, None
        if fd is not None:
            self.loop.remove_reader(fd)
            os.close(fd)
        return due if self.due - due > self.recorder.interval_ns else None


class _TimerTicks:
    """The probe's ``loop-timers`` tick source as a timer callback: portable, as coarse as loop timers."""

    def __init__(self, loop: asyncio.AbstractEventLoop, recorder: LagRecorder, start_ns: int) -> None:
        self.loop, self.recorder, self.due = loop, recorder, start_ns
        self.handle: asyncio.TimerHandle | None = None
        self._schedule()

    def _schedule(self) -> None:
        self.handle = self.loop.call_later(max(0, self.due - clock()) / 1e9, self.tick)

    def tick(self) -> None:
        """Record the tick that fell due, and those a stall made it miss; schedule the next."""
        self.due += self.recorder.record(clock() - self.due, self.due) * self.recorder.interval_ns
        self._schedule()

    def close(self) -> int | None:
        """Record the tick due now, if one is, then stop; return when the loop stopped answering, if so."""
        if self.handle is None:
            return None
        self.handle.cancel()
        self.handle = None
        due, lag = self.due, clock() - self.due
        if lag < 0:
            return None
        self.recorder.record(lag, due)
        return due if lag > self.recorder.interval_ns else None


TICK_SOURCES: dict[str, Callable[[asyncio.AbstractEventLoop, LagRecorder, int], _Ticks]] = {
    "timerfd": _TimerfdTicks,
    "loop-timers": _TimerTicks,
}
"""The probe's tick sources (:data:`offbench.measure.probe.TICK_SOURCES`), driven by callbacks."""


class _MeterStack:
    """Installed meters, uninstalled last-in first-out as :meth:`Meter.uninstall` requires.

    asyncio's meters all patch ``Handle._run``; loops of several threads can stop in any
    order, so a meter whose loop stopped out of turn stays installed (it times nothing while
    its loop is stopped) until those above it go. Its loop, if it runs again, reuses it.
    """

    def __init__(self) -> None:
        self.stack: list[Meter] = []
        self.done: set[int] = set()
        self.lock = threading.Lock()

    def install(self, meter: Meter, loop: asyncio.AbstractEventLoop) -> None:
        with self.lock:
            self.done.discard(id(meter))
            if meter not in self.stack:
                meter.install(loop)
                self.stack.append(meter)

    def uninstall(self, meter: Meter) -> None:
        with self.lock:
            self.done.add(id(meter))
            while self.stack and id(self.stack[-1]) in self.done:
                top = self.stack.pop()
                self.done.discard(id(top))
                top.uninstall()


_METERS = _MeterStack()
_LOOP_METERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Meter] = weakref.WeakKeyDictionary()


def _meter_for(loop: asyncio.AbstractEventLoop) -> Meter:
    """Return the loop's meter, made at its first run: one per loop, never installed twice."""
    try:
        meter = _LOOP_METERS.get(loop)
        if meter is None:
            meter = _LOOP_METERS[loop] = Meter(clock(), FOREVER_NS)
    except TypeError:  # a loop that cannot be weakly referenced: a meter of its own each run
        meter = Meter(clock(), FOREVER_NS)
    return meter


class Attachment:
    """The probe, the watchdog and the meter on one loop, from :meth:`start` to :meth:`stop`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, totals: Totals, options: Options) -> None:
        self.loop = loop
        self.totals = totals
        self.options = options
        self.interval_ns = round(options.interval_ms * NS_PER_MS)
        self.threshold_ns = round(options.evidence_ms * NS_PER_MS)
        self.recorder: LagRecorder | None = None
        self.meter: Meter | None = None
        self._ticks: _Ticks | None = None
        self._dog: watchdog.Watchdog | None = None
        self._fold_handle: asyncio.TimerHandle | None = None
        self._started_ns = 0
        self._meter_from = 0
        """Callbacks that ended before this are folded (the meter's arrays keep only later ones)."""
        self._open_step_from: int | None = None
        """When the untimed task step that started the attachment began to be measured, until it ends."""
        self._step_handle: asyncio.Handle | None = None

    def start(self) -> None:
        """Start measuring; call on the loop's thread, the loop running or about to run."""
        if self.recorder is not None:
            return
        recorder = self.recorder = LagRecorder(self.interval_ns, self.threshold_ns)
        # The watchdog's thread first, the probe's first tick after: Thread.start() waits until the
        # new thread runs, which a busy host can delay by tens of ms (57 ms seen), and that wait is
        # offbench's, not the program's. The watchdog ignores the recorder until a tick is due.
        self._dog = watchdog.Watchdog(recorder, self.threshold_ns, prompt_stop=self.options.prompt_stop)
        self._dog.start()
        now = clock()
        self._started_ns = self._meter_from = now
        recorder.next_due_ns = now + self.interval_ns
        if self.options.utilisation:
            meter = _meter_for(self.loop)
            try:
                _METERS.install(meter, self.loop)
                self.meter = meter
            except TypeError:  # a loop whose callbacks cannot be timed
                self.meter = None
        self._ticks = TICK_SOURCES[default_source()](self.loop, recorder, recorder.next_due_ns)
        self._fold_handle = self.loop.call_later(self.options.fold_s, self._fold_now)
        if self.meter is not None and asyncio.current_task(self.loop) is not None:
            # Started from inside a task's step (the pytest plugin's test), which the meter,
            # installed meanwhile, does not time: it ends when the next callback begins.
            self._open_step_from = now
            self._step_handle = self.loop.call_soon(self._step_ended)
        with self.totals.lock:
            self.totals.runs += 1
            self.totals.live.append(self)
            if self.meter is not None and self.meter.coverage is not None:
                self.totals.coverage = _weaker(self.totals.coverage, self.meter.coverage)

    def stop(self) -> None:
        """Stop measuring, fold what was measured into the totals; call on the loop's thread."""
        recorder = self.recorder
        if recorder is None:
            return
        for handle in (self._fold_handle, self._step_handle):
            if handle is not None:
                handle.cancel()
        self._fold_handle = self._step_handle = None
        unanswered = self._ticks.close() if self._ticks is not None else None
        self._ticks = None
        if self._dog is not None:
            self._dog.stop()
        self.fold(final=True, unanswered_from=unanswered)
        with self.totals.lock:
            running = self.running_ns()
            self.totals.running_ns += running
            if self.meter is not None:
                self.totals.metered_ns += running
            self.totals.blocked_ns += recorder.blocked_ns
            self.totals.live.remove(self)
        if self.meter is not None:
            _METERS.uninstall(self.meter)
        self.recorder = self._dog = None
        self.meter = None

    def set_threshold(self, evidence_ms: float) -> None:
        """Sample the stacks of stalls longer than ``evidence_ms`` from now on (a budget set mid-test)."""
        self.threshold_ns = round(evidence_ms * NS_PER_MS)
        if self._dog is not None:
            self._dog.threshold_ns = self.threshold_ns
        with self.totals.lock:
            self.totals.evidence_ms = evidence_ms

    def _step_ended(self) -> None:
        with self.totals.lock:
            if self._open_step_from is not None:
                self.totals.busy_ns += clock() - self._open_step_from
                self._open_step_from = None

    def running_ns(self) -> int:
        """Return how long this run has lasted so far (0 when stopped)."""
        return clock() - self._started_ns if self.recorder is not None else 0

    def _fold_now(self) -> None:
        self.fold()
        if self.recorder is not None:
            self._fold_handle = self.loop.call_later(self.options.fold_s, self._fold_now)

    def fold(self, final: bool = False, unanswered_from: int | None = None) -> None:
        """Move the ticks and stalls recorded so far into the totals, and drop them.

        Ticks due before the recorder's next due tick are all recorded; a stall sampled
        for a tick not yet recorded (it ended, but the probe has not run since) waits for
        the next fold, with the callbacks that may explain it. ``final`` folds everything.
        ``unanswered_from``: the loop has not answered since then, the callback running
        now (the caller's) blocking it: that callback counts as busy from then on, and the
        stall it makes is not explained by the callbacks that ended (it has not).
        """
        recorder, dog, meter = self.recorder, self._dog, self.meter
        if recorder is None or dog is None:
            return
        with self.totals.lock:
            cut = FOREVER_NS if final else recorder.next_due_ns
            recorded = bisect.bisect_left(recorder.deadlines, cut)
            count = len(dog.samples)
            taken = dog.samples[:count]
            waiting = [s for s in taken if s.due_ns >= cut]
            explain = meter.check if meter is not None else None
            unanswered = FOREVER_NS if unanswered_from is None else unanswered_from
            for sample in taken:
                if sample.due_ns < cut:
                    why = explain if sample.due_ns < unanswered else None
                    for stall in watchdog.evidence([sample], recorder, self.threshold_ns, 1, why):
                        self.totals.add_stall(sample.stack, stall)
            dog.samples[:count] = waiting
            self.totals.lags.add(recorder.samples[:recorded])
            del recorder.samples[:recorded]
            del recorder.deadlines[:recorded]
            recorder.late.clear()
            if meter is not None:
                self._fold_callbacks(meter, cut)
                if final and self._open_step_from is not None:  # the first step has not ended
                    self.totals.busy_ns += clock() - self._open_step_from
                    self._open_step_from = None
                elif unanswered_from is not None:
                    self.totals.busy_ns += max(0, clock() - max(unanswered_from, self._meter_from))

    def _fold_callbacks(self, meter: Meter, cut: int) -> None:
        """Add the time of the callbacks that ended before ``cut`` to the busy total, and drop them."""
        done = bisect.bisect_left(meter.ends, cut)
        if not done:
            return
        busy = sum(meter.ends[:done]) - sum(meter.begins[:done])
        busy -= max(0, self._meter_from - meter.begins[0])
        self.totals.busy_ns += max(0, busy)
        self._meter_from = meter.ends[done - 1]
        del meter.begins[:done]
        del meter.ends[:done]


def _weaker(a: Coverage | None, b: Coverage) -> Coverage:
    return "scheduled callbacks" if "scheduled callbacks" in (a, b) else b


def loop_family(loop: asyncio.AbstractEventLoop) -> str:
    """Return the package a loop comes from: ``asyncio``, ``uvloop``, ..."""
    return type(loop).__module__.partition(".")[0]

