"""The orchestrator: measures the cells of the matrix in rounds of fresh worker processes.

The runner never measures and never prints. A cell is measured by *units*: one worker
process each, one per round. In every round each cell that still needs a unit gets
one, in a random order (seeded, :attr:`~offbench.model.settings.RunSettings.seed`), so
a slow minute of the host falls on every strategy alike, as Google Benchmark's random
interleaving of repetitions does; the cells a verdict compares are measured in the
same rounds. The first round calibrates: each cell's first unit sizes the window its
later units measure (:mod:`offbench.measure.worker`). After every round each cell is
judged (:mod:`offbench.judge.precision`): it stops once its throughput is known to
the effort's precision and its lag p99 well enough, or at the most units, or when
``--rounds`` fixes the count; a ``--time-budget`` ends the rounds when the next would
not fit.

Around every unit the runner reads the machine's CPU time (``/proc/stat``): what the
machine's CPUs did beyond the unit's own processes is other programs' load, recorded
per unit (:attr:`~offbench.model.results.Unit.other_cpu`) and summarised per run
(:class:`~offbench.model.results.Host`). It starts what a cell needs outside the
worker (the socket workload's server, once per workload for the whole run), enforces
each unit's timeout by killing the worker's whole process group, turns every way a
worker can end into a result (:func:`~offbench.run.aggregate.cell_result`), and tells
an :class:`Observer` as units start and end and cells finish.

After the rounds, ``--rate auto`` searches each strategy's capacity in short units
(:mod:`offbench.run.capacity`), the run's process pools are costed
(:mod:`offbench.run.poolcost`) and its strategies and loops are checked for their
semantics (:mod:`offbench.semantics`), each unless the settings say not to.

Ctrl-C (``KeyboardInterrupt``) stops the run between or during units: the worker in
flight is killed, and the :class:`~offbench.model.results.RunResult` holds every cell
with the units it had, marked ``complete=False``.
"""

from __future__ import annotations

import contextlib
import datetime
import itertools
import os
import random
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import msgspec

from offbench import __version__, workloads
from offbench.errors import OffbenchError
from offbench.judge import gates, precision, rates, verdict
from offbench.judge.contested import contested
from offbench.judge.evidence import judged_cell
from offbench.measure import cpu
from offbench.measure.wire import Measurement, WorkerReport
from offbench.measure.worker import child_main
from offbench.model.cells import CellSpec
from offbench.model.params import Params
from offbench.model.rates import Capacity
from offbench.model.results import (
    CellResult,
    PoolCost,
    Round,
    RunResult,
    Stop,
    failed_cell,
)
from offbench.model.semantics import StrategySemantics
from offbench.model.settings import Interpreter, RunSettings
from offbench.plan import interpreters
from offbench.plan.matrix import capacity_cells, cells
from offbench.processes import ChildOutcome, Launcher, default_start_method, run_child
from offbench.run import aggregate, capacity, machine, poolcost
from offbench.run.forecast import fits, outlook
from offbench.run.state import CellState, finish, host_of, normalised_values, result_of, workload_of
from offbench.semantics.check import check

CALIBRATION_TIMEOUT_S = 30.0
"""How long a cell's first unit may take (warm-up, a window sized from it, the drain) unless
``--cell-timeout`` says: a call too slow to calibrate in that time needs ``--duration``."""
UNIT_TIMEOUT_S = 15.0
"""Start-up room of a later unit's timeout, on top of three times the first unit's wall time."""


class Observer(Protocol):
    """Receives progress events; every method must return quickly."""

    def round_started(self, index: int, cells: int) -> None:
        """Note that round ``index`` (from 0) is about to measure one unit of each of ``cells`` cells."""

    def unit_started(self, done: int, planned: int, cell: CellSpec, round_index: int) -> None:
        """Note that a unit of ``cell`` is about to start; ``done`` of ``planned`` units are behind."""

    def unit_finished(self, done: int, planned: int, seconds_left: float | None) -> None:
        """Note that a unit ended; ``seconds_left`` is the runner's estimate of the rest of the run."""

    def cell_finished(self, index: int, total: int, result: CellResult) -> None:
        """Note that a cell has its result (ok, error or timeout): it gets no more units."""

    def waiting(self) -> None:
        """Take a moment, a few times a second while a unit runs (e.g. to refresh a display)."""

    def checking(self, strategy: str, loop: str) -> None:
        """Note that the semantic experiments for ``strategy`` on ``loop`` are about to run."""

    def installing(self, python: Interpreter) -> None:
        """Note that offbench is being installed in a venv for ``python`` (a minute, first time only)."""

    def costing(self, pools: list[str], python: str) -> None:
        """Note that the start-up and call cost of ``pools`` under ``python`` is about to be measured."""

    def searching(self, cell: CellSpec, probe: int) -> None:
        """Note that unit ``probe`` (from 0) of the capacity search of ``cell`` (at its rate) starts."""


