"""Section 8: how long a user waits for an answer, what precision it buys, and whether the run keeps its word.

The wall times are section 5's and 7's runs (a cold semantics cache for the first of each
series, warm for the rest). Three more runs: a 150 ms and a 500 ms user function under
``--quick``; a run driven through :func:`offbench.run.runner.run` in a process of its own
with an observer that records the progress bar's ETA after every unit (:func:`eta_main`);
and a run with ``--time-budget``.
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from offbench.model.results import RunResult

from .repeat import BASELINE_CV, WholeRuns, series
from .report import Section, fmt, target
from .runs import BENCHMARKS, Timed, load_run, offbench

DEFAULT_LIMIT_S = 75.0
QUICK_LIMIT_S = 20.0
ETA_TOLERANCE = 0.20
BUDGET_TOLERANCE = 0.10
MIN_CALLS = 5
SLOW = '''"""Slow blocking functions for offbench's time-to-answer check."""

import time


def call_150ms() -> None:
    """Block for 150 ms."""
    time.sleep(0.15)


def call_500ms() -> None:
    """Block for 500 ms."""
    time.sleep(0.5)
'''


def measuring_s(run: RunResult) -> float:
    """Return how long the run's rounds took, first unit to last."""
    if not run.rounds:
        return 0.0
    last = run.rounds[-1]
    return last.started_s + last.wall_s - run.rounds[0].started_s


def half_width_pct(run: RunResult, workload: str) -> list[float]:
    """Return each ok cell's 95 % half-width of throughput, in % of its mean."""
    found = []
    for cell in run.results:
        spread = cell.spread
        if (
            cell.workload == workload
            and cell.ok
            and spread is not None
            and spread.low is not None
            and spread.high is not None
            and spread.high + spread.low > 0
        ):
            found.append(100 * (spread.high - spread.low) / (spread.high + spread.low))
    return found


def time_row(section: Section, label: str, timed: Timed) -> None:
    """Add one command's row: wall time, units, measuring time, and the rest."""
    run = timed.result
    units = sum(len(c.units) for c in run.results)
    measuring = measuring_s(run)
    section.rows.append(
        [
            label,
            f"{timed.wall_s:.1f}",
            str(len(run.results)),
            str(units),
            f"{measuring:.1f}",
            f"{1000 * measuring / max(1, units):.0f}",
            f"{timed.wall_s - measuring:.1f}",
        ]
    )


def time_to_answer(runs: WholeRuns, quick_command: str, default_command: str) -> Section:
    """Section 8's main table: wall times warm and cold, and the precision per cell they bought."""
    section = Section(
        8,
        "Time to answer",
        "Wall time of the command from start to exit, as a user waits for it, with the semantics cache cold "
        "(a fresh `OFFBENCH_CACHE`: the checks run) and warm (the findings reused; median of the runs); the "
        "units it measured, how long its rounds took, per unit, and the rest (start-up, pool costs, semantic "
        "checks, output).",
        ["command", "wall s", "cells", "units", "measuring s", "ms per unit", "rest s"],
    )
    rows: list[tuple[str, Timed | None, float]] = [
        (f"{quick_command}, cache cold", runs.quick_cold, QUICK_LIMIT_S),
        (f"{quick_command}, cache warm (median)", _median(runs.quick), QUICK_LIMIT_S),
        (f"{default_command}, cache cold", runs.default_cold, DEFAULT_LIMIT_S),
        (f"{default_command}, cache warm (median)", _median(runs.default[1:]), DEFAULT_LIMIT_S),
    ]
    for label, timed, limit in rows:
        if timed is None:
            continue
        time_row(section, label, timed)
        section.targets.append(
            target(
                f"`{label}`",
                f"{timed.wall_s:.1f} s",
                f"≤ {limit:g} s",
                timed.wall_s <= limit,
                f"{measuring_s(timed.result):.0f} s of it measuring "
                f"{sum(len(c.units) for c in timed.result.results)} units",
            )
        )
    default = [t.result for t in runs.default]
    if default:
        precision_rows(section, default, default_command)
    return section


def _median(runs: Sequence[Timed]) -> Timed | None:
    return sorted(runs, key=lambda t: t.wall_s)[len(runs) // 2] if runs else None


def precision_rows(section: Section, default: Sequence[RunResult], command: str) -> None:
    """Compare the default run's per-cell half-widths with what the old runs' CV implied, and its repeats."""
    by_cell = series(default)
    for workload, old_cv in BASELINE_CV.items():
        widths = [w for run in default for w in half_width_pct(run, workload)]
        if not widths:
            continue
        stated = statistics.median(widths)
        repeats = [
            statistics.stdev(v) / statistics.fmean(v) * 100
            for k, cells in by_cell.items()
            if k[0] == workload
            if len(v := [c.normalised_ops_s or c.throughput_ops_s for c in cells]) > 1
            and statistics.fmean(v) > 0
        ]
        actual = 1.96 * statistics.median(repeats) if repeats else None
        implied = 1.96 * old_cv
        section.targets.append(
            target(
                f"throughput precision per cell, {workload}, `{command}`",
                f"± {stated:.1f} % (median half-width; 1.96 × its run-to-run CV: ± {fmt(actual)} %)",
                f"≤ ± {implied:.1f} % (1.96 × the old CV {old_cv:g} %)",
                stated <= implied,
                "the units' spread is wider than the old runs' scatter",
            )
        )


def slow_functions(folder: Path, options: Sequence[str]) -> Section:
    """Section 8b: a 150 ms and a 500 ms function under ``--quick``: no timeout, calls enough, the verdict."""
    began = time.monotonic()
    module = folder / "slow"
    module.mkdir(parents=True, exist_ok=True)
    (module / "slowfn.py").write_text(SLOW, encoding="utf-8")
    args = ["run", "-w", "slowfn:call_150ms", "-w", "slowfn:call_500ms", "--quick", *options]
    timed = offbench(args, folder, "slow-functions", env={"PYTHONPATH": str(module)})
    run = timed.result
    section = Section(
        8,
        "Time to answer: slow functions",
        f"`offbench {' '.join(args)}` (the module on `PYTHONPATH`): every default strategy. Per function: "
        "cells that timed out, the fewest calls a unit measured (the cell's ops over its units), the "
        f"verdict, and the wall time ({timed.wall_s:.0f} s for both).",
        ["function", "cells", "timeouts", "fewest calls per unit (cell)", "verdict", "direct judged"],
        part="b",
    )
    for workload in dict.fromkeys(c.workload for c in run.results):
        cells = [c for c in run.results if c.workload == workload]
        timeouts = [c for c in cells if c.status == "timeout"]
        per_unit = [(c.ops / len(c.units), c) for c in cells if c.units]
        fewest, which = min(per_unit, key=lambda pair: pair[0]) if per_unit else (0.0, None)
        verdict = next((v for v in run.verdicts if v.workload == workload), None)
        direct = next((c for c in verdict.candidates if c.strategy == "direct"), None) if verdict else None
        winner = verdict.winner.strategy if verdict and verdict.winner else "none"
        name = workload.split(":")[-1]
        where = f"{which.strategy} c={which.concurrency}" if which else "–"
        section.rows.append(
            [
                name,
                str(len(cells)),
                str(len(timeouts)),
                f"{fewest:.1f} ({where})",
                verdict.text if verdict else "–",
                direct.judgement if direct else "–",
            ]
        )
        section.targets.append(
            target(
                f"no timeout cell, {name}",
                f"{len(timeouts)} of {len(cells)}",
                "0",
                not timeouts,
                ", ".join(f"{c.strategy} c={c.concurrency}" for c in timeouts),
            )
        )
        section.targets.append(
            target(
                f"at least {MIN_CALLS} calls per unit, {name}",
                f"fewest {fewest:.1f} ({where})",
                f"≥ {MIN_CALLS}",
                fewest >= MIN_CALLS,
                f"a quick unit's window is sized for {run.settings.effort.calls_per_task} calls per task, "
                "so a task of a slow call measures about that many",
            )
        )
        right = winner != "direct" and direct is not None and direct.judgement == "blocked"
        section.targets.append(
            target(
                f"right verdict, {name}",
                f"{winner}; direct {direct.judgement if direct else '–'}",
                "offload; direct blocked",
                right,
                verdict.text if verdict else "no verdict",
            )
        )
    section.seconds = time.monotonic() - began
    return section


def eta_main() -> None:
    """Entry of the ETA process: run the choices in ``argv[1]`` with a recording observer.

    Writes the observer's log (``argv[2]``: per unit, when it ended, units done and planned, the estimate)
    and the run's results file (``argv[3]``).
    """
    import msgspec

    from offbench.model.results import encode
    from offbench.plan.settings import Choices, build_settings
    from offbench.run import runner

    choices = msgspec.json.decode(Path(sys.argv[1]).read_bytes(), type=Choices)
    log: list[tuple[float, int, int, float | None]] = []

    class Recording(runner.NullObserver):
        def unit_finished(self, done: int, planned: int, seconds_left: float | None) -> None:
            log.append((time.monotonic(), done, planned, seconds_left))

    result = runner.run(build_settings(choices), Recording())
    Path(sys.argv[2]).write_text(json.dumps(log), encoding="utf-8")
    Path(sys.argv[3]).write_bytes(encode(result))


@dataclass(frozen=True)
class Estimate:
    """One ETA after a unit, against what happened."""

    share: float
    """Share of the run's units done."""
    estimate_s: float
    """The runner's estimate of the time left."""
    real_s: float
    """The time that really remained until the last unit ended."""
    units_expected: int
    """Units the runner still planned then."""
    units_left: int
    """Units that really came after."""

    @property
    def error(self) -> float:
        """Relative error of the estimate (0.2: 20 % off); infinite when no time remained."""
        return abs(self.estimate_s - self.real_s) / self.real_s if self.real_s > 0 else math.inf


def eta_errors(log: Sequence[Sequence[float | None]]) -> list[Estimate]:
    """Return, per unit but the last, its estimate against the time left until the last unit ended."""
    if not log:
        return []
    end, total = float(log[-1][0] or 0.0), int(log[-1][1] or 1)
    return [
        Estimate(
            int(done or 0) / total,
            float(left),
            end - float(at or 0.0),
            int(planned or 0) - int(done or 0),
            total - int(done or 0),
        )
        for at, done, planned, left in log[:-1]
        if left is not None
    ]


def eta(folder: Path, choices_json: bytes) -> tuple[list[Estimate], RunResult, float]:
    """Run the ETA process; return its estimates against the truth, its results, and its wall time."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / name for name in ("eta-choices.json", "eta-log.json", "eta-run.json")]
    paths[0].write_bytes(choices_json)
    boot = "import sys; sys.path.insert(0, sys.argv.pop(1)); from quality.answer import eta_main; eta_main()"
    began = time.monotonic()
    with open(folder / "eta-run.txt", "wb") as output:
        subprocess.run(
            [sys.executable, "-c", boot, str(BENCHMARKS), *map(str, paths)],
            check=True,
            cwd=folder,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    wall = time.monotonic() - began
    return eta_errors(json.loads(paths[1].read_text())), load_run(paths[2]), wall


def between_units(run: RunResult) -> tuple[float, float]:
    """Return the rounds' time and the part of it outside the units (the runner's own work between them)."""
    took = measuring_s(run)
    return took, took - sum(c.wall_s for c in run.results)


def promises(folder: Path, choices_json: bytes, budget_args: Sequence[str], budget_s: float) -> Section:
    """Section 8c: the ETA against the time that really remained, and ``--time-budget`` against its word."""
    began = time.monotonic()
    section = Section(
        8,
        "Time to answer: the ETA and the time budget",
        "ETA: a run driven through `offbench.run.runner.run` (in a process of its own) with an observer "
        "that records the runner's estimate after every unit (`Observer.unit_finished(done, planned, "
        "seconds_left)`, what the progress bar shows), compared with the time that really remained until "
        "the last unit ended. Judged between 10 % and 90 % of the units (the issue: after the first 10 %; "
        "in the last 10 % the time left is seconds, and its error is reported in seconds). Time budget: "
        f"`offbench {' '.join(budget_args)}`: the rounds' time against the budget. 'Between units' is the "
        "rounds' time less the units' own (worker start to report): the runner's work after each unit and "
        "round.",
        ["check", "what", "measured"],
        part="c",
    )
    errors, eta_run, wall = eta(folder, choices_json)
    middle = [e for e in errors if 0.1 <= e.share <= 0.9 and e.real_s > 0]
    late = [e for e in errors if e.share > 0.9]
    relative = [e.error for e in middle]
    within = sum(r <= ETA_TOLERANCE for r in relative)
    worst = max(middle, key=lambda e: e.error, default=None)
    took, outside = between_units(eta_run)
    section.rows.append(
        [
            "ETA",
            f"{len(middle)} estimates between 10 % and 90 % of units ({wall:.0f} s run)",
            f"{within} within 20 %; median error "
            f"{fmt(100 * statistics.median(relative) if relative else None)} %",
        ]
    )
    if worst:
        section.rows.append(
            [
                "ETA",
                "worst",
                f"at {100 * worst.share:.0f} % of units: {worst.estimate_s:.1f} s estimated, "
                f"{worst.real_s:.1f} s real ({worst.units_expected} more units expected, "
                f"{worst.units_left} came)",
            ]
        )
    if late:
        section.rows.append(
            [
                "ETA",
                "last 10 % of units",
                f"worst {max(abs(e.estimate_s - e.real_s) for e in late):.1f} s off",
            ]
        )
    section.rows.append(["ETA", "between units", f"{outside:.1f} s of the rounds' {took:.1f} s"])
    section.targets.append(
        target(
            "ETA within 20 % of the real time left (10 % to 90 % of units)",
            f"{within} of {len(middle)}",
            "all",
            bool(middle) and within == len(middle),
            eta_why(middle, outside, took) if middle else "no estimates in that range",
        )
    )
    timed = offbench(budget_args, folder, "time-budget")
    run = timed.result
    took, outside = between_units(run)
    stopped = sum(c.stopped == "time budget" for c in run.results)
    section.rows.append(
        [
            "time budget",
            f"--time-budget {budget_s:g}",
            f"rounds took {took:.1f} s ({100 * (took / budget_s - 1):+.0f} %), {outside:.1f} s of it "
            f"between units; whole command {timed.wall_s:.1f} s; {stopped} of {len(run.results)} cells "
            "stopped by it",
        ]
    )
    section.targets.append(
        target(
            f"--time-budget {budget_s:g} kept within 10 %",
            f"{took:.1f} s of rounds",
            f"≤ {budget_s * 1.1:.1f} s",
            took <= budget_s * (1 + BUDGET_TOLERANCE),
            f"the runner checks the next round against its units' times, and {outside:.1f} s went between "
            "units",
        )
    )
    section.seconds = time.monotonic() - began
    return section


def eta_why(middle: Sequence[Estimate], outside: float, took: float) -> str:
    """Say whether the missed estimates ran high or low, and whether the units or their times were off."""
    missed = [e for e in middle if e.error > ETA_TOLERANCE]
    low = [e for e in missed if e.estimate_s < e.real_s]
    fewer = [e for e in missed if e.units_expected < e.units_left]
    ratio = statistics.median(e.units_expected / max(1, e.units_left) for e in missed) if missed else 1.0
    return (
        f"{len(missed)} missed, {len(low)} too low; in {len(fewer)} of them the runner expected fewer units "
        f"than came (median {100 * ratio:.0f} % of them): cells needed more units than their spread so far "
        f"suggested; {100 * outside / max(took, 1e-9):.0f} % of the rounds went between units"
    )


def budget_why(run: RunResult, budget_s: float) -> str:
    """Say which round overran the budget: the first always runs whole (it calibrates every cell)."""
    if not run.rounds:
        return "no round ran"
    if len(run.rounds) == 1:
        return (
            f"the first round always runs whole (it calibrates every cell) and took "
            f"{run.rounds[0].wall_s:.1f} s: a budget under it cannot be kept"
        )
    return (
        f"the last of {len(run.rounds)} rounds took {run.rounds[-1].wall_s:.1f} s, longer than the runner "
        "estimated from its units"
    )
