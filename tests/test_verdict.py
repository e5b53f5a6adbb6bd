"""The verdict, driven by synthetic cells: which strategy wins, and why each other one lost."""

from __future__ import annotations

import msgspec
import pytest

from offbench.judge.verdict import decide
from offbench.model.params import Params
from offbench.model.results import Candidate, CellResult, Durations, LoopLag, Status, Verdict


def cell(
    strategy: str,
    concurrency: int,
    ops_s: float,
    lag_p99: float | None,
    loop: str = "asyncio",
    *,
    workload: str = "work",
    params: Params | None = None,
    max_workers: int | None = None,
    pool: int | None = None,
    blocked: float = 0.0,
    status: Status = "ok",
    error: str | None = None,
) -> CellResult:
    """A one-second cell; ``pool`` is the executor size it recorded, ``blocked`` its blocked share."""
    if status != "ok":
        return CellResult(
            workload=workload, params=params or {}, strategy=strategy, loop=loop,
            concurrency=concurrency, max_workers=max_workers, status=status, error=error,
        )
    lag = None if lag_p99 is None else LoopLag(
        p50=lag_p99 / 4, p90=lag_p99 / 2, p99=lag_p99, p999=lag_p99 * 1.1, max=lag_p99 * 1.2,
        mean=lag_p99 / 3,
    )
    return CellResult(
        workload=workload, params=params or {}, strategy=strategy, loop=loop,
        concurrency=concurrency, max_workers=max_workers, status="ok", ops=int(ops_s),
        elapsed_s=1.0, throughput_ops_s=ops_s,
        op_latency_ms=Durations(p50=1000 / ops_s, p99=2000 / ops_s, max=3000 / ops_s),
        loop_lag_ms=lag, lag_samples=1000, lag_samples_raw=1000, blocked_s=blocked,
        details={} if pool is None else {"max_workers": pool},
    )


def only(verdicts: list[Verdict]) -> Verdict:
    assert len(verdicts) == 1
    return verdicts[0]


def judged(verdict: Verdict, strategy: str) -> Candidate:
    return next(c for c in verdict.candidates if c.strategy == strategy)


def sleep_like() -> list[CellResult]:
    """An I/O-like matrix: threads scale, direct blocks, the process pool is small."""
    return [
        cell("direct", 1, 100, 30, blocked=1.0),
        cell("direct", 8, 100, 205, blocked=1.0),
        cell("to-thread", 1, 100, 1.1, pool=6),
        cell("to-thread", 8, 600, 1.1, pool=6),
        cell("process-pool", 1, 90, 1.1, pool=2),
        cell("process-pool", 8, 195, 1.1, pool=2),
    ]


def cpu_like() -> list[CellResult]:
    """A GIL-holding matrix: threads neither scale nor leave the loop alone."""
    return [
        cell("direct", 1, 100, 30, blocked=1.0),
        cell("direct", 8, 100, 203, blocked=1.0),
        cell("executor-per-call", 1, 75, 15, blocked=0.9),
        cell("executor-per-call", 8, 50, 167, blocked=1.0),
        cell("default-executor", 1, 90, 9.8, pool=6, blocked=0.9),
        cell("default-executor", 8, 90, 80, pool=6, blocked=1.0),
        cell("to-thread", 1, 95, 9.9, pool=6, blocked=0.9),
        cell("to-thread", 8, 90, 106, pool=6, blocked=1.1),
        cell("process-pool", 1, 90, 4.6, pool=2, blocked=0.2),
        cell("process-pool", 8, 180, 6.7, pool=2, blocked=0.2),
    ]


def test_winner_is_the_fastest_within_budget_not_the_fastest_overall() -> None:
    verdict = only(decide([
        cell("direct", 8, 1000, 200, blocked=1.0),
        cell("to-thread", 8, 600, 1.1, pool=6),
        cell("process-pool", 8, 300, 1.0, pool=2),
    ], 10))
    assert verdict.winner is not None
    assert verdict.winner.strategy == "to-thread"
    assert verdict.winner.judgement == "winner"
    assert verdict.candidates[0] is verdict.winner
    assert verdict.text.startswith("use to-thread: 600 ops/s at c=8 (asyncio)")
    assert "loop lag p99 ≤ 1.10 ms" in verdict.text
    assert "over 1 cell" in verdict.winner.reason
    assert judged(verdict, "direct").judgement == "blocked"
    assert verdict.lag_budget_ms == 10


