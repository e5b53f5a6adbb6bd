"""Measure one unit of a cell inside its own process: the only place where timing happens.

:func:`measure` prepares the workload, times the host's speed reference
(:mod:`offbench.measure.reference`), starts the cell's event loop and the strategy,
runs the workload tasks through a warm-up and the measured window with the
responsiveness probe beside them, and hands a :class:`~offbench.measure.wire.WorkerReport`
(the raw :class:`~offbench.measure.wire.Measurement`, or the failure) to ``deliver``
*before* tearing anything down: a teardown that hangs (a thread stuck in a blocking
call, a pool that will not shut down) can then never lose the measurement.

The heap the process holds before the unit is frozen out of the garbage collector
(``gc.freeze``): the collections inside the window are then the workload's own, not
walks of the parent's objects the worker was forked with.

The warm-up, unless fixed, lasts until each task's first call has returned (every thread
or process the tasks use has then run a call) and at least :data:`MIN_WARMUP_S`. The
window, unless fixed, is sized from the warm-up's calls: long enough for each task to
complete ``effort.calls_per_task`` more, and never shorter than ``effort.min_window_s``
(:func:`window_seconds`). A cell's first unit sizes it; the runner gives the cell's
other units the same window, so they are alike.

That is the closed loop (:class:`Callers`). A rate cell runs an open loop instead
(:class:`offbench.measure.arrivals.OpenLoop`): calls start on a schedule, whatever is in
flight, and are timed from their intended start; it warms up and sizes its window its
own way. Either is the window's *load* (:class:`Load`); the rest of the window (probe,
watchdog, utilisation, drain) is the same for both.

:func:`child_main` is the entry point in a worker process: it delivers the result
over a pipe (never stdout, which user code may print to) and leaves with
``os._exit``, skipping interpreter shutdown, which would wait for stuck threads.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, cast

import msgspec

from offbench import loops, strategies, workloads
from offbench.measure import arrivals, breakdown, calls, cpu, reference, utilisation, watchdog
from offbench.measure.probe import NS_PER_MS, LagRecorder, run_probe
from offbench.measure.wire import Measurement, WorkerReport
from offbench.model.cells import CellSpec
from offbench.model.params import Params
from offbench.model.results import CellResult, StallEvidence, failed_cell
from offbench.model.settings import Effort
from offbench.processes import report_and_exit
from offbench.strategies import Strategy

Deliver = Callable[[WorkerReport], None]
clock = time.perf_counter_ns


@dataclass
class Window:
    """Raw timings of a cell's warm-up and measured window (ns, ``perf_counter_ns``)."""

    start_ns: int
    end_ns: int
    recorder: LagRecorder
    ops: list[tuple[int, int]]
    """(submitted, completed) of every call that completed."""
    stamps: list[tuple[int, int, int, int]] | None
    """(submitted, started, finished, resumed) of the same calls when they are split, else ``None``."""
    unfinished: list[int]
    """When each call still in flight after the drain (see :func:`drain_seconds`) was submitted."""
    stall_evidence: list[StallEvidence]
    """The longest stalls beyond the evidence threshold: the watchdog's samples of the loop thread's stack."""
    utilisation: utilisation.UtilisationRaw | None = None
    """How busy callbacks kept the loop in the window, checked against the probe's late wake-ups."""
    warmup_latency_ms: float | None = None
    """The median call of the warm-up."""
    cpu_s: float | None = None
    """CPU time of this process and its descendants during the window."""
    arrived: arrivals.Arrived | None = None
    """A rate cell's open-loop figures; ``None`` for a closed loop."""


MIN_WARMUP_S = 0.01
"""The shortest warm-up: a few calls of a fast function, so the pool's threads have all started."""
FOREVER_NS = 1 << 62
"""An end no window reaches: the meter's until the window is known."""


