"""Sections 5 and 7: identical whole runs, one after the other: do the figures and the verdicts repeat?

The runs are those of :class:`WholeRuns`: one ``offbench run --quick`` that fills a fresh
semantics cache (cold), then identical ones with it warm; one ``offbench run`` with another
fresh cache, then identical ones with it warm. Section 8 times the same runs.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from offbench.model.results import CellResult, RunResult, Verdict

from .report import Section, cv, fmt, target
from .runs import Timed, offbench

BASELINE_CV = {"sleep": 1.2, "socket": 3.6, "cpu": 15.0, "numpy": 11.0}
"""The issue's baseline: per-cell throughput CV across identical ``--quick`` runs, median over cells, in %
(offbench before units: 2 processes × a window cut into 10 parts)."""
TARGET_CV = {"sleep": 1.2, "socket": 3.6, "cpu": 7.5, "numpy": 5.5}
"""Normalised CV targets: half the baseline for cpu and numpy, no worse than it for sleep and socket."""
FORBIDDEN_RATIO = 1.3
LAG_CV_FLOOR_MS = 1.0


@dataclass
class WholeRuns:
    """The whole runs sections 5, 7 and 8 read."""

    quick_cold: Timed
    quick: list[Timed]
    """Identical ``offbench run --quick``, the semantics cache warm."""
    default_cold: Timed | None
    default: list[Timed]
    """Identical ``offbench run``, the first of them with a cold cache (``default_cold``)."""


def whole_runs(
    folder: Path, quick_args: Sequence[str], default_args: Sequence[str], quick_runs: int, default_runs: int
) -> WholeRuns:
    """Run the quick and default runs, each series with a semantics cache of its own (cold, then warm)."""
    quick_env = {"OFFBENCH_CACHE": str(folder / "cache-quick")}
    default_env = {"OFFBENCH_CACHE": str(folder / "cache-default")}
    cold = offbench(["run", *quick_args], folder, "quick-cold", env=quick_env)
    quick = [
        offbench(["run", *quick_args], folder, f"quick-{i + 1:02}", env=quick_env) for i in range(quick_runs)
    ]
    default = [
        offbench(["run", *default_args], folder, f"default-{i + 1:02}", env=default_env)
        for i in range(default_runs)
    ]
    return WholeRuns(cold, quick, default[0] if default else None, default)


Key = tuple[str, str, str, int | None, str, int, str]


def key(cell: CellResult) -> Key:
    """Return what names a cell across runs."""
    return (
        cell.workload,
        str(sorted(cell.params.items())),
        cell.strategy,
        cell.max_workers,
        cell.loop,
        cell.concurrency,
        cell.python,
    )


def series(runs: Sequence[RunResult]) -> dict[Key, list[CellResult]]:
    """Return each cell's results across ``runs``, keeping only cells measured (ok) in every run."""
    found: dict[Key, list[CellResult]] = {}
    for run in runs:
        for cell in run.results:
            found.setdefault(key(cell), []).append(cell)
    return {k: cells for k, cells in found.items() if len(cells) == len(runs) and all(c.ok for c in cells)}


def normalised(cell: CellResult) -> float:
    """Return the cell's throughput at its run's median host speed (raw where the file has none)."""
    return cell.normalised_ops_s if cell.normalised_ops_s is not None else cell.throughput_ops_s


