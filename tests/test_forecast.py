"""The ETA's arithmetic: the units a cell will likely get follow the rules that stop it."""

from __future__ import annotations

import math

import msgspec
import pytest

from offbench.judge import precision
from offbench.model.cells import CellSpec
from offbench.model.settings import RunSettings
from offbench.plan.settings import Choices, build_settings
from offbench.run import forecast
from offbench.run.state import CellState
from offbench.stats import t_quantile
from tests.builders import unit

QUICK: RunSettings = build_settings(Choices(quick=True, semantics=False, pool_costs=False))
DEFAULT: RunSettings = build_settings(Choices(semantics=False, pool_costs=False))


def state_with(throughputs: list[float], lags_ms: list[float], ticks: int) -> CellState:
    spec = CellSpec(workload="sleep", params={"duration_ms": 10.0}, strategy="to-thread", loop="asyncio",
                    concurrency=1, duration_s=0.1, warmup_s=None, probe_interval_ms=1.0,
                    stall_threshold_ms=10.0)
    found = CellState(spec)
    for index, value in enumerate(throughputs):
        lag = lags_ms[index % len(lags_ms)]
        found.units.append(unit(value, [lag] * ticks, index))
        found.walls.append(0.2)
    return found


@pytest.mark.parametrize("cv", [0.005, 0.02, 0.05, 0.1, 0.3])
@pytest.mark.parametrize("settings", [QUICK, DEFAULT], ids=["quick", "default"])
def test_the_units_for_a_precision_are_the_fewest_whose_t_interval_reaches_it(cv: float,
                                                                           settings: RunSettings) -> None:
    effort = settings.effort
    n = forecast.units_for_precision(cv, effort.precision_pct, effort.min_units, effort.max_units)
    assert effort.min_units <= n <= effort.max_units
    half = t_quantile(n - 1) * cv / math.sqrt(n) * 100
    if n < effort.max_units:
        assert half <= effort.precision_pct
    if n > effort.min_units:
        assert t_quantile(n - 2) * cv / math.sqrt(n - 1) * 100 > effort.precision_pct


def test_a_cell_whose_spread_and_ticks_the_stop_rule_accepts_is_expected_to_stop_now() -> None:
    # 1 % spread, lag far under the budget: precise after the least units, as the stop rule says.
    found = state_with([100.0, 101.0, 99.0], [0.3], ticks=1000)
    values = [u.throughput_ops_s for u in found.units]
    assert precision.settled(values, found.units, QUICK.lag_budget_ms, QUICK.effort.precision_pct,
                             QUICK.effort.ticks) == "precise"
    assert forecast.likely_units(found, QUICK) == len(found.units)


def test_a_cell_short_of_ticks_near_the_budget_is_expected_to_run_to_its_cap() -> None:
    # Its lag p99 sits at the budget: neither clear below nor above it, so it needs the effort's
    # ticks pooled; 50 a unit cannot reach them, so the stop rule lets it run to max_units.
    budget = QUICK.lag_budget_ms
    found = state_with([100.0, 100.5], [budget], ticks=50)
    assert precision.settled([100.0, 100.5], found.units, budget, QUICK.effort.precision_pct,
                             QUICK.effort.ticks) is None
    assert forecast.likely_units(found, QUICK) == QUICK.effort.max_units


def test_a_cell_clearly_over_the_budget_is_expected_to_stop_at_its_least_units() -> None:
    found = state_with([100.0, 140.0], [QUICK.lag_budget_ms * 4], ticks=50)
    assert forecast.likely_units(found, QUICK) == QUICK.effort.min_units


def test_a_cell_without_a_spread_of_its_own_takes_the_typical_one_or_the_prior() -> None:
    found = state_with([100.0], [0.3], ticks=1000)
    steady = forecast.likely_units(found, DEFAULT, typical=0.001)
    noisy = forecast.likely_units(found, DEFAULT, typical=0.3)
    prior = forecast.likely_units(found, DEFAULT)
    assert steady == DEFAULT.effort.min_units
    assert noisy == DEFAULT.effort.max_units
    effort = DEFAULT.effort
    assert prior == forecast.units_for_precision(forecast.PRIOR_CV, effort.precision_pct, effort.min_units,
                                                 effort.max_units)


def test_before_any_spread_a_cell_expects_the_mean_count_of_the_prior_spreads() -> None:
    # The first round of a quick run: no cell has two units. Each prior spread gives a count
    # (the steadiest stop at the least units, the noisiest at the cap); the mean lies between,
    # strictly, since the priors span both (one spread would give every cell one count).
    fresh = state_with([100.0], [0.3], ticks=1000)
    effort = QUICK.effort
    counts = [forecast.likely_units(fresh, QUICK, typical=s) for s in forecast.PRIOR_CVS]
    assert min(counts) == effort.min_units
    assert max(counts) == effort.max_units
    expected = forecast.expected_units(fresh, QUICK, [], [100.0])
    assert expected == pytest.approx(sum(counts) / len(counts))
    assert effort.min_units < expected < effort.max_units


def test_a_cell_without_a_spread_takes_the_mean_count_of_the_runs_spreads() -> None:
    steady = state_with([100.0, 100.0, 100.0], [0.3], ticks=1000)  # agrees exactly: stops at least
    noisy = state_with([50.0, 150.0, 100.0], [0.3], ticks=1000)  # 50 %: runs to the cap
    fresh = state_with([100.0], [0.3], ticks=1000)
    effort = DEFAULT.effort
    expected = forecast.outlook([steady, noisy, fresh], DEFAULT).units
    # steady adds none, noisy its cap less its 3, fresh the mean of the two counts less its 1.
    mean = (effort.min_units + effort.max_units) / 2
    assert expected == (effort.max_units - 3) + round(mean - 1)


def test_a_cell_not_yet_measured_costs_what_the_runs_first_units_took() -> None:
    measured = [state_with([100.0], [0.3], ticks=1000) for _ in range(3)]
    for found, wall in zip(measured, (0.05, 0.09, 0.4), strict=True):
        found.walls[:] = [wall]
    waiting = state_with([], [0.3], ticks=1000)
    assert forecast.unit_seconds(waiting, QUICK, first_wall=0.09) == 0.09
    units = forecast.expected_units(waiting, QUICK, [], [])
    alone = forecast.outlook([waiting], QUICK)
    # Without a measured cell, the estimate is the window, warm-up and a unit's overhead.
    assert alone.seconds == pytest.approx(units * forecast.unit_seconds(waiting, QUICK))
    together = forecast.outlook([*measured, waiting], QUICK)
    waiting_part = together.seconds - sum(
        (forecast.expected_units(m, QUICK, [], [100.0]) - 1) * m.walls[0] for m in measured)
    assert waiting_part == pytest.approx(units * 0.09)


def test_the_time_left_adds_the_runners_own_share_between_units() -> None:
    cells = [state_with([100.0], [0.3], ticks=1000) for _ in range(3)]
    bare = forecast.outlook(cells, DEFAULT).seconds
    # The units took 0.6 s of 1.2 s of rounds: the rest was the runner's, and will be again.
    assert forecast.outlook(cells, DEFAULT, rounds_s=1.2).seconds == pytest.approx(2 * bare)
    assert forecast.outlook(cells, DEFAULT, rounds_s=0.3).seconds == pytest.approx(bare)


def test_a_fixed_round_count_is_the_forecast() -> None:
    fixed = msgspec.structs.replace(QUICK, rounds=4)
    assert forecast.likely_units(state_with([100.0, 50.0], [50.0], ticks=10), fixed) == 4
