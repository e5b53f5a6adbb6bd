"""The verdict, driven by synthetic cells: which strategy to use, how sure, why each other one lost, and
how it says so (faster is never "as fast", the fix once in the details, how sure first).

Two kinds of cells: :func:`cell` has no units (as in results files before units; ties are
then a fixed 5 %), :func:`measured` has one unit per round with the throughputs given,
so ties and wins are decided by the paired interval of per-round ratios.
"""

from __future__ import annotations

import msgspec
import pytest

from offbench.judge import precision
from offbench.judge.evidence import judged_cell
from offbench.judge.verdict import decide
from offbench.model import histogram
from offbench.model.params import Params
from offbench.model.results import (
    Breakdown,
    Candidate,
    CellResult,
    Durations,
    Frame,
    LoopLag,
    Quantiles,
    StallEvidence,
    Status,
    Unit,
    Verdict,
)
from offbench.model.semantics import Finding, StrategySemantics
from offbench.stats import cluster_bootstrap, percentile, weighted_percentile


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
    """A one-second cell without units; ``pool``: the executor size it recorded, ``blocked``: a share."""
    if status != "ok":
        return CellResult(
            workload=workload, params=params or {}, strategy=strategy, loop=loop,
            concurrency=concurrency, max_workers=max_workers, status=status, error=error,
        )
    return CellResult(
        workload=workload, params=params or {}, strategy=strategy, loop=loop,
        concurrency=concurrency, max_workers=max_workers, status="ok", ops=int(ops_s),
        elapsed_s=1.0, throughput_ops_s=ops_s,
        op_latency_ms=Durations(p50=1000 / ops_s, p99=2000 / ops_s, max=3000 / ops_s),
        loop_lag_ms=_lag(lag_p99), lag_samples=1000, lag_samples_raw=1000, blocked_s=blocked,
        details={} if pool is None else {"max_workers": pool},
    )


def _lag(p99: float | None) -> LoopLag | None:
    if p99 is None:
        return None
    return LoopLag(p50=p99 / 4, p90=p99 / 2, p99=p99, p999=p99 * 1.1, max=p99 * 1.2, mean=p99 / 3)


def measured(
    strategy: str,
    concurrency: int,
    rates: list[float],
    lags: float | list[float] = 1.0,
    loop: str = "asyncio",
    *,
    workload: str = "work",
    max_workers: int | None = None,
    pool: int | None = None,
    blocked: float = 0.0,
    breakdown: Breakdown | None = None,
    stalls: list[StallEvidence] | None = None,
) -> CellResult:
    """A cell with one unit per round: ``rates[i]`` ops/s in round i, its loop lag p99 ``lags`` (per unit).

    Each unit has 100 probe ticks: 97 of 0.1 ms and 3 at its p99, so the cell's p99 is that
    of the pooled ticks, and its interval over units spans the units' p99s.
    """
    p99s = lags if isinstance(lags, list) else [lags] * len(rates)
    ticks = [[0.1] * 97 + [p] * 3 for p in p99s]
    units = [
        Unit(round=i, started_s=10.0 * i, duration_s=1.0, ops=int(rate), throughput_ops_s=rate,
             op_latency_mean_ms=1000 / rate, lag_p99_ms=p, ticks=100, lag_histogram=histogram.encode(t),
             reference_ms=1.0, wakeup_us=20.0, cpu_s=0.0, other_cpu=0.0)
        for i, (rate, p, t) in enumerate(zip(rates, p99s, ticks, strict=True))
    ]
    pooled = sorted(v for t in ticks for v in t)
    mean = sum(rates) / len(rates)
    return CellResult(
        workload=workload, params={}, strategy=strategy, loop=loop, concurrency=concurrency,
        max_workers=max_workers, status="ok", ops=int(mean), elapsed_s=1.0, throughput_ops_s=mean,
        op_latency_ms=Durations(p50=1000 / mean, p99=2000 / mean, max=3000 / mean),
        breakdown_ms=breakdown, loop_lag_ms=_lag(percentile(pooled, 99)), lag_samples=len(pooled),
        lag_samples_raw=len(pooled), blocked_s=blocked, units=units, normalised_ops_s=mean,
        details={} if pool is None else {"max_workers": pool}, stall_evidence=stalls or [],
    )


def split(queue_wait: float, run: float, hop_back: float) -> Breakdown:
    """A breakdown with these p50s (p99 twice as long)."""
    return Breakdown(queue_wait=Quantiles(p50=queue_wait, p99=2 * queue_wait),
                     run=Quantiles(p50=run, p99=2 * run), hop_back=Quantiles(p50=hop_back, p99=2 * hop_back))


def in_thread_start() -> StallEvidence:
    """A stall while the loop thread waited in ``Thread.start()`` (as a pool's ``submit`` makes one)."""
    return StallEvidence(duration_ms=30.0, frames=[
        Frame(file="threading.py", line=331, function="wait", code="waiter.acquire()"),
        Frame(file="threading.py", line=629, function="wait", code="signaled = self._cond.wait(timeout)"),
        Frame(file="threading.py", line=994, function="start", code="self._started.wait()"),
        Frame(file="concurrent/futures/thread.py", line=199, function="_adjust_thread_count",
              code="t.start()"),
    ])


def findings(
    strategy: str, runs_on: str, *, context: bool, reuse: bool, python_parallel: float
) -> StrategySemantics:
    """What ``offbench check`` finds for a strategy on asyncio (the experiments the verdict reads)."""
    return StrategySemantics(strategy=strategy, loop="asyncio", findings=[
        Finding(experiment="context", holds=context, value="copied" if context else "lost"),
        Finding(experiment="reuse", holds=reuse, value="yes" if reuse else "no"),
        Finding(experiment="runs_on", holds=runs_on == "loop", value=runs_on),
        Finding(experiment="parallel_python", holds=python_parallel >= 1.4, value=f"{python_parallel:.2f}×",
                measured=python_parallel, unit="×"),
    ])


SEMANTICS = [
    findings("direct", "loop", context=True, reuse=True, python_parallel=1.0),
    findings("executor-per-call", "thread", context=False, reuse=False, python_parallel=1.02),
    findings("default-executor", "thread", context=False, reuse=True, python_parallel=1.01),
    findings("to-thread", "thread", context=True, reuse=True, python_parallel=1.01),
    findings("bounded-to-thread", "thread", context=True, reuse=True, python_parallel=1.0),
    findings("process-pool", "process", context=False, reuse=True, python_parallel=1.95),
]
"""What ``offbench check`` finds on a GIL build: to-thread and bounded-to-thread keep context variables."""


