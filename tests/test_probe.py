"""The probe's physics and bookkeeping: coordinated omission, resolution, percentiles."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offbench.measure.probe import (
    NS_PER_MS,
    TICK_SOURCES,
    TICKS_ENV,
    LagRecorder,
    default_source,
    run_probe,
    timerfd_available,
)
from offbench.run.aggregate import availability
from offbench.stats import percentile

MS = NS_PER_MS


def test_small_lag_is_one_sample() -> None:
    recorder = LagRecorder(interval_ns=MS, stall_threshold_ns=10 * MS)
    recorder.record(MS // 2)
    assert recorder.samples == [MS // 2]
    assert recorder.raw_count == 1
    assert recorder.stalled_ns == 0


def test_long_lag_backfills_missed_ticks_like_hdrhistogram() -> None:
    recorder = LagRecorder(interval_ns=MS, stall_threshold_ns=10 * MS)
    served = recorder.record(100 * MS, deadline_ns=7 * MS)
    # The ticks due at 7, 8, ... 107 ms all fell due by the wake-up at 107 ms.
    assert served == 101
    assert recorder.raw_count == 1
    assert recorder.corrected_count == 101
    assert recorder.samples[:3] == [100 * MS, 99 * MS, 98 * MS]
    assert recorder.samples[-1] == 0
    assert recorder.deadlines[:2] == [7 * MS, 8 * MS]
    assert recorder.stalled_ns == 100 * MS
    assert recorder.blocked_ns == 100 * MS


def test_a_kernel_tick_count_overrides_the_count_the_lag_implies() -> None:
    recorder = LagRecorder(interval_ns=MS, stall_threshold_ns=10 * MS)
    # A tick fell due between the timerfd's read and the clock's: the read's count rules.
    assert recorder.record(3 * MS + 10, ticks=3) == 3
    assert recorder.samples == [3 * MS + 10, 2 * MS + 10, MS + 10]


def test_ticks_due_after_the_window_are_not_the_windows() -> None:
    # The host took the process away across the window's end (a busy-core CI run read 403
    # ticks for a 400 ms window, 2026-12-02): the wake-up 5 ms late for the tick due 2 ms
    # before the end serves the two ticks of the window, not the three due after it.
    for counted in (None, 6):
        recorder = LagRecorder(interval_ns=MS, stall_threshold_ns=10 * MS)
        assert recorder.record(5 * MS, deadline_ns=398 * MS, ticks=counted, end_ns=400 * MS) == 2
        assert recorder.deadlines == [398 * MS, 399 * MS]
        assert recorder.samples == [5 * MS, 4 * MS]
        # The stall itself is the loop's, whole: only the count of ticks stops at the end.
        assert recorder.blocked_ns == 5 * MS


def test_negative_lag_counts_as_on_time() -> None:
    recorder = LagRecorder(interval_ns=MS, stall_threshold_ns=10 * MS)
    recorder.record(-300_000)
    assert recorder.samples == [0]


def test_availability_counts_only_stalls_above_threshold() -> None:
    recorder = LagRecorder(interval_ns=MS, stall_threshold_ns=10 * MS)
    recorder.record(5 * MS)
    recorder.record(250 * MS)
    assert recorder.stalled_ns == 250 * MS
    assert availability(recorder.stalled_ns / 1e9, window_s=1.0) == pytest.approx(0.75)
    assert availability(3.0, window_s=1.0) == 0.0


SOURCES = [
    pytest.param(
        name, marks=pytest.mark.skipif(name == "timerfd" and not timerfd_available(), reason="Linux")
    )
    for name in TICK_SOURCES
]


async def _probe_with_stall(stall_s: float, window_s: float, source: str | None = None) -> LagRecorder:
    recorder = LagRecorder(interval_ns=MS, stall_threshold_ns=10 * MS)
    start = time.perf_counter_ns() + 20 * MS
    end = start + int(window_s * 1e9)
    asyncio.get_running_loop().call_later(0.1, time.sleep, stall_s)
    await run_probe(recorder, start, end, source=source)
    return recorder


def _on(loop_name: str, probe: Coroutine[None, None, LagRecorder]) -> LagRecorder:
    from offbench import loops
    with asyncio.Runner(loop_factory=loops.get(loop_name).factory()) as runner:
        return runner.run(probe)


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("loop_name", ["asyncio", "uvloop"])
def test_probe_records_a_100ms_block_as_about_100_samples(loop_name: str, source: str) -> None:
    recorder = _on(loop_name, _probe_with_stall(0.1, 0.4, source))
    backfilled = recorder.corrected_count - recorder.raw_count
    assert backfilled >= 90
    assert max(recorder.samples) >= 95 * MS
    # Every tick of the window is recorded once, whatever made it late.
    assert recorder.corrected_count == pytest.approx(400, abs=2)
    assert recorder.deadlines == sorted(set(recorder.deadlines))


@pytest.mark.parametrize("source", SOURCES)
def test_lag_is_not_millisecond_quantised_on_uvloop(source: str) -> None:
    recorder = _on("uvloop", _probe_with_stall(0.0, 0.3, source))
    sub_ms = {lag % MS for lag in recorder.samples if lag > 0}
    # uvloop's own clock would give only whole milliseconds (remainder 0).
    assert len(sub_ms) > 20
    assert any(remainder not in (0,) for remainder in sub_ms)


@pytest.mark.skipif(not timerfd_available(), reason="timerfd is Linux only")
def test_timerfd_removes_asyncios_millisecond_timer_rounding() -> None:
    timers = _on("asyncio", _probe_with_stall(0.0, 0.4, "loop-timers"))
    kernel = _on("asyncio", _probe_with_stall(0.0, 0.4, "timerfd"))
    # epoll rounds asyncio's sleep timeouts up to whole milliseconds: an idle loop's
    # timer lag walks through [0, 1 ms), median about 0.5 ms. A timerfd tick is read
    # as soon as it is due.
    assert percentile(sorted(timers.samples), 50) > 0.2 * MS
    assert percentile(sorted(kernel.samples), 50) < percentile(sorted(timers.samples), 50) / 2


def test_the_tick_source_can_be_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TICKS_ENV, "loop-timers")
    assert default_source() == "loop-timers"
    monkeypatch.setenv(TICKS_ENV, "no-such-source")
    assert default_source() == ("timerfd" if timerfd_available() else "loop-timers")


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=200), st.floats(0, 100))
def test_percentile_lies_within_the_data_and_grows_with_q(values: list[float], q: float) -> None:
    ordered = sorted(values)
    value = percentile(ordered, q)
    assert ordered[0] <= value <= ordered[-1]
    assert percentile(ordered, 0) == ordered[0]
    assert percentile(ordered, 100) == ordered[-1]
    assert percentile(ordered, min(100.0, q + 1)) >= value - 1e-9


def test_percentile_interpolates_like_numpy() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([10.0], 99) == 10.0
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
