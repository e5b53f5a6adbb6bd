"""Loop utilisation: how much of the window the loop thread spent running callbacks.

The probe (:mod:`offbench.measure.probe`) sees the loop from outside: how late it answers a
timer. This module sees it from inside, as Node's event-loop utilisation does: every
callback the loop runs is timed (``perf_counter_ns`` before and after), giving the
share of the window the loop was busy and the distribution of single-callback
durations. The two views are then checked against each other: a probe wake-up 40 ms
late should coincide with about 40 ms of callbacks.

How callbacks are timed depends on the loop:

* **asyncio** (``every callback``): every callback a stock loop runs, task steps,
  future callbacks, timers, I/O readers and writers, its transports', is a
  ``Handle`` whose pure-Python ``Handle._run`` the loop calls (3.11 to 3.13). The
  C-accelerated ``Task`` and ``Future`` schedule through ``loop.call_soon`` too, so
  they make handles like everything else. :class:`Meter` replaces ``Handle._run``
  for the process (a worker process serves one cell) and restores it afterwards;
  handles of other loops (another thread's) run untimed.
* **uvloop** (``scheduled callbacks``): its ``Handle`` is Cython and cannot be patched.
  ``uvloop.Loop`` is a Python subclass of the Cython class, so its instances have a
  ``__dict__``: :class:`Meter` sets instance attributes ``call_soon``,
  ``call_soon_threadsafe``, ``call_later``, ``call_at``, ``add_reader`` and
  ``add_writer`` that schedule a timed wrapper around the callback. The C ``Task``
  and ``Future`` look ``loop.call_soon`` up by name at every call, so task steps and
  future callbacks are seen, as are ``asyncio.sleep``'s timers, ``to_thread`` and
  ``run_in_executor`` completions (``call_soon_threadsafe``) and the probe's
  ``timerfd`` reader. Out of sight: what uvloop schedules inside Cython, i.e. its
  transports' and servers' protocol callbacks (``connection_made``,
  ``data_received``, ...), the ``sock_*`` methods' readiness callbacks, signal
  handlers and subprocess callbacks, and readers added before :meth:`Meter.install`.
  A loop busy in those reads as idle here, and the probe check says so (a gap).
  Out of sight on both loops: the loop's own code between callbacks.

Cost, measured with ``call_soon`` chains and ``asyncio.sleep(0)`` task steps of 200 000
no-op callbacks (best of 9 runs, CPython 3.11, uvloop 0.23, 2 noisy cores): asyncio
0.48 to 0.70 µs a callback (1.5-1.9 → 1.9-2.5 µs), uvloop 0.68 to 0.96 µs
(0.6-0.7 → 1.3-1.7 µs: two more Python calls, the shadowing method and the wrapper).
Real callbacks (a task step resuming from a thread, a transport's read) take tens of
microseconds: a few per cent. Memory: 16 bytes a callback in the window.

The check. The probe lists its wake-ups later than one interval
(:attr:`~offbench.measure.probe.LagRecorder.late`). For each late by at least ``check_ms``
(:data:`CHECK_MS`) and over before the window's end, the callback time inside
``[deadline, deadline + lag]`` is summed: only that part of a callback counts, so a
stall that began before the tick was due is credited with the lag at most, and the
gap ``lag - covered`` is never negative. The gap is the time the loop spent outside
timed callbacks while the tick waited: its own dispatch between callbacks
(``_run_once``, ``epoll``, the meter's bookkeeping), waiting for the GIL after
``epoll`` (a thread running Python keeps it up to ``sys.getswitchinterval()``), the
loop thread being descheduled there, and on uvloop the callbacks it runs out of
sight. A check *agrees* when the gap is at most :data:`TOLERANCE_MS` plus
:data:`DISPATCH_US` for each callback that overlapped the span.

Measured (``benchmarks/utilisation_agreement.py``: one-second windows, the real probe
on timerfd ticking every 1 ms, 6 then 15 repeats of each experiment on each loop):

* one stall per late wake-up, the loop thread alone holding the GIL: ``time.sleep``
  of 20 and 50 ms in a task, a pure-Python busy loop in 20 ms slices, a 10 ms sleep
  every 40 ms under 16 ``to_thread`` sleeps in flight, a 20 ms sleep in an asyncio
  protocol's ``data_received``: about 2 900 checks, all agreeing; gap median 0.03 to
  0.13 ms, worst 0.23 ms (asyncio) and 0.10 ms (uvloop), but once 1.04 ms (uvloop,
  24 callbacks). The longest callback of each span was the stall: 20.0 to 22.0 ms
  for the 20 ms sleeps, 50.1 to 53.4 ms for the 50 ms ones (``time.sleep`` overshoots).
* bursts of 1 000 callbacks of 10 µs: the gap grows with the callbacks, median 0.8 to
  1.0 ms, worst 1.7 ms over 1 003 callbacks: up to 1.7 µs of dispatch per callback,
  hence :data:`DISPATCH_US`.
* 5 ms sleeps never delay a tick by 5 ms (the sleep begins after a tick). Checked
  from 2 ms instead, 6 of 78 asyncio checks had gaps up to 4.1 ms with no callback
  running: the loop thread waiting for a CPU on the busy machine. Hence
  :data:`CHECK_MS`, above what scheduling alone did there.
* loop mostly idle (4 ``to_thread`` sleeps in flight): busy 0.05 to 0.10, no checks.

So :data:`TOLERANCE_MS` is 1 ms, four times the usual worst gap and one probe
interval. Disagreements are real time outside callbacks, and the worst gap says
how much: two threads spinning in pure Python left half or more of the checks
disagreeing (gap median 4.3 ms asyncio, 5.2 ms uvloop: the GIL's switch interval,
waited between callbacks); a 20 ms stall in ``data_received`` on uvloop left all 300
disagreeing (gap 19.4 ms: protocol callbacks are out of its sight, busy 0.02 against
0.43 on asyncio). In a loopback stream ping-pong, asyncio times three callbacks per
round trip (both transports' reads and the task's step), uvloop one (the step).
"""