def only(verdicts: list[Verdict]) -> Verdict:
    assert len(verdicts) == 1
    return verdicts[0]


def chosen(verdict: Verdict) -> str | None:
    return verdict.winner.strategy if verdict.winner else None


def word(verdict: Verdict) -> str | None:
    return verdict.confidence.word if verdict.confidence else None


def judged(verdict: Verdict, strategy: str, max_workers: int | None = None) -> Candidate:
    return next(c for c in verdict.candidates if c.strategy == strategy and c.max_workers == max_workers)


def sleep_like() -> list[CellResult]:
    """An I/O-like matrix without units: threads scale, direct blocks, the process pool is small."""
    return [
        cell("direct", 1, 100, 30, blocked=1.0),
        cell("direct", 8, 100, 205, blocked=1.0),
        cell("to-thread", 1, 100, 1.1, pool=6),
        cell("to-thread", 8, 600, 1.1, pool=6),
        cell("process-pool", 1, 90, 1.1, pool=2),
        cell("process-pool", 8, 195, 1.1, pool=2),
    ]


def cpu_like() -> list[CellResult]:
    """A GIL-holding matrix without units: threads neither scale nor leave the loop alone."""
    return [
        cell("direct", 1, 100, 30, blocked=1.0),
        cell("direct", 8, 100, 203, blocked=1.0),
        cell("executor-per-call", 1, 75, 15, blocked=0.9),
        cell("executor-per-call", 8, 50, 167, blocked=1.0),
        cell("default-executor", 1, 90, 19.8, pool=6, blocked=0.9),
        cell("default-executor", 8, 90, 80, pool=6, blocked=1.0),
        cell("to-thread", 1, 95, 19.9, pool=6, blocked=0.9),
        cell("to-thread", 8, 90, 106, pool=6, blocked=1.1),
        cell("process-pool", 1, 90, 4.6, pool=2, blocked=0.2),
        cell("process-pool", 8, 180, 6.7, pool=2, blocked=0.2),
    ]


ROUNDS_10MS_SLEEP = {
    # c=1: every reused pool and the per-call one run a 10 ms sleep at ~98 ops/s, within noise.
    1: [98.0, 97.0, 99.0, 98.0, 97.5],
    # c=8, default executor (6 threads): capped at 6 / 10 ms.
    6: [590.0, 585.0, 596.0, 588.0, 592.0],
    # c=8 with 8 threads, reused or per call.
    8: [780.0, 770.0, 790.0, 776.0, 784.0],
}


def sleep_run(sized: bool = True) -> list[CellResult]:
    """What a run of a 10 ms sleep at c=1 and 8 measures: the default executor (6 threads) caps c=8.

    Per-round values differ a little between strategies (each unit is its own process).
    """
    def jitter(rates: list[float], shift: float) -> list[float]:
        return [r * (1 + shift * (-1) ** i) for i, r in enumerate(rates)]

    cells = [
        measured("direct", 1, [96.0, 95.0, 97.0, 96.0, 95.5], 10.2, blocked=1.0),
        measured("direct", 8, [96.0, 95.0, 97.0, 96.0, 95.5], 75.0, blocked=1.0),
        measured("executor-per-call", 1, jitter(ROUNDS_10MS_SLEEP[1], 0.004), 0.3),
        measured("executor-per-call", 8, jitter(ROUNDS_10MS_SLEEP[8], -0.004), 0.4),
        measured("default-executor", 1, jitter(ROUNDS_10MS_SLEEP[1], 0.002), 0.2, pool=6),
        measured("default-executor", 8, jitter(ROUNDS_10MS_SLEEP[6], 0.002), 0.2, pool=6),
        measured("to-thread", 1, jitter(ROUNDS_10MS_SLEEP[1], -0.002), 0.2, pool=6),
        measured("to-thread", 8, jitter(ROUNDS_10MS_SLEEP[6], -0.003), 0.2, pool=6),
        measured("process-pool", 1, [90.0, 89.0, 91.0, 90.0, 89.5], 0.3, pool=2),
        measured("process-pool", 8, [190.0, 188.0, 192.0, 191.0, 189.0], 0.3, pool=2),
    ]
    if sized:
        cells.append(measured("to-thread", 8, jitter(ROUNDS_10MS_SLEEP[8], 0.003), 0.2,
                              max_workers=8, pool=8))
    return cells


# The rules that stay from the first verdict: budget, failures, reasons for over-budget candidates.


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
    assert [c.strategy for c in verdict.candidates] == ["to-thread", "process-pool", "direct"]
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


def test_an_offloaded_strategy_that_starves_the_loop_is_not_said_to_block_it() -> None:
    cells = [
        cell("to-thread", 1, 140, 11.0, pool=6, blocked=0.6),
        cell("to-thread", 8, 270, 11.0, pool=6, blocked=0.6),
        cell("process-pool", 1, 115, 1.1, pool=2),
        cell("process-pool", 8, 235, 4.0, pool=2),
    ]
    starved = judged(only(decide(cells, 10.0)), "to-thread")
    assert starved.judgement == "blocked"
    assert "ran late 60% of the time" in starved.reason
    assert "loop blocked" not in starved.reason


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
    assert verdict.confidence is None
    assert verdict.tied == []


def test_least_lag_that_failed_says_so() -> None:
    verdict = only(decide([
        cell("direct", 1, 100, 200, blocked=1.0),
        cell("process-pool", 1, 0, None, status="error", error="OSError: no fork"),
        cell("process-pool", 8, 150, 1, pool=2),
    ], 10))
    assert verdict.winner is None, "a strategy that failed somewhere is recommended nowhere"
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
    for rows in (cpu_like(), sleep_run()):
        renamed = [msgspec.structs.replace(c, workload="sleep") for c in rows]
        assert only(decide(renamed, 10, SEMANTICS)).text == only(decide(rows, 10, SEMANTICS)).text


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
    rows = [*cpu_like(), *(msgspec.structs.replace(c, workload="sleep") for c in sleep_run())]
    verdicts = decide(rows, 10, SEMANTICS)
    assert [v.workload for v in verdicts] == ["work", "sleep"]
    assert verdicts[1].confidence is not None
    for verdict in verdicts:
        data = msgspec.json.encode(verdict)
        assert msgspec.json.decode(data, type=Verdict) == verdict