def repeatability(runs: Sequence[RunResult], command: str) -> Section:
    """Section 5: per-cell CV of raw and normalised throughput across identical runs, per workload."""
    section = Section(
        5,
        "Repeatability: identical quick runs",
        f"`{command}` {len(runs)} times in a row, the semantics cache warm. Per cell, the CV across the runs "
        "of its throughput as measured (raw) and at the run's median host speed (`normalised_ops_s`: each "
        "unit's divided by its host's speed to the power of its CPU share); per workload the median over "
        "cells, against the issue's baseline (the same figure for offbench before units). 'Moved' is the "
        "largest max / min of one cell across the runs. Lag p99 CV only over cells whose median lag p99 is "
        f"at least {LAG_CV_FLOOR_MS:g} ms.",
        [
            "workload",
            "cells",
            "raw CV median %",
            "normalised CV median %",
            "baseline %",
            "target %",
            "moved raw / normalised ×",
            "lag p99 CV median %",
        ],
    )
    by_cell = series(runs)
    for workload, limit in TARGET_CV.items():
        mine = {k: cells for k, cells in by_cell.items() if k[0] == workload}
        if not mine:
            continue
        raw = {k: cv([c.throughput_ops_s for c in cells]) for k, cells in mine.items()}
        norm = {k: cv([normalised(c) for c in cells]) for k, cells in mine.items()}
        moved_raw = max(
            max(c.throughput_ops_s for c in cells) / max(1e-9, min(c.throughput_ops_s for c in cells))
            for cells in mine.values()
        )
        moved_norm = max(
            max(map(normalised, cells)) / max(1e-9, min(map(normalised, cells))) for cells in mine.values()
        )
        lags = [
            cv([c.loop_lag_ms.p99 for c in cells if c.loop_lag_ms])
            for cells in mine.values()
            if statistics.median(c.loop_lag_ms.p99 if c.loop_lag_ms else 0.0 for c in cells)
            >= LAG_CV_FLOOR_MS
        ]
        median_norm = statistics.median(norm.values())
        section.rows.append(
            [
                workload,
                str(len(mine)),
                f"{statistics.median(raw.values()):.1f}",
                f"{median_norm:.1f}",
                f"{BASELINE_CV[workload]:g}",
                f"≤ {limit:g}",
                f"{moved_raw:.2f} / {moved_norm:.2f}",
                fmt(statistics.median(lags) if lags else None),
            ]
        )
        section.targets.append(
            target(
                f"normalised throughput CV, {workload} (median over cells)",
                f"{median_norm:.1f} %",
                f"≤ {limit:g} %",
                median_norm <= limit,
                cv_why(workload, statistics.median(raw.values()), median_norm, runs),
            )
        )
    hosts = [run.host for run in runs if run.host is not None]
    if hosts:
        section.findings.append(
            "The host while these runs measured: its pure-Python speed moved "
            f"{fmt(statistics.median(h.drift_pct for h in hosts))} % between rounds and "
            f"{fmt(statistics.median(h.scatter_pct for h in hosts))} % from unit to unit (medians over the "
            "runs); other programs took "
            f"{fmt(100 * statistics.median(h.other_cpu_mean or 0.0 for h in hosts))} % of the CPUs on "
            "average."
        )
    forbidden = forbidden_ratios(runs)
    for what, (hits, chances, worst) in forbidden.items():
        section.targets.append(
            target(
                f"physics-forbidden ratio: {what}",
                f"{hits} of {chances} (run, loop, concurrency); worst {worst:.2f}×",
                "never",
                hits == 0,
                "the units' scatter, not physics: see section 8's precision",
            )
        )
    return section


def cv_why(workload: str, raw: float, norm: float, runs: Sequence[RunResult]) -> str:
    """Say whether normalising helped, and what is left."""
    if norm < raw:
        return (
            f"normalising took it from {raw:.1f} % to {norm:.1f} %; what is left moves each cell on its own "
            "(the reference is timed once per unit, before the window)"
        )
    return f"normalising did not help ({raw:.1f} % raw): the scatter is the cells' own, not the host's speed"


def forbidden_ratios(runs: Sequence[RunResult]) -> dict[str, tuple[int, int, float]]:
    """Count (run, loop, concurrency) where cpu's ratios break physics: threads beat the GIL, a pool idles.

    Returns, per rule, (times broken, times checked, the worst ratio seen).
    """
    rules = {
        f"cpu to-thread above {FORBIDDEN_RATIO:g}× direct": (
            "to-thread",
            None,
            lambda r: r > FORBIDDEN_RATIO,
            max,
        ),
        f"cpu process-pool under {FORBIDDEN_RATIO:g}× direct at c=8": (
            "process-pool",
            8,
            lambda r: r < FORBIDDEN_RATIO,
            min,
        ),
    }
    found: dict[str, tuple[int, int, float]] = {}
    for what, (strategy, level, broken, pick) in rules.items():
        ratios = []
        for run in runs:
            cells = {
                (c.strategy, c.max_workers, c.loop, c.concurrency): c
                for c in run.results
                if c.workload == "cpu" and c.ok
            }
            for (name, size, loop, concurrency), cell in cells.items():
                direct = cells.get(("direct", None, loop, concurrency))
                if name != strategy or size is not None or direct is None or normalised(direct) <= 0:
                    continue
                if level is not None and concurrency != level:
                    continue
                ratios.append(normalised(cell) / normalised(direct))
        found[what] = (sum(map(broken, ratios)), len(ratios), pick(ratios) if ratios else float("nan"))
    return found


