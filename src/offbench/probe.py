"""The responsiveness probe: measures how late the event loop wakes a coroutine that asked to run.

The probe ticks on a fixed schedule (every ``interval``) for the measured window and
records, for each tick, its *lag*: wake-up time minus scheduled time, read with
``time.perf_counter_ns()``. ``loop.time()`` is never used, because uvloop's clock and
timers are millisecond-grained and would quantise every lag to 0, 1, 2 ms.

Coordinated omission. A loop stalled for 200 ms wakes the probe once, late by 200 ms,
but about 200 ticks were due in that time and none was taken. Like HdrHistogram's
``recordValueWithExpectedInterval``, :class:`LagRecorder` back-fills the missing ticks
(200 - 1, 200 - 2, ... ms), so the stall weighs as 200 ms of bad latency in the
percentiles instead of as one sample. The raw count is kept beside the corrected one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

NS_PER_MS = 1_000_000


@dataclass
class LagRecorder:
    """Collects lag samples (ns) with coordinated-omission correction and stall accounting."""

    interval_ns: int
    stall_threshold_ns: int
    samples: list[int] = field(default_factory=list)
    """Lag of every tick, observed and back-filled."""
    deadlines: list[int] = field(default_factory=list)
    """When each of ``samples``' ticks was due, so a part of the window can be summarised alone."""
    raw_count: int = 0
    stalled_ns: int = 0
    """Total lag of the ticks later than ``stall_threshold_ns`` (for availability)."""
    blocked_ns: int = 0
    """Total lag of the ticks later than one interval: time the loop could not run the probe."""

    def record(self, lag_ns: int, deadline_ns: int = 0) -> None:
        """Record the lag of the tick due at ``deadline_ns``, plus the ticks the stall made it miss."""
        lag_ns = max(0, lag_ns)
        self.raw_count += 1
        self.samples.append(lag_ns)
        self.deadlines.append(deadline_ns)
        if lag_ns > self.stall_threshold_ns:
            self.stalled_ns += lag_ns
        if lag_ns <= self.interval_ns:
            return
        self.blocked_ns += lag_ns
        missing = lag_ns - self.interval_ns
        due = deadline_ns + self.interval_ns
        while missing >= self.interval_ns:
            self.samples.append(missing)
            self.deadlines.append(due)
            missing -= self.interval_ns
            due += self.interval_ns

    def between(self, start_ns: int, end_ns: int) -> list[int]:
        """Return the lags of the ticks due in ``[start_ns, end_ns)``."""
        return [
            lag for lag, due in zip(self.samples, self.deadlines, strict=True) if start_ns <= due < end_ns
        ]

    @property
    def corrected_count(self) -> int:
        """Number of samples including the back-filled ones."""
        return len(self.samples)


async def run_probe(
    recorder: LagRecorder,
    start_ns: int,
    end_ns: int,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> None:
    """Tick every ``recorder.interval_ns`` from ``start_ns`` until ``end_ns``, recording lag.

    Deadlines come from the schedule (``start + k * interval``), never from "now +
    interval", so lag does not accumulate as drift. After a late wake-up the next
    deadline is the first scheduled tick still in the future; the ticks skipped are
    the ones :meth:`LagRecorder.record` back-fills. A wake-up before the deadline (uvloop
    rounds timers to whole milliseconds) counts as on time.

    Cancelling the task stops the probe; what it recorded so far stays in ``recorder``.
    """
    interval = recorder.interval_ns
    deadline = start_ns
    while deadline < end_ns:
        delay = deadline - clock()
        await asyncio.sleep(delay / 1e9 if delay > 0 else 0)
        now = clock()
        lag = now - deadline
        recorder.record(lag, deadline)
        deadline += interval * (1 + max(0, lag) // interval)