def test_no_results_no_verdicts() -> None:
    assert decide([], 10) == []


def test_scores_are_the_geometric_mean_of_throughput_relative_to_the_fastest_there() -> None:
    verdict = only(decide([
        cell("to-thread", 1, 100, 1, "asyncio"),
        cell("to-thread", 1, 100, 1, "uvloop"),
        cell("default-executor", 1, 50, 1, "asyncio"),
        cell("default-executor", 1, 100, 1, "uvloop"),
    ], 10))
    scores = {c.strategy: c.score for c in verdict.candidates}
    assert scores["to-thread"] == 1.0
    assert scores["default-executor"] == pytest.approx(0.5 ** 0.5)


# Intervals: better only beyond noise, ties called ties.


def test_a_difference_within_the_rounds_noise_is_a_tie_and_beyond_it_a_win() -> None:
    # default-executor is 13 % faster on average in both; only the rounds' scatter differs.
    scattered = [100.0, 112.0, 90.0, 108.0, 95.0]
    noisy = decide([
        measured("to-thread", 8, scattered, pool=6),
        measured("default-executor", 8, [r * f for r, f in zip(scattered, [1.33, 0.93, 1.32, 0.95, 1.12],
                                                               strict=True)], pool=6),
    ], 10, SEMANTICS)
    steady = decide([
        measured("to-thread", 8, scattered, pool=6),
        measured("default-executor", 8, [r * f for r, f in zip(scattered, [1.131, 1.129, 1.130, 1.132, 1.128],
                                                               strict=True)], pool=6),
    ], 10, SEMANTICS)
    tie = only(noisy)
    assert chosen(tie) == "to-thread"
    assert tie.tied == ["to-thread", "default-executor"]
    assert word(tie) == "tie"
    assert tie.confidence is not None
    assert tie.confidence.margin_pct == 0
    assert (tie.confidence.low_pct or 0) < 0 < (tie.confidence.high_pct or 0)
    assert "(tie with default-executor; chosen: keeps context variables" in tie.text
    assert judged(tie, "default-executor").judgement == "tie"
    assert "to-thread preferred: default-executor loses context variables" in judged(
        tie, "default-executor").reason
    win = only(steady)
    assert chosen(win) == "default-executor"
    assert win.tied == ["default-executor"]
    assert word(win) == "clear"
    assert win.confidence is not None
    assert win.confidence.margin_pct == pytest.approx(13.0, abs=0.2)
    assert win.confidence.method == "paired by round"
    assert (win.confidence.rounds, win.confidence.rounds_agreeing) == (5, 5)
    assert judged(win, "to-thread").judgement == "slower"


def test_two_strategies_on_one_pool_are_not_split_by_noise() -> None:
    # to-thread ties with direct on noisy rounds; default-executor, on the same pool, is 14 %
    # slower than direct on steady ones (beyond noise) but not beyond noise of to-thread: it is
    # tied through its twin. A process pool with the same figures has no twin and stays out.
    rounds = [100.0, 112.0, 90.0, 108.0, 95.0]
    noisy = [0.80, 1.05, 0.78, 1.02, 0.90]
    verdict = only(decide([
        measured("direct", 1, rounds),
        measured("to-thread", 1, [r * f for r, f in zip(rounds, noisy, strict=True)], pool=6),
        measured("default-executor", 1, [r * 0.86 for r in rounds], pool=6),
        measured("process-pool", 1, [r * 0.86 for r in rounds]),
    ], 10, SEMANTICS))
    assert "to-thread" in verdict.tied
    assert "default-executor" in verdict.tied
    assert "process-pool" not in verdict.tied
    assert judged(verdict, "process-pool").judgement == "slower"
    reason = judged(verdict, "default-executor").reason
    assert reason.startswith("tied through to-thread, on the same pool: −14% against direct"), reason


def pool_at_eight(scaling: float) -> list[CellResult]:
    """to-thread on its default pool of 6 at c=1 and c=8 (``scaling`` × c=1 there), and sized to 8
    at c=8 about a fifth faster on rounds too scattered to tell them apart."""
    rounds = [100.0, 104.0, 97.0, 102.0, 99.0]
    at_eight = [r * scaling for r in rounds]
    scattered = [1.5, 0.9, 1.4, 0.95, 1.2]
    return [
        measured("to-thread", 1, rounds, pool=6),
        measured("to-thread", 8, at_eight, pool=6),
        measured("to-thread", 8, [r * f for r, f in zip(at_eight, scattered, strict=True)],
                 max_workers=8, pool=8),
    ]


def test_a_tie_at_a_full_default_pool_goes_to_the_pool_sized_to_the_concurrency() -> None:
    # I/O-like: the default pool of 6 runs 5.9x c=1 at c=8: its size is the cap (a socket call, 2026-12-02).
    verdict = only(decide(pool_at_eight(5.9), 10, SEMANTICS))
    assert (chosen(verdict), verdict.winner and verdict.winner.max_workers) == ("to-thread", 8)
    assert verdict.tied == ["to-thread (8)", "to-thread"]
    assert "the default pool of 6 threads is full at c=8 (5.9× c=1)" in verdict.text
    assert verdict.fix == "loop.set_default_executor(ThreadPoolExecutor(max_workers=8))"
    reason = judged(verdict, "to-thread").reason
    assert "to-thread (8) preferred: the default pool of 6 threads is full" in reason


def test_a_tie_at_a_default_pool_the_cpu_caps_goes_to_the_default_size() -> None:
    # CPU-like: 1.9x c=1 at c=8 on two cores (numpy, 2026-12-02): more threads would not help.
    verdict = only(decide(pool_at_eight(1.9), 10, SEMANTICS))
    assert (chosen(verdict), verdict.winner and verdict.winner.max_workers) == ("to-thread", None)
    assert "the library's default size" in verdict.text
    assert "full at" not in verdict.text


def test_a_difference_too_small_to_matter_is_a_tie_even_beyond_noise() -> None:
    rounds = [100.0, 112.0, 90.0, 108.0, 95.0]
    verdict = only(decide([
        measured("to-thread", 8, rounds, pool=6),
        measured("default-executor", 8, [r * 1.01 for r in rounds], pool=6),
    ], 10, SEMANTICS))
    assert chosen(verdict) == "to-thread"
    assert verdict.tied == ["to-thread", "default-executor"]


