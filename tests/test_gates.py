"""Gates for CI (``--fail-if``): the expression language, judging cells, and the exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from offbench.errors import UsageError
from offbench.judge import gates
from offbench.judge.gates import Gate
from offbench.model import results
from offbench.model.results import CellResult
from offbench.model.settings import WorkloadSpec
from offbench.plan import scenario, settings
from offbench.render import markdown
from tests.builders import measured as cell
from tests.run_cli import MadeOnce, offbench

REAL = ["-w", "sleep", "-s", "direct", "-s", "to-thread", "-l", "asyncio", "-c", "1", "--quick",
        "--no-semantics", "--no-chart"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("loop_lag_ms.p99 > 5", Gate(text="loop_lag_ms.p99 > 5", field="loop_lag_ms.p99", op=">", limit=5)),
        ("throughput_ops_s<500", Gate(text="throughput_ops_s<500", field="throughput_ops_s", op="<",
                                      limit=500)),
        ("  availability <= 0.99  ", Gate(text="availability <= 0.99", field="availability", op="<=",
                                          limit=0.99)),
        ("op_latency_ms.max >= 1e2", Gate(text="op_latency_ms.max >= 1e2", field="op_latency_ms.max",
                                          op=">=", limit=100)),
        ("ops == 0", Gate(text="ops == 0", field="ops", op="==", limit=0)),
        ("stalled_s != -0.5", Gate(text="stalled_s != -0.5", field="stalled_s", op="!=", limit=-0.5)),
        ("loop_lag_ms.p99 > 5 where strategy=to-thread, loop = uvloop",
         Gate(text="loop_lag_ms.p99 > 5 where strategy=to-thread, loop = uvloop", field="loop_lag_ms.p99",
              op=">", limit=5, where={"strategy": "to-thread", "loop": "uvloop"})),
        ("blocked_s > 0 where max_workers=default,concurrency=8,python=3.13.0,workload=sleep",
         Gate(text="blocked_s > 0 where max_workers=default,concurrency=8,python=3.13.0,workload=sleep",
              field="blocked_s", op=">", limit=0,
              where={"max_workers": "default", "concurrency": "8", "python": "3.13.0",
                     "workload": "sleep"})),
    ],
)
def test_valid_gates_parse(text: str, expected: Gate) -> None:
    assert gates.parse(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("bogus > 1", "unknown field 'bogus'"),
        ("loop_lag_ms.p98 > 1", "did you mean 'loop_lag_ms.p99'?"),
        ("strategy > 1", "strategy is not a number"),
        ("concurrency > 4", "concurrency is not a number"),
        ("loop_lag_ms > 1", "loop_lag_ms is not a number (numeric fields: ops, "),
        ("loop_lag_ms.p99 >", "no number after >"),
        ("loop_lag_ms.p99 > fast", "'fast' is not a number"),
        ("loop_lag_ms.p99 > nan", "'nan' is not a finite number"),
        ("loop_lag_ms.p99 => 5",
         "'=>' is not a comparison after loop_lag_ms.p99 (use one of < <= > >= == !=)"),
        ("loop_lag_ms.p99 = 5", "'=' is not a comparison"),
        ("loop_lag_ms.p99 5", "no comparison after loop_lag_ms.p99"),
        ("> 5", "it starts with no field"),
        ("", "it starts with no field"),
        ("loop_lag_ms.p99 > 5 where strat=direct", "unknown filter key 'strat'"),
        ("loop_lag_ms.p99 > 5 where params=x", "unknown filter key 'params'"),
        ("loop_lag_ms.p99 > 5 where direct", "'direct' is not KEY=VALUE after 'where'"),
        ("loop_lag_ms.p99 > 5 where", "'' is not KEY=VALUE after 'where'"),
        ("loop_lag_ms.p99 > 5 where loop=a,loop=b", "loop is named twice"),
    ],
)
def test_malformed_gates_say_what_is_wrong_and_the_grammar(text: str, problem: str) -> None:
    with pytest.raises(UsageError) as caught:
        gates.parse(text)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f'gate "{text.strip()}": ')
    assert problem in message
    assert message.endswith(gates.GRAMMAR)


def test_fields_are_the_numbers_of_a_cell_result_dotted_into_nested_ones() -> None:
    numbers = {name for name, numeric in gates.fields().items() if numeric}
    assert {"throughput_ops_s", "availability", "stalled_s", "blocked_s", "op_latency_ms.p99",
            "loop_lag_ms.p999", "loop_lag_ms.mean"} <= numbers
    assert not numbers & {"concurrency", "max_workers", "worker_pid", "strategy", "status", "loop_lag_ms"}


def _judged(text: str, cells: list[CellResult]) -> list[tuple[str, int, float | None, str]]:
    found = gates.judge(gates.parse(text), cells)
    return [(b.strategy, b.concurrency, b.value, b.reason) for b in found.broken_by]


def matrix() -> list[CellResult]:
    return [
        cell("direct", 1, 100, 12.0),
        cell("to-thread", 1, 98, 0.3),
        cell("to-thread", 8, 700, 6.0, loop="uvloop"),
        cell("process-pool", 1, 0, None, status="timeout", error="killed after 15 s"),
        cell("default-executor", 1, 90, None),
    ]


def test_a_gate_is_broken_by_the_cells_whose_value_meets_the_failure_condition() -> None:
    assert _judged("loop_lag_ms.p99 > 5", matrix()) == [
        ("direct", 1, 12.0, ""),
        ("to-thread", 8, 6.0, ""),
        ("process-pool", 1, None, "timeout"),
        ("default-executor", 1, None, "no value"),
    ]
    assert _judged("throughput_ops_s < 95 where loop=asyncio", matrix()) == [
        ("process-pool", 1, None, "timeout"),
        ("default-executor", 1, 90.0, ""),
    ]
    assert _judged("loop_lag_ms.p99 >= 12", matrix()[:3]) == [("direct", 1, 12.0, "")]
    assert _judged("loop_lag_ms.p99 == 0.3", matrix()[:3]) == [("to-thread", 1, 0.3, "")]


def test_a_filter_chooses_the_cells_a_gate_is_judged_on() -> None:
    found = gates.judge(gates.parse("loop_lag_ms.p99 > 5 where strategy=to-thread,concurrency=8"), matrix())
    assert found.cells == 1
    assert [(b.strategy, b.loop, b.value) for b in found.broken_by] == [("to-thread", "uvloop", 6.0)]
    held = gates.judge(gates.parse("loop_lag_ms.p99 > 5 where strategy=to-thread,loop=asyncio"), matrix())
    assert (held.gate, held.cells, held.broken_by) == (
        "loop_lag_ms.p99 > 5 where strategy=to-thread,loop=asyncio", 1, [])
    assert gates.applies(gates.parse("ops > 1 where max_workers=default"), matrix()[0])
    assert not gates.applies(gates.parse("ops > 1 where max_workers=4"), matrix()[0])


def test_a_failed_cell_breaks_every_gate_it_is_chosen_by_even_one_it_would_pass() -> None:
    failed = [cell("direct", 1, 0, None, status="error", error="boom")]
    assert _judged("throughput_ops_s < 0", failed) == [("direct", 1, None, "error")]
    assert _judged("ops < 0 where strategy=to-thread", failed) == []
    assert gates.broken(gates.judge_all(["ops < 0"], failed))
    assert not gates.broken(gates.judge_all(["ops < 0"], matrix()[:3]))


def test_settings_refuse_a_filter_that_chooses_no_cell_of_the_matrix() -> None:
    chosen = settings.Choices(workloads=[WorkloadSpec(name="sleep")],
                              strategies=["direct", "to-thread"], loops=["asyncio"], concurrency=[1],
                              max_workers=[4])
    pooled = "loop_lag_ms.p99 > 5 where strategy=to-thread,max_workers=4"
    ok = settings.build_settings(msgspec.structs.replace(chosen, fail_if=[" ops < 1 ", pooled, "ops < 1"]))
    assert ok.fail_if == ["ops < 1", pooled]
    for gate, problem in [
        ("ops < 1 where strategy=to_thread",
         "no cell has strategy=to_thread (the run's strategy: direct, to-thread)"),
        ("ops < 1 where concurrency=8", "the run's concurrency: 1"),
        ("ops < 1 where python=3.13.0", "the run's python: ''"),
        ("ops < 1 where strategy=direct,max_workers=4",
         "no cell of the run has strategy=direct, max_workers=4"),
    ]:
        with pytest.raises(UsageError, match=r"^gate ") as caught:
            settings.build_settings(msgspec.structs.replace(chosen, fail_if=["ops < 1", gate]))
        assert problem in str(caught.value)
        assert caught.value.key == "fail_if[1]"


def test_a_scenario_names_its_gates_and_the_key_of_a_bad_one() -> None:
    toml = b'strategies = "direct"\nloops = "asyncio"\nfail_if = ["loop_lag_ms.p99 > 5"]\n'
    assert scenario.parse(toml, "ci.toml").choices.fail_if == ["loop_lag_ms.p99 > 5"]
    single = scenario.parse(b'fail_if = "ops < 1"\nloops = "asyncio"\n', "ci.toml")
    assert single.choices.fail_if == ["ops < 1"]
    with pytest.raises(UsageError, match=r"^ci\.toml: fail_if\[0\]: gate \"lag > 5\": unknown field 'lag'"):
        scenario.parse(b'fail_if = ["lag > 5"]\nloops = "asyncio"\n', "ci.toml")


@pytest.mark.workers
def test_a_malformed_gate_is_exit_2_in_one_line_before_anything_runs(tmp_path: Path) -> None:
    out = tmp_path / "never.json"
    done = offbench("run", *REAL, "--fail-if", "bogus > 1", "-o", str(out))
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith("offbench: error: gate \"bogus > 1\": unknown field 'bogus'")
    assert not out.exists()
    dry = offbench("run", *REAL, "--fail-if", "ops < 1 where loop=uvloop", "--dry-run")
    assert dry.returncode == 2
    assert "no cell has loop=uvloop (the run's loop: asyncio)" in dry.stderr
    planned = offbench("run", *REAL, "--fail-if", "ops < 1 where loop=asyncio", "--dry-run")
    assert planned.returncode == 0, planned.stderr
    assert "ops < 1 where loop=asyncio" in planned.stdout


@pytest.fixture(scope="module")
def gated_run(made_once: MadeOnce) -> tuple[str, Path]:
    """One real run whose direct cell breaks a lag gate; its terminal output and results file."""
    with made_once("gates") as (folder, to_make):
        path = folder / "run.json"
        if to_make:
            done = offbench("run", *REAL, "--fail-if", "loop_lag_ms.p99 > 5 where strategy=direct",
                            "--fail-if", "loop_lag_ms.p99 > 1000", "-o", str(path))
            assert done.returncode == 1, done.stderr[-2000:]
            path.with_suffix(".txt").write_text(done.stdout)
    return path.with_suffix(".txt").read_text(), path


@pytest.mark.workers
def test_a_broken_gate_fails_the_run_and_names_the_cell(gated_run: tuple[str, Path]) -> None:
    # Physics: a direct 10 ms sleep holds the loop for 10 ms, so lag p99 is at least that.
    output, path = gated_run
    broken = [line for line in output.splitlines() if line.startswith("gate ") and " broken by " in line]
    assert len(broken) == 1, output
    assert broken[0].startswith('gate "loop_lag_ms.p99 > 5 where strategy=direct" broken by sleep')
    assert " / direct / asyncio / c=1: " in broken[0]
    assert float(broken[0].rsplit(": ", 1)[1]) >= 9
    assert 'gate "loop_lag_ms.p99 > 1000" held in 2 cells' in output
    data = json.loads(path.read_text())
    assert [(g["gate"], g["cells"], len(g["broken_by"])) for g in data["gates"]] == [
        ("loop_lag_ms.p99 > 5 where strategy=direct", 1, 1), ("loop_lag_ms.p99 > 1000", 2, 0)]
    (breach,) = data["gates"][0]["broken_by"]
    assert (breach["strategy"], breach["loop"], breach["concurrency"], breach["reason"]) == (
        "direct", "asyncio", 1, "")
    assert breach["value"] >= 9
    assert data["settings"]["fail_if"] == [
        "loop_lag_ms.p99 > 5 where strategy=direct", "loop_lag_ms.p99 > 1000"]
    summary = markdown.run(results.load(path))
    assert 'gate "loop\\_lag\\_ms.p99 > 5 where strategy=direct" broken by sleep' in summary


@pytest.mark.workers
def test_a_gate_no_cell_breaks_passes_the_run() -> None:
    done = offbench("run", *REAL, "--fail-if", "loop_lag_ms.p99 > 1000")
    assert done.returncode == 0, done.stderr[-2000:]
    assert 'gate "loop_lag_ms.p99 > 1000" held in 2 cells' in done.stdout


@pytest.mark.workers
def test_show_rejudges_a_saved_run(gated_run: tuple[str, Path]) -> None:
    _, path = gated_run
    shown = offbench("show", str(path), "--no-chart")
    assert shown.returncode == 0, shown.stderr
    assert " broken by " in shown.stdout
    passing = offbench("show", str(path), "--no-chart", "--fail-if", "throughput_ops_s < 1")
    assert passing.returncode == 0, passing.stderr
    assert 'gate "throughput_ops_s < 1" held in 2 cells' in passing.stdout
    gates_said = [line for line in passing.stdout.splitlines() if line.startswith("gate ")]
    assert not [line for line in gates_said if " broken by " in line]
    failing = offbench("show", str(path), "--no-chart",
                       "--fail-if", "loop_lag_ms.p50 >= 0 where strategy=to-thread")
    assert failing.returncode == 1, failing.stderr
    assert " / to-thread / asyncio / c=1: " in failing.stdout
    typo = offbench("show", str(path), "--fail-if", "ops < 1 where strategy=to_thread")
    assert typo.returncode == 2
    assert "no cell has strategy=to_thread" in typo.stderr


def test_files_without_gates_still_load(gated_run: tuple[str, Path]) -> None:
    _, path = gated_run
    data = json.loads(path.read_text())
    del data["gates"], data["settings"]["fail_if"]
    old = results.decode(json.dumps(data).encode())
    assert old.gates == []
    assert old.settings.fail_if == []
