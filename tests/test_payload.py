"""``--payload-bytes`` on cells, and the pool-cost table of a run (:mod:`offbench.run.poolcost`).

The cost of shipping arguments is physics: a process pool pickles the payload and
sends it through a pipe on every call, a thread pool passes a reference. The margins
below are what that difference guarantees on a busy machine, never absolute speeds.
"""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import msgspec
import pytest
from rich.console import Console

from offbench.errors import UsageError
from offbench.model.results import (
    Breakdown,
    CallCost,
    Durations,
    PoolCost,
    Quantiles,
    RunResult,
    decode,
    encode,
)
from offbench.plan import matrix, settings
from offbench.plan.settings import Choices
from offbench.render import html as html_report
from offbench.render import markdown
from offbench.render import terminal as report
from offbench.run import poolcost, runner
from tests.builders import cell, run_of
from tests.cells import measure
from tests.run_cli import offbench

NO_OP = {"duration_ms": 0.0}
BIG = 8 << 20


def test_payload_bytes_reach_every_cell_and_default_to_nothing() -> None:
    chosen = settings.build_settings(Choices(payload_bytes=4096, strategies=["to-thread"]))
    assert chosen.payload_bytes == 4096
    assert {c.payload_bytes for c in matrix.cells(chosen)} == {4096}
    assert settings.build_settings(Choices()).payload_bytes == 0


@pytest.mark.parametrize("value", [-1, settings.MAX_PAYLOAD_BYTES + 1])
def test_payload_bytes_out_of_range_are_refused(value: int) -> None:
    with pytest.raises(UsageError, match="payload bytes must be between 0 and"):
        settings.build_settings(Choices(payload_bytes=value))


@pytest.mark.workers
def test_cli_refuses_a_negative_payload_in_one_line() -> None:
    done = offbench("run", "--payload-bytes", "-5", "--dry-run")
    assert done.returncode == 2
    assert "payload bytes must be between 0 and" in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.workers