def test_rounds_pair_the_candidates_so_host_drift_cancels() -> None:
    # The host's speed swings 2x between rounds; in every round process-pool is 18 % faster.
    host = [100.0, 160.0, 80.0, 140.0, 70.0]
    verdict = only(decide([
        measured("to-thread", 8, host, pool=6),
        measured("process-pool", 8, [h * 1.18 for h in host], pool=2),
    ], 10, SEMANTICS))
    assert verdict.winner is not None
    assert verdict.winner.strategy == "process-pool"
    assert verdict.confidence is not None
    assert verdict.confidence.method == "paired by round"
    assert verdict.confidence.low_pct == pytest.approx(18.0, abs=0.1)


def test_without_shared_rounds_units_are_compared_by_welch() -> None:
    host = [100.0, 160.0, 80.0, 140.0, 70.0]
    later = measured("process-pool", 8, [h * 1.18 for h in host], pool=2)
    later = msgspec.structs.replace(later, units=[msgspec.structs.replace(u, round=u.round + 10)
                                                  for u in later.units])
    verdict = only(decide([measured("to-thread", 8, host, pool=6), later], 10, SEMANTICS))
    assert verdict.confidence is not None
    assert verdict.confidence.method == "welch"
    assert verdict.confidence.word == "tie", "across rounds the drift hides an 18 % difference"
    assert chosen(verdict) == "to-thread"


def test_a_round_the_runner_up_won_makes_the_win_likely_not_clear() -> None:
    verdict = only(decide([
        measured("to-thread", 8, [120.0, 121.0, 119.0, 122.0, 98.0], pool=6),
        measured("process-pool", 8, [100.0, 100.0, 100.0, 100.0, 100.0], pool=2),
    ], 10, SEMANTICS))
    assert chosen(verdict) == "to-thread"
    assert verdict.confidence is not None
    assert (verdict.confidence.rounds, verdict.confidence.rounds_agreeing) == (5, 4)
    assert verdict.confidence.word == "likely"


def test_without_units_ties_are_a_fixed_five_percent_and_said_so() -> None:
    verdict = only(decide([
        cell("to-thread", 8, 590, 1, pool=6),
        cell("default-executor", 8, 600, 1, pool=6),
        cell("process-pool", 8, 500, 1, pool=2),
    ], 10, SEMANTICS))
    assert chosen(verdict) == "to-thread"
    assert verdict.tied == ["to-thread", "default-executor"]
    assert any("fewer than two units" in line and "ties are a fixed 5%" in line for line in verdict.details)
    loser = judged(verdict, "default-executor")
    assert loser.judgement == "tie"
    assert "as fast as to-thread within a fixed 5% (600 vs 590 ops/s at c=8 on asyncio)" in loser.reason
    assert judged(verdict, "process-pool").judgement == "slower"


# Tie-breaks by semantics.


def test_a_tie_goes_to_what_offbench_check_found_keeps_context_not_to_a_name() -> None:
    rounds = [100.0, 104.0, 97.0, 102.0]
    cells = [measured("default-executor", 8, rounds, pool=6),
             measured("to-thread", 8, [r * 0.99 for r in rounds[::-1]], pool=6)]
    assert only(decide(cells, 10, SEMANTICS)).tied == ["to-thread", "default-executor"]
    swapped = [
        findings("default-executor", "thread", context=True, reuse=True, python_parallel=1.0),
        findings("to-thread", "thread", context=False, reuse=True, python_parallel=1.0),
    ]
    verdict = only(decide(cells, 10, swapped))
    assert chosen(verdict) == "default-executor"


def test_without_semantics_registered_facts_break_the_tie_and_the_verdict_says_so() -> None:
    rounds = [100.0, 104.0, 97.0, 102.0]
    verdict = only(decide([
        measured("executor-per-call", 8, [r * 1.01 for r in rounds]),
        measured("process-pool", 8, [r * 1.005 for r in rounds[::-1]], pool=2),
        measured("default-executor", 8, rounds, pool=6),
    ], 10))
    assert chosen(verdict) == "default-executor"
    assert "chosen by registered facts: reuses its threads" in verdict.text
    assert any("registered facts" in line for line in verdict.details)
    assert "creates a worker per call" in judged(verdict, "executor-per-call").reason


def test_a_process_pool_tied_with_threads_loses_the_tie_and_wins_only_beyond_noise() -> None:
    rounds = [100.0, 104.0, 97.0, 102.0, 99.0]
    tie = only(decide([
        measured("to-thread", 8, rounds, pool=6),
        measured("process-pool", 8, [r * f for r, f in zip(rounds, [1.1, 0.95, 1.08, 0.97, 1.04],
                                                           strict=True)], pool=2),
    ], 10, SEMANTICS))
    assert chosen(tie) == "to-thread"
    assert "process-pool pickles arguments to another process and loses context variables" in judged(
        tie, "process-pool").reason
    win = only(decide([
        measured("to-thread", 8, rounds, pool=6),
        measured("process-pool", 8, [r * f for r, f in zip(rounds, [1.3, 1.25, 1.32, 1.28, 1.3],
                                                           strict=True)], pool=2),
    ], 10, SEMANTICS))
    assert chosen(win) == "process-pool"


def test_direct_within_budget_and_tied_needs_no_offload() -> None:
    verdict = only(decide([
        measured("direct", 1, [1000.0, 1010.0, 990.0], 0.3),
        measured("to-thread", 1, [995.0, 1012.0, 985.0], 0.2, pool=6),
    ], 10, SEMANTICS))
    assert chosen(verdict) == "direct"
    assert "runs on the loop: nothing to offload" in verdict.text


