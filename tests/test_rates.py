"""Open-loop load (``--rate``): the schedule, latency from intended start, sustained or not, knee, capacity.

The fast tests run the open loop in this process (a worker's window on an event loop of
the test's own, with strategies that start no thread) and judge made-up cells; the
``workers`` tests measure real cells against the physics of the acceptance: a 10 ms sleep
through the default executor's 6 threads carries about 600 calls/s, on the loop about
100/s, and pure-Python work about 2 ÷ op time through a 2-process pool, at most 1 ÷ op
time through threads.
"""

from __future__ import annotations

import asyncio
import io
import json
import math
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from rich.console import Console

from offbench import strategies
from offbench.errors import UsageError
from offbench.judge import compare, gates
from offbench.judge import rates as rate_verdict
from offbench.measure import arrivals, worker
from offbench.measure.probe import NS_PER_MS, TICKS_ENV, timerfd_available
from offbench.measure.wire import Measurement
from offbench.model import results
from offbench.model.cells import CellSpec
from offbench.model.rates import CallLatency, Capacity, CapacityProbe, RateFigures
from offbench.model.results import Breakdown, CellResult, Quantiles, RunResult
from offbench.plan import matrix, scenario
from offbench.plan.settings import Choices, build_settings
from offbench.render import markdown, rates, view
from offbench.render.chart import KneeChart
from offbench.run import capacity, runner
from offbench.run.state import CellState
from offbench.strategies import Strategy
from offbench.workloads.cpu import spin
from tests.builders import cell, run_of
from tests.helpers import RunQueueWait
from tests.run_cli import offbench

MS = NS_PER_MS


# The open loop in this process.


class Holding(Strategy):
    """Holds each call for ``hold_s`` without blocking the loop: a call that waits on I/O."""

    name = "holding"
    summary = "await asyncio.sleep(hold_s)"
    runs_on = "thread"
    hold_s = 0.05

    async def call(self) -> object:
        await asyncio.sleep(self.hold_s)
        return None


def rate_spec(rate: float, *, duration_s: float = 0.6, warmup_s: float | None = 0.05,
              **more: Any) -> CellSpec:
    return CellSpec(workload="sleep", params={}, strategy="direct", loop="asyncio", concurrency=0, rate=rate,
                    duration_s=duration_s, warmup_s=warmup_s, probe_interval_ms=1.0, stall_threshold_ms=10.0,
                    evidence_threshold_ms=0.0, utilisation=False, **more)


def run_window(spec: CellSpec, strategy: Strategy,
               during: Callable[[asyncio.AbstractEventLoop], None] | None = None,
               fn: Callable[[], object] | None = None) -> worker.Window:
    """Run a rate cell's warm-up, window and drain on a fresh event loop here; return the window.

    ``fn`` is the function the strategy calls (one that does nothing unless told).
    """
    async def main() -> worker.Window:
        await strategy.start(fn or (lambda: None), lambda: None)
        if during is not None:
            during(asyncio.get_running_loop())
        try:
            return await worker._run_window(spec, strategy)
        finally:
            await strategy.stop()

    return asyncio.run(main())