class NullObserver:
    """An observer that ignores everything."""

    def round_started(self, index: int, cells: int) -> None:
        """Ignore."""

    def unit_started(self, done: int, planned: int, cell: CellSpec, round_index: int) -> None:
        """Ignore."""

    def unit_finished(self, done: int, planned: int, seconds_left: float | None) -> None:
        """Ignore."""

    def cell_finished(self, index: int, total: int, result: CellResult) -> None:
        """Ignore."""

    def waiting(self) -> None:
        """Ignore."""

    def checking(self, strategy: str, loop: str) -> None:
        """Ignore."""

    def installing(self, python: Interpreter) -> None:
        """Ignore."""

    def costing(self, pools: list[str], python: str) -> None:
        """Ignore."""

    def searching(self, cell: CellSpec, probe: int) -> None:
        """Ignore."""


def run(settings: RunSettings, observer: Observer | None = None) -> RunResult:
    """Measure every cell of ``settings`` in rounds; return the results, partial if interrupted.

    Each of ``settings.pythons`` first gets its venv (:func:`offbench.plan.interpreters.prepare`;
    ``UsageError`` before any cell runs if that fails), and its cells' workers are
    spawned with the venv's interpreter.
    """
    observer = observer or NullObserver()
    began = time.monotonic()
    created = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    settings = msgspec.structs.replace(settings, pythons=[
        interpreters.prepare(python, observer.installing) for python in settings.pythons])
    executables = {python.label: interpreters.launcher(python) for python in settings.pythons}
    info = machine.describe()
    states = [CellState(spec, executables.get(spec.python)) for spec in cells(settings)]
    preload(settings)
    rounds: list[Round] = []
    found: list[StrategySemantics] = []
    costs: list[PoolCost] = []
    capacities: list[Capacity] = []
    complete = False
    try:
        with Fixtures() as fixtures:
            measure_rounds(states, settings, observer, fixtures, rounds, began)
            search_capacity(states, settings, observer, fixtures, began, capacities)
        if settings.pool_costs:
            cost_pools(settings, observer, costs)
        if settings.semantics:
            check(settings.strategies, settings.loops, found=found,
                  on_start=lambda spec: observer.checking(spec.strategy, spec.loop),
                  on_wait=observer.waiting, cached=True)
        complete = True
    except KeyboardInterrupt:
        for state in states:
            if state.active:
                state.stopped = "interrupted"
    results = finish(states, settings.lag_budget_ms)
    return RunResult(
        offbench_version=__version__,
        created=created,
        complete=complete,
        wall_s=round(time.monotonic() - began, 3),
        machine=info,
        settings=settings,
        results=results,
        verdicts=verdict.decide([r for r in results if r.rate is None], settings.lag_budget_ms, found),
        rate_verdicts=rates.decide([r for r in results if r.rate is not None], settings.slo_ms,
                                   settings.lag_budget_ms, info.cpu_count),
        capacity=capacities,
        semantics=found,
        gates=gates.judge_all(settings.fail_if, results),
        pool_costs=costs,
        rounds=rounds,
        host=host_of(results, rounds),
    )