def test_executor_per_call_is_recommended_only_when_it_alone_meets_the_budget() -> None:
    faster = only(decide([
        measured("to-thread", 8, [600.0, 590.0, 610.0], 1.0, pool=6),
        measured("executor-per-call", 8, [800.0, 790.0, 805.0], 1.0),
    ], 10, SEMANTICS))
    assert chosen(faster) == "to-thread"
    per_call = judged(faster, "executor-per-call")
    assert per_call.judgement == "semantics"
    assert "creates a worker per call" in per_call.reason
    line = next(line for line in faster.details if line.startswith("executor-per-call "))
    assert line.startswith("executor-per-call is 33% faster than to-thread at c=8 on asyncio (+31% to +36%),"
                           " but creates a worker per call: to-thread stands, reusing its threads and keeping"
                           " context variables, which executor-per-call loses")
    alone = only(decide([
        measured("to-thread", 8, [600.0, 590.0, 610.0], 40.0, pool=6),
        measured("executor-per-call", 8, [800.0, 790.0, 805.0], 1.0),
    ], 10, SEMANTICS))
    assert chosen(alone) == "executor-per-call"
    assert "the only strategy within the budget here, and it creates a worker per call" in alone.text
    assert "reuse a pool of 8 instead" in alone.text
    assert word(alone) == "alone"


# The fix, measured and named.


def test_a_pool_sized_to_the_concurrency_measured_faster_is_the_fix_with_its_code_and_cost() -> None:
    verdict = only(decide(sleep_run(), 10, SEMANTICS))
    assert verdict.winner is not None
    assert (verdict.winner.strategy, verdict.winner.max_workers) == ("to-thread", 8)
    assert verdict.text.startswith("use to-thread with a default executor of 8 threads: ")
    assert "; 2 more threads than the default 6, +32% at c=8 (+31% to +34%)" in verdict.text
    assert verdict.fix == "loop.set_default_executor(ThreadPoolExecutor(max_workers=8))"
    assert "executor-per-call" not in verdict.tied
    assert verdict.tied[0] == "to-thread (8)"
    cost = next(line for line in verdict.details if line.startswith("the fix: "))
    assert "8 threads instead of the default 6, 2 more threads" in cost
    assert "bounded-to-thread(8)" in cost
    default = judged(verdict, "to-thread")
    assert default.judgement == "capped"
    assert "capped at 6 threads, the default executor's size" in default.reason
    assert judged(verdict, "executor-per-call").judgement == "tie"
    assert "executor-per-call creates a worker per call and loses context variables" in judged(
        verdict, "executor-per-call").reason
    assert judged(verdict, "process-pool").judgement == "capped"
    assert "capped at 2 processes, the pool's size" in judged(verdict, "process-pool").reason
    assert judged(verdict, "direct").judgement == "blocked"
    assert verdict.confidence is not None
    assert verdict.confidence.word == "clear", "as fast as executor-per-call, which was never in the running"
    assert verdict.confidence.against in ("to-thread", "default-executor")
    assert (verdict.confidence.low_pct or 0) > 25
    assert any(line.startswith("executor-per-call is as fast as to-thread (8) at c=8 on asyncio")
               for line in verdict.details)


def test_a_capped_pool_without_the_sized_one_measured_names_the_fix_as_unmeasured() -> None:
    verdict = only(decide(sleep_run(sized=False), 10, SEMANTICS))
    assert verdict.winner is not None
    assert (verdict.winner.strategy, verdict.winner.max_workers) == ("to-thread", None)
    assert "capped at 6 threads, the default executor's size" in verdict.text
    assert "capped at 6 threads, the default executor's size: 8 threads should lift it (not measured" \
        in verdict.text
    assert verdict.fix == "loop.set_default_executor(ThreadPoolExecutor(max_workers=8))"
    assert any(f"{verdict.fix} should lift it; run with --sized-pools" in line for line in verdict.details)
    per_call = judged(verdict, "executor-per-call")
    assert per_call.judgement == "semantics"
    assert "the gap is to-thread's pool" in per_call.reason


def test_a_sized_pool_no_faster_than_the_default_is_not_recommended() -> None:
    rounds = [200.0, 204.0, 197.0, 202.0]
    verdict = only(decide([
        measured("to-thread", 1, [100.0, 103.0, 98.0, 101.0], pool=6),
        measured("to-thread", 8, rounds, pool=6),
        measured("to-thread", 8, [r * 1.004 for r in rounds[::-1]], max_workers=8, pool=8),
    ], 10, SEMANTICS))
    assert verdict.winner is not None
    assert (verdict.winner.strategy, verdict.winner.max_workers) == ("to-thread", None)
    assert verdict.fix is None
    assert "the library's default size" in verdict.text
    assert judged(verdict, "to-thread", 8).judgement == "tie"


def test_a_capped_strategy_names_whose_default_caps_it() -> None:
    verdict = only(decide([
        cell("anyio-thread", 1, 100, 1.1, pool=40),
        cell("anyio-thread", 64, 4000, 1.1, pool=40),
        cell("bounded-to-thread", 1, 100, 1.2, max_workers=64, pool=64),
        cell("bounded-to-thread", 64, 6000, 1.3, max_workers=64, pool=64),
    ], 10, SEMANTICS))
    assert chosen(verdict) == "bounded-to-thread"
    anyio = judged(verdict, "anyio-thread")
    assert anyio.judgement == "capped"
    assert "capped at 40 threads, anyio's default limiter's size" in anyio.reason
    assert "4,000 vs 6,000 ops/s at c=64 on asyncio" in anyio.reason


def test_an_explicit_pool_size_and_a_process_pool_are_the_pools_size() -> None:
    verdict = only(decide([
        cell("to-thread", 1, 100, 1, max_workers=4, pool=4),
        cell("to-thread", 8, 400, 1, max_workers=4, pool=4),
        cell("process-pool", 1, 90, 1, pool=2),
        cell("process-pool", 8, 190, 1, pool=2),
        cell("bounded-to-thread", 1, 100, 1, max_workers=8, pool=8),
        cell("bounded-to-thread", 8, 790, 1, max_workers=8, pool=8),
    ], 10, SEMANTICS))
    sized = judged(verdict, "to-thread", 4)
    assert "capped at 4 threads, the pool's size" in sized.reason
    assert "capped at 2 processes, the pool's size" in judged(verdict, "process-pool").reason
    assert verdict.fix == "bounded-to-thread(8)"
    assert verdict.text == "use bounded-to-thread (8): 790 ops/s at c=8 (asyncio), loop lag p99 ≤ 1.00 ms"
    assert "the fix: bounded-to-thread(8): a pool of 8 threads; each reserves a stack" in verdict.details[1]


