"""Section 6: does ``offbench compare``, used as the README says, pass identical code and catch a 20 % loss?

Two ways to compare, each in two series of pairs:

* separate runs: ``offbench run ... -o A.json``, later ``offbench run ... -o B.json``, then
  ``offbench compare A.json B.json --fail-on-regression 10``. Each pair starts with a base
  run; then, in a random order, an identical run (the identical-code pair) and a run whose
  sleep is 12 ms instead of 10 (a scenario with ``duration_ms = 12``: the loss pair). Each
  series' pairs are independent of each other; the two series share their base runs.
* A/B in one run: two virtual environments made here with ``python -m venv`` (empty: each
  runs with offbench's dependencies only), each holding a module ``cifn`` whose ``call()``
  sleeps 10 ms, or 12 ms in the loss environment; ``offbench run --python base=...
  --python new=... -w cifn:call ...`` then ``offbench compare RUN.json --by python
  --fail-on-regression 10``.

A pair *fails* when ``offbench compare`` exits 1. A loss pair is *caught* when it fails
with a sleep cell among the regressions (computed with ``offbench.judge.compare``, as the
command does); unchanged cells (cpu) failing are counted apart.
"""

from __future__ import annotations

import random
import statistics
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from offbench.judge import compare
from offbench.model.results import RunResult

from .report import Section, proportion, target
from .runs import offbench

RECOMMENDED_STRATEGIES = ["-s", "direct", "-s", "to-thread", "-s", "process-pool"]
"""The strategies of the README's recommended comparison."""
RECOMMENDED_OPTIONS = [
    *RECOMMENDED_STRATEGIES,
    "-l",
    "asyncio",
    "-c",
    "1",
    "-c",
    "8",
    "--quick",
    "--rounds",
    "4",
    "--no-semantics",
    "--no-pool-costs",
]
"""The README's recommended ``offbench run`` for a comparison, but for its workloads."""
RECOMMENDED_WORKLOADS = ["-w", "sleep", "-w", "cpu"]
RECOMMENDED_RUN = ["offbench", "run", *RECOMMENDED_WORKLOADS, *RECOMMENDED_OPTIONS, "-o", "X.json"]
"""The README's recommended run, as it should read there."""
FAIL_ON = "10"
RECOMMENDED_COMPARE = ["offbench", "compare", "BASE.json", "NEW.json", "--fail-on-regression", FAIL_ON]
CHANGED = ("sleep", "cifn:call")
"""The workloads whose call is 20 % longer in a loss pair."""
LOSS_SCENARIO = """# The recommended run with a 12 ms sleep instead of 10: a 20 % longer call.
[[workloads]]
name = "sleep"
duration_ms = 12

[[workloads]]
name = "cpu"
"""
CIFN = '''"""A user's blocking function for offbench's compare calibration: it sleeps {ms} ms."""

import time


def call() -> None:
    """Block for {ms} ms."""
    time.sleep({ms} / 1000)
'''
FALSE_LIMIT = 0.05
CAUGHT_LIMIT = 0.90


@dataclass
class Outcome:
    """One pair: compared, and what ``offbench compare`` said."""

    series: str
    """``identical`` or ``loss``."""
    code: int
    regressed: list[str]
    """The cells it counts as regressions (``workload strategy c=N``)."""
    ms_per_call: tuple[float, float] | None = None
    """Base and new sleep at c=1 direct, ms per call: the loss as measured."""

    @property
    def failed(self) -> bool:
        return self.code == 1

    @property
    def caught(self) -> bool:
        return self.failed and any(name.split()[0] in CHANGED for name in self.regressed)

    @property
    def unchanged_failed(self) -> bool:
        return any(name.split()[0] not in CHANGED for name in self.regressed)


@dataclass
class Mode:
    """The pairs of one way of comparing."""

    name: str
    outcomes: list[Outcome] = field(default_factory=list)
    walls: list[float] = field(default_factory=list)


def regressed(comparison: compare.Comparison) -> list[str]:
    """Return the cells ``--fail-on-regression`` counts, as ``workload strategy c=N``."""
    return [
        f"{p.key.workload} {p.key.strategy}{f' ({p.key.max_workers})' if p.key.max_workers else ''} "
        f"c={p.key.concurrency}: {why}"
        for p, why in compare.regressions(comparison, float(FAIL_ON))
    ]