def test_calls_due_while_the_loop_is_blocked_are_late_by_their_share_of_it() -> None:
    blocked: list[tuple[int, int]] = []
    called: list[tuple[int, int]] = []

    with RunQueueWait() as host:
        def block() -> None:
            blocked.append((time.perf_counter_ns(), host.now_ns()))
            time.sleep(0.2)
            waited = host.now_ns()  # read first: a stall before the stamp below lengthens the block itself
            blocked.append((time.perf_counter_ns(), waited))

        def call() -> None:  # a trivial call that notes when it ran and what the host had taken by then
            called.append((time.perf_counter_ns(), host.now_ns()))

        # 200 calls/s of a call that returns at once, on the loop; the loop is blocked 200 ms mid-window.
        window = run_window(rate_spec(200.0), strategies.get("direct")(),
                            lambda loop: loop.call_later(0.3, block), call)
    (began, _), (ended, waited_at_end) = blocked
    assert window.start_ns < began
    assert ended < window.end_ns
    # Direct calls the function and stamps the op in one stretch on the loop: the ops and the
    # calls' notes are recorded in the same order.
    assert len(called) == len(window.ops)
    due_in_block = [(due, done, waited) for (due, done), (_, waited) in zip(window.ops, called, strict=True)
                    if began <= due < ended]
    # Every call due in the 200 ms falls due on the schedule: 200/s × 0.2 s.
    assert 39 <= len(due_in_block) <= 41
    for due, done, waited in due_in_block:
        share = (ended - due) / MS
        latency = (done - due) / MS
        # None can return before the loop is free (physics: no margin; 0.01 ms is the float's rounding).
        assert share - 0.01 <= latency, (share, latency)
        # And each returns right after: the loop's next passes start the 40 overdue calls and run them,
        # 0.5-1.0 ms past the block's end here (idle, and beside a busy core where the host took
        # nothing, 2026-12-02); 5 ms is that on a host running at half speed, with room. On top, exactly
        # what the host took from this thread between the block's end and the call (its run-queue
        # wait): a busy core once took 64 ms there, which a fixed 15 ms could not cover (2026-12-02).
        taken = (waited - waited_at_end) / MS
        assert latency <= share + 5.0 + taken, (share, latency, taken)
    # And together: 40 trivial calls started in one pass complete within 0.1 ms of each other here
    # (2026-12-02); 5 ms as above, plus what the host took between the first and the last. A scheduler
    # that started one overdue call per wake-up would spread them over 40 wake-ups (~40 ms on timers).
    first, last = min(due_in_block, key=lambda c: c[1]), max(due_in_block, key=lambda c: c[1])
    assert (last[1] - first[1]) / MS <= 5.0 + (last[2] - first[2]) / MS, (first, last)
    assert window.arrived is not None
    # The calls recorded as a corrected histogram would: from ~200 ms down to ~0, not one late sample.
    assert max(window.arrived.latencies_ms) >= 195.0
    # And the others on time: 40 of the 120 calls fall due in the block, the other 80 are late only
    # by what the host takes. Not the median: with another program keeping a core busy the host took
    # the process in stretches up to 90 ms and made it 15.7 ms (busy-core series, 2026-12-02). The
    # lowest quarter is late only if nearly every call is: what a histogram that added the block to
    # every sample would show.
    assert sorted(window.arrived.latencies_ms)[len(window.arrived.latencies_ms) // 4] < 15.0


def test_a_kernel_timer_starts_calls_within_a_fraction_of_a_ms(monkeypatch: pytest.MonkeyPatch) -> None:
    if not timerfd_available():
        pytest.skip("no timerfd here")
    monkeypatch.delenv(TICKS_ENV, raising=False)
    window = run_window(rate_spec(200.0, duration_s=0.5), strategies.get("direct")())
    assert window.arrived is not None
    # A no-op call on an idle loop: its latency is how late it started. Measured here: median 0.12-0.17 ms
    # on the timerfd, 0.64-0.74 ms on the loop's timers (epoll's wait rounds up to a whole millisecond).
    assert statistics.median(window.arrived.latencies_ms) < 0.4


def test_calls_start_on_schedule_whatever_is_in_flight() -> None:
    # 100 calls/s, each held 50 ms without blocking the loop: about 5 in flight at once, none waiting.
    strategy = Holding()
    window = run_window(rate_spec(100.0), strategy)
    assert window.arrived is not None
    raw = window.arrived.raw
    assert raw.sustained
    assert raw.refused == 0
    # 100/s × 0.6 s due in the window; 100 × 0.05 = 5 in flight, ± the call due at the edge.
    assert 59 <= raw.issued <= 61
    latencies = sorted(window.arrived.latencies_ms)
    # Little's law bounds the rest: no more calls are in flight than arrive within the longest one
    # (+1 at the edge). A host that descheduled the loop holds completions back while calls keep
    # falling due (8 in flight was seen with another test beside this one, 2026-12-02): 7 when idle.
    assert 5 <= raw.in_flight_max <= math.ceil(100.0 * latencies[-1] / 1000) + 1, latencies[-1]
    assert latencies[0] >= 50.0  # a call can't beat its own 50 ms
    assert statistics.median(latencies) < 55.0  # and starts on time: the loop is idle


def test_calls_due_at_the_in_flight_bound_are_refused_and_counted() -> None:
    # Bound 2 on 50 ms calls: at most 2 ÷ 50 ms = 40/s are carried of the 200/s offered; the rest refused.
    strategy = Holding()
    window = run_window(rate_spec(200.0, max_in_flight=2), strategy)
    assert window.arrived is not None
    raw = window.arrived.raw
    assert raw.in_flight_max == 2
    assert 0.7 <= raw.refused / raw.issued <= 0.85  # 160 of 200 a second, ± the window's edges
    assert window.arrived.achieved_ops_s <= 44.0
    assert not raw.sustained  # refused calls are not a rate carried


def test_a_call_that_raises_fails_the_window_with_its_exception() -> None:
    class Failing(Holding):
        async def call(self) -> object:
            raise ConnectionResetError("lost")

    with pytest.raises(ConnectionResetError, match="lost"):
        run_window(rate_spec(100.0, duration_s=0.2), Failing())


def test_fixed_gaps_keep_the_schedule_exact_and_poisson_gaps_average_the_rate() -> None:
    fixed = arrivals._gaps(rate_spec(3.0), 3.0)
    assert sum(next(fixed) for _ in range(3)) == 10**9  # rounding never drifts the schedule
    first = next(arrivals._gaps(rate_spec(100.0, arrivals="poisson", seed=7), 100.0))
    gaps = arrivals._gaps(rate_spec(100.0, arrivals="poisson", seed=7), 100.0)
    drawn = [next(gaps) for _ in range(20_000)]
    # Exponential gaps of mean 10 ms: the mean of 20 000 is within 3 % (its standard error is 0.7 %).
    assert statistics.fmean(drawn) == pytest.approx(10 * MS, rel=0.03)
    assert statistics.stdev(drawn) == pytest.approx(10 * MS, rel=0.05)  # an exponential's sd is its mean
    assert drawn[0] == first  # the seed repeats the arrivals


@pytest.mark.parametrize(("issued", "refused", "completed", "piled"), [
    (144, 0, 120, True),   # completions 17 % short of arrivals: the queue grew by 24 calls
    (144, 0, 140, False),  # 4 more in flight at the end than at the start: a queue's chance swing
    (144, 30, 110, False),  # the refused never joined the queue
    (10, 0, 6, True),
    (10, 0, 8, False),  # a few calls either way, at any rate
])
def test_a_queue_that_grew_by_a_tenth_of_the_windows_calls_is_not_sustained(
    issued: int, refused: int, completed: int, piled: bool
) -> None:
    assert arrivals.piled_up(issued, refused, completed) is piled


def test_latency_growth_between_the_window_halves_decides_sustained() -> None:
    steady = [(i * MS, 10 * MS + (i % 3) * MS // 10) for i in range(200)]
    assert arrivals.latency_growth_ms(steady, 100 * MS) == pytest.approx(0.0, abs=0.2)
    # 10 % over capacity: latency grows 0.1 s per second of window, 10 ms between the halves' medians.
    growing = [(i * MS, 10 * MS + i * MS // 10) for i in range(200)]
    assert arrivals.latency_growth_ms(growing, 100 * MS) == pytest.approx(10.0, abs=0.2)
    assert arrivals.latency_growth_ms(steady[:4], 2 * MS) is None  # too few calls to tell
    # Noise is 2 ms, or half the fastest call (the work without a queue): not of the window's own
    # latencies, which a backlog carried in from the warm-up would inflate.
    assert arrivals.growth_allowance_ms(10 * MS) == 5.0
    assert arrivals.growth_allowance_ms(MS) == arrivals.GROWTH_FLOOR_MS


# Settings, scenario and the matrix.


def test_rate_without_concurrency_asks_for_rate_cells_only() -> None:
    chosen = build_settings(Choices(strategies=["direct", "to-thread"], loops=["asyncio"],
                                    rate=["300", "600"]))
    assert chosen.concurrency == []
    assert chosen.rate == [300.0, 600.0]
    cells = matrix.cells(chosen)
    assert {(c.rate, c.concurrency) for c in cells} == {(300.0, 0), (600.0, 0)}
    assert len(cells) == 2 * 2 * len(chosen.workloads)
    _, lines = matrix.outline(chosen)
    said = dict(lines)
    assert said["concurrency"] == "none: rate cells only"
    assert "300, 600 calls/s, fixed arrivals, in flight unbounded" in said["rates"]


def test_rate_cells_sit_beside_concurrency_cells_and_carry_the_run_s_arrivals() -> None:
    chosen = build_settings(Choices(strategies=["to-thread"], loops=["asyncio"], concurrency=[1],
                                    rate=[250.0], arrivals="poisson", max_in_flight=8, seed=3))
    found = {(c.concurrency, c.rate): c for c in matrix.cells(chosen) if c.workload == "sleep"}
    assert set(found) == {(1, None), (0, 250.0)}
    rated = found[(0, 250.0)]
    assert (rated.arrivals, rated.max_in_flight, rated.seed) == ("poisson", 8, 3)
    assert found[(1, None)].max_in_flight is None


def test_rate_auto_asks_for_the_capacity_search() -> None:
    chosen = build_settings(Choices(strategies=["direct"], loops=["asyncio"], rate=["auto"], slo_ms=20.0))
    assert (chosen.rate_auto, chosen.rate, chosen.slo_ms) == (True, [], 20.0)
    assert matrix.cells(chosen) == []
    searched = matrix.capacity_cells(chosen)
    assert len(searched) == len(chosen.workloads)
    assert all(c.rate is None and c.concurrency == 0 for c in searched)
    assert "capacity" in dict(matrix.outline(chosen)[1])


@pytest.mark.parametrize(("choices", "message"), [
    (Choices(rate=["fast"]), "rate must be calls per second or 'auto', got 'fast'"),
    (Choices(rate=["0"]), "rate must be above 0"),
    (Choices(rate=["nan"]), "rate must be above 0"),
    (Choices(rate=[]), "rate is empty"),
    (Choices(max_in_flight=4), "--max-in-flight applies to rate cells: add --rate"),
    (Choices(arrivals="poisson"), "--arrivals applies to rate cells"),
    (Choices(slo_ms=20.0), "--slo applies to rate cells"),
    (Choices(rate=["10"], arrivals="uniform"), "arrivals must be fixed or poisson"),
    (Choices(rate=["10"], max_in_flight=0), "max in flight must be between 1"),
    (Choices(rate=["10"], slo_ms=-1.0), "SLO must be more than zero"),
])
def test_rate_options_are_refused_in_one_line(choices: Choices, message: str) -> None:
    with pytest.raises(UsageError, match=message) as info:
        build_settings(choices)
    assert "\n" not in str(info.value)


def test_a_scenario_gives_rates_as_numbers_or_auto() -> None:
    found = scenario.parse(b'rate = [100, "auto", 250.5]\nslo_ms = 20\narrivals = "poisson"\n', "s.toml")
    chosen = build_settings(found.choices)
    assert (chosen.rate, chosen.rate_auto, chosen.slo_ms, chosen.arrivals) == ([100.0, 250.5], True, 20.0,
                                                                               "poisson")
    with pytest.raises(UsageError, match=r"s\.toml: rate"):
        scenario.parse(b"rate = true\n", "s.toml")


# Made-up rate cells: the verdict, gates, compare, the views.


def rate_cell(strategy: str, rate: float, *, p99: float = 12.0, lag: float = 0.5, sustained: bool = True,
              achieved: float | None = None, growth: float = 0.0, refused: int = 0, pool: int | None = None,
              run_ms: float | None = None, queue_ms: float = 0.0, cores: float = 0.1, loop: str = "asyncio",
              unit_p99s: list[float] | None = None) -> CellResult:
    """Return a rate cell of three units whose calls' latency p99 is ``p99`` and lag p99 ``lag`` (ms)."""
    base = cell(strategy, loop, [achieved or rate] * 3, [lag] * 3, params={"duration_ms": 10.0}, pool=pool)
    units = [msgspec.structs.replace(u, cpu_s=cores * u.duration_s, sustained=sustained,
                                     latency_p99_ms=(unit_p99s or [p99] * 3)[i])
             for i, u in enumerate(base.units)]
    parts = None if run_ms is None else Breakdown(queue_wait=Quantiles(p50=queue_ms, p99=queue_ms),
                                                  run=Quantiles(p50=run_ms, p99=run_ms),
                                                  hop_back=Quantiles(p50=0.1, p99=0.2))
    return msgspec.structs.replace(
        base, concurrency=0, rate=rate, units=units, breakdown_ms=parts,
        open_loop=RateFigures(offered_ops_s=rate, arrivals="fixed", achieved_ops_s=achieved or rate,
                              latency_ms=CallLatency(p50=p99 / 1.2, p90=p99 / 1.1, p99=p99, p999=p99 * 1.1,
                                                     max=p99 * 1.2),
                              issued=600, refused=refused, unfinished=0, in_flight_max=7,
                              max_in_flight=8 if refused else None, latency_growth_ms_s=growth,
                              sustained=sustained),
    )


def judged(*cells: CellResult, cpus: int = 2) -> list[tuple[str, str, str]]:
    (verdict,) = rate_verdict.decide(cells, 50.0, 10.0, cpus)
    (ruling,) = verdict.rulings
    return [(c.strategy, c.why, c.reason) for c in ruling.candidates]


def test_the_rate_verdict_names_who_met_it_and_why_the_others_did_not() -> None:
    found = judged(
        rate_cell("to-thread", 700, p99=168, sustained=False, growth=207, achieved=579, pool=6, run_ms=10.1,
                  queue_ms=97.7),
        rate_cell("direct", 700, p99=2997, lag=570, sustained=False, achieved=95),
        rate_cell("process-pool", 700, p99=463, sustained=False, achieved=196, pool=2, run_ms=10.1),
    )
    by = {strategy: (why, reason) for strategy, why, reason in found}
    assert by["to-thread"][0] == "capped"
    assert "capped at 6 threads: 6 ÷ 10.1 ms = 594/s" in by["to-thread"][1]
    assert by["process-pool"][0] == "capped"
    assert "2 processes" in by["process-pool"][1]
    assert by["direct"][0] == "blocked"
    assert "it completes 95.0 of 700/s" in by["direct"][1]


def test_threads_that_fall_behind_on_one_cpu_of_two_are_gil_bound() -> None:
    ((_, why, reason),) = judged(rate_cell("to-thread", 140, p99=186, lag=65, sustained=False, achieved=95,
                                           pool=6, run_ms=50.0, cores=1.0))
    assert why == "gil"
    assert "the process used 1.0 of 2 CPUs" in reason
    # The kernel's side of the GIL's hand-offs with many calls in flight: 1.31 and 1.53 CPUs measured here.
    for cores in (1.35, 1.53):
        ((_, why, _),) = judged(rate_cell("to-thread", 140, p99=186, lag=65, sustained=False, achieved=95,
                                          pool=6, run_ms=50.0, cores=cores))
        assert why == "gil", cores
    # Both CPUs busy (GIL-releasing work filling the machine): not one CPU's worth, not the GIL.
    ((_, why, _),) = judged(rate_cell("to-thread", 140, p99=186, lag=65, sustained=False, achieved=95,
                                      pool=6, run_ms=50.0, cores=1.9))
    assert why != "gil"
    # The same on one CPU says nothing about the GIL.
    ((_, why, _),) = judged(rate_cell("to-thread", 140, p99=186, lag=65, sustained=False, achieved=95,
                                      cores=1.0), cpus=1)
    assert why == "lag"


@pytest.mark.parametrize(("made", "why"), [
    (dict(p99=80.0), "slo"),
    (dict(sustained=False, growth=40.0, achieved=280), "backlog"),
    (dict(lag=25.0), "lag"),
    (dict(refused=120, sustained=False, achieved=240), "refused"),
])
def test_each_other_cause_is_named(made: dict[str, Any], why: str) -> None:
    ((_, found, _),) = judged(rate_cell("to-thread", 300, **made))
    assert found == why


def test_within_noise_the_rate_verdict_prefers_threads_to_processes() -> None:
    (verdict,) = rate_verdict.decide([rate_cell("process-pool", 50, p99=13.7),
                                      rate_cell("to-thread", 50, p99=15.0)], 50.0, 10.0, 2)
    (ruling,) = verdict.rulings
    assert ruling.best == "to-thread"
    assert "as low as process-pool within noise" in ruling.text
    # Beyond noise (25 % and 2 ms) the lowest p99 wins.
    (verdict,) = rate_verdict.decide([rate_cell("process-pool", 50, p99=11.0),
                                      rate_cell("to-thread", 50, p99=30.0)], 50.0, 10.0, 2)
    assert verdict.rulings[0].best == "process-pool"
    (verdict,) = rate_verdict.decide([rate_cell("to-thread", 50, p99=80.0)], 50.0, 10.0, 2)
    assert verdict.rulings[0].best is None
    assert "nothing meets latency p99 ≤ 50 ms with loop lag p99 ≤ 10 ms" in verdict.rulings[0].text


def test_gates_filter_rate_cells_by_their_rate_and_read_their_latency() -> None:
    cells = [rate_cell("to-thread", 300, p99=12), rate_cell("to-thread", 700, p99=168),
             cell("to-thread", concurrency=1)]
    gate = gates.parse("open_loop.latency_ms.p99 > 50 where rate=700")
    gates.check_filter(gate, cells)
    found = gates.judge(gate, cells)
    assert found.cells == 1
    (breach,) = found.broken_by
    assert (breach.rate, breach.value) == (700.0, 168.0)
    with pytest.raises(UsageError, match=r"no cell has rate=500 \(the run's rate: 300, 700, none\)"):
        gates.check_filter(gates.parse("open_loop.latency_ms.p99 > 50 where rate=500"), cells)


def test_compare_pairs_rate_cells_by_rate_and_flags_a_latency_regression() -> None:
    base = run_of(rate_cell("to-thread", 300, p99=12, unit_p99s=[11.8, 12.0, 12.2]),
                  rate_cell("to-thread", 600, p99=30, unit_p99s=[29, 30, 31]))
    new = run_of(rate_cell("to-thread", 300, p99=24, unit_p99s=[23.5, 24, 24.5]),
                 rate_cell("to-thread", 600, p99=30, unit_p99s=[29, 30.5, 31]))
    found = compare.compare(base, new)
    assert [p.key.rate for p in found.pairs] == [300.0, 600.0]
    worse, same = (p.latency_p99 for p in found.pairs)
    assert worse is not None
    assert same is not None
    assert worse.direction == "slower"
    assert worse.percent == pytest.approx(100.0)
    assert same.direction == "not significant"
    assert [why for _, why in compare.regressions(found, 20.0)] == ["latency p99 +100.0%"]


def run_with_rates() -> RunResult:
    cells = [rate_cell("direct", 100, p99=103, lag=90, sustained=False, achieved=94, growth=31),
             rate_cell("to-thread", 100, p99=13.1, lag=1.1, pool=6, run_ms=10.1),
             rate_cell("to-thread", 700, p99=168, sustained=False, achieved=579, growth=207, pool=6,
                       run_ms=10.1)]
    base = run_of(*cells)
    found = Capacity(workload="sleep", params={"duration_ms": 10.0}, strategy="to-thread", loop="asyncio",
                     rate_ops_s=587.0, limit_ops_s=640.0, limited_by="not sustained", latency_p99_ms=12.3,
                     lag_p99_ms=0.3, probes=[
                         CapacityProbe(rate=r, met=r <= 587, sustained=r <= 587, achieved_ops_s=min(r, 590.0),
                                       latency_p99_ms=12.0, lag_p99_ms=0.3)
                         for r in (93.0, 372.0, 1490.0, 745.0, 527.0, 626.0, 574.0, 600.0)])
    chosen = build_settings(Choices(quick=True, seed=1, rate=["100", "700", "auto"], loops=["asyncio"]))
    return msgspec.structs.replace(base, settings=chosen, capacity=[found],
                                   rate_verdicts=rate_verdict.decide(cells, 50.0, 10.0, 2))


def test_a_run_with_rates_shows_its_rate_table_capacity_and_rate_verdict() -> None:
    shown = view.of_run(run_with_rates())
    kinds = [s.kind for s in shown.sections]
    assert "workload" not in kinds  # no concurrency cell: no closed-loop table
    assert kinds.index("rates") < kinds.index("verdict") < kinds.index("rate-verdict")
    section = shown.section("rates")
    assert section is not None
    table, found_capacity = section.blocks[:2]
    assert isinstance(table, view.Table)
    assert isinstance(found_capacity, view.Table)
    assert [c.header for c in table.columns][2:4] == ["offered/s", "achieved/s"]
    rows = {r[0].text: r for r in table.rows if r[2].text == "100"}
    assert rows["to-thread ★"][-1] == view.Cell("✓", "good")
    assert rows["direct"][-1] == view.Cell("✗ +31 ms/s", "bad")
    assert rows["direct"][5] == view.Cell("103", "bad")  # over the 50 ms SLO
    assert [c.text for c in found_capacity.rows[0]][:3] == ["to-thread", "asyncio", "587/s"]
    verdict = shown.section("rate-verdict")
    assert verdict is not None
    text = markdown.render(shown)
    assert "at 100/s on asyncio, use to-thread: latency p99 13.1 ms, loop lag p99 1.10 ms" in text
    assert "direct: blocked: runs each call on the loop" in text


def test_the_knee_draws_a_marker_per_strategy_and_rate_and_the_slo() -> None:
    found = run_with_rates()
    series = rates.knee(found, "sleep", {"duration_ms": 10.0})
    assert [(s.label, [p.rate for p in s.points]) for s in series] == [("direct", [100.0]),
                                                                        ("to-thread", [100.0, 700.0])]
    assert series[1].capacity == 587.0
    out = io.StringIO()
    Console(file=out, width=100, color_system=None).print(KneeChart(series, 50.0))
    drawn = out.getvalue()
    assert "■ to-thread (capacity 587/s)" in drawn
    assert drawn.count("✗") >= 2 + 1  # two points not sustained, and the legend's
    assert "┄" in drawn
    assert "calls/s" in drawn
    ascii_out = AsciiFile()
    Console(file=ascii_out, width=100, color_system=None).print(KneeChart(series, 50.0))
    assert ascii_out.getvalue().isascii()
    assert "# to-thread" in ascii_out.getvalue()


class AsciiFile(io.StringIO):
    encoding = "ascii"


def test_the_html_report_draws_the_knee() -> None:
    pytest.importorskip("matplotlib")
    pytest.importorskip("jinja2")
    from offbench.render import html

    page = html.render(run_with_rates())
    for gid in ("knee:to-thread", "knee:to-thread:band", "knee:to-thread:missed", "knee:to-thread:capacity",
                "knee:slo"):
        assert f'id="{gid}"' in page, gid
    assert "Rate verdict" in page
    assert "use to-thread" in page


def test_rate_cells_and_capacities_round_trip_through_the_results_file() -> None:
    found = run_with_rates()
    assert results.decode(results.encode(found)) == found
    document = json.loads(results.encode(found))
    assert document["results"][0]["rate"] == 100.0
    assert document["results"][0]["open_loop"]["sustained"] is False
    assert document["capacity"][0]["rate_ops_s"] == 587.0


# The capacity search, with a fake unit of known capacity.


def fake_unit(capacity_ops_s: float, lag_ms: float = 0.5) -> Callable[[CellSpec], Measurement | CellResult]:
    """Return a probe whose strategy sustains up to ``capacity_ops_s`` with 10 ms calls."""
    def probe(spec: CellSpec) -> Measurement:
        assert spec.rate is not None
        over = spec.rate > capacity_ops_s
        raw = arrivals.ArrivalsRaw(offered_ops_s=spec.rate, arrivals="fixed", max_in_flight=None, issued=200,
                                   refused=0, completed=200, unfinished=0, in_flight_max=3,
                                   growth_ms_s=300.0 if over else 0.0, sustained=not over)
        return Measurement(elapsed_s=1.0, throughput_ops_s=min(spec.rate, capacity_ops_s),
                           latencies_ms=[400.0 if over else 10.0] * 200, lags_ms=[lag_ms] * 1000,
                           lag_samples_raw=1000, stalled_s=0.0, blocked_s=0.0, startup_s=0.0, loop_version="",
                           details={}, worker_pid=1, arrivals=raw)
    return probe


@pytest.mark.parametrize(("truth", "start"), [(590.0, 93.0), (590.0, 2000.0), (37.0, 10.0), (12_345.0, 10.0)])
def test_the_search_brackets_the_capacity_within_its_resolution(truth: float, start: float) -> None:
    spec = rate_spec(1.0)
    found = capacity.search(spec, fake_unit(truth), 50.0, 10.0, start)
    assert found.rate_ops_s is not None
    assert found.limit_ops_s is not None
    assert found.rate_ops_s <= truth < found.limit_ops_s
    assert found.limit_ops_s / found.rate_ops_s <= capacity.RESOLUTION * 1.01  # three significant figures
    assert found.limited_by == "not sustained"
    assert len(found.probes) <= capacity.MAX_PROBES


def test_one_unit_caught_by_a_busy_host_does_not_end_the_climb() -> None:
    honest = fake_unit(590.0)
    tried: set[float] = set()

    def noisy(spec: CellSpec) -> Measurement | CellResult:
        assert spec.rate is not None
        found = honest(spec)
        if spec.rate not in tried and spec.rate > 100:  # the first unit at each rate lags, as a busy host's
            tried.add(spec.rate)
            assert isinstance(found, Measurement)
            return msgspec.structs.replace(found, lags_ms=[40.0] * 1000)
        return found

    found = capacity.search(rate_spec(1.0), noisy, 50.0, 10.0, 93.0)
    assert found.rate_ops_s is not None
    assert 590.0 / capacity.RESOLUTION <= found.rate_ops_s <= 590.0


def test_the_search_says_when_nothing_meets_the_limits_and_why() -> None:
    found = capacity.search(rate_spec(1.0), fake_unit(1000.0, lag_ms=40.0), 50.0, 10.0, 10.0)
    assert found.rate_ops_s is None
    assert found.limited_by == "loop lag over the budget"
    assert min(p.rate for p in found.probes) == capacity.MIN_RATE

    def broken(spec: CellSpec) -> CellResult:
        return results.failed_cell(spec, "error", "ValueError: boom\nmore")

    failed = capacity.search(rate_spec(1.0), broken, 50.0, 10.0, 10.0)
    assert failed.limited_by == "error"
    assert failed.probes[0].error == "ValueError: boom"


def test_the_search_starts_from_the_closed_loop_throughput_at_one_task() -> None:
    closed = cell("to-thread", concurrency=1, throughput=[90.0, 96.0])
    spec = msgspec.structs.replace(rate_spec(1.0), strategy="to-thread", params={"duration_ms": 10.0})
    starts = capacity.start_rates([(msgspec.structs.replace(spec, concurrency=1, rate=None), closed.units)])
    assert starts == {capacity.candidate_key(spec): 93.0}


# Real cells: the physics of the acceptance.

SLEEP = {"duration_ms": 10.0}


def measure_rate(strategy: str, rate: float, *, workload: str = "sleep", params: dict[str, Any] | None = None,
                 duration_s: float | None = None, max_workers: int | None = None) -> CellResult:
    spec = CellSpec(workload=workload, params=SLEEP if params is None else params, strategy=strategy,
                    loop="asyncio", concurrency=0, rate=rate, max_workers=max_workers, duration_s=duration_s,
                    warmup_s=None, probe_interval_ms=1.0, stall_threshold_ms=10.0)
    found = runner.run_cell(spec, timeout_s=60.0)
    assert found.ok, found.error
    assert found.open_loop is not None
    return found


@pytest.mark.workers
def test_to_thread_sleep_is_sustained_up_to_six_threads_over_ten_ms() -> None:
    assert strategies.default_executor_workers() == 6, "the acceptance's machine: 2 CPUs, 6 default threads"
    below = measure_rate("to-thread", 300.0)
    assert below.open_loop is not None
    assert below.open_loop.latency_ms is not None
    assert below.open_loop.sustained
    # Below the knee a call takes its 10 ms plus the hop (measured here: p50 10.6-10.8 ms, p99 12.6-14.7 ms
    # on a quiet host); 25 ms leaves a busy host's scheduling jitter. A host that takes the whole worker
    # away holds up every call in flight by as long (p99 28 and 89 ms beside two busy cores, 2026-12-02),
    # and the loop by as long too: its own longest lag in the same window is what the host took, and is
    # added. (A strategy that queued calls below the knee would lengthen the calls, not the loop's lag.)
    assert 10.0 <= below.open_loop.latency_ms.p50 <= 12.5
    assert below.loop_lag_ms is not None
    assert below.open_loop.latency_ms.p99 <= 25.0 + below.loop_lag_ms.max, below.loop_lag_ms
    above = measure_rate("to-thread", 750.0)
    assert above.open_loop is not None
    # 25 % over 6 ÷ 10 ms: latency grows by about (750 ÷ 590 − 1) s a second, ~270 ms/s (measured 139 at
    # 660/s); its achieved rate is the capacity.
    assert not above.open_loop.sustained
    assert above.open_loop.latency_growth_ms_s >= 100.0
    assert 500.0 <= above.open_loop.achieved_ops_s <= 620.0
    # The search finds the knee at 6 ÷ 10 ms within 10 % (measured: 587/s, the hop and sleep's overshoot).
    # Limits far off (1 s): only sustaining the rate decides, as the acceptance asks.
    found = capacity.search(_spec_of(below), _probe, 1000.0, 1000.0, 300.0)
    assert found.rate_ops_s is not None
    assert 540.0 <= found.rate_ops_s <= 660.0, found.probes


def _spec_of(found: CellResult) -> CellSpec:
    return CellSpec(**results.identity(found), duration_s=None, warmup_s=None, probe_interval_ms=1.0,
                    stall_threshold_ms=10.0)


def _probe(spec: CellSpec) -> Measurement | CellResult:
    state = CellState(spec)
    with runner.Fixtures() as fixtures:
        runner.measure_unit(state, fixtures, 0, time.monotonic(), 60.0)
    if state.measured:
        return state.measured[0]
    return state.failure or results.failed_cell(spec, "error", "lost")


@pytest.mark.workers
def test_direct_sleep_is_sustained_up_to_one_call_per_op_time_and_lags_by_it() -> None:
    below = measure_rate("direct", 70.0)
    assert below.open_loop is not None
    assert below.loop_lag_ms is not None
    assert below.open_loop.sustained
    # Each call holds the loop its 10 ms: at 70 % busy a tick falls in a call 70 % of the time and waits
    # for what is left of it, uniform over 0-10 ms, so P(lag > x) = 0.7 (1 - x / 10): p90 8.6 ms, p99
    # 9.9 ms (measured 10.4). The p99 is bounded below only: a host that takes the worker away lengthens
    # the waits of the ticks due then (p99 25.7 ms beside a busy core, 2026-12-02); it must take more
    # than a tenth of the window to move the p90 (9.2 ms in that run). 15 ms is 1.75 × the p90's
    # physics: calls holding the loop twice as long (20 ms) would put it at 17 ms.
    assert below.loop_lag_ms.p99 >= 7.0
    assert 6.0 <= below.loop_lag_ms.p90 <= 15.0, below.loop_lag_ms
    above = measure_rate("direct", 130.0)
    assert above.open_loop is not None
    assert not above.open_loop.sustained  # 30 % over 1 ÷ 10 ms
    assert above.open_loop.achieved_ops_s <= 105.0


def _op_ms(iterations: int) -> float:
    """Return the pure-Python call's time here and now: the median of 9 (the host's speed drifts)."""
    times = []
    for _ in range(9):
        began = time.perf_counter()
        spin(iterations)
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def _cores(found: CellResult) -> float:
    """Return the CPUs a cell's processes used in their windows: the GIL shows as at most one."""
    return statistics.fmean(u.cpu_s / u.duration_s for u in found.units if u.cpu_s is not None)


def _cpu_ms_per_call(found: CellResult) -> float:
    """Return the CPU time a cell's processes spent per completed call, ms: the call's cost at that moment."""
    return statistics.fmean(1000 * u.cpu_s / (u.throughput_ops_s * u.duration_s)
                            for u in found.units if u.cpu_s is not None)


@pytest.mark.workers
@pytest.mark.alone  # two processes outrunning the GIL need both CPUs
def test_pure_python_work_scales_to_two_processes_not_to_threads() -> None:
    assert len(os.sched_getaffinity(0)) >= 2, "the acceptance's machine has 2 CPUs"
    params = {"iterations": 100_000}
    op_ms = _op_ms(100_000)
    # 1.4 ÷ op time: 40 % beyond what one CPU (or the GIL) carries, 30 % short of two CPUs. The host's
    # speed moves between cells (a pure-Python call's time scattered 6.4-10.9 ms between timings here), so
    # the premise is checked against each cell's own op time (the pool's run p50, the threads' CPU per
    # call), and the rate set again from them if it moved.
    rate, busy_tries = round(1.4 * 1000 / op_ms), 0
    for _ in range(5):
        processes = measure_rate("process-pool", rate, workload="cpu", params=params, max_workers=2)
        threads = measure_rate("to-thread", rate, workload="cpu", params=params)
        assert processes.breakdown_ms is not None
        pool_ms, thread_ms = processes.breakdown_ms.run.p50, _cpu_ms_per_call(threads)
        # What other programs left of the 2 CPUs while the pool ran: the pool needs 1.25 × its work of it.
        free = 2 * (1 - max(u.other_cpu or 0.0 for u in processes.units))
        if 0.8 * free < 1.15:
            busy_tries += 1
            continue
        # Threads' CPU per call holds the GIL's hand-offs too (up to 19 % more, measured): offered at 1.3 CPUs
        # of it, the work itself is beyond one CPU.
        lowest = 1000 * max(1.15 / pool_ms, 1.3 / thread_ms)
        highest = 1000 * min(1.6, 0.8 * free) / pool_ms
        if lowest <= rate <= highest:
            break
        # Aim the next try at the middle of what this one's op times allow (their ratio moves less
        # than either), or at 1.4 ÷ their mean if they allow nothing.
        rate = round((lowest + highest) / 2 if lowest <= highest else 1.4 * 2000 / (pool_ms + thread_ms))
    else:
        if busy_tries == 5:
            pytest.skip("other programs kept a CPU busy in every try: two processes cannot outrun the GIL")
        pytest.fail(f"no premise: {rate}/s of {pool_ms:.1f} (pool) / {thread_ms:.1f} ms (threads) calls, "
                    f"{free:.2f} CPUs free of other programs: the host is too busy, or its speed kept moving")
    assert processes.open_loop is not None
    assert threads.open_loop is not None
    busy = [u.other_cpu for u in [*processes.units, *threads.units]]
    assert processes.open_loop.sustained, (rate, pool_ms, processes.open_loop, busy)
    assert _cores(processes) > 1.15  # the pool ran on both CPUs (measured 1.71)
    assert not threads.open_loop.sustained, (rate, thread_ms, threads.open_loop, busy)
    # Threads complete no more than 1 ÷ op time: their process used one CPU, and the GIL's hand-offs (1.0-1.31
    # CPUs measured: 1.31 with 81 threads in flight in a full suite on 2026-12-01, 1.53 in one on a clean
    # clone on 2026-12-02: the kernel's side of the hand-offs). In CPUs, not in calls per op time: the host's
    # speed moves op time by a third between timings here, and the CPUs a call's completions took move with
    # it. The bound is the rate verdict's own (GIL_CORES, 1.7): what it calls the GIL, this test sees.
    assert _cores(threads) <= rate_verdict.GIL_CORES[1], _cores(threads)
    # And the rate verdict says why.
    (verdict,) = rate_verdict.decide([processes, threads], 1000.0, 1000.0, 2)
    why = {c.strategy: c.why for c in verdict.rulings[0].candidates}
    assert why == {"process-pool": "met", "to-thread": "gil"}


@pytest.mark.workers
def test_a_run_with_rates_writes_them_shows_them_and_gates_on_them(tmp_path: Path) -> None:
    out = tmp_path / "rates.json"
    # Bounded at 64 in flight: direct's backlog at 8 × its capacity then holds its loop 0.6 s, not seconds.
    done = offbench("run", "-w", "sleep", "-s", "direct", "-s", "to-thread", "-l", "asyncio", "--rate", "50",
                    "--rate", "800", "--max-in-flight", "64", "--quick", "--rounds", "2", "--no-semantics",
                    "--no-pool-costs",
                    "--fail-if", "open_loop.latency_ms.p99 > 50 where rate=800,strategy=to-thread",
                    "-o", str(out))
    assert done.returncode == 1, done.stderr[-2000:]  # the gate: 800/s is beyond to-thread's 6 threads
    for shown in ("offered/s", "Rate verdict", "knee:"):
        assert shown in done.stdout
    assert 'gate "open_loop.latency_ms.p99 > 50 where rate=800,strategy=to-thread" broken by' in done.stdout
    found = results.load(out)
    assert {(r.strategy, r.rate) for r in found.results} == {(s, r) for s in ("direct", "to-thread")
                                                             for r in (50.0, 800.0)}
    assert all(r.concurrency == 0 and r.open_loop is not None and len(r.units) == 2 for r in found.results)
    (verdict,) = found.rate_verdicts
    # At 800/s nothing keeps p99 under 50 ms (physics); at 50/s to-thread carries the rate (whether its lag
    # p99 keeps within 10 ms in 1 s windows is the host's business).
    assert [ruling.rate for ruling in verdict.rulings] == [50.0, 800.0]
    assert verdict.rulings[1].best is None
    assert all(r.open_loop is not None and r.open_loop.sustained for r in found.results
               if r.rate == 50.0 and r.strategy == "to-thread")
    refused = {r.strategy: r.open_loop.refused for r in found.results if r.rate == 800.0 and r.open_loop}
    assert refused["direct"] > 0  # counted, not hidden
    assert "refused" in done.stdout
    assert not math.isnan(found.results[0].throughput_ops_s)