def test_a_pool_that_stops_scaling_below_its_size_is_slower_not_capped() -> None:
    verdict = only(decide([
        cell("to-thread", 1, 100, 1, pool=6),
        cell("to-thread", 8, 200, 1, pool=6),
        cell("bounded-to-thread", 1, 100, 1, max_workers=8, pool=8),
        cell("bounded-to-thread", 8, 800, 1, max_workers=8, pool=8),
    ], 10, SEMANTICS))
    thread = judged(verdict, "to-thread")
    assert thread.judgement == "slower"
    assert "75% slower than bounded-to-thread (8) (200 vs 800 ops/s at c=8 on asyncio)" in thread.reason


def test_calls_queueing_above_the_pool_size_are_capped_even_off_the_plateau() -> None:
    verdict = only(decide([
        measured("to-thread", 1, [100.0, 101.0, 99.0], pool=6, breakdown=split(0.01, 10.0, 0.05)),
        measured("to-thread", 8, [400.0, 404.0, 398.0], pool=6, breakdown=split(5.0, 10.0, 0.05)),
        measured("to-thread", 8, [780.0, 785.0, 776.0], max_workers=8, pool=8),
    ], 10, SEMANTICS))
    capped = judged(verdict, "to-thread")
    assert capped.judgement == "capped"
    assert "calls wait 5.00 ms p50 for a thread" in capped.reason


# Per loop and per concurrency.


def test_loops_that_disagree_get_a_verdict_each() -> None:
    verdict = only(decide([
        measured("to-thread", 8, [600.0, 605.0, 598.0], 1.0, "asyncio", pool=6),
        measured("process-pool", 8, [400.0, 398.0, 402.0], 1.0, "asyncio", pool=2),
        measured("to-thread", 8, [600.0, 605.0, 598.0], 30.0, "uvloop", pool=6),
        measured("process-pool", 8, [400.0, 398.0, 402.0], 1.0, "uvloop", pool=2),
    ], 10, SEMANTICS))
    assert verdict.text.startswith("use to-thread on asyncio; process-pool on uvloop: ")
    assert chosen(verdict) == "to-thread"
    assert judged(verdict, "process-pool").judgement == "partial"
    assert "c=8 on uvloop: process-pool" in verdict.details


def test_loops_that_agree_within_noise_get_one_verdict() -> None:
    verdict = only(decide([
        measured("to-thread", 8, [600.0, 605.0, 598.0], 1.0, "asyncio", pool=6),
        measured("default-executor", 8, [590.0, 610.0, 601.0], 1.0, "asyncio", pool=6),
        measured("to-thread", 8, [700.0, 690.0, 704.0], 1.0, "uvloop", pool=6),
        measured("default-executor", 8, [703.0, 695.0, 701.0], 1.0, "uvloop", pool=6),
    ], 10, SEMANTICS))
    assert verdict.text.startswith("use to-thread: 698 ops/s at c=8 (uvloop)")


def test_a_choice_that_changes_with_load_is_given_per_concurrency() -> None:
    verdict = only(decide([
        measured("to-thread", 1, [100.0, 101.0, 99.0], 1.0, pool=6),
        measured("to-thread", 4, [180.0, 182.0, 179.0], 4.0, pool=6),
        measured("to-thread", 8, [190.0, 192.0, 189.0], 45.0, pool=6),
        measured("process-pool", 1, [80.0, 81.0, 79.0], 1.0, pool=2),
        measured("process-pool", 4, [150.0, 152.0, 149.0], 1.0, pool=2),
        measured("process-pool", 8, [155.0, 157.0, 154.0], 1.0, pool=2),
    ], 10, SEMANTICS))
    assert verdict.text.startswith("use to-thread up to c=4, then process-pool: 155 ops/s at c=8 (asyncio)")
    assert chosen(verdict) == "process-pool"
    assert judged(verdict, "to-thread").judgement == "partial"
    assert judged(verdict, "to-thread").reason == "the choice at c=1–4"


def test_where_nothing_qualifies_the_plan_says_so() -> None:
    verdict = only(decide([
        measured("to-thread", 1, [100.0, 101.0, 99.0], 1.0, pool=6),
        measured("to-thread", 8, [190.0, 192.0, 189.0], 45.0, pool=6),
    ], 10, SEMANTICS))
    assert verdict.text.startswith("use to-thread at c=1 (nothing within the 10 ms budget at c=8): ")


# Lag near the budget.


def test_a_lag_p99_near_the_budget_and_above_anothers_within_it_does_not_qualify() -> None:
    near = measured("to-thread", 8, [600.0, 605.0, 598.0, 603.0], [6.0, 14.0, 7.0, 13.0], pool=6)
    verdict = only(decide([near, measured("process-pool", 8, [300.0, 301.0, 299.0, 300.0], 3.0, pool=2)],
                          10, SEMANTICS))
    assert chosen(verdict) == "process-pool"
    thread = judged(verdict, "to-thread")
    assert thread.judgement == "lag"
    assert "near the 10 ms budget" in thread.reason
    assert "higher beyond noise than that of others within it" in thread.reason
    alone = only(decide([near, measured("process-pool", 8, [300.0, 301.0, 299.0, 300.0], 40.0, pool=2)],
                        10, SEMANTICS))
    assert chosen(alone) == "to-thread"
    assert any("nothing clearly within the 10 ms budget" in line for line in alone.details)


def test_two_strategies_on_one_pool_hovering_at_the_budget_tie_whichever_fell_under_it() -> None:
    # to-thread and default-executor share the default executor: their p99s hover at the budget
    # together (numpy at c=8 here, 2026-12-01: 6.8/12.5/5.9 and 5.6/9.4/9.5 ms by unit). Which fell
    # under 10 ms is the run's luck; semantics, not luck, picks between them.
    rates = [540.0, 545.0, 538.0]
    verdict = only(decide([
        measured("to-thread", 8, rates, [11.0, 12.5, 8.0], pool=6),
        measured("default-executor", 8, rates, [5.6, 9.4, 9.5], pool=6),
    ], 10, SEMANTICS))
    assert chosen(verdict) == "to-thread"
    assert verdict.tied == ["to-thread", "default-executor"]
    assert "(within noise of the 10 ms budget)" in verdict.text
    swapped = only(decide([
        measured("to-thread", 8, rates, [5.6, 9.4, 9.5], pool=6),
        measured("default-executor", 8, rates, [11.0, 12.5, 8.0], pool=6),
    ], 10, SEMANTICS))
    assert chosen(swapped) == "to-thread"
    assert "within noise" not in swapped.text


