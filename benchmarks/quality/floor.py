"""Sections 2 and 4: the lag of an idle loop (the noise floor), and what the harness adds per call."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Sequence

import msgspec

from offbench import loops, strategies, workloads
from offbench.measure.probe import NS_PER_MS, TICK_SOURCES, LagRecorder, default_source, run_probe
from offbench.model.cells import CellSpec
from offbench.stats import percentile

from .report import Section, cv, target
from .runs import INTERVAL_MS, NOOP, STALL_THRESHOLD_MS, cell, child, measured, probe_off, report

IDLE_P99_MS = 0.2


class Idle(msgspec.Struct, frozen=True):
    """An idle loop with only the probe, for ``seconds``."""

    loop: str
    source: str
    seconds: float


def idle_child(payload: bytes, report_fd: int) -> None:
    """Child entry: tick the probe on an idle loop; report the lags, wake-ups and CPU time."""
    spec = msgspec.json.decode(payload, type=Idle)
    recorder = LagRecorder(round(INTERVAL_MS * NS_PER_MS), round(STALL_THRESHOLD_MS * NS_PER_MS))
    start = time.perf_counter_ns() + 50 * NS_PER_MS
    end = start + round(spec.seconds * 1e9)
    with asyncio.Runner(loop_factory=loops.get(spec.loop).factory()) as loop_runner:
        cpu = time.process_time()
        loop_runner.run(run_probe(recorder, start, end, source=spec.source))
        cpu = time.process_time() - cpu
    report(report_fd, {"samples": sorted(recorder.samples), "wakeups": recorder.raw_count, "cpu_s": cpu})


def noise_floor(seconds: float, reps: int, loop_names: Sequence[str]) -> tuple[Section, dict[str, float]]:
    """Section 2: lag of an idle loop, per loop and tick source; the probe's CPU per tick."""
    began = time.monotonic()
    section = Section(
        2,
        "Noise floor: an idle loop",
        f"Only the probe runs, {reps} × {seconds:g} s per row (medians of the {reps}; the p99 range shows "
        f"how much one run's luck moves it), ticking every {INTERVAL_MS:g} ms. `{default_source()}` is what "
        "`offbench run` uses here; the other row shows what the loop's own timers would give. CPU per tick "
        "is the process's CPU time over the window divided by the probe's wake-ups.",
        ["loop", "tick source", "p50 ms", "p99 ms", "p99.9 ms", "p99 range ms", "max ms", "CPU per tick µs"],
    )
    cost: dict[str, float] = {}
    for loop in loop_names:
        for source in TICK_SOURCES:
            if source == "timerfd" and default_source() != "timerfd":
                continue
            runs = [child(idle_child, Idle(loop=loop, source=source, seconds=seconds)) for _ in range(reps)]
            p99s = sorted(percentile(run["samples"], 99) / NS_PER_MS for run in runs)
            per_tick = statistics.median(1e6 * run["cpu_s"] / max(1, run["wakeups"]) for run in runs)
            section.rows.append(
                [
                    loop,
                    source,
                    *(
                        f"{statistics.median(percentile(run['samples'], q) for run in runs) / NS_PER_MS:.3f}"
                        for q in (50, 99, 99.9)
                    ),
                    f"{p99s[0]:.3f}-{p99s[-1]:.3f}",
                    f"{max(run['samples'][-1] for run in runs) / NS_PER_MS:.3f}",
                    f"{per_tick:.1f}",
                ]
            )
            if source == default_source():
                cost[loop] = per_tick
                p99 = statistics.median(p99s)
                section.targets.append(
                    target(
                        f"idle p99, {loop}",
                        f"{p99:.3f} ms",
                        f"< {IDLE_P99_MS:g} ms",
                        p99 < IDLE_P99_MS,
                        f"the VM's scheduling: the best run read {p99s[0]:.3f} ms",
                    )
                )
    section.findings += [
        "`loop-timers` on asyncio is the old probe: `epoll_wait` takes its timeout in whole milliseconds, "
        "rounded up, so an idle asyncio loop wakes a sleeper up to 1 ms late. I/O readiness is not "
        "rounded: the `timerfd` source, waited for as I/O, keeps that out of offbench's readings.",
        "What is left is the VM: with only the probe running, a run's p99 moves with the host's load from "
        "one run to the next (the p99 range), which is why the target is judged on the median of the runs.",
    ]
    section.seconds = time.monotonic() - began
    return section, cost