def sleep_ms(run: RunResult, python: str = "") -> float | None:
    """Return the changed workload's ms per call at c=1 through ``direct`` under ``python``."""
    for cell in run.results:
        if (
            cell.workload in CHANGED
            and cell.strategy == "direct"
            and cell.concurrency == 1
            and cell.python == python
            and cell.ok
            and cell.throughput_ops_s > 0
        ):
            return 1000 / cell.throughput_ops_s
    return None


def both(base: float | None, new: float | None) -> tuple[float, float] | None:
    """Return the pair, or ``None`` when either side is missing."""
    return None if base is None or new is None else (base, new)


def separate(
    folder: Path, pairs: int, workloads: Sequence[str], options: Sequence[str], seed: int = 6
) -> Mode:
    """Measure ``pairs`` base runs, each followed by an identical run and a loss run in a random order."""
    mode = Mode("separate runs")
    scenario = folder / "loss.toml"
    folder.mkdir(parents=True, exist_ok=True)
    scenario.write_text(LOSS_SCENARIO, encoding="utf-8")
    rng = random.Random(seed)
    for index in range(pairs):
        name = f"pair-{index + 1:02}"
        base = offbench(["run", *workloads, *options], folder, f"{name}-base")
        followers = [("identical", ["run", *workloads, *options]), ("loss", ["run", str(scenario), *options])]
        for series, args in rng.sample(followers, 2):
            new = offbench(args, folder, f"{name}-{series}")
            done = offbench(
                [
                    "compare",
                    str(base.path),
                    str(new.path),
                    "--fail-on-regression",
                    FAIL_ON,
                    "-o",
                    str(folder / f"{name}-{series}-compare.json"),
                ],
                folder,
                f"{name}-{series}-compare",
                results=False,
                codes=(0, 1),
            )
            base_run, new_run = base.result, new.result
            found = regressed(compare.compare(base_run, new_run))
            calls = sleep_ms(base_run), sleep_ms(new_run)
            mode.outcomes.append(Outcome(series, done.code, found, both(*calls)))
            mode.walls.append(new.wall_s)
        mode.walls.append(base.wall_s)
    return mode


def make_venv(folder: Path, ms: float) -> Path:
    """Make an empty venv at ``folder`` holding ``cifn.py`` that sleeps ``ms``; return its python."""
    if not (folder / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(purelib) / "cifn.py").write_text(CIFN.format(ms=f"{ms:g}"), encoding="utf-8")
    return python


def in_one_run(folder: Path, pairs: int, options: Sequence[str], other: Sequence[str]) -> Mode:
    """Measure ``pairs`` A/B runs of identical code and ``pairs`` with a 20 % loss, alternating."""
    mode = Mode("A/B in one run")
    base = make_venv(folder / "venv-base", 10)
    same = make_venv(folder / "venv-same", 10)
    slow = make_venv(folder / "venv-slow", 12)
    parent = (
        folder / "parent"
    )  # offbench's own process must find the module to check it; workers do not see this
    parent.mkdir(parents=True, exist_ok=True)
    (parent / "cifn.py").write_text(CIFN.format(ms="10"), encoding="utf-8")
    for index in range(pairs):
        for series, new in (("identical", same), ("loss", slow)):
            name = f"ab-{index + 1:02}-{series}"
            run = offbench(
                [
                    "run",
                    "--python",
                    f"base={base}",
                    "--python",
                    f"new={new}",
                    "-w",
                    "cifn:call",
                    *other,
                    *options,
                ],
                folder,
                name,
                extra_path=parent,
            )
            done = offbench(
                [
                    "compare",
                    str(run.path),
                    "--by",
                    "python",
                    "--fail-on-regression",
                    FAIL_ON,
                    "-o",
                    str(folder / f"{name}-compare.json"),
                ],
                folder,
                f"{name}-compare",
                results=False,
                codes=(0, 1),
            )
            result = run.result
            calls = sleep_ms(result, "base"), sleep_ms(result, "new")
            mode.outcomes.append(
                Outcome(
                    series,
                    done.code,
                    regressed(compare.by_axis(result, "python")),
                    both(*calls),
                )
            )
            mode.walls.append(run.wall_s)
    return mode


