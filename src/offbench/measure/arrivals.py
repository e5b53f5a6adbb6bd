"""Open-loop load (``--rate``): calls start on a schedule, whatever is still in flight.

A closed loop (``-c N``) has N tasks call back to back: a slow strategy slows its own
arrivals down, and a call's latency is about N ÷ throughput, whatever the traffic. A
server's requests do not wait for the last one to finish. In a *rate cell* one
scheduler task on the loop starts call k at its *intended* time, ``start + k / rate``
(``fixed``) or after exponential gaps of mean ``1 / rate`` (``poisson``, seeded), each
as a task of its own, however many are still in flight (up to ``max_in_flight`` if
bounded: a call due at the bound is *refused*, and counted). Each call's latency runs
from its intended start to its result: a loop blocked for 200 ms makes every call due
meanwhile late by its share of the 200 ms (coordinated omission, as wrk2 corrects it).

The scheduler wakes on a kernel timer (``timerfd``, re-armed for each call, like the
probe's ticks in :mod:`offbench.measure.probe`) where it can: the loop's own timers
round an ``epoll`` wait up to a whole millisecond, which would add up to a millisecond
of lateness to every call. Elsewhere (or with ``OFFBENCH_PROBE_TICKS=loop-timers``) it
uses the loop's timers, and that lateness is counted in the latency.

The window holds the calls *due* in it. It is sized by
:func:`offbench.model.settings.rate_window_s` after a warm-up at the rate (until the
first call returned, and :data:`WARMUP_CALLS` calls). The rate was *sustained* when
the backlog did not grow: the median latency of the calls due in the window's second
half is no more than :data:`GROWTH_FLOOR_MS`, or :data:`GROWTH_SHARE` of the fastest call,
above the first half's, the calls in flight grew by no more than :data:`PILED_SHARE` of the
window's calls (what arrived less what completed), and at most :data:`LOST_SHARE` of the
calls were refused or still unfinished after the drain. Past a strategy's capacity C,
latency grows by about (rate ÷ C − 1) seconds per second: 10 % over it, 7.5 ms between
the halves of the shortest window (0.15 s), 70 ms between those of a 1.4 s one. Below
it, the halves' medians move by the queue's chance swings, a fraction of a call at 70 % busy. Where calls
were still unfinished (their latency only a lower bound) the growth is read from the
backlog instead: the calls due less those completed, over the rate completed.

:class:`OpenLoop` is the worker's side, the load :func:`offbench.measure.worker._run_window`
runs for a rate cell in place of its closed-loop callers; :func:`pool` is the parent's:
it pools the units' raw figures into the cell's :class:`~offbench.model.rates.RateFigures`.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar, cast

import msgspec

from offbench.measure import probe
from offbench.measure.probe import NS_PER_MS
from offbench.model.cells import CellSpec
from offbench.model.rates import LOST_SHARE, CallLatency, RateFigures
from offbench.model.settings import Arrivals, rate_window_s
from offbench.stats import percentile
from offbench.strategies import Strategy

clock = time.perf_counter_ns
M = TypeVar("M", bound=msgspec.Struct)

WARMUP_CALLS = 20
"""Calls a rate cell's warm-up lasts at least (and until the first returned): its pool at work."""
MIN_WARMUP_S = 0.05
MAX_WARMUP_S = 1.0
GROWTH_FLOOR_MS = 2.0
"""Latency growth from the window's first half to its second (medians) below which it is noise."""
GROWTH_SHARE = 0.5
"""... or below this share of the fastest call (the work without a queue), whichever is larger."""
PILED_SHARE = 0.1
"""Share of the window's calls by which the calls in flight may grow from its start to its end (its
own chance swings: a few calls) before the rate counts as not sustained."""
MIN_HALF_CALLS = 3
"""Calls each half of the window needs for its median to compare."""


class ArrivalsRaw(msgspec.Struct, frozen=True, kw_only=True):
    """One unit's open-loop figures, raw enough for the parent to pool (:func:`pool`)."""

    offered_ops_s: float
    arrivals: Arrivals
    max_in_flight: int | None
    issued: int
    """Calls due in the window, refused ones included."""
    refused: int
    completed: int
    """Calls that completed in the window (whenever they were due)."""
    unfinished: int
    """Calls due in the window still in flight after the drain."""
    in_flight_max: int
    growth_ms_s: float
    sustained: bool


class Deadline(Protocol):
    """When the scheduler stops starting calls (the worker's, unknown until the warm-up ends)."""

    end_ns: float


