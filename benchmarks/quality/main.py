"""The script: which sections to run at which size (full or ``--smoke``), in which order, and the report."""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
from rich.console import Console

from offbench import loops
from offbench.model.settings import WorkloadSpec
from offbench.plan.settings import Choices

from . import answer, calibration, floor, fresh, observer, pyperf_side, repeat, stalls
from .report import Section, markdown, show, target
from .runs import BENCHMARKS

COMMITTED = BENCHMARKS / "QUALITY.md"
BUDGET_S = 6000.0
"""What the whole script may take on the project's 2-core machine: 100 minutes, most of it the 120-odd
``offbench run``s that sections 5 to 8 need (section 6's ≥ 20 pairs of each of four series above all: about
50 minutes, two thirds of it the A/B runs, whose workers are new interpreters)."""
SMOKE_MATRIX = [*calibration.RECOMMENDED_WORKLOADS, "-l", "asyncio", *calibration.RECOMMENDED_STRATEGIES]
"""The matrix whole runs measure in ``--smoke``: the recommended comparison's."""


@dataclass(frozen=True)
class Plan:
    """How big each section is: the full run's sizes, or ``--smoke``'s smallest."""

    smoke: bool
    stall_sizes: tuple[float, ...] = (2, 10, 50, 200)
    stall_count: int = 12
    idle_s: float = 2.0
    idle_reps: int = 3
    observer_rounds: int = 8
    harness_reps: int = 3
    pyperf_levels: tuple[tuple[str, ...], ...] = (("-p", "4", "-n", "3"), ("--fast",), ())
    unit_counts: tuple[int, ...] = (5, 10, 20)
    quick_runs: int = 10
    default_runs: int = 5
    pairs: int = 20
    matrix: list[str] = field(default_factory=list)
    """Added to every whole run's options (the smoke run's small matrix)."""
    budget_s: float = 30.0
    """``--time-budget`` of section 8's check: more than a first round of the quick matrix (about 25 s)."""
    slow_matrix: tuple[str, ...] = ("-l", "asyncio")
    """Section 8's slow functions: every default strategy, both concurrencies, on asyncio."""

    @property
    def quick_args(self) -> list[str]:
        return ["--quick", *self.matrix, *(["--rounds", "2"] if self.smoke else [])]

    @property
    def default_args(self) -> list[str]:
        return [*self.matrix, *(["--rounds", "2"] if self.smoke else [])]

    def eta_choices(self) -> bytes:
        """Return the ETA run's choices: ``--quick`` without semantics or pool costs, on the plan's matrix."""
        choices = Choices(quick=True, semantics=False, pool_costs=False)
        if self.smoke:
            choices = msgspec.structs.replace(
                choices,
                workloads=[WorkloadSpec(name="sleep"), WorkloadSpec(name="cpu")],
                loops=["asyncio"],
                strategies=["direct", "to-thread", "process-pool"],
            )
        return msgspec.json.encode(choices)


FULL = Plan(smoke=False)
SMOKE = Plan(
    smoke=True,
    stall_sizes=(2, 50),
    stall_count=3,
    idle_s=0.3,
    idle_reps=1,
    observer_rounds=2,
    harness_reps=1,
    pyperf_levels=(("-p", "2", "-n", "2", "-l", "64", "-w", "0"),),
    unit_counts=(2,),
    quick_runs=2,
    default_runs=2,
    pairs=1,
    matrix=SMOKE_MATRIX,
    budget_s=6.0,
    slow_matrix=tuple(["-l", "asyncio", "-s", "direct", "-s", "to-thread", "-c", "1", "--rounds", "2"]),
)


def installed_loops() -> list[str]:
    """Return the event loops that run here."""
    return [name for name in loops.names() if loops.get(name).unavailable_reason() is None]


def runs_folder(given: Path | None) -> Path:
    """Return where this run keeps every results file: ``--runs``, else a dated folder outside the tree."""
    if given is not None:
        return given
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "offbench-quality"
    return base / datetime.datetime.now().strftime("%Y-%m-%dT%H%M%S")