from __future__ import annotations

import asyncio
import time
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

import msgspec

from offbench.measure.probe import NS_PER_MS, LagRecorder
from offbench.model import histogram
from offbench.model.results import DISPATCH_US, TOLERANCE_MS, Coverage, Durations, LoopUtilisation

CHECK_MS = 5.0
"""Probe wake-ups at least this late are checked: the GIL's switch interval, and above the
4 ms a loop thread waiting for a CPU was seen to lose with no callback running."""
SCHEDULING_METHODS = (
    "call_soon",
    "call_soon_threadsafe",
    "call_later",
    "call_at",
    "add_reader",
    "add_writer",
)
"""The loop methods wrapped where ``Handle._run`` cannot be patched (uvloop)."""

clock = time.perf_counter_ns


class UtilisationRaw(msgspec.Struct, frozen=True, kw_only=True):
    """One worker process's callback timings over its window, raw enough to pool with others'."""

    window_ns: int
    busy_ns: int
    """Time inside timed callbacks, clipped to the window."""
    callbacks: int
    """Timed callbacks that ran, at least in part, in the window."""
    callback_us: str | None
    """Their durations, whole µs, as an encoded HdrHistogram (:mod:`~offbench.model.histogram`); or None."""
    coverage: Coverage
    check_ms: float
    stalls_checked: int
    stalls_agreeing: int
    worst_gap_ms: float | None


class Check(NamedTuple):
    """One late probe wake-up and the callback time that covered it (ns)."""

    deadline_ns: int
    lag_ns: int
    covered_ns: int
    """Callback time inside ``[deadline, deadline + lag]``."""
    longest_ns: int
    """Full duration of the longest callback overlapping that span."""
    callbacks: int
    """How many timed callbacks overlapped it."""

    @property
    def gap_ns(self) -> int:
        """Lag the callbacks do not account for: the loop's time outside timed callbacks."""
        return self.lag_ns - self.covered_ns

    @property
    def agrees(self) -> bool:
        """Whether the gap is within :data:`TOLERANCE_MS` plus :data:`DISPATCH_US` per callback."""
        return self.gap_ns <= TOLERANCE_MS * NS_PER_MS + self.callbacks * DISPATCH_US * 1000


