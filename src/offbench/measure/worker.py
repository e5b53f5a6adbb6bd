"""Measure one cell inside its own process: the only place where timing happens.

:func:`measure` prepares the workload, starts the cell's event loop, runs the
strategy's warm-up and measured window with the responsiveness probe beside the
workload tasks, and hands a :class:`~offbench.run.aggregate.WorkerReport` (the raw
:class:`~offbench.run.aggregate.Measurement`, or the failure) to ``deliver`` *before*
tearing anything down: a teardown that hangs (a thread stuck in a blocking
call, a pool that will not shut down) can then never lose the measurement.

:func:`child_main` is the entry point in a worker process: it delivers the result
over a pipe (never stdout, which user code may print to) and leaves with
``os._exit``, skipping interpreter shutdown, which would wait for stuck threads.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import msgspec

from offbench import loops, strategies, workloads
from offbench.measure import breakdown, calls, utilisation, watchdog
from offbench.measure.probe import NS_PER_MS, LagRecorder, run_probe
from offbench.measure.wire import Measurement, WorkerReport
from offbench.model.cells import CellSpec
from offbench.model.params import Params
from offbench.model.results import CellResult, Samples, StallEvidence, failed_cell
from offbench.processes import report_and_exit
from offbench.stats import mean, percentile
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
    with asyncio.Runner(loop_factory=backend.factory()) as runner:
        runner.run(_measure_on_loop(cell, fn, prepare, details, backend.version(), deliver))


async def _measure_on_loop(
    cell: CellSpec,
    fn: Callable[[], object],
    prepare: Callable[[], object],
    details: Params,
    loop_version: str,
    deliver: Deliver,
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
            report = WorkerReport(measurement=_raw(cell, window, startup_s, loop_version, details))
    deliver(report)
    await strategy.stop()


def splits_calls(strategy: Strategy) -> bool:
    """Return whether ``strategy``'s calls get a breakdown: offloaded, and stamped on our clock.

    ``direct`` runs the function on the loop (nothing to split); a strategy whose
    workers may be on another machine (``same_clock`` false) stamps on another clock.
    """
    return strategy.runs_on != "loop" and strategy.same_clock


def _stuck(cell: CellSpec, loop_version: str, details: Params) -> CellResult:
    """Return the ``timeout`` result of a cell in which no call ever completed."""
    waited = cell.warmup_s + cell.duration_s
    return failed_cell(
        cell,
        "timeout",
        f"no call completed in the {waited:g} s of warm-up and window: the function hangs, or "
        "takes longer than the window (try a longer --duration)",
        loop_version=loop_version,
        details=details,
        worker_pid=os.getpid(),
    )


async def _run_window(cell: CellSpec, strategy: Strategy, timed: bool = False) -> Window:
    """Run warm-up and window; return once the calls in flight at its end finished or gave up.

    Calls still in flight then get :func:`drain_seconds` to complete (a hung one must
    not hold the result back for longer); the tasks of those that did not are
    cancelled on the way out. The first exception raised by a call fails the cell.
    The stall watchdog (if ``evidence_threshold_ms``) watches from the window's start
    (the probe's first tick) until the probe's last, and is joined before returning.
    Unless the cell says not to, every callback the loop runs meanwhile is timed
    (:mod:`offbench.measure.utilisation`), from before the probe starts (uvloop times only
    callbacks scheduled after that) to the end of the drain.
    With ``timed``, the strategy runs a :class:`~offbench.measure.calls.Timed` function and
    each call's four stamps are kept too.
    """
    interval_ns = round(cell.probe_interval_ms * NS_PER_MS)
    recorder = LagRecorder(interval_ns, round(cell.stall_threshold_ms * NS_PER_MS))
    start_ns = clock() + round(cell.warmup_s * 1e9)
    end_ns = start_ns + round(cell.duration_s * 1e9)
    recorder.next_due_ns = start_ns
    dog = None
    if cell.evidence_threshold_ms > 0:
        dog = watchdog.Watchdog(recorder, round(cell.evidence_threshold_ms * NS_PER_MS))
        dog.start()
    ops: list[tuple[int, int]] = []
    stamps: list[tuple[int, int, int, int]] | None = [] if timed else None
    in_flight: dict[int, int] = {}
    metering = utilisation.metering if cell.utilisation else utilisation.unmetered
    with metering(asyncio.get_running_loop(), start_ns, end_ns) as meter:
        probe = asyncio.create_task(run_probe(recorder, start_ns, end_ns))
        callers = [
            asyncio.create_task(_call_until(strategy, end_ns, ops, in_flight, caller, stamps))
            for caller in range(cell.concurrency)
        ]
        try:
            pending: set[asyncio.Task[None]] = {probe, *callers}
            try:
                while not probe.done():
                    done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        task.result()
            finally:
                stalls = dog.stop() if dog else []
            # Calls in flight at the window's end get a moment to finish, so each counts by
            # its real share of the window; the callers submit nothing after the end.
            if pending:
                done, _ = await asyncio.wait(pending, timeout=drain_seconds(cell.duration_s))
                for task in done:
                    task.result()
        finally:
            for task in (probe, *callers):
                task.cancel()
    raw = meter.raw(recorder) if meter is not None else None
    threshold_ns = round(cell.evidence_threshold_ms * NS_PER_MS)
    evidence = watchdog.evidence(stalls, recorder, threshold_ns, explain=meter.check if meter else None)
    return Window(start_ns, end_ns, recorder, ops, stamps, list(in_flight.values()), evidence, raw)


MIN_DRAIN_S = 0.2
MAX_DRAIN_S = 2.0


def drain_seconds(window_s: float) -> float:
    """Return how long calls in flight at a window's end may take to finish: about a window."""
    return min(MAX_DRAIN_S, max(MIN_DRAIN_S, window_s))


async def _call_until(
    strategy: Strategy,
    end_ns: int,
    ops: list[tuple[int, int]],
    in_flight: dict[int, int],
    caller: int,
    stamps: list[tuple[int, int, int, int]] | None = None,
) -> None:
    """One of the ``concurrency`` tasks: call back to back, timing each call, until ``end_ns``.

    With ``stamps``, the strategy's function is :class:`~offbench.measure.calls.Timed`: each
    call returns when it started and finished, and ``resumed`` is read as this task resumes.
    """
    while (submitted := clock()) < end_ns:
        in_flight[caller] = submitted
        value = await strategy.call()
        resumed = clock()
        ops.append((submitted, resumed))
        if stamps is not None:
            _, started, finished = cast("tuple[object, int, int]", value)
            stamps.append((submitted, started, finished, resumed))
    in_flight.pop(caller, None)


def _raw(
    cell: CellSpec, window: Window, startup_s: float, loop_version: str, details: Params
) -> Measurement:
    recorder = window.recorder
    return Measurement(
        elapsed_s=(window.end_ns - window.start_ns) / 1e9,
        latencies_ms=[
            (done - submitted) / NS_PER_MS
            for submitted, done in window.ops
            if window.start_ns < done <= window.end_ns
        ],
        splits_ms=None
        if window.stamps is None
        else [breakdown.split(*s) for s in window.stamps if window.start_ns < s[3] <= window.end_ns],
        lags_ms=[lag / NS_PER_MS for lag in recorder.samples],
        lag_samples_raw=recorder.raw_count,
        stalled_s=recorder.stalled_ns / 1e9,
        blocked_s=recorder.blocked_ns / 1e9,
        samples=_samples(window, cell.samples),
        utilisation=window.utilisation,
        stall_evidence=window.stall_evidence,
        startup_s=startup_s,
        loop_version=loop_version,
        details=details,
        worker_pid=os.getpid(),
    )


def _samples(window: Window, parts: int) -> Samples:
    """Cut the window into ``parts`` equal parts; summarise each from its own calls and ticks.

    A part's throughput counts each call by the share of its duration that fell in the
    part, not by where it completed: a 20 ms part then reads 0.2 of a 100 ms call, not
    0 or 1, so short parts stay comparable while the parts still add up to the window.
    Calls that finished after the window (while draining) count by their real share; a
    call that never finished counts for nothing, since its duration is unknown.
    """
    length = (window.end_ns - window.start_ns) // parts
    spans = [(sent, done, done - sent) for sent, done in window.ops]
    throughput: list[float] = []
    lag_p99: list[float | None] = []
    op_mean: list[float | None] = []
    for index in range(parts):
        start = window.start_ns + index * length
        end = start + length
        share = sum(max(0, min(end, done) - max(start, sent)) / max(1, span) for sent, done, span in spans)
        latencies = [(done - sent) / NS_PER_MS for sent, done in window.ops if start < done <= end]
        lags = sorted(lag / NS_PER_MS for lag in window.recorder.between(start, end))
        throughput.append(share / (length / 1e9))
        lag_p99.append(percentile(lags, 99) if lags else None)
        op_mean.append(mean(latencies) if latencies else None)
    return Samples(
        part_s=length / 1e9, throughput_ops_s=throughput, lag_p99_ms=lag_p99, op_latency_mean_ms=op_mean
    )


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