def test_direct_that_blocks_the_loop_is_blocked_with_the_share() -> None:
    verdict = only(decide(sleep_like(), 10))
    direct = judged(verdict, "direct")
    assert direct.judgement == "blocked"
    assert not direct.qualified
    assert "loop blocked 100% of the time" in direct.reason
    assert "lag p99 205 ms" in direct.reason
    partial = only(decide([cell("direct", 1, 100, 240, blocked=0.97), cell("to-thread", 1, 90, 1)], 10))
    assert "loop blocked 97% of the time (lag p99 240 ms)" in judged(partial, "direct").reason


def test_threads_that_do_not_scale_and_lag_are_gil_even_when_the_loop_looks_blocked() -> None:
    verdict = only(decide([
        cell("to-thread", 1, 100, 50, pool=6, blocked=0.95),
        cell("to-thread", 8, 102, 59, pool=6, blocked=0.95),
        cell("process-pool", 1, 90, 2, pool=2),
        cell("process-pool", 8, 180, 2, pool=2),
    ], 10))
    thread = judged(verdict, "to-thread")
    assert thread.judgement == "gil"
    assert "1.02× from c=1 to c=8" in thread.reason
    assert "59.0 ms p99" in thread.reason
    assert "GIL" in thread.reason


def test_threads_that_scale_but_lag_are_not_gil() -> None:
    verdict = only(decide([
        cell("to-thread", 1, 100, 50, pool=6),
        cell("to-thread", 8, 600, 53, pool=6),
        cell("process-pool", 1, 90, 2, pool=2),
    ], 10))
    thread = judged(verdict, "to-thread")
    assert thread.judgement == "lag"
    assert "loop lag p99 53.0 ms, over the 10 ms budget" in thread.reason


def test_a_thread_pool_saturated_at_its_size_is_capped() -> None:
    verdict = only(decide([
        cell("to-thread", 1, 100, 1.1, pool=6),
        cell("to-thread", 8, 600, 1.1, pool=6),
        cell("executor-per-call", 1, 100, 1.2),
        cell("executor-per-call", 8, 800, 1.3),
    ], 10))
    assert verdict.winner is not None
    assert verdict.winner.strategy == "executor-per-call"
    thread = judged(verdict, "to-thread")
    assert thread.judgement == "capped"
    assert "capped at 6 threads, the default executor's size" in thread.reason
    assert "600 vs 800 ops/s at c=8" in thread.reason


def test_a_capped_strategy_names_whose_default_caps_it() -> None:
    verdict = only(decide([
        cell("anyio-thread", 1, 100, 1.1, pool=40),
        cell("anyio-thread", 64, 4000, 1.1, pool=40),
        cell("executor-per-call", 1, 100, 1.2),
        cell("executor-per-call", 64, 6000, 1.3),
    ], 10))
    anyio = judged(verdict, "anyio-thread")
    assert anyio.judgement == "capped"
    assert "capped at 40 threads, anyio's default limiter's size" in anyio.reason


def test_an_explicit_pool_size_and_a_process_pool_are_the_pools_size() -> None:
    verdict = only(decide([
        cell("to-thread", 1, 100, 1, max_workers=4, pool=4),
        cell("to-thread", 8, 400, 1, max_workers=4, pool=4),
        cell("process-pool", 1, 90, 1, pool=2),
        cell("process-pool", 8, 190, 1, pool=2),
        cell("executor-per-call", 1, 100, 1),
        cell("executor-per-call", 8, 790, 1),
    ], 10))
    sized = judged(verdict, "to-thread")
    assert sized.max_workers == 4
    assert "capped at 4 threads, the pool's size" in sized.reason
    assert "capped at 2 processes, the pool's size" in judged(verdict, "process-pool").reason