class Meter:
    """Times each callback of one loop that runs in ``[start_ns, end_ns)`` (``perf_counter_ns``)."""

    def __init__(self, start_ns: int, end_ns: int) -> None:
        self.start_ns = start_ns
        self.end_ns = end_ns
        self.begins: array[int] = array("q")
        """When each timed callback began, in the order they ran."""
        self.ends: array[int] = array("q")
        """When each ended."""
        self.coverage: Coverage | None = None
        """What :meth:`install` could time on its loop; ``None`` until installed."""
        self._undo: Callable[[], None] | None = None

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start timing ``loop``'s callbacks: all of them on asyncio, the scheduled ones elsewhere.

        Install before the tasks to time are created: on uvloop, a reader added earlier
        (the probe's) keeps its untimed callback. Raises ``TypeError`` for a loop that is
        not an ``asyncio.BaseEventLoop`` and has no instance ``__dict__`` to shadow methods in.
        """
        if self._undo is not None:
            raise RuntimeError("this meter is already installed")
        if isinstance(loop, asyncio.BaseEventLoop):
            self._undo, self.coverage = _patch_handles(loop, self), "every callback"
        else:
            self._undo, self.coverage = _wrap_scheduling(loop, self), "scheduled callbacks"

    def uninstall(self) -> None:
        """Stop timing and put back what :meth:`install` replaced; the timings stay.

        Meters of one process nest: uninstall them in the reverse order of installing.
        """
        if self._undo is not None:
            self._undo()
            self._undo = None

    def window(self, start_ns: int, end_ns: int) -> None:
        """Set the window the figures are about, once it is known (after the warm-up).

        Installed early (before the tasks are made, see :meth:`install`) with an open
        window, the meter times the warm-up too; only what overlaps the window counts.
        """
        self.start_ns, self.end_ns = start_ns, end_ns

    def _inside(self) -> tuple[int, int]:
        """Return the indexes ``[first, last)`` of the callbacks that overlap the window."""
        return bisect_right(self.ends, self.start_ns), bisect_left(self.begins, self.end_ns)

    def busy_ns(self) -> int:
        """Return the time spent inside timed callbacks, clipped to the window.

        A loop runs one callback at a time, so the spans do not overlap and are ordered:
        only the first and the last inside the window can straddle its edges.
        """
        first, last = self._inside()
        if first >= last:
            return 0
        total = sum(self.ends[first:last]) - sum(self.begins[first:last])
        total -= max(0, self.start_ns - self.begins[first])
        total -= max(0, self.ends[last - 1] - self.end_ns)
        return total

    def spans(self) -> list[tuple[int, int]]:
        """Return (begin, end) of each timed callback that overlaps the window, in the order they ran."""
        first, last = self._inside()
        return list(zip(self.begins[first:last], self.ends[first:last], strict=True))

    def durations_us(self) -> list[int]:
        """Return the full duration of each timed callback that overlaps the window, whole microseconds."""
        return [(end - begin + 500) // 1000 for begin, end in self.spans()]

    def check(self, deadline_ns: int, lag_ns: int) -> Check:
        """Return the callback time inside ``[deadline, deadline + lag]`` and the longest callback there."""
        until = deadline_ns + lag_ns
        covered = longest = 0
        first = index = bisect_right(self.ends, deadline_ns)
        while index < len(self.begins) and (begin := self.begins[index]) < until:
            end = self.ends[index]
            covered += min(end, until) - max(begin, deadline_ns)
            longest = max(longest, end - begin)
            index += 1
        return Check(deadline_ns, lag_ns, covered, longest, index - first)

    def checks(self, recorder: LagRecorder, check_ms: float = CHECK_MS) -> list[Check]:
        """Check every probe wake-up at least ``check_ms`` late that was over before the window's end.

        A wake-up after the end is left out: callbacks that began after it were not timed.
        """
        threshold = round(check_ms * NS_PER_MS)
        return [
            self.check(deadline, lag)
            for deadline, lag in recorder.late
            if lag >= threshold and self.start_ns <= deadline and deadline + lag <= self.end_ns
        ]

    def raw(self, recorder: LagRecorder, check_ms: float = CHECK_MS) -> UtilisationRaw:
        """Return this process's summary for the parent: busy time, durations, and the probe check."""
        if self.coverage is None:
            raise RuntimeError("this meter was never installed")
        checks = self.checks(recorder, check_ms)
        gaps = [c.gap_ns for c in checks]
        durations = self.durations_us()
        return UtilisationRaw(
            window_ns=self.end_ns - self.start_ns,
            busy_ns=self.busy_ns(),
            callbacks=len(durations),
            callback_us=histogram.encode_us(durations) if durations else None,
            coverage=self.coverage,
            check_ms=check_ms,
            stalls_checked=len(checks),
            stalls_agreeing=sum(c.agrees for c in checks),
            worst_gap_ms=max(gaps) / NS_PER_MS if gaps else None,
        )


@contextmanager
def metering(loop: asyncio.AbstractEventLoop, start_ns: int, end_ns: int) -> Iterator[Meter]:
    """Time ``loop``'s callbacks in ``[start_ns, end_ns)`` during the ``with`` block; yield the meter."""
    meter = Meter(start_ns, end_ns)
    meter.install(loop)
    try:
        yield meter
    finally:
        meter.uninstall()


@contextmanager
def unmetered(loop: asyncio.AbstractEventLoop, start_ns: int, end_ns: int) -> Iterator[None]:
    """Time nothing: :func:`metering`'s stand-in when utilisation is off (``--no-utilisation``)."""
    yield None


def _patch_handles(loop: asyncio.AbstractEventLoop, meter: Meter) -> Callable[[], None]:
    """Replace ``asyncio.Handle._run`` with one that times ``loop``'s handles for ``meter``; return the undo.

    The timing is written out in the wrapper, not called: a function call would double its cost.
    """
    start, stop, now = meter.start_ns, meter.end_ns, clock
    add_begin, add_end = meter.begins.append, meter.ends.append
    handle_class = asyncio.Handle
    original: Callable[[Any], None] = handle_class._run

    def _run(handle: Any) -> None:
        if handle._loop is not loop:
            original(handle)
            return
        begin = now()
        try:
            original(handle)
        finally:
            end = now()
            if end > start and begin < stop:
                add_begin(begin)
                add_end(end)

    setattr(handle_class, "_run", _run)  # noqa: B010 (mypy: cannot assign to a method)
    return lambda: setattr(handle_class, "_run", original)


def _wrap_scheduling(loop: asyncio.AbstractEventLoop, meter: Meter) -> Callable[[], None]:
    """Shadow ``loop``'s scheduling methods with ones that time each callback; return the undo."""
    start, stop, now = meter.start_ns, meter.end_ns, clock
    add_begin, add_end = meter.begins.append, meter.ends.append
    try:
        shadowed = vars(loop)
    except TypeError:
        raise TypeError(f"cannot time the callbacks of {type(loop).__name__}: no instance dict") from None
    before = {name: shadowed[name] for name in SCHEDULING_METHODS if name in shadowed}

    def timed(callback: Callable[..., object], *args: object) -> None:
        begin = now()
        try:
            callback(*args)
        finally:
            end = now()
            if end > start and begin < stop:
                add_begin(begin)
                add_end(end)

    for name, wrapper in _wrappers(loop, timed).items():
        shadowed[name] = wrapper

    def undo() -> None:
        for name in SCHEDULING_METHODS:
            shadowed.pop(name, None)
        shadowed.update(before)

    return undo


def _wrappers(loop: asyncio.AbstractEventLoop, timed: Callable[..., None]) -> dict[str, Callable[..., Any]]:
    """Return the replacement of each of :data:`SCHEDULING_METHODS`, scheduling ``timed(callback, *args)``."""
    call_soon, call_soon_threadsafe = loop.call_soon, loop.call_soon_threadsafe
    call_later, call_at = loop.call_later, loop.call_at
    add_reader, add_writer = loop.add_reader, loop.add_writer

    def soon(callback: Callable[..., object], *args: object, context: Any = None) -> asyncio.Handle:
        if context is None:  # a keyword argument costs a Cython call 0.2 µs
            return call_soon(timed, callback, *args)
        return call_soon(timed, callback, *args, context=context)

    def threadsafe(callback: Callable[..., object], *args: object, context: Any = None) -> asyncio.Handle:
        return call_soon_threadsafe(timed, callback, *args, context=context)

    def later(delay: float, callback: Callable[..., object], *args: object, context: Any = None) -> Any:
        return call_later(delay, timed, callback, *args, context=context)

    def at(when: float, callback: Callable[..., object], *args: object, context: Any = None) -> Any:
        return call_at(when, timed, callback, *args, context=context)

    def reader(fd: Any, callback: Callable[..., object], *args: object) -> None:
        add_reader(fd, timed, callback, *args)

    def writer(fd: Any, callback: Callable[..., object], *args: object) -> None:
        add_writer(fd, timed, callback, *args)

    return {
        "call_soon": soon,
        "call_soon_threadsafe": threadsafe,
        "call_later": later,
        "call_at": at,
        "add_reader": reader,
        "add_writer": writer,
    }


def pool(raws: Sequence[UtilisationRaw]) -> LoopUtilisation | None:
    """Pool the summaries of a cell's worker processes; ``None`` if there are none.

    Busy is total busy time over total window; durations come from the merged
    histograms; the weaker coverage wins; counts add up; the worst gap is the largest.
    """
    if not raws:
        return None
    window = sum(r.window_ns for r in raws)
    merged = histogram.merge(r.callback_us for r in raws if r.callback_us)
    gaps = [r.worst_gap_ms for r in raws if r.worst_gap_ms is not None]
    return LoopUtilisation(
        busy=sum(r.busy_ns for r in raws) / window if window > 0 else 0.0,
        callbacks=sum(r.callbacks for r in raws),
        callback_ms=_durations(merged) if merged else None,
        coverage=_weakest(r.coverage for r in raws),
        check_ms=raws[0].check_ms,
        stalls_checked=sum(r.stalls_checked for r in raws),
        stalls_agreeing=sum(r.stalls_agreeing for r in raws),
        worst_gap_ms=max(gaps) if gaps else None,
    )


def _durations(encoded: str) -> Durations:
    p50, p99, longest = histogram.percentiles_ms(encoded, (50, 99, 100))
    return Durations(p50=p50, p99=p99, max=longest)


def _weakest(coverages: Iterator[Coverage] | Sequence[Coverage]) -> Coverage:
    return "scheduled callbacks" if "scheduled callbacks" in set(coverages) else "every callback"
