"""Section 1: stalls of known length injected at random moments, read by offbench's probe and by aiodebug.

A thread sleeps a random 30-80 ms, then hands the loop a callback that busy-waits for
exactly D ms (``call_soon_threadsafe``): the stall starts when the loop takes the
callback, at a moment unrelated to the probe's ticks. (Stalls started by a timer run in
the loop iteration the probe's own tick woke it for, right after a tick, and read short
by about an interval; no user's stall is that unlucky on average.) The thread waits for
each stall to end before the next gap, so stalls never run back to back.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import threading
import time
from collections.abc import Sequence
from typing import Any

import msgspec

from offbench import loops
from offbench.measure.probe import NS_PER_MS, LagRecorder, default_source, run_probe
from offbench.stats import percentile

from .report import Section, target
from .runs import INTERVAL_MS, STALL_THRESHOLD_MS, child, report

QUANTILES = (90.0, 99.0, 99.9)


class Injection(msgspec.Struct, frozen=True):
    """``count`` stalls of ``stall_ms``, each a random 30-80 ms after the last ended, on ``loop``."""

    loop: str
    stall_ms: float
    count: int
    interval_ms: float = INTERVAL_MS
    seed: int = 1


class Statsd:
    """What aiodebug's ``monitor_loop_lag`` sends to StatsD, kept instead of sent."""

    def __init__(self) -> None:
        self.values_ms: list[float] = []

    def timing(self, metric: str, value: float) -> None:
        """Keep one timing (ms)."""
        self.values_ms.append(value)


class KeepingRaw(LagRecorder):
    """A recorder that also keeps each wake-up's own lag (what an uncorrected probe would keep)."""

    def __init__(self, interval_ns: int, stall_threshold_ns: int) -> None:
        super().__init__(interval_ns, stall_threshold_ns)
        self.raw: list[int] = []

    def record(
        self, lag_ns: int, deadline_ns: int = 0, ticks: int | None = None, end_ns: int | None = None
    ) -> int:
        """Keep the wake-up's lag, then record as offbench does."""
        self.raw.append(max(0, lag_ns))
        return super().record(lag_ns, deadline_ns, ticks, end_ns)


def inject_child(payload: bytes, report_fd: int) -> None:
    """Child entry: run one :class:`Injection` on its loop and report what everyone saw."""
    spec = msgspec.json.decode(payload, type=Injection)
    with asyncio.Runner(loop_factory=loops.get(spec.loop).factory()) as loop_runner:
        report(report_fd, loop_runner.run(inject(spec)))


async def inject(spec: Injection, aiodebug: bool = True) -> dict[str, Any]:
    """Inject the stalls with the probe (and aiodebug's monitor, twice) watching; return all readings."""
    clock = time.perf_counter_ns
    stall_ns = round(spec.stall_ms * NS_PER_MS)
    truth: list[tuple[int, int]] = []
    ended = threading.Event()

    def block() -> None:
        began = clock()
        while clock() - began < stall_ns:
            pass
        truth.append((began, clock()))
        ended.set()

    rng = random.Random(spec.seed)
    gaps = [rng.uniform(30, 80) * NS_PER_MS for _ in range(spec.count)]
    start = clock() + 50 * NS_PER_MS
    end = start + round(sum(gaps) + spec.count * (stall_ns + 5 * NS_PER_MS) + 100 * NS_PER_MS)
    recorder = KeepingRaw(round(spec.interval_ms * NS_PER_MS), round(STALL_THRESHOLD_MS * NS_PER_MS))
    loop = asyncio.get_running_loop()

    def injector() -> None:
        time.sleep(max(0, start - clock()) / 1e9)
        for gap in gaps:
            time.sleep(gap / 1e9)
            ended.clear()
            loop.call_soon_threadsafe(block)
            ended.wait(10)

    coarse, fine = Statsd(), Statsd()
    if aiodebug:
        from aiodebug import monitor_loop_lag

        monitor_loop_lag.enable(coarse, loop=loop)  # its default: every 0.25 s
        monitor_loop_lag.enable(fine, interval=spec.interval_ms / 1000, loop=loop)
    thread = threading.Thread(target=injector, name="quality-injector", daemon=True)
    thread.start()
    try:
        await run_probe(recorder, start, end)
    finally:
        thread.join()
        for task in asyncio.all_tasks():
            if task.get_name() == "aiodebug.monitor_loop_lag":
                task.cancel()
    return {
        "start": start,
        "end": end,
        "truth": truth,
        "samples": recorder.samples,
        "deadlines": recorder.deadlines,
        "raw": recorder.raw,
        "aiodebug": coarse.values_ms,
        "aiodebug_fine": fine.values_ms,
        "source": default_source(),
    }


