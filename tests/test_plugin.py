"""offbench's pytest plugin, run on small generated suites in their own pytest processes (pytester).

Margins from physics: a ``time.sleep(0.05)`` in an async test is a 50 ms stall of its
loop, five times the 10 ms budget; a test that offloads the sleep leaves its loop free,
and an idle loop answers within a few ms on this 2-core shared machine (PITFALLS.md,
"Noise"), well under 10 ms. The lag floor of a 50 ms stall is 45 ms (one 1 ms probe
interval, and where the tick fell; see tests/test_watch.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from offbench import pytest_plugin
from offbench.model import watched

pytest_plugins = ["pytester"]

QUIET = ("-p", "no:cacheprovider", "-o", "asyncio_default_fixture_loop_scope=function")
"""Options of every generated run: no cache folder, and no pytest-asyncio warning about fixture loops."""

SUITE = """\
import asyncio, time
import pytest

def helper():
    time.sleep(0.05)

{mark}
async def test_blocks():
    time.sleep(0.05)

{mark}
async def test_blocks_in_a_helper():
    await asyncio.sleep(0.005)
    helper()

{mark}
async def test_offloads():
    await asyncio.to_thread(time.sleep, 0.05)

def test_sync():
    time.sleep(0.05)
"""


def _line(source: str, text: str) -> int:
    return next(n for n, line in enumerate(source.splitlines(), 1) if line.strip() == text)


@pytest.mark.workers
@pytest.mark.parametrize("mark", ["@pytest.mark.asyncio", "@pytest.mark.anyio"])
def test_a_blocking_async_test_fails_over_budget_naming_its_line(
    pytester: pytest.Pytester, mark: str
) -> None:
    source = SUITE.format(mark=mark)
    pytester.makepyfile(test_suite=source)
    result = pytester.runpytest_subprocess(*QUIET, "--offbench-lag-budget", "10",
                                           "--offbench-json", "lags.json")
    result.assert_outcomes(failed=2, passed=2)
    sleeps = [n for n, line in enumerate(source.splitlines(), 1) if line.strip() == "time.sleep(0.05)"]
    helper, blocks, caller = sleeps[0], sleeps[1], _line(source, "helper()")
    result.stdout.fnmatch_lines([
        "*offbench: event-loop lag p99 * ms is over the budget of 10 ms*",
        f"the loop was blocked for * ms* in time.sleep(0.05), called from test_suite.py:{blocks} "
        "(test_blocks)",
        f"the loop was blocked for * ms* in time.sleep(0.05), called from test_suite.py:{helper} (helper) "
        f"← test_suite.py:{caller} (test_blocks_in_a_helper)",
        "offbench: 3 async tests measured, 2 over budget; figures in lags.json",
    ])
    result.stdout.no_fnmatch_line("*test_offloads*over the budget*")
    figures = json.loads((pytester.path / "lags.json").read_text())["tests"]
    tests = {t["nodeid"].split("::")[1].split("[")[0]: t for t in figures}
    assert sorted(tests) == ["test_blocks", "test_blocks_in_a_helper", "test_offloads"]  # not the sync one
    assert tests["test_blocks"]["over_budget"]
    assert tests["test_blocks"]["value_ms"] >= 45
    assert not tests["test_offloads"]["over_budget"]
    assert tests["test_offloads"]["value_ms"] < 10
    assert tests["test_offloads"]["figures"]["sites"] == []
    [site] = tests["test_blocks"]["figures"]["sites"]
    assert (site["file"], site["line"], site["code"]) == ("test_suite.py", blocks, "time.sleep(0.05)")
    assert site["worst_ms"] >= 45


MARKED = """\
import asyncio, time
import pytest

@pytest.mark.asyncio
@pytest.mark.offbench(lag_budget_ms=10)
async def test_marked_blocks():
    time.sleep(0.05)

@pytest.mark.asyncio
@pytest.mark.offbench(lag_budget_ms=200, statistic="max")
async def test_marked_within():
    time.sleep(0.05)

@pytest.mark.asyncio
async def test_fixture(offbench_lag):
    offbench_lag.budget_ms = 10
    time.sleep(0.05)
    await asyncio.sleep(0.002)
    assert offbench_lag.figures().lag_ms.max >= 45

@pytest.mark.asyncio
async def test_unasked():
    time.sleep(0.05)

@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.offbench(lag_budget_ms=10)
async def test_shared_loop_blocks():
    time.sleep(0.05)

def test_the_loop_stops_between_tests():
    time.sleep(0.1)

@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.offbench(lag_budget_ms=10)
async def test_shared_loop_resumes():
    await asyncio.sleep(0.02)
"""


@pytest.mark.workers
def test_marker_and_fixture_ask_for_one_test_each(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_marked=MARKED)
    result = pytester.runpytest_subprocess(*QUIET)
    # A loop shared by tests (loop_scope="module") is measured during each test only: the
    # 100 ms it spent stopped between them is no lag.
    result.assert_outcomes(failed=3, passed=4)
    for name in ("test_marked_blocks", "test_fixture", "test_shared_loop_blocks"):
        result.stdout.fnmatch_lines([f"FAILED test_marked.py::{name} - Failed: offbench: event-loop*"])


@pytest.mark.workers
def test_a_suite_that_does_not_ask_pays_nothing(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("""
        import sys
        def pytest_sessionfinish(session):
            loaded = sorted(m for m in sys.modules if m.startswith("offbench"))
            active = session.config.pluginmanager.has_plugin("offbench-active")
            open("loaded.txt", "w").write(f"{loaded} {active}")
    """)
    pytester.makepyfile(test_suite=SUITE.format(mark="@pytest.mark.asyncio"))
    result = pytester.runpytest_subprocess(*QUIET)
    result.assert_outcomes(passed=4)
    assert (pytester.path / "loaded.txt").read_text() == "['offbench', 'offbench.pytest_plugin'] False"


BAD_MARKER = "@pytest.mark.offbench(budget=5)\nasync def test_x(): pass"


@pytest.mark.workers
@pytest.mark.parametrize(("args", "source", "message"), [
    (["--offbench-lag-budget", "-1"], "",
     "offbench: --offbench-lag-budget must be a number of milliseconds above 0, got '-1'"),
    (["--offbench-lag-stat", "p42"], "",
     "offbench: --offbench-lag-stat must be one of p50, p90, p99, p999, max, got 'p42'"),
    ([], BAD_MARKER, "offbench: test_bad.py::test_x: @pytest.mark.offbench has no argument 'budget'*"),
])
def test_mistakes_are_one_line_usage_errors(
    pytester: pytest.Pytester, args: list[str], source: str, message: str
) -> None:
    pytester.makepyfile(test_bad="import pytest\n" + source)
    result = pytester.runpytest_subprocess(*QUIET, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])
    assert "Traceback" not in result.stderr.str()


def test_the_plugins_statistics_are_the_attachments() -> None:
    assert pytest_plugin.STATISTICS == watched.STATISTICS


def test_the_entry_point_is_registered() -> None:
    from importlib import metadata

    [entry] = [e for e in metadata.entry_points(group="pytest11") if e.name == "offbench"]
    assert entry.value == "offbench.pytest_plugin"
    assert Path(pytest_plugin.__file__).name == "pytest_plugin.py"
