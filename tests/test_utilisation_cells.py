"""Loop utilisation in real cells, checked against the probe (:mod:`offbench.measure.utilisation`).

The acceptance physics: a loop blocked by 50 ms calls is busy almost all the window,
its longest callbacks last about 50 ms, and every probe stall they cause is accounted
for by callbacks within the stated tolerance; the same sleeps offloaded leave the
loop mostly idle and stall-free.
"""

from __future__ import annotations

import json

import msgspec
import pytest
from rich.console import Console

from offbench.model.cells import CellSpec
from offbench.model.results import CellResult, Durations, LoopUtilisation, decode, encode
from offbench.plan import settings
from offbench.plan.settings import Choices
from offbench.render import html as html_report
from offbench.render import markdown
from offbench.render import terminal as report
from offbench.run import runner
from tests.builders import cell, run_of
from tests.cells import measure

SLEEP_MS = 50.0


@pytest.mark.workers
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_direct_sleeps_keep_the_loop_busy_and_every_probe_stall_is_a_callback(loop: str) -> None:
    result = measure("direct", loop, params={"duration_ms": SLEEP_MS})
    found = result.loop_utilisation
    assert found is not None
    assert found.busy > 0.9, found
    assert found.callback_ms is not None
    # time.sleep(0.05) never returns early, and on an idle machine rarely much later.
    assert SLEEP_MS * 0.95 <= found.callback_ms.max < SLEEP_MS * 3, found
    assert found.stalls_checked >= 1, found
    assert found.stalls_agreeing >= 1, found
    # What the callbacks leave unexplained of any stall is the host taking the loop's thread between
    # them: 4.9 ms seen with another program and another test busy (one check of five then fell
    # outside the agreement's tolerance; 2026-12-02). Stalls that were not callbacks would leave 50.
    assert found.worst_gap_ms is not None
    assert found.worst_gap_ms < SLEEP_MS / 5, found
    assert found.coverage == ("every callback" if loop == "asyncio" else "scheduled callbacks")


@pytest.mark.workers
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_offloaded_sleeps_leave_the_loop_mostly_idle(loop: str) -> None:
    found = measure("to-thread", loop, concurrency=4, params={"duration_ms": SLEEP_MS}).loop_utilisation
    assert found is not None
    # Four 50 ms sleeps in flight complete 80 times a second; each completion costs the
    # loop a few callbacks of tens of microseconds, a few per cent of the window at most.
    assert found.busy < 0.3, found
    assert found.callbacks > 0
    # No callback of theirs blocks: the p99 of some thousands of callbacks stays far below the
    # 5 ms stall threshold. (Not "no stall at all": on this shared VM the host deschedules the
    # loop's thread for 5-10 ms now and then, which a loaded CI run showed as 2 stalls.)
    assert found.callback_ms.p99 < found.check_ms / 5, found


def _with_utilisation(strategy: str, agreeing: int, checked: int, loop: str = "asyncio") -> CellResult:
    found = LoopUtilisation(
        busy=0.42, callbacks=1000, callback_ms=Durations(p50=0.01, p99=5.5, max=52.3),
        coverage="every callback" if loop == "asyncio" else "scheduled callbacks", check_ms=5.0,
        stalls_checked=checked, stalls_agreeing=agreeing, worst_gap_ms=7.25 if checked else None,
    )
    return msgspec.structs.replace(cell(strategy, loop=loop), loop_utilisation=found)


def test_the_table_shows_utilisation_and_the_lines_name_what_the_callbacks_left_unexplained() -> None:
    run = run_of(_with_utilisation("direct", 4, 4), _with_utilisation("to-thread", 1, 3, loop="uvloop"))
    rows = report.breakdown_rows(run, "sleep")
    assert rows[0][:3] == ["direct", "asyncio", "1"]
    assert rows[0][3:] == ["–"] * 6 + ["42%", "5.50", "52.3", "4/4"]
    assert rows[1][-4:] == ["42%*", "5.50", "52.3", "1/3"]
    lines = report.utilisation_lines(run, "sleep")
    assert lines[0].startswith("Loop utilisation against the probe: callbacks account for 5 of 7 probe")
    assert any(line.startswith("* uvloop") for line in lines)
    assert any("to-thread / uvloop / c=1: 2 of 3 not accounted for, up to 7.25 ms" in line for line in lines)
    console = Console(width=160, record=True)
    report.print_run(run, console, charts=False)
    assert "callbacks account for 5 of 7" in console.export_text()
    assert "callbacks account for 5 of 7" in markdown.run(run)
    page = html_report.render(run)
    assert "where the time goes" in page
    assert "callbacks account for 5 of 7" in page


def test_cells_without_utilisation_have_no_lines_and_old_files_load() -> None:
    run = run_of(cell("to-thread"))
    assert report.utilisation_lines(run, "sleep") == []
    assert report.breakdown_rows(run, "sleep") == []
    data = json.loads(encode(run_of(_with_utilisation("direct", 1, 1))))
    assert decode(json.dumps(data).encode()).results[0].loop_utilisation is not None
    del data["results"][0]["loop_utilisation"]
    assert decode(json.dumps(data).encode()).results[0].loop_utilisation is None


@pytest.mark.workers
def test_utilisation_off_times_nothing() -> None:
    cell_spec = CellSpec(workload="sleep", params={"duration_ms": 1.0}, strategy="to-thread", loop="asyncio",
                         concurrency=1, duration_s=0.2, warmup_s=0.02, probe_interval_ms=1.0,
                         stall_threshold_ms=10.0, utilisation=False)
    result = runner.run_cell(cell_spec, timeout_s=60)
    assert result.ok, result.error
    assert result.loop_utilisation is None
    assert settings.build_settings(Choices(utilisation=False)).utilisation is False
