"""The responsiveness probe: measures how late the event loop wakes a coroutine that asked to run.

The probe ticks on a fixed schedule (every ``interval``) for the measured window and
records, for each tick, its *lag*: wake-up time minus scheduled time, read with
``time.perf_counter_ns()``. ``loop.time()`` is never used, because uvloop's clock and
timers are millisecond-grained and would quantise every lag to 0, 1, 2 ms.

What wakes the probe (its *tick source*) matters as much as the clock:

* ``timerfd`` (Linux): a kernel timer that fires every interval on ``CLOCK_MONOTONIC``
  (the clock behind ``perf_counter_ns``) makes a file descriptor readable; the probe
  waits for it as a coroutine waits for a socket. The kernel keeps the schedule and
  counts the ticks that fell due while the loop could not look, so the lag is how late
  the loop answers I/O, to a few microseconds, on both loops.
* ``loop-timers`` (elsewhere, or ``OFFBENCH_PROBE_TICKS=loop-timers``): the probe sleeps
  with ``asyncio.sleep`` until each tick. Stock asyncio waits in ``epoll``, whose timeout
  is rounded *up* to whole milliseconds, so an idle asyncio loop reads 0.5 ms of lag on
  average (p99 about 1 ms) that no I/O event would see.

Coordinated omission. A loop stalled for 200 ms wakes the probe once, late by 200 ms,
but 200 ticks fell due in that time and none was taken. Like HdrHistogram's
``recordValueWithExpectedInterval``, :meth:`LagRecorder.record` records every tick that
fell due (200, 199, ... 0 ms late), so the stall weighs as 200 ms of bad latency in the
percentiles instead of as one sample. The raw count of wake-ups is kept beside it.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

NS_PER_MS = 1_000_000
TICKS_ENV = "OFFBENCH_PROBE_TICKS"
"""Environment variable that forces a tick source by name (for comparisons and tests)."""


@dataclass
class LagRecorder:
    """Collects the lag (ns) of every tick that fell due, and stall accounting."""

    interval_ns: int
    stall_threshold_ns: int
    samples: list[int] = field(default_factory=list)
    """Lag of every tick that fell due, including those a stall made the probe miss."""
    deadlines: list[int] = field(default_factory=list)
    """When each of ``samples``' ticks was due, so a part of the window can be summarised alone."""
    raw_count: int = 0
    """Wake-ups of the probe: the samples coordinated omission would have kept."""
    stalled_ns: int = 0
    """Total lag of the wake-ups later than ``stall_threshold_ns`` (for availability)."""
    blocked_ns: int = 0
    """Total lag of the wake-ups later than one interval: time the loop could not run the probe."""
    late_ns: int = 0
    """Time the loop could not answer within the stall threshold: each wake-up adds its lag beyond it.

    Continuous where ``stalled_ns`` has a cliff: a stall of L adds ``L - threshold`` here
    (an event arriving in its first ``L - threshold`` waits longer than the threshold)."""
    next_due_ns: int = 0
    """When the next tick falls due: the heartbeat :mod:`offbench.measure.watchdog` reads from its thread."""
    late: list[tuple[int, int]] = field(default_factory=list)
    """(deadline, lag) of each wake-up later than one interval, for the utilisation check."""

    def record(
        self, lag_ns: int, deadline_ns: int = 0, ticks: int | None = None, end_ns: int | None = None
    ) -> int:
        """Record a wake-up ``lag_ns`` after the tick due at ``deadline_ns``; return the ticks it served.

        Every later tick that fell due before the wake-up is recorded too, with its own
        (smaller) lag. ``ticks`` is their number when a kernel timer counted them;
        otherwise it follows from the lag. A wake-up before the deadline counts as on time.
        Ticks due at or after ``end_ns`` (the window's end) are not the window's: a wake-up
        the host delayed past the end records only the ticks due before it.
        """
        interval = self.interval_ns
        lag_ns = max(0, lag_ns)
        ticks = ticks or 1 + lag_ns // interval
        if end_ns is not None:
            ticks = max(1, min(ticks, -(-(end_ns - deadline_ns) // interval)))
        self.raw_count += 1
        if lag_ns > self.stall_threshold_ns:
            self.stalled_ns += lag_ns
            self.late_ns += lag_ns - self.stall_threshold_ns
        if lag_ns > interval:
            self.blocked_ns += lag_ns
            self.late.append((deadline_ns, lag_ns))
        for tick in range(ticks):
            self.samples.append(max(0, lag_ns - tick * interval))
            self.deadlines.append(deadline_ns + tick * interval)
        self.next_due_ns = deadline_ns + ticks * interval
        return ticks

    def between(self, start_ns: int, end_ns: int) -> list[int]:
        """Return the lags of the ticks due in ``[start_ns, end_ns)``."""
        return [
            lag for lag, due in zip(self.samples, self.deadlines, strict=True) if start_ns <= due < end_ns
        ]

    @property
    def corrected_count(self) -> int:
        """Number of samples: one per tick that fell due."""
        return len(self.samples)


Clock = Callable[[], int]
TickSource = Callable[[LagRecorder, int, int, Clock], Awaitable[None]]


async def run_probe(
    recorder: LagRecorder,
    start_ns: int,
    end_ns: int,
    clock: Clock = time.perf_counter_ns,
    source: str | None = None,
) -> None:
    """Tick every ``recorder.interval_ns`` from ``start_ns`` until ``end_ns``, recording lag.

    Deadlines come from the schedule (``start + k * interval``), never from "now +
    interval", so lag does not accumulate as drift. ``source`` names the tick source
    (default: :func:`default_source`). Cancelling the task stops the probe; what it
    recorded so far stays in ``recorder``.
    """
    await TICK_SOURCES[source or default_source()](recorder, start_ns, end_ns, clock)


async def tick_on_loop_timers(recorder: LagRecorder, start_ns: int, end_ns: int, clock: Clock) -> None:
    """Sleep on the loop's own timers until each tick; portable, but as coarse as those timers."""
    due = start_ns
    while due < end_ns:
        delay = due - clock()
        await asyncio.sleep(delay / 1e9 if delay > 0 else 0)
        due += recorder.record(clock() - due, due, end_ns=end_ns) * recorder.interval_ns


async def tick_on_timerfd(recorder: LagRecorder, start_ns: int, end_ns: int, clock: Clock) -> None:
    """Wait for a kernel interval timer's file descriptor to become readable, as for a socket.

    The read returns how many ticks fell due since the last one; the clock is read after
    it, so every one of them is already due.
    """
    loop = asyncio.get_running_loop()
    interval = recorder.interval_ns
    fd = open_timerfd(start_ns, interval)
    woken: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        if not woken.done():
            woken.set_result(None)

    loop.add_reader(fd, readable)
    try:
        due = start_ns
        while due < end_ns:
            await woken
            woken = loop.create_future()
            try:
                expired = int.from_bytes(os.read(fd, 8), sys.byteorder)
            except BlockingIOError:
                continue
            due += recorder.record(clock() - due, due, expired, end_ns) * interval
    finally:
        loop.remove_reader(fd)
        os.close(fd)


TICK_SOURCES: dict[str, TickSource] = {
    "timerfd": tick_on_timerfd,
    "loop-timers": tick_on_loop_timers,
}


def default_source() -> str:
    """Return the best tick source here: ``timerfd`` where it works, ``OFFBENCH_PROBE_TICKS`` if set."""
    forced = os.environ.get(TICKS_ENV, "")
    if forced in TICK_SOURCES:
        return forced
    return "timerfd" if timerfd_available() else "loop-timers"


class _Timespec(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long))


class _Itimerspec(ctypes.Structure):
    _fields_ = (("it_interval", _Timespec), ("it_value", _Timespec))


_TFD_TIMER_ABSTIME = 1


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def timerfd_available() -> bool:
    """Return whether a ``timerfd`` on ``perf_counter_ns``'s clock can be made here (Linux)."""
    implementation = time.get_clock_info("perf_counter").implementation
    return (
        sys.platform.startswith("linux")
        and "CLOCK_MONOTONIC" in implementation
        and "RAW" not in implementation
        and hasattr(_libc(), "timerfd_create")
    )


def open_timerfd(first_ns: int, interval_ns: int) -> int:
    """Open a non-blocking ``timerfd`` due at ``first_ns`` (``perf_counter_ns`` time), then every interval.

    ``os.timerfd_create`` (Python 3.13+) does the same; ``ctypes`` keeps one code path for 3.11+.
    """
    libc = _libc()
    fd = int(libc.timerfd_create(time.CLOCK_MONOTONIC, os.O_NONBLOCK | os.O_CLOEXEC))
    if fd < 0:
        raise _errno_error("timerfd_create")
    first_ns = max(1, first_ns)
    spec = _Itimerspec(
        _Timespec(interval_ns // 10**9, interval_ns % 10**9),
        _Timespec(first_ns // 10**9, first_ns % 10**9),
    )
    if libc.timerfd_settime(fd, _TFD_TIMER_ABSTIME, ctypes.byref(spec), None) != 0:
        error = _errno_error("timerfd_settime")
        os.close(fd)
        raise error
    return fd


def _errno_error(call: str) -> OSError:
    errno = ctypes.get_errno()
    return OSError(errno, f"{call}: {os.strerror(errno)}")
