"""Contested cells: what the verdict cannot decide yet gets more units; nothing else does."""

from __future__ import annotations

import msgspec
import pytest

from offbench.judge.contested import contested, reuses
from offbench.judge.evidence import Cell, judged_cell
from offbench.judge.precision import unit_values
from offbench.model.results import CellResult
from offbench.model.settings import RunSettings, WorkloadSpec
from offbench.plan.matrix import cells
from offbench.plan.settings import Choices, build_settings
from offbench.run import runner
from offbench.run.state import CellState
from tests.builders import cell

BUDGET = 10.0


def judged(found: CellResult) -> Cell:
    return judged_cell(found, unit_values(found), BUDGET)


def test_a_slower_cell_whose_interval_reaches_zero_is_contested_with_the_best() -> None:
    # 25 % slower on the point estimate, but one round says 45 % and the other 2 %: with two
    # rounds the paired interval takes t = 12.7 and reaches far past 0. Enough to matter
    # (over 10 %), not beyond noise: one more round decides it.
    best = judged(cell("to-thread", throughput=[100.0, 100.0], max_workers=8))
    slower = judged(cell("default-executor", throughput=[55.0, 98.0]))
    assert contested([slower, best]) == {0, 1}


def test_a_difference_beyond_noise_or_under_the_effect_that_matters_is_decided() -> None:
    best = judged(cell("to-thread", throughput=[100.0, 101.0, 100.0]))
    clearly_slower = judged(cell("default-executor", throughput=[75.0, 75.5, 75.0]))
    assert contested([best, clearly_slower]) == set()
    # 5 % slower, however noisy: a tie the units cannot break into a win worth having.
    close = judged(cell("default-executor", throughput=[80.0, 110.0, 95.0]))
    assert contested([best, close]) == set()


def test_the_best_is_one_that_reuses_its_workers_and_within_the_budget() -> None:
    # The per-call pool is fastest, but the verdict never picks it beside a reused pool: the
    # contest is against to-thread, which default-executor trails by an undecided 25 %.
    per_call = judged(cell("executor-per-call", throughput=[200.0, 200.0]))
    best = judged(cell("to-thread", throughput=[100.0, 100.0]))
    slower = judged(cell("default-executor", throughput=[55.0, 98.0]))
    assert not reuses("executor-per-call")
    assert reuses("to-thread")
    assert reuses("direct")
    assert contested([per_call, best, slower]) == {1, 2}
    # A fast cell whose loop lag is over the budget beyond doubt is out of the verdict: no contest.
    blocking = judged(cell("direct", throughput=[100.0, 100.0], lag=[40.0, 40.0]))
    assert contested([blocking, slower]) == set()


def test_a_failed_cell_or_a_lone_one_contests_nothing() -> None:
    assert contested([judged(cell("to-thread", throughput=[100.0, 100.0]))]) == set()
    failed = judged(cell("default-executor", status="error"))
    assert contested([judged(cell("to-thread", throughput=[100.0, 100.0])), failed]) == set()


def _run(max_units: int, *throughputs: list[float]) -> tuple[RunSettings, list[CellState], list[CellResult]]:
    """Cells of one group mid-run, their units made up (no worker), as the runner holds them."""
    settings = build_settings(Choices(
        workloads=[WorkloadSpec(name="sleep")], strategies=["to-thread", "default-executor", "direct"],
        loops=["asyncio"], concurrency=[8], quick=True, semantics=False, pool_costs=False, sized_pools=False))
    settings = msgspec.structs.replace(
        settings, effort=msgspec.structs.replace(settings.effort, min_units=2, max_units=max_units))
    states = [CellState(spec) for spec in cells(settings)]
    made = [cell(state.spec.strategy, throughput=tp, concurrency=8) for state, tp in
            zip(states, throughputs, strict=True)]
    for state, found in zip(states, made, strict=True):
        state.units = list(found.units)
    return settings, states, made


@pytest.mark.parametrize("cap", [3, 2])
def test_the_runner_keeps_contested_cells_measuring_up_to_the_cap(
        monkeypatch: pytest.MonkeyPatch, cap: int) -> None:
    # Every cell's own throughput is known (settled says "precise"); default-executor trails
    # to-thread by an undecided 25 %: the runner keeps that pair measuring and stops direct,
    # unless the pair has reached the cap.
    settings, states, made = _run(cap, [100.0, 100.0], [55.0, 98.0], [60.0, 60.0])
    monkeypatch.setattr(runner.precision, "settled", lambda *args: "precise")
    monkeypatch.setattr(runner, "result_of", lambda state, values: made[states.index(state)])
    assert runner.contested_cells(states, [list(u.throughput_ops_s for u in s.units) for s in states],
                                  settings.lag_budget_ms) == {0, 1}
    runner.judge_round(states, settings, runner.NullObserver())
    if cap > 2:
        assert [s.stopped for s in states] == [None, None, "precise"]
    else:
        assert [s.stopped for s in states] == ["most units"] * 3


def test_the_runner_stops_a_decided_group_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    settings, states, made = _run(3, [100.0, 101.0], [75.0, 75.5], [60.0, 60.0])
    monkeypatch.setattr(runner.precision, "settled", lambda *args: "precise")
    monkeypatch.setattr(runner, "result_of", lambda state, values: made[states.index(state)])
    runner.judge_round(states, settings, runner.NullObserver())
    assert [s.stopped for s in states] == ["precise"] * 3