def measure_rounds(
    states: list[CellState],
    settings: RunSettings,
    observer: Observer,
    fixtures: Fixtures,
    rounds: list[Round],
    began: float,
) -> None:
    """Run rounds until no cell needs a unit, or the time budget would be overrun by the next one."""
    order = random.Random(settings.seed)
    done = 0
    rounds_began = time.monotonic()
    for index in itertools.count():
        active = [i for i, state in enumerate(states) if state.active]
        if not active:
            return
        if index and not fits(states, settings, began):
            for i in active:
                stop(states[i], "time budget", i, len(states), observer)
            return
        chosen = order.sample(active, len(active))
        observer.round_started(index, len(chosen))
        round_began = time.monotonic()
        ahead = outlook(states, settings)
        for i in chosen:
            observer.unit_started(done, done + ahead.units, states[i].spec, index)
            measure_unit(states[i], fixtures, index, began, settings.cell_timeout_s, observer.waiting)
            done += 1
            if states[i].failure is not None:
                stop(states[i], "failed", i, len(states), observer)
            ahead = outlook(states, settings, time.monotonic() - rounds_began)
            observer.unit_finished(done, done + ahead.units, ahead.seconds)
        rounds.append(round_of(index, chosen, states, round_began - began, time.monotonic() - round_began))
        judge_round(states, settings, observer)


def search_capacity(states: Sequence[CellState], settings: RunSettings, observer: Observer,
                    fixtures: Fixtures, began: float, found: list[Capacity]) -> None:
    """With ``--rate auto``, search each candidate's capacity (:mod:`offbench.run.capacity`) into ``found``.

    Each of the search's units is measured as a rate cell's unit is, in a worker process of
    its own; the closed-loop cells at concurrency 1 give the search its starting rates.
    """
    searched = capacity_cells(settings)
    if not searched:
        return
    executables = {python.label: interpreters.launcher(python) for python in settings.pythons}

    def probe(spec: CellSpec) -> Measurement | CellResult:
        state = CellState(spec, executables.get(spec.python))
        measure_unit(state, fixtures, 0, began, settings.cell_timeout_s, observer.waiting)
        return state.measured[0] if state.measured else state.failure or failed_cell(spec, "error", "lost")

    starts = capacity.start_rates((state.spec, state.units) for state in states)
    capacity.search_all(searched, probe, settings.slo_ms, settings.lag_budget_ms, starts, found,
                        observer.searching)


def round_of(index: int, chosen: list[int], states: Sequence[CellState], started_s: float,
             wall_s: float) -> Round:
    """Return what round ``index`` measured, with its host speed and other programs' load."""
    units = [u for i in chosen for u in states[i].units[-1:] if u.round == index]
    references = [u.reference_ms for u in units if u.reference_ms is not None]
    others = [u.other_cpu for u in units if u.other_cpu is not None]
    return Round(
        index=index, started_s=round(started_s, 3), wall_s=round(wall_s, 3), cells=chosen,
        reference_ms=statistics.median(references) if references else None,
        other_cpu=round(statistics.fmean(others), 4) if others else None,
    )


def judge_round(states: Sequence[CellState], settings: RunSettings, observer: Observer) -> None:
    """After a round, stop each cell that has what it needs (see :class:`~offbench.model.settings.Effort`).

    A cell known to the run's precision still gets units, up to the cap, while the verdict
    cannot decide between it and its group's best (:mod:`offbench.judge.contested`).
    """
    effort = settings.effort
    values = normalised_values(states)
    settled: dict[int, Stop] = {}
    for index, state in enumerate(states):
        if not state.active:
            continue
        count = len(state.units)
        if settings.rounds is not None:
            if count >= settings.rounds:
                stop(state, "fixed", index, len(states), observer, values[index])
        elif count >= effort.max_units:
            stop(state, "most units", index, len(states), observer, values[index])
        elif count >= effort.min_units and (why := precision.settled(
                values[index], state.units, settings.lag_budget_ms, effort.precision_pct, effort.ticks)):
            settled[index] = why
    undecided = contested_cells(states, values, settings.lag_budget_ms) if settled else set()
    for index, reason in settled.items():
        if reason != "precise" or index not in undecided:
            stop(states[index], reason, index, len(states), observer, values[index])


def contested_cells(states: Sequence[CellState], values: Sequence[list[float]], budget: float) -> set[int]:
    """Return the cells still measuring whose comparison with their group's best the verdict cannot decide.

    A group is what the verdict compares: one workload with its parameters, loop,
    concurrency and interpreter, closed-loop cells only. Cells already stopped count as
    evidence but are not restarted.
    """
    groups: dict[tuple[object, ...], list[int]] = {}
    for index, state in enumerate(states):
        spec = state.spec
        if spec.rate is None and state.units:
            key = (workload_of(spec), spec.loop, spec.concurrency, spec.python)
            groups.setdefault(key, []).append(index)
    found: set[int] = set()
    for members in groups.values():
        if len(members) < 2 or not any(states[i].active for i in members):
            continue
        cells = [judged_cell(result_of(states[i], values[i]), list(values[i]), budget) for i in members]
        found |= {members[position] for position in contested(cells)}
    return {i for i in found if states[i].active}


