"""Per-call breakdown of offloaded calls: queue wait, run, hop back (:mod:`offbench.measure.breakdown`).

Real cells with physics margins: timings are noisy on a shared 2-core machine, so
each bound is one the mechanism guarantees with room to spare.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import pickle
import time

import msgspec
import pytest
from rich.console import Console

from offbench import strategies
from offbench.measure import breakdown, calls, worker
from offbench.measure.wire import Measurement
from offbench.model.cells import CellSpec
from offbench.model.params import Params
from offbench.model.results import Breakdown, CellResult, Quantiles
from offbench.render import markdown
from offbench.render import terminal as report
from offbench.run.aggregate import cell_result, unit
from offbench.stats import percentile
from tests.builders import cell, run_of
from tests.cells import measure

SLEEP_MS = 20.0
SLEEP: Params = {"duration_ms": SLEEP_MS}


def parts(result: CellResult) -> Breakdown:
    assert result.breakdown_ms is not None, f"{result.strategy}: no breakdown"
    return result.breakdown_ms


@pytest.mark.workers
def test_to_thread_queues_beyond_the_default_executor_and_executor_per_call_does_not() -> None:
    # 2-3x the default executor's threads: most calls wait for one to come free.
    concurrency = int(2.5 * strategies.default_executor_workers())
    shared = parts(measure("to-thread", concurrency=concurrency, params=SLEEP))
    # A call waits for about (concurrency / threads - 1) sleeps: 1.5 x 20 ms on average.
    assert shared.queue_wait.p50 > 10, shared
    assert 15 < shared.run.p50 < 40, shared
    own = parts(measure("executor-per-call", concurrency=concurrency, params=SLEEP))
    # No pool to wait for: only a thread's start (and, at p99, the noise of a busy machine),
    # well under the half a sleep that even the shortest queue in to-thread costs. A start waits
    # for a CPU: p50 2.2 ms with another program and another test busy (2026-12-02).
    assert own.queue_wait.p50 < SLEEP_MS / 4, own
    assert own.queue_wait.p99 < SLEEP_MS / 2, own
    assert 15 < own.run.p50 < 40, own


@pytest.mark.workers
def test_hop_back_is_near_zero_on_an_idle_loop() -> None:
    alone = parts(measure("to-thread", concurrency=1, params=SLEEP))
    assert alone.hop_back.p50 < 2, alone
    assert alone.queue_wait.p50 < 2, alone
    assert 15 < alone.run.p50 < 40, alone


HOG_BLOCK_S = 0.01


async def _hog_the_loop() -> None:
    """Keep the loop busy in 10 ms blocks, yielding to it only between them."""
    while True:
        time.sleep(HOG_BLOCK_S)
        await asyncio.sleep(0)


def _hop_backs(busy: bool) -> list[float]:
    """Run a short to-thread window of 5 ms sleeps in this process; return each call's hop back (ms)."""
    spec = CellSpec(workload="sleep", params={}, strategy="to-thread", loop="asyncio", concurrency=1,
                    duration_s=0.4, warmup_s=0.05, probe_interval_ms=1.0, stall_threshold_ms=10.0,
                    evidence_threshold_ms=0)

    async def main() -> list[float]:
        strategy = strategies.get("to-thread").from_cell(spec)
        await strategy.start(calls.Timed(functools.partial(time.sleep, 0.005)), lambda: None)
        hog = asyncio.create_task(_hog_the_loop()) if busy else None
        try:
            window = await worker._run_window(spec, strategy, timed=True)
        finally:
            if hog is not None:
                hog.cancel()
            await strategy.stop()
        assert window.stamps
        return [breakdown.split(*stamps)[2] for stamps in window.stamps]

    return asyncio.run(main())


def test_hop_back_grows_when_the_loop_is_busy() -> None:
    # A call that finishes while the loop runs a 10 ms block waits for the block's end:
    # on average half a block, since the loop is busy almost all the time.
    idle = sorted(_hop_backs(busy=False))
    busy = sorted(_hop_backs(busy=True))
    assert percentile(busy, 50) > 2.5, busy
    assert percentile(busy, 50) > 3 * percentile(idle, 50) + 1, (idle, busy)
    assert busy[-1] <= HOG_BLOCK_S * 1000 * 3, busy