def budget_section(total_s: float, budget_s: float, sections: Sequence[Section]) -> Section:
    """Section 9: the script's own time, against its budget, and where it went."""
    section = Section(
        9,
        "This script",
        f"The whole script's wall time against the budget set for it ({budget_s:.0f} s, `BUDGET_S` in "
        "`benchmarks/quality/main.py`: the full run's estimate from the smoke run's per-unit costs, with "
        "a margin), and each section's share of it.",
        ["section", "s", "share %"],
    )
    for found in sections:
        section.rows.append(
            [
                f"{found.label}. {found.title}",
                f"{found.seconds:.0f}",
                f"{100 * found.seconds / max(total_s, 1e-9):.0f}",
            ]
        )
    longest = max(sections, key=lambda s: s.seconds, default=None)
    section.targets.append(
        target(
            "this script, all sections",
            f"{total_s:.0f} s",
            f"≤ {budget_s:.0f} s",
            total_s <= budget_s,
            f"the longest section: {longest.label} ({longest.seconds:.0f} s)" if longest else "",
        )
    )
    section.seconds = total_s
    return section


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description="Measure offbench itself and write QUALITY.md.")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="where to write the report (default: benchmarks/QUALITY.md; required with --smoke)",
    )
    parser.add_argument("--only", default="1,2,3,4,5,6,7,8", help="comma-separated section numbers")
    parser.add_argument(
        "--check",
        action="store_true",
        help="measure nothing: say whether QUALITY.md was measured with the measuring code as it is "
        "(exit 0) or is stale (exit 1)",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="every section at its smallest (one or two repeats, the fewest runs): does it work?",
    )
    parser.add_argument(
        "--runs",
        type=Path,
        default=None,
        help="folder for every run's results (default: ~/.cache/offbench-quality/DATE)",
    )
    args = parser.parse_args(argv)
    if args.output is None:
        if args.smoke:
            parser.error("--smoke needs -o PATH: a smoke report never replaces benchmarks/QUALITY.md")
        args.output = COMMITTED
    if args.smoke and args.output.resolve() == COMMITTED.resolve():
        parser.error("--smoke never writes benchmarks/QUALITY.md: give -o another path")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sections asked for, print them, and write the Markdown report."""
    args = parse(argv)
    if args.check:
        stale = fresh.staleness(args.output.read_text(encoding="utf-8"))
        print(f"{args.output}: {stale or 'measured with the measuring code as it is'}")
        return 1 if stale else 0
    plan = SMOKE if args.smoke else FULL
    wanted = {int(part) for part in args.only.split(",")}
    console = Console(stderr=True)
    folder = runs_folder(args.runs)
    folder.mkdir(parents=True, exist_ok=True)
    console.print(f"results files in {folder}", highlight=False)
    began = time.monotonic()
    code = fresh.digest()  # the code measured: a change while the script runs is said in section 9
    loop_names = installed_loops()
    sections: list[Section] = []

    def add(*found: Section) -> None:
        for section in found:
            sections.append(section)
            show(console, section)

    tick_cost: dict[str, float] = {}
    if 1 in wanted:
        add(*stalls.accuracy(plan.stall_sizes, plan.stall_count, loop_names))
    if wanted & {2, 3}:
        two, tick_cost = floor.noise_floor(plan.idle_s, plan.idle_reps, loop_names)
        if 2 in wanted:
            add(two)
    if 3 in wanted:
        add(observer.observer(plan.observer_rounds, tick_cost))
    if 4 in wanted:
        add(floor.harness(plan.harness_reps, loop_names))
        add(pyperf_side.pyperf_side(folder / "pyperf", plan.pyperf_levels, plan.unit_counts))
    quick_command = " ".join(["offbench", "run", *plan.quick_args])
    default_command = (
        " ".join(["offbench", "run", *plan.default_args]) if plan.default_args else "offbench run"
    )
    if wanted & {5, 7, 8}:
        stamp = time.monotonic()
        runs = repeat.whole_runs(
            folder / "whole", plan.quick_args, plan.default_args, plan.quick_runs, plan.default_runs
        )
        spent = time.monotonic() - stamp
        quick_s = sum(t.wall_s for t in [runs.quick_cold, *runs.quick])
        default_s = sum(t.wall_s for t in runs.default)
        quick = [t.result for t in runs.quick]
        if 5 in wanted:
            five = repeat.repeatability(quick, quick_command)
            five.seconds = quick_s
            add(five)
        if 7 in wanted:
            seven = repeat.verdict_stability(
                quick, [t.result for t in runs.default], quick_command, default_command
            )
            seven.seconds = default_s
            add(seven)
        if 8 in wanted:
            eight = answer.time_to_answer(runs, quick_command, default_command)
            eight.seconds = spent - quick_s - default_s  # its runs are counted in 5 and 7
            add(eight)
    if 6 in wanted:
        stamp = time.monotonic()
        place = folder / "calibration"
        modes = [
            calibration.separate(
                place / "separate",
                plan.pairs,
                calibration.RECOMMENDED_WORKLOADS,
                calibration.RECOMMENDED_OPTIONS,
            ),
            calibration.in_one_run(place / "ab", plan.pairs, calibration.RECOMMENDED_OPTIONS, ["-w", "cpu"]),
        ]
        six = calibration.calibration(modes, " ".join(calibration.RECOMMENDED_RUN))
        six.seconds = time.monotonic() - stamp
        add(six)
    if 8 in wanted:
        add(answer.slow_functions(folder / "slow", ["--no-semantics", "--no-pool-costs", *plan.slow_matrix]))
        budget_args = [
            "run",
            "--quick",
            "--no-semantics",
            "--no-pool-costs",
            "--time-budget",
            f"{plan.budget_s:g}",
            *plan.matrix,
        ]
        add(answer.promises(folder / "promises", plan.eta_choices(), budget_args, plan.budget_s))
    total = time.monotonic() - began
    budget = BUDGET_S
    ordered = sorted(sections, key=lambda s: (s.number, s.part))
    nine = budget_section(total, budget, ordered)
    if fresh.digest() != code:
        nine.findings.append(
            f"The measuring code changed while the script ran: the report records the digest it started with "
            f"({code}), so the freshness test fails until it is run again on code that stays put."
        )
    add(nine)
    text = markdown([*ordered, nine], total, budget, code, smoke=plan.smoke, runs=folder)
    args.output.write_text(text, encoding="utf-8")
    console.print(f"wrote {args.output} ({total:.0f} s)", highlight=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