def measure(cell: CellSpec, deliver: Deliver) -> None:
    """Measure ``cell`` in this process and pass its result to ``deliver``, then clean up."""
    backend = loops.get(cell.loop)
    try:
        workload = workloads.get(cell.workload)
        details = workload.prepare(cell.params)
        fn = calls.with_payload(workload.make_call(cell.params, cell.resources), cell.payload_bytes)
    except Exception as exc:
        deliver(WorkerReport(failure=failed(cell, exc, loop_version=backend.version())))
        return
    prepare = functools.partial(workload.prepare, cell.params)
    # Everything this process holds before the unit (a forked worker: the whole parent's heap)
    # leaves the collector's generations: its collections then walk only what the unit
    # allocates. Without it a worker forked late in a run, from a parent whose heap had
    # grown, met a full collection of that heap inside its window (30-45 ms, the loop
    # blocked and its pages copied on write) and every worker a 3 ms one.
    gc.freeze()
    host = Host(reference_ms=reference.spin_ms(), wakeup_us=reference.wakeup_us())
    with asyncio.Runner(loop_factory=backend.factory()) as runner:
        runner.run(_measure_on_loop(cell, fn, prepare, details, backend.version(), deliver, host))


@dataclass(frozen=True)
class Host:
    """The speed reference a unit took before its warm-up."""

    reference_ms: float
    wakeup_us: float


async def _measure_on_loop(
    cell: CellSpec,
    fn: Callable[[], object],
    prepare: Callable[[], object],
    details: Params,
    loop_version: str,
    deliver: Deliver,
    host: Host | None = None,
) -> None:
    strategy = strategies.get(cell.strategy).from_cell(cell)
    timed = splits_calls(strategy)
    try:
        began = time.perf_counter()
        details = details | await strategy.start(calls.Timed(fn) if timed else fn, prepare)
        startup_s = time.perf_counter() - began
        window = await _run_window(cell, strategy, timed)
    except Exception as exc:
        report = WorkerReport(failure=failed(cell, exc, loop_version=loop_version, details=details))
    else:
        if not window.ops and window.unfinished:
            report = WorkerReport(failure=_stuck(cell, loop_version, details))
        else:
            report = WorkerReport(measurement=_raw(window, startup_s, loop_version, details, host))
    deliver(report)
    await strategy.stop()


def splits_calls(strategy: Strategy) -> bool:
    """Return whether ``strategy``'s calls get a breakdown: offloaded, and stamped on our clock.

    ``direct`` runs the function on the loop (nothing to split); a strategy whose
    workers may be on another machine (``same_clock`` false) stamps on another clock.
    """
    return strategy.runs_on != "loop" and strategy.same_clock


def _stuck(cell: CellSpec, loop_version: str, details: Params) -> CellResult:
    """Return the ``timeout`` result of a cell in which no call completed in a fixed warm-up and window."""
    waited = (cell.warmup_s or 0.0) + (cell.duration_s or 0.0)
    return failed_cell(
        cell,
        "timeout",
        f"no call completed in the {waited:g} s of warm-up and window: the function hangs, or "
        "takes longer than the window (leave --duration and --warmup unset: offbench then sizes them)",
        loop_version=loop_version,
        details=details,
        worker_pid=os.getpid(),
    )


