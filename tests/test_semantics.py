"""offbench check: each experiment can answer yes and no; stock CPython gives the documented answers."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from pathlib import Path

import pytest

from offbench.model.semantics import Finding, StrategySemantics
from offbench.semantics.check import CheckSpec, check_one, run_in_lab
from offbench.semantics.experiments import REGISTRY
from offbench.strategies import Strategy
from tests.run_cli import STOCK_STRATEGIES as STRATEGIES
from tests.run_cli import offbench, start_offbench

pytestmark = pytest.mark.workers

THREADS = ["executor-per-call", "default-executor", "to-thread"]


def answers(stock: dict[tuple[str, str], StrategySemantics], experiment: str) -> dict[str, set[bool | None]]:
    """Return each strategy's answers to ``experiment``, over both loops."""
    found: dict[str, set[bool | None]] = {}
    for (strategy, _), sems in stock.items():
        assert sems.error is None, sems.error
        finding = sems.finding(experiment)
        assert finding is not None, experiment
        found.setdefault(strategy, set()).add(finding.holds)
    return found


def test_context_is_copied_by_to_thread_not_by_run_in_executor(stock: dict) -> None:
    seen = answers(stock, "context")
    assert seen["to-thread"] == {True}
    assert seen["direct"] == {True}
    assert seen["default-executor"] == {False}
    assert seen["executor-per-call"] == {False}
    assert seen["process-pool"] == {False}


def test_loop_thread_locals_are_visible_only_on_the_loop_thread(stock: dict) -> None:
    seen = answers(stock, "thread_locals")
    assert seen.pop("direct") == {True}
    assert all(v == {False} for v in seen.values()), seen
    where = {s: stock[(s, "asyncio")].finding("runs_on") for s in STRATEGIES}
    assert {s: f.value for s, f in where.items() if f} == {
        "direct": "loop", "executor-per-call": "thread", "default-executor": "thread",
        "to-thread": "thread", "process-pool": "process",
    }


def test_only_the_per_call_pool_creates_a_worker_per_call(stock: dict) -> None:
    seen = answers(stock, "reuse")
    assert seen.pop("executor-per-call") == {False}
    assert all(v == {True} for v in seen.values()), seen
    per_call = stock[("executor-per-call", "asyncio")].finding("reuse")
    assert per_call is not None
    assert per_call.measured is not None
    assert per_call.measured > 0
    assert per_call.why


def test_processes_copy_arguments_threads_share_them(stock: dict) -> None:
    seen = answers(stock, "arguments")
    assert seen.pop("process-pool") == {False}
    assert all(v == {True} for v in seen.values()), seen
    finding = stock[("process-pool", "uvloop")].finding("arguments")
    assert finding is not None
    assert "pickled" in finding.value


def test_threads_do_not_parallelise_pure_python_processes_do(stock: dict) -> None:
    # "Unknown" (None) is the honest answer when another program had the second CPU during every
    # timing (the experiment then cannot tell the strategy from the load); a wrong yes or no never is.
    python = answers(stock, "parallel_python")
    released = answers(stock, "parallel_released")
    for strategy in THREADS:
        assert python[strategy] <= {False, None}, strategy
        assert released[strategy] <= {True, None}, strategy
    assert python["process-pool"] <= {True, None}
    # Calls on the loop itself take turns, whatever the work: never "yes". (A busy host can
    # leave even that unknown: its control pair then found no second CPU.)
    assert python["direct"] <= {False, None}
    assert released["direct"] <= {False, None}


def test_a_running_default_executor_call_delays_asyncio_run(stock: dict) -> None:
    seen = answers(stock, "shutdown")
    assert seen["to-thread"] == seen["default-executor"] == {False}
    assert seen["direct"] == seen["process-pool"] == {True}
    delayed = stock[("to-thread", "asyncio")].finding("shutdown")
    assert delayed is not None
    assert delayed.measured is not None
    # The call was still to run for its length less the 20 ms the main coroutine waited: asyncio.run
    # waited that long (physics; a busy host can only add), well over the prompt threshold.
    from offbench.semantics.experiments import PROMPT_EXIT_S, SHUTDOWN_BLOCK_S
    assert delayed.measured >= (SHUTDOWN_BLOCK_S - 0.02) * 1000 * 0.95
    assert delayed.measured > PROMPT_EXIT_S * 1000


