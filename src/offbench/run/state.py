"""The cells while the rounds run, and what they become: results normalised to the run's host.

A :class:`CellState` gathers one cell's units as the runner (:mod:`offbench.run.runner`)
measures them; :func:`finish` turns every cell into its
:class:`~offbench.model.results.CellResult` once the rounds end, each unit's throughput
read at the run's median host speed (:func:`offbench.judge.precision.correct`), and
:func:`host_of` says how steady the machine was.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec

from offbench.judge import precision
from offbench.measure.wire import Measurement
from offbench.model.cells import CellSpec
from offbench.model.results import BUSY_SHARE, CellResult, Host, Round, Stop, Unit, failed_cell
from offbench.processes import Launcher
from offbench.run import aggregate
from offbench.stats import cv


@dataclass
class CellState:
    """One cell while the rounds run: its unit spec, what its units measured, and whether it is done."""

    spec: CellSpec
    executable: Launcher | None = None
    measured: list[Measurement] = field(default_factory=list)
    units: list[Unit] = field(default_factory=list)
    walls: list[float] = field(default_factory=list)
    """Each unit's wall time in the runner: what the next would cost."""
    failure: CellResult | None = None
    stopped: Stop | None = None
    start_method: str = ""

    @property
    def active(self) -> bool:
        """True while the cell needs more units."""
        return self.stopped is None


def correction(states: Sequence[CellState]) -> precision.HostCorrection:
    """Return the run's host correction so far (:func:`offbench.judge.precision.correct`)."""
    return precision.correct([s.units for s in states], [workload_of(s.spec) for s in states],
                             [s.spec.python for s in states])


def workload_of(spec: CellSpec) -> tuple[str, bytes, bool]:
    """Return what shares one sensitivity to the host: a workload with its parameters, closed or open loop."""
    return spec.workload, msgspec.json.encode(spec.params), spec.rate is not None


def normalised_values(states: Sequence[CellState]) -> list[list[float]]:
    """Return each cell's units' throughputs at the run's median host speed, cells in order."""
    return correction(states).values([s.units for s in states])


def result_of(state: CellState, normalised: Sequence[float]) -> CellResult:
    """Return the result of a cell as it stands: its failure, or its units pooled."""
    if state.failure is not None and not state.measured:
        result = state.failure
    elif not state.measured:
        result = failed_cell(state.spec, "error", "interrupted before a unit measured it")
    elif state.failure is not None:
        result = msgspec.structs.replace(state.failure, units=list(state.units))
    else:
        result = aggregate.cell_result(state.spec, state.measured, state.units, normalised,
                                       state.stopped or "interrupted")
    return msgspec.structs.replace(result, worker_start=state.start_method, wall_s=round(sum(state.walls), 3))


def finish(states: Sequence[CellState], lag_budget_ms: float) -> list[CellResult]:
    """Return every cell's result, in the matrix's order, normalised to the run's host speed.

    Each unit keeps its host factor and each cell its workload's sensitivity, so that a
    saved file's figures can be recomputed (:func:`offbench.judge.precision.unit_values`).
    """
    found = correction(states)
    for state, factors in zip(states, found.factors, strict=True):
        state.units = [msgspec.structs.replace(u, host_factor=None if f is None else round(f, 5))
                       for u, f in zip(state.units, factors, strict=True)]
    values = found.values([s.units for s in states])
    return [msgspec.structs.replace(result_of(state, value), host_sensitivity=round(sensitivity, 4))
            if state.units else result_of(state, value)
            for state, value, sensitivity in zip(states, values, found.sensitivities, strict=True)]


def host_of(results: Sequence[CellResult], rounds: Sequence[Round]) -> Host | None:
    """Return how steady the machine was over the run's units; ``None`` without a unit."""
    units = [u for r in results for u in r.units]
    references = [u.reference_ms for u in units if u.reference_ms is not None]
    if not references:
        return None
    per_round = [r.reference_ms for r in rounds if r.reference_ms is not None]
    others = [u.other_cpu for u in units if u.other_cpu is not None]
    busy = [r for r in results if any((u.other_cpu or 0.0) > BUSY_SHARE for u in r.units)]
    return Host(
        reference_ms=round(statistics.median(references), 4),
        drift_pct=round((cv(per_round) or 0.0) * 100, 2),
        scatter_pct=round((cv(references) or 0.0) * 100, 2),
        other_cpu_mean=round(statistics.fmean(others), 4) if others else None,
        other_cpu_max=round(max(others), 4) if others else None,
        busy_units=sum((u.other_cpu or 0.0) > BUSY_SHARE for u in units),
        busy_cells=len(busy),
    )
