"""Section 4b: pyperf and offbench on the same per-call cost (a no-op through ``to-thread``)."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from offbench.model.cells import CellSpec

from .floor import instruments_off
from .report import Section, cv, target
from .runs import BENCHMARKS, NOOP, cell, measured

CV_LIMIT = 2.0


@dataclass
class PerCall:
    """One tool's reading of the per-call cost at one effort."""

    tool: str
    effort: str
    us: float
    cv: float
    """CV of the units' means: a pyperf worker process's, or an offbench unit's."""
    units: int
    wall_s: float


def pyperf_side(folder: Path, pyperf_levels: Sequence[Sequence[str]], unit_counts: Sequence[int]) -> Section:
    """Section 4b: the per-call cost of ``to-thread`` in pyperf and in offbench at growing effort."""
    began = time.monotonic()
    section = Section(
        4,
        "Side by side: pyperf on the same per-call cost",
        "The per-call cost of a no-op through `to-thread` on asyncio. pyperf: "
        "`benchmarks/bench_roundtrip.py --only to-thread/asyncio` at growing effort, until its CV is under "
        "2 %. offbench: the same no-op as a workload at concurrency 1, measured in growing numbers of "
        "units (worker processes, 0.2 s windows), with every instrument off and then with all on; per-call "
        "cost is 1 / throughput. Both CVs are of the units' means (pyperf's worker processes, offbench's "
        "units): what moves from one process to the next. Time is the wall time each needed.",
        ["tool", "effort", "µs per call", "vs pyperf %", "CV between units %", "units", "wall s"],
        part="b",
    )
    readings: list[PerCall] = []
    for level in pyperf_levels:
        readings.append(_pyperf_once(list(level), folder))
        if readings[-1].cv < CV_LIMIT:
            break
    spec = cell(NOOP, "to-thread")
    for units in unit_counts:
        readings.append(_offbench(instruments_off(spec), units, "offbench, instruments off"))
        if readings[-1].cv < CV_LIMIT:
            break
    readings.append(_offbench(spec, units, "offbench, all on"))
    pyperf = [r for r in readings if r.tool == "pyperf"][-1]
    for r in readings:
        section.rows.append(
            [
                r.tool,
                r.effort,
                f"{r.us:.1f}",
                f"{100 * (r.us / pyperf.us - 1):+.1f}",
                f"{r.cv:.2f}",
                str(r.units),
                f"{r.wall_s:.1f}",
            ]
        )
    for tool in ("pyperf", "offbench, instruments off"):
        got = next((r for r in readings if r.tool == tool and r.cv < CV_LIMIT), None)
        section.targets.append(
            target(
                f"{tool} reaches a CV under 2 %",
                f"in {got.wall_s:.1f} s" if got else "not at the largest effort",
                "CV < 2 %",
                got is not None,
                "the machine's drift between processes (see findings)",
            )
        )
    ours = [r for r in readings if r.tool == "offbench, instruments off"][-1]
    gap = 100 * (ours.us / pyperf.us - 1)
    half = 1.96 * ((ours.cv**2) / ours.units + (pyperf.cv**2) / pyperf.units) ** 0.5
    section.findings.append(
        f"Agreement: offbench with its instruments off reads {ours.us:.1f} µs per call, {gap:+.1f} % "
        f"against pyperf's {pyperf.us:.1f} µs, {'inside' if abs(gap) <= half else 'outside'} the two "
        f"figures' combined 95 % interval (± {half:.1f} %, from each one's spread between its units). "
        "offbench's figure includes section 4's harness cost; with all instruments on "
        f"({readings[-1].us:.1f} µs) it is the cost under observation."
    )
    section.seconds = time.monotonic() - began
    return section


def _offbench(spec: CellSpec, units: int, tool: str) -> PerCall:
    began = time.monotonic()
    result = measured(spec, units=units)
    per_call = [1e6 / u.throughput_ops_s for u in result.units if u.throughput_ops_s > 0]
    return PerCall(
        tool,
        f"{units} units",
        statistics.fmean(per_call),
        cv(per_call),
        len(per_call),
        time.monotonic() - began,
    )


def _pyperf_once(level: list[str], folder: Path) -> PerCall:
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"pyperf-{time.monotonic_ns()}.json"
    command = [
        sys.executable,
        str(BENCHMARKS / "bench_roundtrip.py"),
        "--only",
        "to-thread/asyncio",
        "-q",
        "-o",
        str(out),
        *level,
    ]
    began = time.monotonic()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.monotonic() - began
    import pyperf

    bench = pyperf.BenchmarkSuite.load(str(out)).get_benchmarks()[0]
    per_process = [statistics.fmean(run.values) for run in bench.get_runs() if run.values]
    return PerCall(
        "pyperf",
        " ".join(level) or "default",
        1e6 * statistics.fmean(per_process),
        cv(per_process),
        len(per_process),
        wall,
    )