def calibration(modes: Sequence[Mode], command: str) -> Section:
    """Section 6: false failures on identical code and losses caught, per mode, with Wilson intervals."""
    section = Section(
        6,
        "compare calibration: identical code and a 20 % loss",
        f"The README's recommended usage: `{command}`, then `{' '.join(RECOMMENDED_COMPARE)}` (separate "
        f"runs) or `offbench compare RUN.json --by python --fail-on-regression {FAIL_ON}` (A/B in one run: "
        "`--python base=A/bin/python --python new=B/bin/python -w cifn:call -w cpu` with the same "
        "options; A and B are empty venvs made with `python -m venv`, each with a module `cifn` whose "
        "`call()` sleeps 10 ms). The loss: the new side's sleep is 12 ms (a scenario with `duration_ms = "
        "12`; the new venv's `cifn`). A pair fails when `offbench compare` exits 1; a loss pair is caught "
        "when a sleep cell is among its regressions. Separate runs: each pair's base run is followed by "
        "an identical run and a loss run in a random order (the two series share base runs; within a "
        "series the pairs are independent). Wilson 95 % intervals.",
        [
            "mode",
            "identical code: pairs failed",
            "20 % loss: pairs caught",
            "loss pairs with an unchanged cell failing",
            "sleep ms per call, base / new (median)",
            "run wall s (median)",
        ],
    )
    for mode in modes:
        identical = [o for o in mode.outcomes if o.series == "identical"]
        loss = [o for o in mode.outcomes if o.series == "loss"]
        failed = sum(o.failed for o in identical)
        caught = sum(o.caught for o in loss)
        calls = [o.ms_per_call for o in loss if o.ms_per_call]
        section.rows.append(
            [
                mode.name,
                proportion(failed, len(identical)),
                proportion(caught, len(loss)),
                f"{sum(o.unchanged_failed for o in loss)} of {len(loss)}",
                (
                    f"{statistics.median(c[0] for c in calls):.2f} / "
                    f"{statistics.median(c[1] for c in calls):.2f}"
                    if calls
                    else "–"
                ),
                f"{statistics.median(mode.walls):.1f}" if mode.walls else "–",
            ]
        )
        share = failed / len(identical) if identical else 1.0
        section.targets.append(
            target(
                f"identical code fails, {mode.name}",
                proportion(failed, len(identical)),
                f"≤ {100 * FALSE_LIMIT:.0f} % of ≥ 20 pairs",
                share <= FALSE_LIMIT and len(identical) >= 20,
                false_why(identical),
            )
        )
        share = caught / len(loss) if loss else 0.0
        section.targets.append(
            target(
                f"20 % loss caught, {mode.name}",
                proportion(caught, len(loss)),
                f"≥ {100 * CAUGHT_LIMIT:.0f} % of ≥ 20 pairs",
                share >= CAUGHT_LIMIT and len(loss) >= 20,
                missed_why(loss),
            )
        )
        section.findings += mode_findings(mode.name, identical, loss)
    return section


def false_why(identical: Sequence[Outcome]) -> str:
    """Say which cells failed identical code, or that too few pairs were measured."""
    if len(identical) < 20:
        return f"only {len(identical)} pairs measured"
    cells = [name.split(":")[0] for o in identical for name in o.regressed]
    return (
        "cells flagged: " + ", ".join(sorted(set(cells)))
        if cells
        else "exit code 1 without a regression listed"
    )


def missed_why(loss: Sequence[Outcome]) -> str:
    """Say why losses were missed, or that too few pairs were measured."""
    if len(loss) < 20:
        return f"only {len(loss)} pairs measured"
    return "the sleep cells' intervals reached inside 10 % (see findings)"


def mode_findings(name: str, identical: Sequence[Outcome], loss: Sequence[Outcome]) -> list[str]:
    """Say, from the pairs, which cells fail identical code and how the loss read."""
    found = []
    flagged = [r for o in identical for r in o.regressed]
    if flagged:
        found.append(
            f"{name}: identical code was flagged for "
            + "; ".join(flagged[:6])
            + (" ..." if len(flagged) > 6 else "")
            + "."
        )
    calls = [o.ms_per_call for o in loss if o.ms_per_call]
    if calls:
        ratio = statistics.median(c[1] / c[0] for c in calls)
        found.append(
            f"{name}: the new side's sleep read {100 * (ratio - 1):+.1f} % per call at c=1 (median of "
            f"{len(calls)} pairs; the injected change is +20 %), so the loss reached the workers."
        )
    return found