async def _run_window(cell: CellSpec, strategy: Strategy, timed: bool = False) -> Window:
    """Run warm-up and window; return once the calls in flight at its end finished or gave up.

    The tasks start calling at once; the window starts when the warm-up ends (see the
    module's docstring) and lasts ``cell.duration_s``, or :func:`window_seconds` of the
    warm-up's calls. Calls still in flight at its end then get :func:`drain_seconds` to
    complete (a hung one must not hold the result back for longer); the tasks of those
    that did not are cancelled on the way out. The first exception raised by a call fails
    the cell. The stall watchdog (if ``evidence_threshold_ms``) watches from the window's
    start (the probe's first tick) until the probe's last, and is joined before returning.
    Unless the cell says not to, every callback the loop runs from the window's start to
    the end of the drain is timed (:mod:`offbench.measure.utilisation`). With ``timed``,
    the strategy runs a :class:`~offbench.measure.calls.Timed` function and each call's
    four stamps are kept too.
    """
    interval_ns = round(cell.probe_interval_ms * NS_PER_MS)
    recorder = LagRecorder(interval_ns, round(cell.stall_threshold_ms * NS_PER_MS))
    deadline = Deadline()
    ops: list[tuple[int, int]] = []
    stamps: list[tuple[int, int, int, int]] | None = [] if timed else None
    metering = utilisation.metering if cell.utilisation else utilisation.unmetered
    # Installed before the tasks are made (uvloop times only what is scheduled after it),
    # with an open window: the window is set once the warm-up has ended.
    with metering(asyncio.get_running_loop(), clock(), FOREVER_NS) as meter:
        load = load_of(cell, strategy, deadline, ops, stamps)
        callers = load.tasks
        opened: list[tuple[int, int, float | None, float | None]] = []

        def open_window() -> None:
            # Synchronous, so that a task whose call ends the warm-up opens the window at
            # once: on a loop held by blocking calls an await here would wait a pass of
            # every task's call (80 ms for 8 direct 10 ms sleeps), twice.
            warmed = sorted(done - sent for sent, done in ops)
            latency_ms = warmed[len(warmed) // 2] / NS_PER_MS if warmed else None
            window_s = cell.duration_s if cell.duration_s is not None else load.window_seconds(latency_ms)
            cpu_began = cpu.tree_cpu_s()
            start_ns = clock() + interval_ns
            end_ns = start_ns + round(window_s * 1e9)
            deadline.end_ns = end_ns
            recorder.next_due_ns = start_ns
            if meter is not None:
                meter.window(start_ns, end_ns)
            if dogs:
                dogs[0].start()
            probes.append(asyncio.create_task(run_probe(recorder, start_ns, end_ns)))
            opened.append((start_ns, end_ns, latency_ms, cpu_began))

        dogs = ([watchdog.Watchdog(recorder, round(cell.evidence_threshold_ms * NS_PER_MS))]
                if cell.evidence_threshold_ms > 0 else [])
        probes: list[asyncio.Task[None]] = []
        try:
            await load.warm_up(open_window)
            if not opened:
                open_window()
            start_ns, end_ns, warmup_latency_ms, cpu_began = opened[0]
            probe = probes[0]
            try:
                pending: set[asyncio.Task[None]] = {probe, *callers}
                try:
                    while not probe.done():
                        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                        for task in done:
                            task.result()
                finally:
                    stalls = dogs[0].stop() if dogs else []
                    cpu_ended = cpu.tree_cpu_s()
                # Calls in flight at the window's end get a moment to finish, so each counts by
                # its real share of the window; the callers submit nothing after the end.
                if pending:
                    done, _ = await asyncio.wait(pending, timeout=drain_seconds((end_ns - start_ns) / 1e9))
                    for task in done:
                        task.result()
            finally:
                probe.cancel()
        finally:
            for dog in dogs:
                dog.stop()
            for task in [*callers, *probes]:
                task.cancel()
    raw = meter.raw(recorder) if meter is not None else None
    threshold_ns = round(cell.evidence_threshold_ms * NS_PER_MS)
    evidence = watchdog.evidence(stalls, recorder, threshold_ns, explain=meter.check if meter else None)
    used = cpu_ended - cpu_began if cpu_began is not None and cpu_ended is not None else None
    return Window(start_ns, end_ns, recorder, ops, stamps, load.unfinished(), evidence, raw,
                  warmup_latency_ms, used, load.arrived(start_ns, end_ns))


class Load(Protocol):
    """What calls the strategy in a window: the closed loop's tasks, or a rate cell's schedule."""

    tasks: list[asyncio.Task[None]]
    """Tasks to watch: the first exception one raises fails the cell; they end after the deadline."""

    async def warm_up(self, open_window: Callable[[], None]) -> None:
        """Return when the warm-up is over (raising a call's exception).

        It may call ``open_window`` itself, synchronously, the moment the warm-up ends;
        if it did not, the window opens as it returns.
        """

    def window_seconds(self, call_ms: float | None) -> float:
        """Return the window to measure, given the warm-up's median call."""

    def unfinished(self) -> list[int]:
        """Return when each call still in flight was submitted (or due)."""

    def arrived(self, start_ns: int, end_ns: int) -> arrivals.Arrived | None:
        """Return the open-loop figures of the window; ``None`` for a closed loop."""


def load_of(cell: CellSpec, strategy: Strategy, deadline: Deadline, ops: list[tuple[int, int]],
            stamps: list[tuple[int, int, int, int]] | None) -> Load:
    """Return what calls ``cell``'s strategy: a rate cell's schedule, else the closed loop's tasks."""
    if cell.rate is not None:
        return arrivals.OpenLoop(cell, strategy, deadline, ops, stamps)
    return Callers(cell, strategy, deadline, ops, stamps)


class Callers:
    """The closed loop: ``cell.concurrency`` tasks calling back to back (:func:`_call_until`)."""

    def __init__(self, cell: CellSpec, strategy: Strategy, deadline: Deadline, ops: list[tuple[int, int]],
                 stamps: list[tuple[int, int, int, int]] | None = None) -> None:
        self.cell = cell
        self.in_flight: dict[int, int] = {}
        self.warm = Warm(asyncio.get_running_loop().create_future(), cell.concurrency)
        self.tasks = [
            asyncio.create_task(_call_until(strategy, deadline, ops, self.in_flight, caller, stamps,
                                            self.warm))
            for caller in range(cell.concurrency)
        ]

    async def warm_up(self, open_window: Callable[[], None]) -> None:
        """Wait until every task's first call returned, and :data:`MIN_WARMUP_S` (:func:`_warm_up`)."""
        await _warm_up(self.cell, self.tasks, self.warm, open_window)

    def window_seconds(self, call_ms: float | None) -> float:
        """Return :func:`window_seconds` of the warm-up's median call."""
        return window_seconds(self.cell.effort, call_ms, self.cell.concurrency)

    def unfinished(self) -> list[int]:
        """Return when each call still in flight was submitted."""
        return list(self.in_flight.values())

    def arrived(self, start_ns: int, end_ns: int) -> None:
        """Return nothing: a closed loop has no schedule."""
        return None


@dataclass
class Deadline:
    """When the tasks stop submitting calls: unknown (never) until the warm-up has ended."""

    end_ns: float = float("inf")


@dataclass
class Warm:
    """Which tasks have had a call return; once all have, and :data:`MIN_WARMUP_S` passed, the window opens.

    The task whose returning call ends the warm-up opens the window itself, in
    :meth:`note`: nothing waits for the loop to come round to a waiting coroutine.
    """

    ended: asyncio.Future[None]
    tasks: int
    began_ns: int = field(default_factory=clock)
    returned: set[int] = field(default_factory=set)
    open_window: Callable[[], None] | None = None

    def note(self, caller: int) -> None:
        """Note that ``caller``'s call returned; end the warm-up if it is over."""
        if self.ended.done():
            return
        self.returned.add(caller)
        if (len(self.returned) == self.tasks and self.open_window is not None
                and clock() - self.began_ns >= MIN_WARMUP_S * 1e9):
            self.open_window()
            self.ended.set_result(None)


async def _warm_up(cell: CellSpec, callers: list[asyncio.Task[None]], warm: Warm,
                   open_window: Callable[[], None]) -> None:
    """Wait out the warm-up: ``cell.warmup_s``, or until the tasks' calls end it (:class:`Warm`).

    A call that raises ends the warm-up with its exception.
    """
    if cell.warmup_s is None:
        warm.open_window = open_window
        done, _ = await asyncio.wait({warm.ended, *callers}, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
        return
    done, _ = await asyncio.wait(callers, timeout=cell.warmup_s, return_when=asyncio.FIRST_COMPLETED)
    for task in done:
        task.result()


CALL_ROOM = 1.1
"""The window's room beyond ``calls_per_unit`` calls: a tenth of a call each, for the host's jitter."""


def window_seconds(effort: Effort, call_ms: float | None, concurrency: int = 1) -> float:
    """Return the window that lets each task complete ``effort.calls_per_task`` calls of ``call_ms``.

    ``call_ms`` is the warm-up's median call, submit to result, at the cell's
    concurrency: a task's time per call, so ``concurrency`` tasks complete that many
    calls in it; the window holds ``effort.calls_per_unit`` calls in all at least, with
    :data:`CALL_ROOM` to spare so that the last of them ends inside it whatever the host's
    jitter (a 500 ms function at c=1 gets 2.75 s, not 1 s: five whole calls, where 2.5 s
    counted four whole ones and a part). Never shorter than ``effort.min_window_s``.
    """
    if call_ms is None:
        return effort.min_window_s
    per_task = effort.calls_per_task * call_ms / 1000
    in_all = effort.calls_per_unit * CALL_ROOM * call_ms / 1000 / max(1, concurrency)
    return max(effort.min_window_s, per_task, in_all)


MIN_DRAIN_S = 0.2
MAX_DRAIN_S = 2.0


def drain_seconds(window_s: float) -> float:
    """Return how long calls in flight at a window's end may take to finish: about a window."""
    return min(MAX_DRAIN_S, max(MIN_DRAIN_S, window_s))


async def _call_until(
    strategy: Strategy,
    deadline: Deadline,
    ops: list[tuple[int, int]],
    in_flight: dict[int, int],
    caller: int,
    stamps: list[tuple[int, int, int, int]] | None = None,
    warm: Warm | None = None,
) -> None:
    """One of the ``concurrency`` tasks: call back to back, timing each call, until the deadline.

    With ``stamps``, the strategy's function is :class:`~offbench.measure.calls.Timed`: each
    call returns when it started and finished, and ``resumed`` is read as this task resumes.
    """
    while (submitted := clock()) < deadline.end_ns:
        in_flight[caller] = submitted
        value = await strategy.call()
        resumed = clock()
        ops.append((submitted, resumed))
        if warm is not None:
            warm.note(caller)
        if stamps is not None:
            _, started, finished = cast("tuple[object, int, int]", value)
            stamps.append((submitted, started, finished, resumed))
    in_flight.pop(caller, None)


def _raw(
    window: Window, startup_s: float, loop_version: str, details: Params, host: Host | None
) -> Measurement:
    recorder = window.recorder
    start, end = window.start_ns, window.end_ns
    # Each call counts by the share of its duration inside the window, not by where it
    # completed: a window not much longer than a call is then not biased low, and calls
    # straddling either edge count in part. A call that never finished counts for nothing.
    share = sum(max(0, min(end, done) - max(start, sent)) / max(1, done - sent) for sent, done in window.ops)
    first = min(window.ops, default=None)
    measured = Measurement(
        elapsed_s=(end - start) / 1e9,
        throughput_ops_s=share / ((end - start) / 1e9),
        latencies_ms=[(done - sent) / NS_PER_MS for sent, done in window.ops if start < done <= end],
        splits_ms=None
        if window.stamps is None
        else [breakdown.split(*s) for s in window.stamps if start < s[3] <= end],
        lags_ms=[lag / NS_PER_MS for lag in recorder.samples],
        lag_samples_raw=recorder.raw_count,
        stalled_s=recorder.stalled_ns / 1e9,
        blocked_s=recorder.blocked_ns / 1e9,
        late_s=recorder.late_ns / 1e9,
        first_call_ms=(first[1] - first[0]) / NS_PER_MS if first else None,
        warmup_latency_ms=window.warmup_latency_ms,
        reference_ms=host.reference_ms if host else None,
        wakeup_us=host.wakeup_us if host else None,
        cpu_s=window.cpu_s,
        cpu_total_s=cpu.tree_cpu_s(),
        utilisation=window.utilisation,
        stall_evidence=window.stall_evidence,
        startup_s=startup_s,
        loop_version=loop_version,
        details=details,
        worker_pid=os.getpid(),
    )
    return measured if window.arrived is None else window.arrived.applied(measured)


def failed(
    cell: CellSpec, exc: BaseException, *, loop_version: str = "", details: Params | None = None
) -> CellResult:
    """Return the ``error`` result of a cell whose workload or strategy raised ``exc``."""
    return failed_cell(
        cell,
        "error",
        f"{type(exc).__name__}: {exc}",
        traceback="".join(traceback.format_exception(exc)),
        loop_version=loop_version,
        details=details,
        worker_pid=os.getpid(),
    )


def child_main(payload: bytes, report_fd: int) -> None:
    """Worker-process entry: measure the cell in ``payload``, report on ``report_fd``, exit."""
    cell = msgspec.json.decode(payload, type=CellSpec)
    # Process pools started here re-run the parent's ``__main__`` in each pool process
    # (multiprocessing's "safe importing of main module"). A worker forked from the CLI,
    # a test runner or a user's script has a main that is not ours to re-run: name this
    # module instead, which is import-safe.
    sys.modules["__main__"] = sys.modules[__name__]

    def deliver(report: WorkerReport) -> None:
        report_and_exit(report_fd, msgspec.json.encode(report))

    measure(cell, deliver)