def test_dry_run_shows_the_payload() -> None:
    done = offbench("run", "-s", "process-pool", "--payload-bytes", "65536", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "64 KiB shipped with every call" in done.stdout


@pytest.mark.workers
def test_a_process_pool_pays_for_the_payload_and_a_thread_does_not() -> None:
    shipped = measure("process-pool", params=NO_OP, payload_bytes=BIG)
    bare = measure("process-pool", params=NO_OP)
    assert shipped.op_latency_ms is not None
    assert bare.op_latency_ms is not None
    # 8 MiB pickled, written to a pipe and unpickled per call: milliseconds, where a bare
    # no-op round trip is a fraction of one.
    assert shipped.op_latency_ms.p50 > bare.op_latency_ms.p50 + 1.0, (shipped, bare)
    # The payload travels before the function starts: it is queue wait, not run time.
    assert shipped.breakdown_ms is not None
    assert bare.breakdown_ms is not None
    assert shipped.breakdown_ms.queue_wait.p50 > bare.breakdown_ms.queue_wait.p50 + 0.5
    threaded = measure("to-thread", params=NO_OP, payload_bytes=BIG)
    assert threaded.op_latency_ms is not None
    assert threaded.op_latency_ms.p50 < shipped.op_latency_ms.p50 / 2, (threaded.op_latency_ms,
                                                                        shipped.op_latency_ms)


def _costed(run: RunResult) -> RunResult:
    noop = CallCost(payload_bytes=0, round_trip_ms=Quantiles(p50=0.21, p99=0.52), pickle_ms=0.0)
    ok = PoolCost(pool="process-pool", start_method="forkserver", workers=2, startup_s=0.2134,
                  calls=[noop,
                         CallCost(payload_bytes=1 << 20, round_trip_ms=Quantiles(p50=1.87, p99=3.1),
                                  pickle_ms=0.42)])
    failed = PoolCost(pool="loky", start_method="", workers=0, startup_s=0.0, calls=[],
                      error="ModuleNotFoundError: No module named 'loky'")
    return msgspec.structs.replace(run, pool_costs=[ok, failed])


def test_pool_costs_render_in_the_terminal_markdown_and_html() -> None:
    run = _costed(run_of(cell("process-pool")))
    console = Console(width=160, record=True)
    report.print_run(run, console, charts=False)
    text = console.export_text()
    assert "what a process pool costs here" in text
    (row,) = [line for line in text.splitlines() if "forkserver" in line]
    for shown in ("213", "0.210 (0.520)", "1.87 (3.10)", "0.420"):
        assert shown in row
    assert "1 MiB call" in text
    assert "error: ModuleNotFoundError" in text
    md = markdown.run(run)
    assert "| process-pool | forkserver | 2 | 213 | 0.210 (0.520) | 1.87 (3.10) | 0.420 |" in md
    page = html_report.render(run)
    assert "What a process pool costs here" in page
    assert "1.87 (3.10)" in page


def test_steady_state_is_the_shipping_share_of_the_runs_own_calls_at_c1() -> None:
    split = Breakdown(queue_wait=Quantiles(p50=0.4, p99=0.9), run=Quantiles(p50=10.0, p99=10.2),
                      hop_back=Quantiles(p50=0.1, p99=0.3))
    shipped = msgspec.structs.replace(cell("process-pool"), breakdown_ms=split,
                                      op_latency_ms=Durations(p50=10.0, p99=11.0, max=12.0))
    run = _costed(run_of(shipped, cell("to-thread")))
    (line,) = report.steady_state_lines(run)
    assert line == ("steady state, process-pool at c=1 in this run: shipping a call there and back "
                    "(wait + hop p50) took 0.500 ms over 1 cell, 5 % of the op time")
    assert report.steady_state_lines(_costed(run_of(cell("process-pool")))) == []


def test_runs_without_pool_costs_show_no_table_and_old_files_load() -> None:
    run = run_of(cell("to-thread"))
    assert report.pool_cost_table(run) is None
    data = json.loads(encode(run))
    del data["pool_costs"]
    assert decode(json.dumps(data).encode()).pool_costs == []
    assert decode(encode(_costed(run))).pool_costs == _costed(run).pool_costs


@pytest.mark.parametrize(("sizes", "expected"), [([None], None), ([None, 3, 1], 3), ([4], 4)])
def test_pools_are_costed_at_the_largest_size_the_run_asks_for(
    monkeypatch: pytest.MonkeyPatch, sizes: list[int | None], expected: int | None,
) -> None:
    asked: list[poolcost.CostSpec] = []
    monkeypatch.setattr(poolcost, "measure_in_child", lambda spec, **_: asked.append(spec) or [])
    chosen = settings.build_settings(Choices(strategies=["process-pool"], max_workers=sizes))
    runner.cost_pools(chosen, runner.NullObserver(), [])
    assert [spec.workers for spec in asked] == [expected]


@pytest.mark.workers
def test_a_run_with_a_process_pool_costs_it_by_start_method_unless_told_not_to(tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    args = ("run", "-w", "sleep", "-s", "process-pool", "-l", "asyncio", "-c", "1", "--quick",
            "--rounds", "1", "--no-semantics", "--no-chart", "--payload-bytes", "4096")
    done = offbench(*args, "-o", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    run = decode(out.read_bytes())
    methods = [cost.start_method for cost in run.pool_costs]
    assert set(methods) == set(multiprocessing.get_all_start_methods()), run.pool_costs
    for cost in run.pool_costs:
        assert cost.error is None, cost
        assert cost.startup_s > 0
        assert [call.payload_bytes for call in cost.calls] == [0, 4096]
    assert "what a process pool costs here" in done.stdout
    done = offbench(*args, "--no-pool-costs", "-o", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    assert decode(out.read_bytes()).pool_costs == []
