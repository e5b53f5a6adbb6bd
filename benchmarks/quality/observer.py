"""Section 3: what offbench's instruments cost the cell they watch, each off in turn, paired by round.

The instruments: the probe (a tick every 1 ms), the stall watchdog (a thread sampling the
loop thread's stack in long stalls), call stamping (each offloaded call returns when it
started and finished, for the breakdown) and callback timing (every callback the loop
runs, for loop utilisation). In every round each cell is measured once with all of them on
(the default) and once with each off, and once with all off, in a random (seeded) order;
the effect of an instrument is the mean over rounds of log(on / off), whose interval comes
from the rounds' spread: the host's drift between rounds cancels.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import msgspec

from offbench.measure import worker
from offbench.model.cells import CellSpec
from offbench.processes import default_start_method
from offbench.stats import mean_interval

from .report import Section, target
from .runs import cell, measured, probe_off

OBSERVED = [
    ("sleep", "to-thread"),
    ("socket", "to-thread"),
    ("cpu", "to-thread"),
    ("cpu", "direct"),
    ("numpy", "to-thread"),
]
LIMIT_PCT = 1.0


@dataclass(frozen=True)
class Condition:
    """One way of measuring a cell: which instruments are off."""

    name: str
    change: Callable[[CellSpec], CellSpec]
    unstamped: bool = False


def _no_watchdog(spec: CellSpec) -> CellSpec:
    return msgspec.structs.replace(spec, evidence_threshold_ms=0.0)


def _no_callbacks(spec: CellSpec) -> CellSpec:
    return msgspec.structs.replace(spec, utilisation=False)


def _same(spec: CellSpec) -> CellSpec:
    return spec


def _all_off(spec: CellSpec) -> CellSpec:
    return _no_callbacks(_no_watchdog(probe_off(spec)))


ON = Condition("all on", _same)
CONDITIONS = (
    Condition("probe", probe_off),
    Condition("watchdog", _no_watchdog),
    Condition("call stamping", _same, unstamped=True),
    Condition("callback timing", _no_callbacks),
    Condition("all four", _all_off, unstamped=True),
)
"""Each names what is off; the effect measured is that of having it on."""


@contextlib.contextmanager
def unstamped(active: bool) -> Iterator[None]:
    """Turn call stamping off in workers forked while the block runs (they inherit this module's state)."""
    if not active:
        yield
        return
    original = worker.splits_calls
    worker.splits_calls = lambda strategy: False
    try:
        yield
    finally:
        worker.splits_calls = original


@dataclass
class Effect:
    """One instrument's effect on one cell's throughput: on / off − 1, in %, with its 95 % interval."""

    cell: str
    instrument: str
    pct: float
    low: float
    high: float
    rounds: int

    @property
    def resolved(self) -> bool:
        """The interval excludes zero."""
        return self.low > 0 or self.high < 0


def effect(cell_name: str, instrument: str, on: Sequence[float], off: Sequence[float]) -> Effect:
    """Return the effect from paired throughputs (round by round): the mean log ratio and its t-interval."""
    found = mean_interval([math.log(a / b) for a, b in zip(on, off, strict=True) if a > 0 and b > 0])
    pct = [100 * math.expm1(v) if math.isfinite(v) else v for v in (found.estimate, found.low, found.high)]
    return Effect(cell_name, instrument, pct[0], pct[1], pct[2], found.units)


def observer(rounds: int, tick_cost_us: dict[str, float], seed: int = 3) -> Section:
    """Section 3: throughput with every instrument on against each off, paired by round."""
    began = time.monotonic()
    forked = default_start_method() == "fork"
    conditions = [c for c in CONDITIONS if forked or not c.unstamped]
    section = Section(
        3,
        "Observer effect: each instrument off, paired",
        f"Five cells (asyncio, concurrency 1, 0.2 s window), each measured in {rounds} rounds; in every "
        "round once with the probe (every 1 ms), the watchdog, call stamping and callback timing all on "
        "(the defaults), once with each off, and once with all four off, in a random order. The effect of "
        "an instrument is on / off − 1 of the raw throughput, the mean over rounds of the log ratio, with "
        "its 95 % t-interval (paired rounds: the host's drift between rounds cancels). Call stamping is "
        "switched off by patching the worker module before workers are forked"
        + ("." if forked else "; workers are spawned here, so it was not measured."),
        ["workload", "strategy", "all on ops/s", *(f"{c.name} on vs off %" for c in conditions)],
    )
    rng = random.Random(seed)
    effects: list[Effect] = []
    for workload, strategy in OBSERVED:
        spec = cell(workload, strategy)
        readings: dict[str, list[float]] = {c.name: [] for c in (ON, *conditions)}
        for _ in range(rounds):
            for condition in rng.sample([ON, *conditions], len(conditions) + 1):
                with unstamped(condition.unstamped):
                    readings[condition.name].append(measured(condition.change(spec)).throughput_ops_s)
        name = f"{workload}/{strategy}"
        found = [effect(name, c.name, readings[ON.name], readings[c.name]) for c in conditions]
        for f, c in zip(found, conditions, strict=True):
            if c.unstamped and strategy == "direct" and c.name == "call stamping":
                f.pct = f.low = f.high = math.nan  # direct's calls are never stamped
        effects += [f for f in found if not math.isnan(f.pct)]
        on_mean = sum(readings[ON.name]) / len(readings[ON.name])
        section.rows.append(
            [
                workload,
                strategy,
                f"{on_mean:.1f}",
                *(
                    "n/a" if math.isnan(f.pct) else f"{f.pct:+.2f} [{f.low:+.2f}, {f.high:+.2f}]"
                    for f in found
                ),
            ]
        )
    for condition in conditions:
        mine = [e for e in effects if e.instrument == condition.name]
        inside = [e for e in mine if e.low > -LIMIT_PCT and e.high < LIMIT_PCT]
        worst = max(mine, key=lambda e: max(abs(e.low), abs(e.high)))
        section.targets.append(
            target(
                f"effect of {condition.name} on throughput",
                f"{len(inside)} of {len(mine)} cells inside ±1 %; "
                f"widest {worst.cell} {worst.pct:+.2f} % [{worst.low:+.2f}, {worst.high:+.2f}]",
                "95 % interval inside ±1 %, every cell",
                len(inside) == len(mine),
                why_not(mine),
            )
        )
    section.findings += findings(effects, rounds)
    section.findings.append(
        "The probe's cost at rest (section 2): "
        + ", ".join(
            f"{loop} {us:.0f} µs × 1000 ticks/s = {us / 10:.1f} % of a core"
            for loop, us in tick_cost_us.items()
        )
        + "."
    )
    section.seconds = time.monotonic() - began
    return section


def why_not(effects: Sequence[Effect]) -> str:
    """Say why a target missed: a real effect beyond 1 %, or intervals too wide to tell."""
    real = [e for e in effects if e.resolved and abs(e.pct) >= LIMIT_PCT]
    if real:
        return "a real effect beyond 1 %: " + ", ".join(f"{e.cell} {e.pct:+.1f} %" for e in real)
    return "not resolved: the intervals reach past ±1 % (see findings)"


def findings(effects: Sequence[Effect], rounds: int) -> list[str]:
    """Say, from this run's effects, which instruments moved which cells beyond noise, and how."""
    found: list[str] = []
    faster = [e for e in effects if e.low > 0 and e.pct >= LIMIT_PCT]
    slower = [e for e in effects if e.high < 0 and e.pct <= -LIMIT_PCT]
    unresolved = [e for e in effects if not e.resolved and max(abs(e.low), abs(e.high)) >= LIMIT_PCT]
    if slower:
        found.append(
            "Slower with the instrument on, beyond noise: "
            + ", ".join(f"{e.instrument} on {e.cell} ({e.pct:+.1f} %)" for e in slower)
            + ". That work is taken from the loop thread (a tick is a loop iteration; a timed callback costs "
            "two clock reads; a stamped call two more) or competes with the offloaded work for the GIL."
        )
    if faster:
        found.append(
            "Faster with the instrument on, beyond noise: "
            + ", ".join(f"{e.instrument} on {e.cell} ({e.pct:+.1f} %)" for e in faster)
            + ". The probe's ticks keep the loop thread's vCPU out of idle, so waking it for a result costs "
            "less; a server with traffic is in that state, so 'on' is the representative reading."
        )
    if unresolved:
        widest = max(unresolved, key=lambda e: e.high - e.low)
        found.append(
            f"Not resolved ({len(unresolved)} of {len(effects)} comparisons): their intervals reach past "
            f"±1 % (widest: {widest.instrument} on {widest.cell}, {widest.low:+.1f} to {widest.high:+.1f} "
            f"%), so {rounds} rounds can neither confirm nor refute an effect of 1 %. The width is the "
            "cell's own scatter from one unit to the next (GIL-bound cells scatter most: section 5); more "
            "rounds narrow it as 1/√rounds."
        )
    if not (faster or slower):
        found.append("No instrument moved a cell's throughput by 1 % or more beyond its uncertainty.")
    return found
