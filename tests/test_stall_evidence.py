"""Stall evidence: the watchdog names the code that blocked the loop, and only when it did."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import msgspec
import pytest

from offbench.measure import watchdog, worker
from offbench.measure.probe import NS_PER_MS, LagRecorder
from offbench.measure.wire import WorkerReport
from offbench.model import results
from offbench.model.cells import CellSpec
from offbench.model.results import CellResult
from offbench.render import terminal as report
from offbench.run import runner
from tests.builders import sample_run
from tests.cells import measure
from tests.run_cli import offbench

SLEEP_50 = {"duration_ms": 50.0}


def _names_the_sleep(cell: CellResult) -> bool:
    return any(
        "time.sleep" in frame.code and frame.file.endswith("offbench/workloads/sleep.py")
        for stall in cell.stall_evidence
        for frame in stall.frames
    )


@pytest.mark.workers
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_direct_sleep_is_caught_in_time_sleep_in_the_workload(loop: str) -> None:
    cell = measure("direct", loop, params=SLEEP_50)
    assert cell.stall_evidence, "a loop blocked by 50 ms sleeps left no evidence"
    assert len(cell.stall_evidence) <= watchdog.KEEP
    durations = [stall.duration_ms for stall in cell.stall_evidence]
    assert durations == sorted(durations, reverse=True)
    # Each stall is at least one whole 50 ms sleep; the margin is for where the tick fell.
    assert durations[0] >= 30.0
    assert cell.loop_lag_ms is not None
    assert durations[0] <= cell.loop_lag_ms.max + 0.01
    assert _names_the_sleep(cell)
    # The loop's callback timings name the call: one that lasted the whole sleep at least.
    longest = cell.stall_evidence[0]
    assert longest.callbacks is not None
    assert longest.callbacks >= 1
    assert longest.longest_callback_ms is not None
    assert longest.longest_callback_ms >= 49.9
    # The harness that called the workload (strategy, worker, asyncio) is trimmed away.
    top = cell.stall_evidence[0].frames[0]
    assert (top.function, top.code) == ("pause", "time.sleep(seconds)")


@pytest.mark.workers
def test_offloaded_sleep_leaves_no_evidence() -> None:
    cell = measure("to-thread", params=SLEEP_50)
    assert cell.stall_evidence == []


def _cell(evidence_threshold_ms: float) -> CellSpec:
    return CellSpec(
        workload="sleep", params=SLEEP_50, strategy="direct", loop="asyncio", concurrency=1,
        duration_s=0.3, warmup_s=0.05, probe_interval_ms=1.0, stall_threshold_ms=10.0,
        evidence_threshold_ms=evidence_threshold_ms,
    )


def test_threshold_zero_records_nothing_and_starts_no_watchdog(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[watchdog.Watchdog] = []
    real_start = watchdog.Watchdog.start

    def spy(self: watchdog.Watchdog) -> None:
        started.append(self)
        real_start(self)

    monkeypatch.setattr(watchdog.Watchdog, "start", spy)
    reports: list[WorkerReport] = []
    # In this process, so the spy sees whether a watchdog starts.
    worker.measure(_cell(0.0), reports.append)
    assert started == []
    assert reports[0].measurement is not None
    assert reports[0].measurement.stall_evidence == []
    assert reports[0].measurement.blocked_s > 0  # the loop did stall: evidence was only off

    worker.measure(_cell(20.0), reports.append)
    assert len(started) == 1
    assert reports[1].measurement is not None
    assert reports[1].measurement.stall_evidence
    # Joined at the window's end: no_leaks would fail the test otherwise; say it here too.
    assert not any(t.name == "offbench-watchdog" for t in threading.enumerate())


@pytest.mark.workers
def test_a_stall_longer_than_one_call_is_told_as_callbacks_in_a_row() -> None:
    # 10 ms sleeps on the loop: the probe's tick waits behind one (its timerfd reader is
    # queued after the next sleep), then its task step behind another, so stalls beyond
    # 20 ms are made of several callbacks, none of which is as long as the stall.
    spec = msgspec.structs.replace(_cell(20.0), params={"duration_ms": 10.0}, duration_s=0.5)
    cell = runner.run_cell(spec, timeout_s=60.0)
    assert cell.ok, cell.error
    assert cell.stall_evidence, "10 ms sleeps back to back left no stall beyond 20 ms"
    for stall in cell.stall_evidence:
        assert stall.callbacks is not None
        assert stall.longest_callback_ms is not None
        assert stall.longest_callback_ms >= 9.9, "every stall overlaps at least one whole sleep"
    assert any(
        s.callbacks and s.callbacks >= 2 and s.longest_callback_ms and s.longest_callback_ms < s.duration_ms
        for s in cell.stall_evidence
    ), cell.stall_evidence
    line = report.stall_line(cell)
    assert "callbacks in a row, the longest " in line, line


@pytest.mark.workers
def test_without_callback_timing_a_stall_does_not_say_what_it_was_made_of() -> None:
    cell = runner.run_cell(msgspec.structs.replace(_cell(20.0), utilisation=False), timeout_s=60.0)
    assert cell.ok, cell.error
    assert cell.stall_evidence
    assert all(s.callbacks is None and s.longest_callback_ms is None for s in cell.stall_evidence)
    assert "callback" not in report.stall_line(cell)


@pytest.mark.parametrize(
    ("callbacks", "longest", "told"),
    [
        (None, None, "blocked for 48.0 ms in time.sleep"),
        (0, 0.0, "48.0 ms (no timed callback was running) in"),
        (1, 48.5, "48.0 ms (one callback) in"),
        (3, 16.2, "48.0 ms (3 callbacks in a row, the longest 16.2 ms) in"),
    ],
)
def test_the_evidence_line_says_what_the_stall_was_made_of(
    callbacks: int | None, longest: float | None, told: str
) -> None:
    frame = results.Frame(file="app.py", line=3, function="f", code="time.sleep(x)")
    stall = results.StallEvidence(duration_ms=48.0, callbacks=callbacks, longest_callback_ms=longest,
                                  frames=[frame])
    cell = msgspec.structs.replace(sample_run().results[0], stall_evidence=[stall])
    assert told in report.stall_line(cell)


@pytest.mark.workers
def test_evidence_off_in_a_worker_process() -> None:
    cell = runner.run_cell(_cell(0.0), timeout_s=60.0)
    assert cell.ok, cell.error
    assert cell.stall_evidence == []


@pytest.mark.workers
def test_run_prints_the_evidence_line() -> None:
    done = offbench("run", "--quick", "-w", "sleep", "-s", "direct", "-l", "asyncio", "-c", "4",
                    "--no-semantics", "--no-chart")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Stall evidence (each cell's longest stall beyond 20 ms)" in done.stdout
    line = next(line for line in done.stdout.splitlines() if "the loop was blocked for" in line)
    assert line.strip().startswith("sleep / direct / asyncio / c=4: the loop was blocked for ")
    assert "in time.sleep(seconds), called from offbench/workloads/sleep.py:" in line
    assert line.endswith("(pause)")


def test_files_without_the_field_still_load() -> None:
    data = msgspec.json.decode(results.encode(sample_run()))
    for cell in data["results"]:
        del cell["stall_evidence"]
    run = results.decode(msgspec.json.encode(data))
    assert run.results[0].stall_evidence == []


def test_evidence_round_trips() -> None:
    stall = results.StallEvidence(duration_ms=48.0, frames=[results.Frame(
        file="offbench/workloads/sleep.py", line=13, function="pause", code="time.sleep(seconds)")])
    run = sample_run()
    cell = msgspec.structs.replace(run.results[0], stall_evidence=[stall])
    run = msgspec.structs.replace(run, results=[cell])
    assert results.decode(results.encode(run)) == run


# The watchdog's logic, without real stalls.

HARNESS = watchdog.__file__.replace("watchdog.py", "strategies/stdlib.py")
SLEEP = watchdog.__file__.replace("measure/watchdog.py", "workloads/sleep.py")
USER = "/somewhere/app/handlers.py"


def test_frames_cut_at_the_harness_that_called_the_user_code() -> None:
    stack = [
        ("/usr/lib/python3.11/threading.py", 320, "Condition.wait"),
        (USER, 12, "handle"),
        (HARNESS, 27, "Direct.call"),
        ("/usr/lib/python3.11/asyncio/events.py", 80, "Handle._run"),
        ("/work/cli.py", 3, "main"),
    ]
    kept = watchdog.frames(stack)
    # What the user's code called (even threading) stays; the strategy and what is outside goes.
    assert [f.function for f in kept] == ["Condition.wait", "handle"]


def test_a_stack_of_harness_only_is_kept_whole() -> None:
    stack = [(HARNESS, 27, "Direct.call"), ("/usr/lib/python3.11/asyncio/events.py", 80, "Handle._run")]
    assert [f.function for f in watchdog.frames(stack)] == ["Direct.call", "Handle._run"]


def test_frames_carry_the_source_line_and_a_short_path() -> None:
    source = Path(SLEEP).read_text().splitlines()
    line = next(i for i, text in enumerate(source, 1) if "time.sleep(" in text)
    (frame,) = watchdog.frames([(SLEEP, line, "pause"), (HARNESS, 27, "Direct.call")])
    assert frame.file == "offbench/workloads/sleep.py"
    assert frame.code == "time.sleep(seconds)"


def test_stall_duration_is_the_probe_lag_of_the_overdue_tick() -> None:
    recorder = LagRecorder(NS_PER_MS, 10 * NS_PER_MS)
    recorder.record(0, 1_000 * NS_PER_MS)
    recorder.record(48 * NS_PER_MS, 1_001 * NS_PER_MS)  # served 49 ticks
    samples = [
        watchdog.Sample(1_001 * NS_PER_MS, [(SLEEP, 13, "pause")]),
        watchdog.Sample(5_000 * NS_PER_MS, [(SLEEP, 13, "pause")]),  # never seen by the probe
    ]
    (stall,) = watchdog.evidence(samples, recorder)
    assert stall.duration_ms == 48.0


def test_samples_of_stalls_that_ended_before_the_threshold_are_dropped() -> None:
    # The watchdog samples at half the threshold; a stall that stopped short of it is no evidence.
    recorder = LagRecorder(NS_PER_MS, 10 * NS_PER_MS)
    recorder.record(12 * NS_PER_MS, 1_000 * NS_PER_MS)
    recorder.record(30 * NS_PER_MS, 2_000 * NS_PER_MS)
    samples = [watchdog.Sample(due * NS_PER_MS, [(SLEEP, 13, "pause")]) for due in (1_000, 2_000)]
    (stall,) = watchdog.evidence(samples, recorder, threshold_ns=20 * NS_PER_MS)
    assert stall.duration_ms == 30.0
    assert len(watchdog.evidence(samples, recorder)) == 2


def test_watchdog_samples_once_per_stall_and_never_when_the_heartbeat_is_fresh() -> None:
    recorder = LagRecorder(NS_PER_MS, 10 * NS_PER_MS)
    dog = watchdog.Watchdog(recorder, 5 * NS_PER_MS)
    recorder.next_due_ns = time.perf_counter_ns() + 10**12  # far ahead: never overdue
    dog.start()
    try:
        time.sleep(0.03)
        assert dog.samples == []
        recorder.next_due_ns = time.perf_counter_ns()  # now overdue, and staying so
        time.sleep(0.05)  # blocks this (the watched) thread, in time.sleep
    finally:
        sampled = dog.stop()
    assert len(sampled) == 1
    assert sampled[0].stack[0][2].startswith("test_watchdog_samples_once_per_stall")
    assert not any(t.name == "offbench-watchdog" for t in threading.enumerate())