def truth_waits(truth: Sequence[Sequence[int]], start: int, end: int, step: int = 10_000) -> list[int]:
    """Return, sorted, how long a request arriving every ``step`` ns would have waited for the loop."""
    waits = []
    stalls = iter(sorted(tuple(t) for t in truth))
    current = next(stalls, None)
    for at in range(start, end, step):
        while current is not None and current[1] <= at:
            current = next(stalls, None)
        waits.append(current[1] - at if current is not None and current[0] <= at else 0)
    return sorted(waits)


def per_stall_reading(data: dict[str, Any]) -> list[int]:
    """Return, per injected stall, the largest lag offbench recorded for a tick due during it."""
    ticks = list(zip(data["deadlines"], data["samples"], strict=True))
    return [
        max((lag for due, lag in ticks if began <= due <= ended), default=0) for began, ended in data["truth"]
    ]


def under_reads_ms(data: dict[str, Any]) -> list[float]:
    """Return, per stall, how much shorter offbench read it than it was (ms)."""
    blocks = [ended - began for began, ended in data["truth"]]
    return [(block - seen) / NS_PER_MS for block, seen in zip(blocks, per_stall_reading(data), strict=True)]


def accuracy(stalls: Sequence[float], count: int, loop_names: Sequence[str]) -> tuple[Section, Section]:
    """Sections 1 and 1b: the same injected stalls seen by offbench and by aiodebug."""
    began = time.monotonic()
    one = Section(
        1,
        "Accuracy: known stalls at random moments",
        f"A callback busy-waits on the loop for exactly D ms, {count} times per size, each a random "
        "30-80 ms after the last ended, handed to the loop from a thread (`call_soon_threadsafe`), so "
        f"it starts at a random phase against the probe's ticks (every {INTERVAL_MS:g} ms unless the "
        "row says). Truth is the block as timed around it with `perf_counter_ns`. 'Under-read' is per "
        "stall: its length less the largest lag of a tick due inside it (a tick falls due up to one "
        "interval after a stall starts: expected 0 to one interval, half on average). The percentiles "
        "compare the wait of a request arriving at a uniformly random moment (truth) with offbench's "
        "corrected lags and with one sample per wake-up (uncorrected).",
        [
            "loop",
            "D ms",
            "truth max",
            "offbench max",
            "error ms",
            "under-read mean / max ms",
            "p90 truth / corrected / uncorrected",
            "p99 truth / corrected / uncorrected",
            "p99.9 truth / corrected / uncorrected",
        ],
    )
    aio = Section(
        1,
        "Side by side: aiodebug on the same stalls",
        "aiodebug 2.x `monitor_loop_lag.enable(statsd)` ran in the same loops as section 1, at its "
        "default interval (0.25 s) and at offbench's (1 ms); its StatsD timings were kept. 'Seen' counts "
        "readings of at least half a stall.",
        [
            "loop",
            "D ms",
            "stalls",
            "aiodebug 0.25 s: seen / max ms / p99.9",
            "aiodebug 1 ms: seen / max ms / p99.9",
            "offbench: seen / max ms / p99.9",
        ],
        part="b",
    )
    parts: dict[float, list[tuple[float, float]]] = {INTERVAL_MS: [], 0.5: []}
    errors: list[tuple[float, float]] = []
    for loop in loop_names:
        for stall_ms in stalls:
            data = child(inject_child, Injection(loop=loop, stall_ms=stall_ms, count=count))
            parts[INTERVAL_MS] += rows(one, aio, loop, stall_ms, data, errors)
    for loop in loop_names:
        for stall_ms in stalls[:2]:
            data = child(inject_child, Injection(loop=loop, stall_ms=stall_ms, count=count, interval_ms=0.5))
            parts[0.5] += rows(one, None, f"{loop}, probe every 0.5 ms", stall_ms, data, errors)
    one.findings += phase_findings(parts)
    one.findings.append(omission_finding(errors))
    aio.findings += [
        "aiodebug at its default 0.25 s sees a stall only when its one sleep happens to end during "
        "it (about D / 250 ms of them), reads time with `loop.time()` (whole milliseconds on uvloop) "
        "and keeps one value per wake-up, so a 200 ms stall weighs like any other sample: no "
        "coordinated-omission correction, its p99.9 is its max.",
        "At offbench's 1 ms interval aiodebug sees every stall, but on asyncio `epoll`'s millisecond "
        "rounding lifts its idle readings to about 1 ms, and it still keeps one value per wake-up.",
    ]
    one.seconds = time.monotonic() - began  # aiodebug watched the same stalls: its time is in this
    return one, aio


def omission_finding(errors: Sequence[tuple[float, float]]) -> str:
    """Say how far the corrected and the uncorrected percentiles were from the truth, at worst (ms)."""
    corrected = max((c for c, _ in errors), default=0.0)
    uncorrected = max((u for _, u in errors), default=0.0)
    return (
        f"Coordinated omission: over every row and p90/p99/p99.9, offbench's corrected percentiles were at "
        f"most {corrected:.2f} ms from the truth's, one sample per wake-up (uncorrected) up to "
        f"{uncorrected:.2f} ms: "
        + (
            "the correction is what makes the percentiles true."
            if uncorrected > 2 * corrected
            else "the correction made no large difference in these rows."
        )
    )