def test_a_pool_that_stops_scaling_below_its_size_is_slower_not_capped() -> None:
    verdict = only(decide([
        cell("to-thread", 1, 100, 1, pool=6),
        cell("to-thread", 8, 200, 1, pool=6),
        cell("executor-per-call", 1, 100, 1),
        cell("executor-per-call", 8, 800, 1),
    ], 10))
    thread = judged(verdict, "to-thread")
    assert thread.judgement == "slower"
    assert "slower than executor-per-call on average (200 vs 800 ops/s at c=8 on asyncio)" in thread.reason


def test_process_pool_wins_a_cpu_like_matrix() -> None:
    verdict = only(decide(cpu_like(), 10))
    assert verdict.winner is not None
    assert verdict.winner.strategy == "process-pool"
    assert verdict.text.startswith("use process-pool: 180 ops/s at c=8 (asyncio)")
    for name in ("executor-per-call", "default-executor", "to-thread"):
        assert judged(verdict, name).judgement == "gil", name
    assert judged(verdict, "direct").judgement == "blocked"


def test_the_sleep_like_matrix_names_each_reason() -> None:
    verdict = only(decide(sleep_like(), 10))
    assert verdict.winner is not None
    assert verdict.winner.strategy == "to-thread"
    assert judged(verdict, "process-pool").judgement == "capped"
    assert [c.strategy for c in verdict.candidates] == ["to-thread", "process-pool", "direct"]


def test_a_failed_cell_makes_the_candidate_failed_and_not_the_winner() -> None:
    verdict = only(decide([
        cell("to-thread", 1, 100, 1, pool=6),
        cell("to-thread", 8, 0, None, status="error", error="ValueError: boom\nmore"),
        cell("default-executor", 1, 95, 1, pool=6),
        cell("default-executor", 8, 500, 1, pool=6),
        cell("process-pool", 1, 90, 1, status="timeout", error="no result within 15 s; worker killed"),
        cell("process-pool", 8, 150, 1, pool=2),
    ], 10))
    assert verdict.winner is not None
    assert verdict.winner.strategy == "default-executor"
    thread = judged(verdict, "to-thread")
    assert thread.judgement == "failed"
    assert not thread.qualified
    assert thread.reason == "error in 1 of 2 cells: ValueError: boom"
    pool = judged(verdict, "process-pool")
    assert pool.judgement == "failed"
    assert pool.reason.startswith("timed out in 1 of 2 cells")


def test_nothing_within_budget_names_the_least_lag() -> None:
    verdict = only(decide(cpu_like(), 3))
    assert verdict.winner is None
    assert verdict.text == "no strategy kept loop lag p99 within 3 ms; least lag: process-pool (6.70 ms)"
    assert all(not c.qualified for c in verdict.candidates)
    assert "winner" not in {c.judgement for c in verdict.candidates}


def test_least_lag_that_failed_says_so() -> None:
    verdict = only(decide([
        cell("direct", 1, 100, 200, blocked=1.0),
        cell("process-pool", 1, 0, None, status="error", error="OSError: no fork"),
        cell("process-pool", 8, 150, 1, pool=2),
    ], 10))
    assert verdict.winner is None
    assert "least lag: process-pool (1.00 ms) but error in 1 of 2 cells: OSError" in verdict.text


def test_no_ok_cell_is_no_cell_measured() -> None:
    verdict = only(decide([cell("to-thread", 1, 0, None, status="timeout", error="killed")], 10))
    assert verdict.winner is None
    assert verdict.text == "no cell measured"
    assert verdict.candidates[0].score is None
    assert verdict.candidates[0].worst_lag_p99_ms is None


@pytest.mark.parametrize(("budget", "expected"), [(5, "to-thread"), (100, "direct")])
def test_the_budget_decides(budget: float, expected: str) -> None:
    verdict = only(decide([
        cell("direct", 1, 1000, 50),
        cell("direct", 8, 1000, 60),
        cell("to-thread", 1, 400, 1, pool=6),
        cell("to-thread", 8, 600, 1, pool=6),
    ], budget))
    assert verdict.winner is not None
    assert verdict.winner.strategy == expected


