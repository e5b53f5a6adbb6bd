"""The probe's physics and bookkeeping: coordinated omission, resolution, percentiles."""

from __future__ import annotations

import asyncio
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offbench.aggregate import availability
from offbench.probe import NS_PER_MS, LagRecorder, run_probe
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
    recorder.record(100 * MS)
    assert recorder.raw_count == 1
    assert recorder.corrected_count == 100
    assert recorder.samples[:3] == [100 * MS, 99 * MS, 98 * MS]
    assert min(recorder.samples) == MS
    assert recorder.stalled_ns == 100 * MS


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


async def _probe_with_stall(stall_s: float, window_s: float) -> LagRecorder:
    recorder = LagRecorder(interval_ns=MS, stall_threshold_ns=10 * MS)
    start = time.perf_counter_ns() + 20 * MS
    end = start + int(window_s * 1e9)
    asyncio.get_running_loop().call_later(0.1, time.sleep, stall_s)
    await run_probe(recorder, start, end)
    return recorder


@pytest.mark.parametrize("loop_name", ["asyncio", "uvloop"])
def test_probe_records_a_100ms_block_as_about_100_samples(loop_name: str) -> None:
    from offbench import loops

    with asyncio.Runner(loop_factory=loops.get(loop_name).factory()) as runner:
        recorder = runner.run(_probe_with_stall(0.1, 0.4))
    backfilled = recorder.corrected_count - recorder.raw_count
    assert backfilled >= 90
    assert max(recorder.samples) >= 95 * MS


def test_lag_is_not_millisecond_quantised_on_uvloop() -> None:
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        recorder = runner.run(_probe_with_stall(0.0, 0.3))
    sub_ms = {lag % MS for lag in recorder.samples if lag > 0}
    # uvloop's own clock would give only whole milliseconds (remainder 0).
    assert len(sub_ms) > 20
    assert any(remainder not in (0,) for remainder in sub_ms)


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