def stall_parts(data: dict[str, Any]) -> list[tuple[float, float]]:
    """Return, per stall, its phase (its start to the first tick due in it) and the loop's delay after it, ms.

    The reading of a stall is its length less the phase plus the delay: under-read = phase − delay.
    """
    due = sorted(data["deadlines"])
    parts = []
    for (began, ended), seen in zip(data["truth"], per_stall_reading(data), strict=True):
        first = next((d for d in due if d >= began), began)
        parts.append(((first - began) / NS_PER_MS, (seen - (ended - first)) / NS_PER_MS))
    return parts


def phase_findings(parts: dict[float, list[tuple[float, float]]]) -> list[str]:
    """Say, per interval, whether the stalls' phase against the ticks was uniform, and what delay added."""
    found = []
    for interval, values in parts.items():
        if not values:
            continue
        phases = [phase for phase, _ in values]
        delays = [delay for _, delay in values]
        mean = statistics.fmean(phases)
        uniform = abs(mean / interval - 0.5) < 0.15 and min(phases) < 0.25 * interval < 0.75 * interval < max(
            phases
        )
        found.append(
            f"Probe every {interval:g} ms: the first tick inside a stall fell due {min(phases):.2f} to "
            f"{max(phases):.2f} ms after it began, mean {mean:.2f} ms ({100 * mean / interval:.0f} % of the "
            "interval; a uniformly random phase gives 50 %, spread over all of it): "
            + ("the phase is random. " if uniform else "not the spread a random phase gives. ")
            + f"The loop answered that tick {statistics.fmean(delays):.2f} ms (mean; at most "
            f"{max(delays):.2f}) after the stall ended, which the reading adds back: a stall reads short by "
            "the phase less that delay."
        )
    return found


def rows(
    one: Section,
    aio: Section | None,
    loop: str,
    stall_ms: float,
    data: dict[str, Any],
    errors: list[tuple[float, float]],
) -> list[tuple[float, float]]:
    """Add one stall size's rows and target; return each stall's phase and delay (:func:`stall_parts`).

    ``errors`` gets, per percentile, how far (ms) the corrected and the uncorrected one were from the truth.
    """
    truth = data["truth"]
    blocks = [ended - began for began, ended in truth]
    true_max, seen_max = max(blocks), max(data["samples"])
    error = abs(seen_max - true_max)
    allowed = 0.5 * NS_PER_MS + 0.02 * true_max
    under = under_reads_ms(data)
    waits = truth_waits(truth, data["start"], data["end"])
    corrected, raw = sorted(data["samples"]), sorted(data["raw"])
    triples = [(percentile(waits, q), percentile(corrected, q), percentile(raw, q)) for q in QUANTILES]
    errors += [(abs(c - t) / NS_PER_MS, abs(u - t) / NS_PER_MS) for t, c, u in triples]
    longest = blocks.index(true_max)
    why = (
        f"offbench read {(seen_max - true_max) / NS_PER_MS:.2f} ms more than the longest stall: a wake-up "
        "delayed beyond the stalls (the VM's scheduling, section 2)"
        if seen_max > true_max
        else f"the longest stall's first tick fell due {stall_parts(data)[longest][0]:.2f} ms after it began"
    )
    one.rows.append(
        [
            loop,
            f"{stall_ms:g}",
            f"{true_max / NS_PER_MS:.3f}",
            f"{seen_max / NS_PER_MS:.3f}",
            f"{error / NS_PER_MS:.3f}",
            f"{statistics.fmean(under):.3f} / {max(under):.3f}",
            *(" / ".join(f"{v / NS_PER_MS:.2f}" for v in triple) for triple in triples),
        ]
    )
    one.targets.append(
        target(
            f"max-lag error, {loop}, {stall_ms:g} ms stalls",
            f"{error / NS_PER_MS:.3f} ms",
            f"< {allowed / NS_PER_MS:.3f} ms",
            error < allowed,
            why,
        )
    )
    if aio is not None:
        aio.rows.append(
            [
                loop,
                f"{stall_ms:g}",
                str(len(truth)),
                seen(data["aiodebug"], stall_ms),
                seen(data["aiodebug_fine"], stall_ms),
                seen([v / NS_PER_MS for v in raw], stall_ms),
            ]
        )
    return stall_parts(data)


def seen(values_ms: Sequence[float], stall_ms: float) -> str:
    """Return how many readings reached half a stall, their max and p99.9."""
    values = sorted(values_ms) or [0.0]
    caught = sum(1 for value in values if value >= stall_ms / 2)
    return f"{caught} / {max(values):.2f} / {percentile(values, 99.9):.2f}"