@pytest.mark.workers
def test_direct_has_no_breakdown() -> None:
    assert measure("direct", params={"duration_ms": 1.0}).breakdown_ms is None


@pytest.mark.workers
def test_process_pool_splits_across_processes() -> None:
    # perf_counter_ns is CLOCK_MONOTONIC on Linux: the pool process's stamps compare.
    split = parts(measure("process-pool", concurrency=1, params=SLEEP, max_workers=1))
    assert 15 < split.run.p50 < 40, split
    assert 0 <= split.queue_wait.p50 < 10, split
    assert 0 <= split.hop_back.p50 < 10, split


def test_a_remote_dask_scheduler_gets_no_breakdown() -> None:
    dask = strategies.get("dask")
    assert dask(scheduler="tcp://elsewhere:8786").same_clock is False  # type: ignore[call-arg]
    assert dask().same_clock is True


def test_timed_pickles_and_keeps_context_and_exceptions() -> None:
    copy = pickle.loads(pickle.dumps(calls.Timed(list)))
    assert isinstance(copy, calls.Timed)
    assert copy.fn is list
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="outer")
    context = contextvars.copy_context()
    context.run(var.set, "inner")
    result, started, finished = context.run(calls.Timed(var.get))
    assert result == "inner"
    assert started <= finished

    class Boom(Exception):
        pass

    def fails() -> None:
        raise Boom("unchanged")

    with pytest.raises(Boom, match="unchanged"):
        calls.Timed(fails)()


def test_breakdown_pools_processes_and_skips_unsplit_ones() -> None:
    cell = CellSpec(
        workload="sleep", params=SLEEP, strategy="to-thread", loop="asyncio", concurrency=1,
        duration_s=1.0, warmup_s=0.1, probe_interval_ms=1.0, stall_threshold_ms=10.0,
    )

    def raw(splits: list[tuple[float, float, float]] | None) -> Measurement:
        return Measurement(
            elapsed_s=1.0, throughput_ops_s=1.0, latencies_ms=[1.0], splits_ms=splits, lags_ms=[0.1],
            lag_samples_raw=1, stalled_s=0.0, blocked_s=0.0, startup_s=0.0, loop_version="",
            details={}, worker_pid=1,
        )

    def pooled_of(*found: Measurement) -> CellResult:
        units = [unit(m, i, float(i), None) for i, m in enumerate(found)]
        return cell_result(cell, list(found), units, [1.0] * len(found), "fixed")

    pooled = pooled_of(raw([(1.0, 20.0, 0.1)]), raw([(3.0, 20.0, 0.3)])).breakdown_ms
    assert pooled is not None
    assert (pooled.queue_wait.p50, pooled.run.p50, pooled.run.p99) == (2.0, 20.0, 20.0)
    assert pooled.queue_wait.p99 == pytest.approx(2.98)
    assert pooled.hop_back.p50 == pytest.approx(0.2)
    assert pooled.hop_back.p99 == pytest.approx(0.298)
    assert pooled_of(raw(None)).breakdown_ms is None


def test_results_without_the_field_load() -> None:
    old = {"workload": "sleep", "params": {}, "strategy": "to-thread", "loop": "asyncio",
           "concurrency": 1, "status": "ok"}
    assert msgspec.json.decode(msgspec.json.encode(old), type=CellResult).breakdown_ms is None


def test_tables_show_where_the_time_goes_for_offloaded_cells_only() -> None:
    split = Breakdown(queue_wait=Quantiles(p50=31.2, p99=34.1), run=Quantiles(p50=20.1, p99=20.3),
                      hop_back=Quantiles(p50=0.1, p99=2.7))
    run = run_of(cell("direct"), msgspec.structs.replace(cell("to-thread"), breakdown_ms=split))
    text = markdown.run(run)
    assert "| strategy | loop | conc | wait p50 | wait p99 | run p50 | run p99 | hop p50 | hop p99 |" in text
    (row,) = [line for line in text.splitlines() if line.startswith("| to-thread | asyncio | 1 | 31.2")]
    assert "| 20.1 |" in row
    assert "| direct | asyncio | 1 | –" not in text
    console = Console(width=120, record=True)
    report.print_run(run, console, charts=False)
    assert "where the time goes" in console.export_text()
    assert report.breakdown_table(run_of(cell("direct")), "sleep") is None