def test_a_lag_whose_every_unit_is_within_the_budget_is_within() -> None:
    verdict = only(decide([
        measured("to-thread", 8, [600.0, 605.0, 598.0], [6.0, 9.5, 8.0], pool=6),
        measured("process-pool", 8, [300.0, 301.0, 299.0], 1.0, pool=2),
    ], 10, SEMANTICS))
    assert chosen(verdict) == "to-thread"


@pytest.mark.parametrize("lags", [[6.0, 14.0, 7.0, 13.0], [9.0, 9.5, 30.0], [2.0, 11.0], [10.0] * 5])
def test_the_lag_interval_from_the_units_tails_is_the_bootstrap_of_the_whole_units(lags: list[float]) -> None:
    def lag_p99_interval(units: list[Unit]) -> tuple[float, float]:
        whole = [pairs for pairs in (precision.unit_lags(u) for u in units) if pairs]
        return cluster_bootstrap(whole, lambda pooled: weighted_percentile(pooled, 99))

    units = measured("to-thread", 8, [100.0] * len(lags), lags).units
    assert lag_p99_interval(units) == precision.lag_p99_interval(units)
    # Spread lags, hundreds of distinct values per unit, as a real probe records them.
    spread = [msgspec.structs.replace(u, lag_histogram=histogram.encode(
        (i * 37 % 1009) / 100 * (1 + n / 3) for i in range(700 + 50 * n))) for n, u in enumerate(units)]
    assert lag_p99_interval(spread) == precision.lag_p99_interval(spread)


# Reasons that match the evidence.


def test_holds_the_gil_only_where_no_thread_strategy_speeds_the_work_up() -> None:
    # BLAS-like work: to-thread scales, so executor-per-call's lag is not the GIL.
    rows = [
        measured("to-thread", 1, [100.0, 101.0, 99.0], 1.0, pool=6),
        measured("to-thread", 8, [190.0, 192.0, 189.0], 3.0, pool=6),
        measured("executor-per-call", 1, [90.0, 91.0, 89.0], 12.0, blocked=0.2),
        measured("executor-per-call", 8, [95.0, 96.0, 94.0], 40.0, blocked=0.3),
    ]
    lagging = judged(only(decide(rows, 10, SEMANTICS)), "executor-per-call")
    assert lagging.judgement == "lag"
    assert "GIL" not in lagging.reason
    # The same executor-per-call, its stalls sampled in Thread.start(): the reason names it.
    stalled = [*rows[:3], msgspec.structs.replace(rows[3], stall_evidence=[in_thread_start()] * 3)]
    starting = judged(only(decide(stalled, 10, SEMANTICS)), "executor-per-call")
    assert starting.judgement == "startup"
    assert "starts a thread per call on the loop" in starting.reason
    assert "3 of 3 stalls sampled were in Thread.start()" in starting.reason


def test_threads_running_python_in_parallel_are_never_said_to_hold_the_gil() -> None:
    rows = [
        cell("to-thread", 1, 100, 50, pool=6),
        cell("to-thread", 8, 102, 59, pool=6),
        cell("process-pool", 1, 90, 2, pool=2),
    ]
    held = judged(only(decide(rows, 10, SEMANTICS)), "to-thread")
    assert held.judgement == "gil"
    assert "offbench check: two pure-Python calls at once 1.01×" in held.reason
    free = [findings("to-thread", "thread", context=True, reuse=True, python_parallel=1.9)]
    assert judged(only(decide(rows, 10, free)), "to-thread").judgement == "lag"


def test_a_process_pool_losing_to_pickling_and_ipc_is_shipping() -> None:
    verdict = only(decide([
        measured("to-thread", 1, [900.0, 905.0, 898.0], pool=6),
        measured("process-pool", 1, [300.0, 302.0, 299.0], pool=2, breakdown=split(1.4, 1.0, 0.9)),
    ], 10, SEMANTICS))
    pool = judged(verdict, "process-pool")
    assert pool.judgement == "shipping"
    assert "2.30 of each call's 3.30 ms p50 is reaching a process and back (pickling, IPC)" in pool.reason


def test_a_process_pool_slower_for_its_work_is_just_slower() -> None:
    verdict = only(decide([
        measured("to-thread", 1, [900.0, 905.0, 898.0], pool=6),
        measured("process-pool", 1, [300.0, 302.0, 299.0], pool=2, breakdown=split(0.1, 3.0, 0.1)),
    ], 10, SEMANTICS))
    assert judged(verdict, "process-pool").judgement == "slower"


def test_a_per_call_pool_slower_for_starting_threads_is_startup() -> None:
    verdict = only(decide([
        measured("to-thread", 1, [900.0, 905.0, 898.0], pool=6),
        measured("executor-per-call", 1, [500.0, 502.0, 499.0], breakdown=split(0.8, 1.0, 0.3)),
    ], 10, SEMANTICS))
    per_call = judged(verdict, "executor-per-call")
    assert per_call.judgement == "startup"
    assert "creates a worker per call (1.10 of each call's 2.10 ms p50 is getting there)" in per_call.reason


def test_warnings_come_from_the_winners_semantics() -> None:
    verdict = only(decide(sleep_run(), 10, SEMANTICS))
    assert verdict.warnings == []
    per_call = only(decide([measured("executor-per-call", 1, [100.0, 101.0, 99.0])], 10, SEMANTICS))
    assert any("context variables" in w for w in per_call.warnings)


# How the verdict words it: faster is never "as fast", the fix is said once, how sure comes first.


def per_call_beside_a_tie() -> list[CellResult]:
    """to-thread and default-executor tie (1.5 % apart: beyond noise, under the minimum effect);
    executor-per-call is within 2 % of default-executor, the fastest, yet 3 % faster than to-thread."""
    rounds = [100.0, 104.0, 97.0, 102.0, 99.0]
    return [
        measured("to-thread", 8, rounds, pool=6),
        measured("default-executor", 8, [r * 1.015 for r in rounds], pool=6),
        measured("executor-per-call", 8, [r * f for r, f in zip(rounds, [1.03, 1.035, 1.032, 1.034, 1.033],
                                                                strict=True)]),
    ]