class Bare(msgspec.Struct, frozen=True):
    """The same no-op through ``direct`` on ``loop``, with none of offbench's bookkeeping."""

    loop: str
    seconds: float


def bare_child(payload: bytes, report_fd: int) -> None:
    """Child entry: call the no-op through ``direct`` in a bare ``while`` loop; report the time per call."""
    spec = msgspec.json.decode(payload, type=Bare)
    noop = workloads.get(NOOP)
    fn = noop.make_call(noop.resolve_params({}), {})

    async def calls() -> int:
        direct = strategies.get("direct")()
        await direct.start(fn, lambda: None)
        end = time.perf_counter_ns() + round(spec.seconds * 1e9)
        done = 0
        while time.perf_counter_ns() < end:
            await direct.call()
            done += 1
        return done

    with asyncio.Runner(loop_factory=loops.get(spec.loop).factory()) as loop_runner:
        loop_runner.run(calls())  # warm
        report(report_fd, {"per_op_s": spec.seconds / loop_runner.run(calls())})


def instruments_off(spec: CellSpec) -> CellSpec:
    """Return a cell with the probe ticking only at its window's ends, no watchdog, no callback timing."""
    return msgspec.structs.replace(probe_off(spec), evidence_threshold_ms=0.0, utilisation=False)


def harness(reps: int, loop_names: Sequence[str]) -> Section:
    """Section 4: per-op cost of the worker's bookkeeping (timestamps, lists) over a bare loop."""
    began = time.monotonic()
    section = Section(
        4,
        "Harness overhead",
        f"A no-op (`{NOOP}`) through `direct`, concurrency 1, in a 0.2 s window: per-op time in an offbench "
        "unit (1 / throughput) with every instrument off (probe ticking only at the window's ends, no "
        "watchdog, no callback timing) and with all on (the default), against the same calls in a bare "
        f"`while` loop on the same kind of event loop; {reps} of each, alternating; best of each (the least "
        "disturbed), and the spread of all. No target: it is reported so throughputs near 100k ops/s can "
        "be read with it in mind.",
        [
            "loop",
            "offbench, instruments off µs/op",
            "offbench, all on µs/op",
            "bare loop µs/op",
            "harness µs/op",
            "harness % of a no-op call",
            "CV off / on / bare %",
        ],
    )
    for loop in loop_names:
        spec = cell(NOOP, "direct", loop)
        quiet, full, bare = [], [], []
        for _ in range(reps):
            quiet.append(1e6 / measured(instruments_off(spec)).throughput_ops_s)
            full.append(1e6 / measured(spec).throughput_ops_s)
            bare.append(1e6 * child(bare_child, Bare(loop=loop, seconds=0.2))["per_op_s"])
        added = min(quiet) - min(bare)
        noise = max(cv(quiet), cv(bare)) * min(bare) / 100
        section.rows.append(
            [
                loop,
                f"{min(quiet):.2f}",
                f"{min(full):.2f}",
                f"{min(bare):.2f}",
                f"{added:.2f}" if abs(added) > noise else f"{added:.2f} (within ± {noise:.2f})",
                f"{100 * added / min(bare):.0f}",
                f"{cv(quiet):.1f} / {cv(full):.1f} / {cv(bare):.1f}",
            ]
        )
    if any("within" in row[4] for row in section.rows):
        section.findings.append(
            "Where the harness figure is 'within ±', it is smaller than the machine's run-to-run spread of "
            "the same no-op (last column): below what this machine resolved at that loop's speed."
        )
    section.seconds = time.monotonic() - began
    return section