def stop(state: CellState, why: Stop, index: int, total: int, observer: Observer,
         values: Sequence[float] | None = None) -> None:
    """Mark ``state`` done, and tell the observer its result (``values``: its normalised throughputs)."""
    state.stopped = why
    found = values if values is not None else normalised_values([state])[0]
    observer.cell_finished(index, total, result_of(state, found))


class Fixtures(contextlib.ExitStack):
    """What workloads run outside the workers (a loopback server), one per parameter set, for the run."""

    def __init__(self) -> None:
        super().__init__()
        self._resources: dict[bytes, Params] = {}

    def resources(self, cell: CellSpec) -> Params:
        """Return the resources of ``cell``'s workload, starting its fixture the first time."""
        key = msgspec.json.encode([cell.workload, cell.params])
        if key not in self._resources:
            fixture = workloads.get(cell.workload).fixture(cell.params)
            self._resources[key] = self.enter_context(fixture)
        return self._resources[key]


def measure_unit(
    state: CellState,
    fixtures: Fixtures,
    round_index: int,
    run_began: float,
    timeout_s: float | None = None,
    on_wait: Callable[[], None] | None = None,
) -> None:
    """Measure one unit of ``state``'s cell and record it (or its failure) in ``state``.

    The cell's first unit calibrates: the window it measured becomes its later units'.
    ``timeout_s`` (``--cell-timeout``) replaces the timeout that follows from the cell's
    earlier units (:func:`unit_timeout`).
    """
    spec = state.spec
    timeout = unit_timeout(state, timeout_s)
    started = time.monotonic()
    jiffies, own = cpu.machine_jiffies(), os.times()
    try:
        spec = msgspec.structs.replace(spec, resources=fixtures.resources(spec),
                                       seed=spec.seed + round_index if spec.rate is not None else spec.seed)
        outcome = run_child(child_main, msgspec.json.encode(spec), timeout, on_wait or (lambda: None),
                            executable=state.executable)
    except (OffbenchError, OSError, RuntimeError) as exc:
        state.failure = failed_cell(spec, "error", f"could not set up the cell: {exc}")
        return
    wall = time.monotonic() - started
    state.walls.append(wall)
    state.start_method = outcome.start_method
    report = from_outcome(spec, outcome, timeout)
    if isinstance(report, CellResult):
        state.failure = report
        return
    other = other_cpu(jiffies, cpu.machine_jiffies(), own, report, wall)
    state.measured.append(report)
    state.units.append(aggregate.unit(report, round_index, started - run_began, other))
    if state.spec.duration_s is None:
        state.spec = msgspec.structs.replace(state.spec, duration_s=report.elapsed_s)


def unit_timeout(state: CellState, given: float | None) -> float:
    """Return how long the next unit of ``state`` may take before its worker is killed."""
    if given is not None:
        return given
    if not state.walls:
        return CALIBRATION_TIMEOUT_S
    return UNIT_TIMEOUT_S + 3 * max(state.walls)


def other_cpu(
    before: tuple[int, int] | None,
    after: tuple[int, int] | None,
    own_before: os.times_result,
    measured: Measurement,
    wall_s: float,
) -> float | None:
    """Return the share of the machine's CPUs other programs used during a unit (``None`` off Linux).

    The machine's busy time over the unit, less the unit's own processes' CPU time (as
    the worker read it when it reported) and this process's, over the CPUs' capacity.
    """
    if before is None or after is None or measured.cpu_total_s is None or wall_s <= 0:
        return None
    busy_s = (after[0] - before[0]) / cpu.TICKS_PER_S
    own_after = os.times()
    mine = (own_after.user - own_before.user) + (own_after.system - own_before.system)
    capacity = wall_s * (os.cpu_count() or 1)
    return min(1.0, max(0.0, (busy_s - measured.cpu_total_s - mine) / capacity))