def test_a_per_call_strategy_faster_than_the_choice_beyond_noise_is_said_to_be_faster() -> None:
    verdict = only(decide(per_call_beside_a_tie(), 10, SEMANTICS))
    assert chosen(verdict) == "to-thread"
    assert verdict.tied == ["to-thread", "default-executor"]
    line = next(line for line in verdict.details if line.startswith("executor-per-call "))
    assert line.startswith("executor-per-call is 3% faster than to-thread at c=8 on asyncio (+3% to +4%),"
                           " but creates a worker per call: to-thread stands, reusing its threads and keeping"
                           " context variables, which executor-per-call loses; a strategy that creates a"
                           " worker per call is chosen only where it alone is within the budget")
    per_call = judged(verdict, "executor-per-call")
    assert per_call.judgement == "semantics", "faster beyond noise is no tie"
    assert per_call.reason.startswith("+3% against to-thread at c=8 on asyncio (+3% to +4%), but it"
                                      " creates a worker per call: to-thread reuses its pool")
    for said in (line, per_call.reason):
        assert "as fast" not in said
        assert "within noise" not in said


def test_a_per_call_strategy_faster_without_units_is_faster_beyond_the_fixed_tolerance() -> None:
    verdict = only(decide([cell("direct", 8, 600, 1), cell("executor-per-call", 8, 700, 1)], 10, SEMANTICS))
    assert chosen(verdict) == "direct"
    assert ("executor-per-call is 17% faster than direct at c=8 on asyncio (beyond a fixed 5%), but creates a"
            " worker per call: direct stands, running on the loop and keeping context variables") \
        in verdict.details[1]


def test_a_per_call_strategy_within_noise_of_the_choice_is_as_fast() -> None:
    verdict = only(decide(sleep_run(), 10, SEMANTICS))
    line = next(line for line in verdict.details if line.startswith("executor-per-call "))
    assert line.startswith("executor-per-call is as fast as to-thread (8) at c=8 on asyncio (−1% to +0.8%)")
    assert judged(verdict, "executor-per-call").judgement == "tie"


def test_a_per_call_strategy_the_rules_make_win_says_why() -> None:
    cells = [msgspec.structs.replace(c, loop_lag_ms=_lag(40.0)) if c.strategy != "executor-per-call" else c
             for c in per_call_beside_a_tie()]
    verdict = only(decide(cells, 10, SEMANTICS))
    assert chosen(verdict) == "executor-per-call"
    assert verdict.text.endswith("; the only strategy within the budget here, and it creates a worker"
                                 " per call: reuse a pool of 8 instead (to-thread with --max-workers 8"
                                 " measures one)")
    assert verdict.details[0] == ("at c=8 on asyncio: executor-per-call was the only strategy within"
                                  " the budget")


@pytest.mark.parametrize("rows", [
    sleep_run(),
    sleep_run(sized=False),
    [cell("bounded-to-thread", 1, 100, 1, max_workers=8, pool=8),
     cell("bounded-to-thread", 8, 790, 1, max_workers=8, pool=8),
     cell("process-pool", 8, 190, 1, pool=2)],
], ids=["sized-default-executor", "capped-default-executor", "sized-own-pool"])
def test_the_fix_is_said_once_in_the_details_not_in_the_headline(rows: list[CellResult]) -> None:
    verdict = only(decide(rows, 10, SEMANTICS))
    assert verdict.fix is not None
    assert verdict.fix not in verdict.text
    assert "\n".join(verdict.details).count(verdict.fix) == 1


@pytest.mark.parametrize("rows", [
    sleep_run(),
    sleep_run(sized=False),
    per_call_beside_a_tie(),
    [measured("to-thread", 8, [600.0, 605.0, 598.0], 1.0, "asyncio", pool=6),
     measured("process-pool", 8, [400.0, 398.0, 402.0], 1.0, "asyncio", pool=2),
     measured("to-thread", 8, [600.0, 605.0, 598.0], 30.0, "uvloop", pool=6),
     measured("process-pool", 8, [400.0, 398.0, 402.0], 1.0, "uvloop", pool=2)],
    [measured("to-thread", 8, [600.0, 605.0, 598.0, 603.0], [6.0, 14.0, 7.0, 13.0], pool=6),
     measured("process-pool", 8, [300.0, 301.0, 299.0, 300.0], 40.0, pool=2)],
    [cell("to-thread", 8, 590, 1, pool=6), cell("default-executor", 8, 600, 1, pool=6)],
], ids=["fix", "capped", "per-call", "per-loop", "near", "no-units"])
def test_how_sure_the_choice_is_comes_first_among_the_details(rows: list[CellResult]) -> None:
    verdict = only(decide(rows, 10, SEMANTICS))
    assert verdict.winner is not None
    assert verdict.confidence is not None
    c = verdict.confidence
    first = verdict.details[0]
    assert first.startswith(f"at c={c.concurrency} on {c.loop}: ")
    assert verdict.tied[0] in first
    assert len(verdict.details) > 1, "the case has more to say than how sure"
    assert not any(line.startswith(f"at c={c.concurrency} on {c.loop}: ") for line in verdict.details[1:])


def test_a_full_pool_is_named_by_what_it_holds() -> None:
    from offbench.judge.wording import full_words
    threads = full_words("to-thread", (6, 5.9, 1), 8)
    assert threads == "the default pool of 6 threads is full at c=8 (5.9× c=1)"
    processes = full_words("process-pool", (2, 1.9, 1), 8)
    assert processes == "the default pool of 2 processes is full at c=8 (1.9× c=1)"


def test_a_lag_p99_under_the_budget_qualifies_though_its_interval_reaches_over_it() -> None:
    # A pool of 8 threads for numpy at c=8 read a p99 of 8.57 ms (interval 7.29-11.3) beside the
    # default pool's 5 ms, and left the tie for its interval in 1 of 5 default runs (2026-12-02).
    # Under the budget is under it as far as the run can tell: it qualifies, and, as fast, ties.
    rates = [600.0, 605.0, 598.0, 603.0]
    near = measured("to-thread", 8, rates, [6.0, 11.0, 7.0, 9.0], max_workers=8, pool=8)
    within = measured("default-executor", 8, rates, 5.0, pool=6)
    seen = judged_cell(near, precision.unit_values(near), 10.0)
    assert seen.zone == "near"
    assert seen.lag <= 10.0
    assert seen.lag_range is not None
    assert seen.lag_range[0] > 5.0  # higher than the pool within the budget, beyond noise
    verdict = only(decide([near, within], 10, SEMANTICS))
    assert judged(verdict, "to-thread", 8).judgement != "lag"
    assert "to-thread (8)" in verdict.tied, (verdict.tied, verdict.text)