def label(strategy: str, max_workers: int | None) -> str:
    """Return a candidate's label as verdicts write it (``to-thread (8)``)."""
    return f"{strategy} ({max_workers})" if max_workers is not None else strategy


def verdict_key(verdict: Verdict) -> str:
    """Return what a verdict decided: its winner, or its tied set (in a fixed order), or none."""
    if len(verdict.tied) > 1:
        return " = ".join(sorted(verdict.tied))
    if verdict.winner is None:
        return "none"
    return label(verdict.winner.strategy, verdict.winner.max_workers)


def headline(verdict: Verdict) -> str:
    """Return what the verdict tells the user to use: its text up to the first colon."""
    return verdict.text.split(":", 1)[0]


def sized_choice(verdict: Verdict, concurrency: int = 8) -> str:
    """Classify a verdict's choice: a reused pool sized to ``concurrency``, bounded-to-thread, or else."""
    winner = verdict.winner
    if winner is None:
        return "none"
    if winner.strategy == "bounded-to-thread":
        return "bounded-to-thread"
    if winner.strategy == "executor-per-call":
        return "executor-per-call"
    if winner.max_workers == concurrency or (verdict.fix and f"max_workers={concurrency})" in verdict.fix):
        return f"pool of {concurrency}"
    return label(winner.strategy, winner.max_workers)


def verdict_stability(
    quick: Sequence[RunResult], default: Sequence[RunResult], quick_command: str, default_command: str
) -> Section:
    """Section 7: per workload, the verdicts seen across identical runs, and how often the commonest came."""
    section = Section(
        7,
        "Verdict stability",
        f"The verdict (winner, or the tied set) per workload in {len(quick)} identical `{quick_command}` "
        f"and {len(default)} identical `{default_command}` (section 5's and 8's runs; the semantics "
        "findings, which break ties, from the cache). 'At c=8' classifies what sleep's and socket's "
        "verdicts name: a reused pool sized to the concurrency (to-thread with a default executor of 8 "
        "threads), bounded-to-thread, or something else; never executor-per-call. 'Headline' is what the "
        "verdict tells the user to use (its text up to the first colon): of a tied set it names one, by "
        "the strategies' semantics, so it can hold where the tied set's edges move.",
        ["command", "workload", "verdicts seen (count)", "commonest", "headline: commonest",
         "sleep/socket at c=8"],
    )
    for command, runs, need in ((quick_command, quick, 0.9), (default_command, default, 1.0)):
        if not runs:
            continue
        workloads = list(dict.fromkeys(v.workload for run in runs for v in run.verdicts))
        for workload in workloads:
            verdicts = [v for run in runs for v in run.verdicts if v.workload == workload and not v.python]
            seen = Counter(verdict_key(v) for v in verdicts)
            top, count = seen.most_common(1)[0]
            said = Counter(headline(v) for v in verdicts)
            said_top, said_count = said.most_common(1)[0]
            choices = (
                Counter(sized_choice(v) for v in verdicts) if workload in ("sleep", "socket") else Counter()
            )
            section.rows.append(
                [
                    command,
                    workload,
                    "; ".join(f"{k} ({n})" for k, n in seen.most_common()),
                    f"{count} of {len(runs)}",
                    f"{said_count} of {len(runs)} ({said_top}; {len(said)} different)",
                    "; ".join(f"{k} ({n})" for k, n in choices.most_common()) or "–",
                ]
            )
            wanted = -(-need * len(runs) // 1)  # ceil: 9 of 10, 5 of 5
            section.targets.append(
                target(
                    f"same verdict, {workload}, `{command}`",
                    f"{count} of {len(runs)} ({top})",
                    f"≥ {wanted:.0f} of {len(runs)}",
                    count >= wanted,
                    f"{len(seen)} different verdicts: the candidates' margins are within the runs' noise",
                )
            )
            if choices:
                good = sum(n for k, n in choices.items() if k in ("pool of 8", "bounded-to-thread"))
                section.targets.append(
                    target(
                        f"{workload} at c=8 names a pool sized to 8 or bounded-to-thread, `{command}`",
                        f"{good} of {len(verdicts)}",
                        f"{len(verdicts)} of {len(verdicts)}, never executor-per-call",
                        good == len(verdicts),
                        "; ".join(f"{k} ({n})" for k, n in choices.items()),
                    )
                )
    return section