@dataclass(frozen=True)
class Arrived:
    """What a rate cell's window comes to: corrected latencies, the achieved rate, the raw figures."""

    latencies_ms: list[float]
    """From intended start to result, every call due in the window (unfinished ones to the drain's end)."""
    achieved_ops_s: float
    raw: ArrivalsRaw

    def applied(self, measured: M) -> M:
        """Return the worker's measurement with the open loop's latencies, rate and raw figures."""
        return msgspec.structs.replace(measured, latencies_ms=self.latencies_ms,
                                       throughput_ops_s=self.achieved_ops_s, arrivals=self.raw)


class OpenLoop:
    """A rate cell's load: one scheduler task starting a task per call on schedule (see the module)."""

    def __init__(self, cell: CellSpec, strategy: Strategy, deadline: Deadline, ops: list[tuple[int, int]],
                 stamps: list[tuple[int, int, int, int]] | None = None) -> None:
        assert cell.rate is not None, "an open loop needs a rate"
        self.cell = cell
        self.rate = cell.rate
        self.strategy = strategy
        self.deadline = deadline
        self.ops = ops
        """(intended, completed) of every call that completed."""
        self.stamps = stamps
        self.calls: dict[asyncio.Task[None], int] = {}
        """The calls in flight, with their intended start."""
        self.issued: list[int] = []
        """Intended start of every call due so far (refused ones included)."""
        self.refused: list[int] = []
        self.levels: list[tuple[int, int]] = []
        """(when, calls in flight just after) at each call's start and end: the high-water mark's raw."""
        self.failure: BaseException | None = None
        loop = asyncio.get_running_loop()
        self.first_returned: asyncio.Future[None] = loop.create_future()
        self.alarm: Alarm | None = None
        """What wakes the scheduler; made (and closed) by the scheduler task itself, so a task cancelled
        before it ever ran holds nothing."""
        self.tasks = [asyncio.create_task(self._schedule())]

    # The load's side of the worker's window.

    async def warm_up(self, open_window: Callable[[], None]) -> None:
        """Wait out the warm-up: ``cell.warmup_s``, or the first call's return and :data:`WARMUP_CALLS`.

        The window opens as it returns (``open_window`` is not called here): the schedule
        keeps the loop free between calls, unless the strategy blocks it.
        """
        began = clock()
        if self.cell.warmup_s is None:
            await self._until(self.first_returned)
            least = min(MAX_WARMUP_S, max(MIN_WARMUP_S, WARMUP_CALLS / self.rate))
        else:
            least = self.cell.warmup_s
        rest = least - (clock() - began) / 1e9
        if rest > 0:
            done, _ = await asyncio.wait(self.tasks, timeout=rest)
            for task in done:
                task.result()

    async def _until(self, event: asyncio.Future[None]) -> None:
        done, _ = await asyncio.wait({event, *self.tasks}, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()

    def window_seconds(self, call_ms: float | None) -> float:
        """Return the window for this rate (:func:`~offbench.model.settings.rate_window_s`).

        Sized by the warm-up's *fastest* call, not its median (``call_ms``): past the
        strategy's capacity the median is mostly queueing, and a window grown with the
        queue would only grow the backlog (a loop blocked by a backlog of ``direct`` calls
        is blocked for about (rate ÷ capacity − 1) × the window).
        """
        fastest = min(((done - due) / NS_PER_MS for due, done in self.ops), default=None)
        return rate_window_s(self.cell.effort, self.rate, fastest)

    def unfinished(self) -> list[int]:
        """Return the intended start of each call still in flight."""
        return list(self.calls.values())

    def arrived(self, start_ns: int, end_ns: int) -> Arrived:
        """Return the window's open-loop figures, read now (after the drain)."""
        now = clock()
        waiting = [due for due in self.calls.values() if start_ns <= due < end_ns]
        latencies = sorted([(due, at - due) for due, at in self.ops if start_ns <= due < end_ns]
                           + [(due, now - due) for due in waiting])
        issued = sum(start_ns <= due < end_ns for due in self.issued)
        refused = sum(start_ns <= due < end_ns for due in self.refused)
        completed = sum(start_ns < at <= end_ns for _, at in self.ops)
        window_s = (end_ns - start_ns) / 1e9
        fastest = min((at - due for due, at in self.ops), default=0)
        # Growth between the window's halves (ms): their medians' difference; where unfinished calls'
        # latencies are only lower bounds, the backlog (calls due less those completed) over the rate
        # completed: the time the strategy needs to work it off, half of it per half window. Too few
        # calls to compare halves, all of them finished: nothing says it grew.
        if waiting:
            backlog_s = (issued - refused - completed) / max(completed / window_s, 1.0 / window_s)
            growth_ms: float = backlog_s * 1000 / 2
        else:
            growth_ms = latency_growth_ms(latencies, (start_ns + end_ns) // 2) or 0.0
        steady = growth_ms <= growth_allowance_ms(fastest) and not piled_up(issued, refused, completed)
        lost = refused + len(waiting)
        raw = ArrivalsRaw(
            offered_ops_s=self.rate, arrivals=self.cell.arrivals, max_in_flight=self.cell.max_in_flight,
            issued=issued, refused=refused, completed=completed, unfinished=len(waiting),
            in_flight_max=self._most_in_flight(start_ns, end_ns),
            growth_ms_s=growth_ms / (window_s / 2) if latencies else 0.0,
            sustained=steady and lost <= LOST_SHARE * max(issued, 1),
        )
        return Arrived([lat / NS_PER_MS for _, lat in latencies], completed / window_s, raw)

    def _most_in_flight(self, start_ns: int, end_ns: int) -> int:
        """Return the most calls in flight at once between ``start_ns`` and ``end_ns``."""
        before = [n for at, n in self.levels if at <= start_ns]
        during = [n for at, n in self.levels if start_ns < at < end_ns]
        return max([*before[-1:], *during], default=0)

    # The scheduler.

    async def _schedule(self) -> None:
        """Start each call at its intended time until the deadline, then wait for those in flight.

        Every call due when the scheduler wakes is started at once, each with its own
        intended time: a late wake-up (a blocked loop) is counted in their latency. The
        first call that raises ends the scheduler with its exception (and the cell).
        """
        loop = asyncio.get_running_loop()
        alarm = self.alarm = TimerfdAlarm(loop) if probe.default_source() == "timerfd" else LoopAlarm(loop)
        due = clock()
        gaps = _gaps(self.cell, self.rate)
        try:
            while due < self.deadline.end_ns:
                self._raise()
                now = clock()
                if due > now:
                    alarm.arm(due)
                    await alarm.wait()
                    continue
                while due <= now and due < self.deadline.end_ns:
                    self._start(loop, due)
                    due += next(gaps)
            while self.calls:
                self._raise()
                await asyncio.wait(list(self.calls), return_when=asyncio.FIRST_EXCEPTION)
            self._raise()
        finally:
            alarm.close()
            for task in self.calls:
                task.cancel()

    def _start(self, loop: asyncio.AbstractEventLoop, due: int) -> None:
        self.issued.append(due)
        if self.cell.max_in_flight is not None and len(self.calls) >= self.cell.max_in_flight:
            self.refused.append(due)
            return
        task = loop.create_task(self._call(due))
        self.calls[task] = due
        task.add_done_callback(self._settled)
        self.levels.append((clock(), len(self.calls)))

    async def _call(self, due: int) -> None:
        submitted = clock()
        value = await self.strategy.call()
        resumed = clock()
        self.ops.append((due, resumed))
        if not self.first_returned.done():
            self.first_returned.set_result(None)
        if self.stamps is not None:
            _, started, finished = cast("tuple[object, int, int]", value)
            self.stamps.append((submitted, started, finished, resumed))

    def _settled(self, task: asyncio.Task[None]) -> None:
        self.calls.pop(task, None)
        self.levels.append((clock(), len(self.calls)))
        if not task.cancelled() and task.exception() is not None and self.failure is None:
            self.failure = task.exception()
            if self.alarm is not None:
                self.alarm.ring()

    def _raise(self) -> None:
        if self.failure is not None:
            raise self.failure


def _gaps(cell: CellSpec, rate: float) -> _Gaps:
    """Return the gaps between intended starts, in ns: fixed, or Poisson seeded by the cell."""
    return _Gaps(rate, random.Random(cell.seed) if cell.arrivals == "poisson" else None)


class _Gaps:
    """The gaps between calls: ``1 / rate`` each (kept exact over many calls), or exponential."""

    def __init__(self, rate: float, rng: random.Random | None) -> None:
        self.interval_ns = 1e9 / rate
        self.rng = rng
        self.count = 0

    def __iter__(self) -> _Gaps:
        return self

    def __next__(self) -> int:
        if self.rng is not None:
            return max(1, round(self.rng.expovariate(1.0) * self.interval_ns))
        self.count += 1
        return round(self.count * self.interval_ns) - round((self.count - 1) * self.interval_ns)


def latency_growth_ms(latencies: Sequence[tuple[int, int]], middle_ns: int) -> float | None:
    """Return the median latency of the calls due after ``middle_ns`` less that of those before, in ms.

    ``latencies`` are (intended start, latency) pairs, ns. ``None`` when a half has fewer
    than :data:`MIN_HALF_CALLS` calls.
    """
    first = sorted(lat for due, lat in latencies if due < middle_ns)
    second = sorted(lat for due, lat in latencies if due >= middle_ns)
    if len(first) < MIN_HALF_CALLS or len(second) < MIN_HALF_CALLS:
        return None
    return (percentile(second, 50) - percentile(first, 50)) / NS_PER_MS


def piled_up(issued: int, refused: int, completed: int) -> bool:
    """Return whether the calls in flight grew over the window beyond its chance swings.

    They grew by what arrived (``issued`` less ``refused``) less what ``completed``: a queue
    growing by more than :data:`PILED_SHARE` of the window's calls (and a few) is not
    sustained, whatever the halves' medians say. A backlog carried in from the warm-up
    kept them level while completions fell 17 % short of arrivals (pure Python through
    threads at 1.4 CPUs of work, 2026-12-01).
    """
    return issued - refused - completed > max(MIN_HALF_CALLS, PILED_SHARE * issued)


def growth_allowance_ms(fastest_ns: int) -> float:
    """Return the growth (ms) that is noise: :data:`GROWTH_FLOOR_MS`, or :data:`GROWTH_SHARE` of a call.

    A call is the fastest one seen (warm-up included): the work without a queue. Relative to
    the window's own latencies instead, a backlog carried in from the warm-up would excuse
    any growth.
    """
    return max(GROWTH_FLOOR_MS, GROWTH_SHARE * fastest_ns / NS_PER_MS)


class Alarm(Protocol):
    """Wakes the scheduler at a time on ``perf_counter_ns``'s clock, or at once when rung."""

    def arm(self, when_ns: int) -> None:
        """Ring at ``when_ns`` (replacing any earlier arming)."""

    async def wait(self) -> None:
        """Return once rung (by the time armed, or by :meth:`ring`)."""

    def ring(self) -> None:
        """Wake the waiter now."""

    def close(self) -> None:
        """Release what the alarm holds."""


class LoopAlarm:
    """An alarm on the loop's own timers: portable, as late as they are (up to a millisecond)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.rung: asyncio.Future[None] = loop.create_future()
        self.handle: asyncio.TimerHandle | None = None

    def arm(self, when_ns: int) -> None:
        """Ring after the delay to ``when_ns``."""
        if self.handle is not None:
            self.handle.cancel()
        self.handle = self.loop.call_later(max(0, when_ns - clock()) / 1e9, self.ring)

    async def wait(self) -> None:
        """Return once rung."""
        await self.rung
        self.rung = self.loop.create_future()

    def ring(self) -> None:
        """Wake the waiter now."""
        if not self.rung.done():
            self.rung.set_result(None)

    def close(self) -> None:
        """Cancel the timer."""
        if self.handle is not None:
            self.handle.cancel()


class TimerfdAlarm(LoopAlarm):
    """An alarm on a one-shot kernel timer (``timerfd``) the loop watches as it watches a socket."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        # The probe's timerfd plumbing; created disarmed, armed for each call.
        self.libc = probe._libc()
        self.fd = int(self.libc.timerfd_create(time.CLOCK_MONOTONIC, os.O_NONBLOCK | os.O_CLOEXEC))
        if self.fd < 0:
            raise probe._errno_error("timerfd_create")
        loop.add_reader(self.fd, self._readable)

    def arm(self, when_ns: int) -> None:
        """Set the kernel timer to ``when_ns`` (absolute, ``CLOCK_MONOTONIC``)."""
        spec = probe._Itimerspec(probe._Timespec(0, 0), probe._Timespec(when_ns // 10**9, when_ns % 10**9))
        if self.libc.timerfd_settime(self.fd, probe._TFD_TIMER_ABSTIME, ctypes.byref(spec), None) != 0:
            raise probe._errno_error("timerfd_settime")

    def _readable(self) -> None:
        try:
            os.read(self.fd, 8)
        except BlockingIOError:
            return
        self.ring()

    def close(self) -> None:
        """Stop watching the timer and close it."""
        if self.fd >= 0:
            self.loop.remove_reader(self.fd)
            os.close(self.fd)
            self.fd = -1


def pool(raws: Sequence[ArrivalsRaw], ordered: Sequence[float], achieved: Sequence[float]) -> RateFigures:
    """Return a rate cell's figures from its units' raw figures, pooled sorted latencies, achieved rates."""
    first = raws[0]
    return RateFigures(
        offered_ops_s=first.offered_ops_s,
        arrivals=first.arrivals,
        achieved_ops_s=sum(achieved) / len(achieved) if achieved else 0.0,
        latency_ms=CallLatency(
            p50=percentile(ordered, 50), p90=percentile(ordered, 90), p99=percentile(ordered, 99),
            p999=percentile(ordered, 99.9), max=ordered[-1],
        ) if ordered else None,
        issued=sum(r.issued for r in raws),
        refused=sum(r.refused for r in raws),
        unfinished=sum(r.unfinished for r in raws),
        in_flight_max=max(r.in_flight_max for r in raws),
        max_in_flight=first.max_in_flight,
        latency_growth_ms_s=sum(r.growth_ms_s for r in raws) / len(raws),
        sustained=all(r.sustained for r in raws),
    )
