"""The orchestrator: runs each cell of the matrix in fresh worker processes and collects results.

The runner never measures and never prints. It starts what a cell needs outside the
worker (the socket workload's server), starts the cell's worker processes one after
the other, each for its share of the window, enforces the timeout by killing a
worker's whole process group, turns every way a worker can end into a
:class:`~offbench.model.results.CellResult` (pooling the workers' raw measurements with
:func:`~offbench.run.aggregate.cell_result`), and tells an :class:`Observer` as cells
start and finish (the CLI draws progress from that).

After the cells, the run's process pools are costed (:mod:`offbench.run.poolcost`: start-up
by start method, a call's round trip with and without a payload) and its strategies and
loops are checked for their semantics (:mod:`offbench.semantics`), each unless the
settings say not to.

Ctrl-C (``KeyboardInterrupt``) stops the run between or during cells (or checks): the
worker in flight is killed, and the :class:`~offbench.model.results.RunResult` holds every
cell measured (and strategy checked) so far, marked ``complete=False``.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from typing import Protocol

import msgspec

from offbench import __version__, workloads
from offbench.errors import OffbenchError
from offbench.judge import gates, verdict
from offbench.measure.wire import Measurement, WorkerReport
from offbench.measure.worker import child_main
from offbench.model.cells import CellSpec
from offbench.model.results import CellResult, PoolCost, RunResult, failed_cell
from offbench.model.semantics import StrategySemantics
from offbench.model.settings import Interpreter, RunSettings
from offbench.plan import interpreters
from offbench.plan.matrix import cells, process_shares
from offbench.processes import ChildOutcome, default_start_method, run_child
from offbench.run import machine, poolcost
from offbench.run.aggregate import cell_result
from offbench.semantics.check import check


class Observer(Protocol):
    """Receives progress events; every method must return quickly."""

    def cell_started(self, index: int, total: int, cell: CellSpec) -> None:
        """Note that a cell is about to start (``index`` counts from 0)."""

    def cell_finished(self, index: int, total: int, result: CellResult) -> None:
        """Note that a cell has a result (ok, error or timeout)."""

    def waiting(self) -> None:
        """Take a moment, a few times a second while a cell runs (e.g. to refresh a display)."""

    def checking(self, strategy: str, loop: str) -> None:
        """Note that the semantic experiments for ``strategy`` on ``loop`` are about to run."""

    def installing(self, python: Interpreter) -> None:
        """Note that offbench is being installed in a venv for ``python`` (a minute, first time only)."""

    def costing(self, pools: list[str], python: str) -> None:
        """Note that the start-up and call cost of ``pools`` under ``python`` is about to be measured."""


class NullObserver:
    """An observer that ignores everything."""

    def cell_started(self, index: int, total: int, cell: CellSpec) -> None:
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


def run(settings: RunSettings, observer: Observer | None = None) -> RunResult:
    """Measure every cell of ``settings``; return the results, partial if interrupted.

    Each of ``settings.pythons`` first gets its venv (:func:`offbench.plan.interpreters.prepare`;
    ``UsageError`` before any cell runs if that fails), and its cells' workers are
    spawned with the venv's interpreter.
    """
    observer = observer or NullObserver()
    began = time.monotonic()
    created = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    settings = msgspec.structs.replace(settings, pythons=[
        interpreters.prepare(python, observer.installing) for python in settings.pythons])
    executables = {python.label: python.executable for python in settings.pythons}
    info = machine.describe()
    matrix = cells(settings)
    preload(settings)
    results: list[CellResult] = []
    found: list[StrategySemantics] = []
    costs: list[PoolCost] = []
    complete = False
    try:
        for index, cell in enumerate(matrix):
            observer.cell_started(index, len(matrix), cell)
            result = run_cell(cell, settings.cell_timeout_s, observer.waiting,
                              executables.get(cell.python))
            results.append(result)
            observer.cell_finished(index, len(matrix), result)
        if settings.pool_costs:
            cost_pools(settings, observer, costs)
        if settings.semantics:
            check(settings.strategies, settings.loops, found=found,
                  on_start=lambda spec: observer.checking(spec.strategy, spec.loop),
                  on_wait=observer.waiting)
        complete = True
    except KeyboardInterrupt:
        pass
    return RunResult(
        offbench_version=__version__,
        created=created,
        complete=complete,
        wall_s=round(time.monotonic() - began, 3),
        machine=info,
        settings=settings,
        results=results,
        verdicts=verdict.decide(results, settings.lag_budget_ms, found),
        semantics=found,
        gates=gates.judge_all(settings.fail_if, results),
        pool_costs=costs,
    )


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
    targets: list[tuple[str, str | None]] = [(python.label, python.executable) for python in settings.pythons]
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
    cell: CellSpec, timeout_s: float, on_wait: Callable[[], None] | None = None,
    executable: str | None = None,
) -> CellResult:
    """Measure one cell in fresh worker processes, one after the other, inside its workload's fixture.

    ``timeout_s`` applies to each worker process. The first worker that fails fails the
    cell, and no further one starts. The cell's parameters are completed with the
    workload's defaults here, so a cell built by hand (in tests, say) needs to name
    only what differs. ``executable`` spawns the workers with another interpreter.
    """
    began = time.monotonic()
    measured: list[Measurement] = []
    start_method = ""
    try:
        workload = workloads.get(cell.workload)
        cell = msgspec.structs.replace(cell, params=workload.resolve_params(cell.params))
        with workload.fixture(cell.params) as resources:
            cell = msgspec.structs.replace(cell, resources=resources)
            for share in process_shares(cell):
                outcome = run_child(
                    child_main, msgspec.json.encode(share), timeout_s, on_wait or (lambda: None),
                    executable=executable,
                )
                start_method = outcome.start_method
                report = _from_outcome(cell, outcome, timeout_s)
                if isinstance(report, CellResult):
                    return _finish(report, start_method, began)
                measured.append(report)
    except (OffbenchError, OSError, RuntimeError) as exc:
        failure = failed_cell(cell, "error", f"could not set up the cell: {exc}")
        return _finish(failure, start_method, began)
    return _finish(cell_result(cell, measured), start_method, began)


def _finish(result: CellResult, start_method: str, began: float) -> CellResult:
    return msgspec.structs.replace(
        result, worker_start=start_method, wall_s=round(time.monotonic() - began, 3)
    )


def _from_outcome(cell: CellSpec, outcome: ChildOutcome, timeout_s: float) -> Measurement | CellResult:
    """Return a worker's measurement, or the failed result that says how it ended instead."""
    if outcome.timed_out:
        return failed_cell(cell, "timeout", f"no result within {timeout_s:g} s; worker killed")
    if outcome.report:
        try:
            report = msgspec.json.decode(outcome.report, type=WorkerReport)
        except msgspec.DecodeError as exc:
            return failed_cell(cell, "error", f"worker sent an unreadable result: {exc}")
        if report.measurement is not None:
            return report.measurement
        if report.failure is not None:
            return report.failure
    return failed_cell(cell, "error", outcome.exit_summary(), traceback=outcome.output or None)