def test_each_parameter_set_gets_its_own_verdict_in_order() -> None:
    small: Params = {"n": 1}
    large: Params = {"n": 1000}
    verdicts = decide([
        cell("to-thread", 1, 100, 1, params=small),
        cell("to-thread", 1, 10, 80, params=large),
        cell("process-pool", 1, 50, 1, params=small),
        cell("process-pool", 1, 9, 2, params=large),
    ], 10)
    assert [v.params for v in verdicts] == [small, large]
    assert [v.winner.strategy if v.winner else None for v in verdicts] == ["to-thread", "process-pool"]


def test_only_the_numbers_decide_not_the_name() -> None:
    rows = [msgspec.structs.replace(c, workload="sleep") for c in cpu_like()]
    assert only(decide(rows, 10)).winner == only(decide(cpu_like(), 10)).winner


def test_loops_and_concurrency_are_scored_relative_to_the_best_there() -> None:
    verdict = only(decide([
        cell("to-thread", 1, 100, 1, "asyncio"),
        cell("to-thread", 1, 100, 1, "uvloop"),
        cell("default-executor", 1, 50, 1, "asyncio"),
        cell("default-executor", 1, 100, 1, "uvloop"),
    ], 10))
    assert [c.score for c in verdict.candidates] == [1.0, 0.75]
    slower = verdict.candidates[1]
    assert slower.reason.startswith("25% slower than to-thread")


def test_within_noise_is_as_fast() -> None:
    verdict = only(decide([
        cell("to-thread", 8, 600, 1, pool=6),
        cell("default-executor", 8, 590, 1, pool=6),
    ], 10))
    loser = judged(verdict, "default-executor")
    assert loser.judgement == "slower"
    assert "as fast as to-thread within 5% (590 vs 600 ops/s at c=8 on asyncio)" in loser.reason


def test_an_unknown_strategy_is_judged_by_its_numbers_only() -> None:
    verdict = only(decide([
        cell("green-threads", 1, 100, 50),
        cell("green-threads", 8, 100, 60),
        cell("paused", 1, 100, 300, blocked=0.9),
        cell("to-thread", 1, 90, 1),
        cell("to-thread", 8, 500, 1),
    ], 10))
    assert judged(verdict, "green-threads").judgement == "lag"
    assert judged(verdict, "paused").judgement == "blocked"
    assert verdict.winner is not None
    assert verdict.winner.strategy == "to-thread"


def test_a_cell_without_lag_figures_does_not_qualify() -> None:
    verdict = only(decide([cell("direct", 1, 1000, None, blocked=1.0), cell("to-thread", 1, 90, 1)], 10))
    direct = judged(verdict, "direct")
    assert direct.judgement == "blocked"
    assert "unbounded" in direct.reason
    assert direct.worst_lag_p99_ms is None


def test_verdicts_survive_json() -> None:
    rows = [*cpu_like(), *(msgspec.structs.replace(c, workload="sleep") for c in sleep_like())]
    verdicts = decide(rows, 10)
    assert [v.workload for v in verdicts] == ["work", "sleep"]
    for verdict in verdicts:
        data = msgspec.json.encode(verdict)
        assert msgspec.json.decode(data, type=Verdict) == verdict


def test_no_results_no_verdicts() -> None:
    assert decide([], 10) == []


def test_an_offloaded_strategy_that_starves_the_loop_is_not_said_to_block_it() -> None:
    cells = [
        cell("to-thread", 1, 140, 1.1, pool=6),
        cell("to-thread", 8, 270, 11.0, pool=6, blocked=0.6),
        cell("process-pool", 1, 115, 1.1, pool=2),
        cell("process-pool", 8, 235, 4.0, pool=2),
    ]
    starved = judged(only(decide(cells, 10.0)), "to-thread")
    assert starved.judgement == "blocked"
    assert "ran late 60% of the time" in starved.reason
    assert "loop blocked" not in starved.reason