def cost_pools(settings: RunSettings, observer: Observer, found: list[PoolCost]) -> None:
    """Measure the run's process pools (if any) under each interpreter; append to ``found`` as they come.

    Each interpreter's pools are measured in one fresh child (:func:`offbench.run.poolcost.measure_in_child`),
    away from any event loop or thread, so that ``fork`` is safe there too. The pools are
    the size of the largest ``--max-workers`` the run asks for, else the executor's default.
    """
    pools = poolcost.pools_for(settings.strategies)
    if not pools:
        return
    sizes = [size for size in settings.max_workers if size is not None]
    targets: list[tuple[str, Launcher | None]] = [
        (python.label, interpreters.launcher(python)) for python in settings.pythons]
    for label, executable in targets or [("", None)]:
        observer.costing(pools, label)
        spec = poolcost.CostSpec(
            pools=pools,
            workers=max(sizes, default=None),
            payload_bytes=settings.payload_bytes or poolcost.DEFAULT_PAYLOAD_BYTES,
            calls=poolcost.QUICK_CALLS if settings.quick else poolcost.DEFAULT_CALLS,
            python=label,
        )
        found.extend(poolcost.measure_in_child(spec, on_wait=observer.waiting, executable=executable))


def preload(settings: RunSettings) -> list[str]:
    """Load the run's workloads' imports once, here, so every worker forked from us starts warm.

    Not when a user function is in the run (it may want BLAS's own thread pool, which a
    preloaded NumPy holds to one thread) or when workers are not forked (as under
    ``--python``). Returns the workloads that loaded something.
    """
    names = [spec.name for spec in settings.workloads]
    if any(":" in name for name in names) or default_start_method() != "fork" or settings.pythons:
        return []
    return [name for name in names if workloads.get(name).preload()]


def run_cell(
    cell: CellSpec,
    timeout_s: float | None = None,
    on_wait: Callable[[], None] | None = None,
    executable: Launcher | None = None,
    units: int = 1,
) -> CellResult:
    """Measure one cell alone with ``units`` worker processes one after the other: no rounds, no others.

    For tests and benchmarks that measure a cell by itself. The cell's parameters are
    completed with the workload's defaults here, so a cell built by hand needs to name
    only what differs; the first failing unit fails the cell.
    """
    began = time.monotonic()
    try:
        workload = workloads.get(cell.workload)
        cell = msgspec.structs.replace(cell, params=workload.resolve_params(cell.params))
    except OffbenchError as exc:
        return failed_cell(cell, "error", f"could not set up the cell: {exc}")
    state = CellState(cell, executable)
    with Fixtures() as fixtures:
        for index in range(units):
            measure_unit(state, fixtures, index, began, timeout_s, on_wait)
            if state.failure is not None:
                break
    state.stopped = "failed" if state.failure is not None else "fixed"
    return result_of(state, normalised_values([state])[0])


def from_outcome(cell: CellSpec, outcome: ChildOutcome, timeout_s: float) -> Measurement | CellResult:
    """Return a worker's measurement, or the failed result that says how it ended instead.

    Processes the cell's function left running outside the worker's process group, which
    were killed at its end, are counted in its ``details`` (``left_running``).
    """
    if outcome.timed_out:
        doing = f" while {outcome.phase}" if outcome.phase else ""
        return failed_cell(cell, "timeout", f"no result within {timeout_s:g} s; worker killed{doing}",
                           details=_left(outcome, {}))
    if outcome.report:
        try:
            report = msgspec.json.decode(outcome.report, type=WorkerReport)
        except msgspec.DecodeError as exc:
            return failed_cell(cell, "error", f"worker sent an unreadable result: {exc}")
        if report.measurement is not None:
            return msgspec.structs.replace(report.measurement,
                                           details=_left(outcome, report.measurement.details))
        if report.failure is not None:
            return msgspec.structs.replace(report.failure, details=_left(outcome, report.failure.details))
    return failed_cell(cell, "error", outcome.exit_summary(), traceback=outcome.output or None,
                       details=_left(outcome, {}))


def _left(outcome: ChildOutcome, details: Params) -> Params:
    return {**details, "left_running": outcome.left_running} if outcome.left_running else details