def test_no_stock_strategy_stops_a_timed_out_call_or_loses_an_exception(stock: dict) -> None:
    assert all(v == {False} for v in answers(stock, "cancel").values())
    assert all(v == {True} for v in answers(stock, "exceptions").values())
    assert all(v == {True} for v in answers(stock, "loop_effects").values())


# --- the answers the stock strategies never give, from strategies and functions that do ---


class Deferring(Strategy):
    """Waits before calling, so a timeout arrives first and the call never starts."""

    name = "deferring"
    summary = "test only"
    runs_on = "loop"

    async def call(self) -> object:
        """Sleep, then call on the loop."""
        await asyncio.sleep(0.1)
        return self.fn()


class Swallowing(Strategy):
    """Replaces the callee's exception with a bare RuntimeError, as a careless wrapper would."""

    name = "swallowing"
    summary = "test only"
    runs_on = "loop"

    async def call(self) -> object:
        """Call, hiding what went wrong."""
        try:
            return self.fn()
        except Exception:
            raise RuntimeError("it failed") from None


def lab_finding(experiment: str, strategy: type[Strategy]) -> Finding:
    (finding,) = asyncio.run(run_in_lab([REGISTRY[experiment]], strategy, None))
    return finding


def test_cancel_says_yes_when_the_call_never_runs() -> None:
    finding = lab_finding("cancel", Deferring)
    assert finding.holds is True
    assert finding.value == "stops"


def test_exceptions_says_no_when_a_strategy_replaces_them() -> None:
    finding = lab_finding("exceptions", Swallowing)
    assert finding.holds is False
    assert "RuntimeError" in finding.value


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_function_that_leaves_a_loop_set_is_caught(loop: str) -> None:
    sems = check_one(CheckSpec(strategy="to-thread", loop=loop, target="tests.user_functions:leave_a_loop"))
    assert sems.error is None
    finding = sems.finding("loop_effects")
    assert finding is not None
    assert finding.holds is False
    assert finding.value == "left set"
    clean = check_one(CheckSpec(strategy="to-thread", loop=loop, target="tests.helpers:noop"))
    assert clean.finding("loop_effects").holds is True  # type: ignore[union-attr]


# --- the command ----------------------------------------------------------------------------------


def test_check_command_json_and_table() -> None:
    done = offbench("check", "-s", "to-thread", "-s", "default-executor", "-l", "asyncio", "-o", "-")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert [s["strategy"] for s in data["semantics"]] == ["to-thread", "default-executor"]
    names = [f["experiment"] for f in data["semantics"][0]["findings"]]
    assert names == list(REGISTRY)
    table = offbench("check", "-s", "default-executor", "-l", "uvloop")
    assert table.returncode == 0, table.stderr
    assert "✗ lost" in table.stdout
    assert "copy_context" in table.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["check", "-s", "to_thread"], "did you mean 'to-thread'"),
        (["check", "-l", "trio"], "unknown loop 'trio'"),
        (["check", "-w", "nosuchmod_q:fn"], "no module named 'nosuchmod_q'"),
        (["check", "-w", "justaname"], "not of the form module:function"),
        (["check", "-w", "tests.helpers:not_callable"], "int object is not callable"),
    ],
)
def test_check_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    done = offbench(*args)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert message in line


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stopped_check_keeps_what_it_found(tmp_path: Path, signum: int, code: int) -> None:
    out = tmp_path / "out.json"
    process = start_offbench("check", "-l", "asyncio", "-o", str(out))
    assert process.stderr is not None
    process.stderr.readline()  # checking the first strategy
    process.stderr.readline()  # the first is done, the second is being checked
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    data = json.loads(out.read_text())
    assert data["complete"] is False
    assert 1 <= len(data["semantics"]) < len(STRATEGIES)
    assert data["semantics"][0]["strategy"] == "direct"
    assert len(data["semantics"][0]["findings"]) == len(REGISTRY)
    # Nothing of the interrupted worker is left: workers are forks, so they would carry the
    # command line, with its unique output path.
    left = subprocess.run(["pgrep", "-f", str(out)], capture_output=True, text=True)
    assert left.stdout.strip() == ""
