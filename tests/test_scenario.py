"""Scenario files: shipped ones load and agree with the CLI; bad ones fail in one line, exit 2."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import msgspec
import pytest

from offbench import loops, strategies, workloads
from offbench.errors import UsageError
from offbench.model.settings import QUICK, RunSettings
from offbench.plan import scenario, settings
from offbench.plan.matrix import cells
from offbench.plan.settings import Choices, build_settings
from tests.run_cli import offbench_here

ROOT = Path(__file__).resolve().parent.parent


def parse(text: str) -> scenario.Scenario:
    return scenario.parse(text.encode(), "s.toml")


def settings_of(text: str) -> RunSettings:
    return build_settings(parse(text).choices)


def test_every_shipped_scenario_loads_and_is_in_the_repository_folder() -> None:
    shipped = scenario.shipped()
    assert {"default", "quick", "io-bound", "cpu-bound", "loops"} <= set(shipped)
    for name in shipped:
        loaded = scenario.load(name)
        assert loaded.description, name
        assert cells(build_settings(loaded.choices)), name
        # The repository's scenarios/ folder is the package's, so documented paths work too.
        assert scenario.load(str(ROOT / "scenarios" / f"{name}.toml")).choices == loaded.choices


def without_source(run: RunSettings) -> RunSettings:
    return msgspec.structs.replace(run, scenario=None, seed=0)


def test_default_scenario_is_what_run_does_without_one() -> None:
    from_file = build_settings(scenario.load("default").choices)
    assert without_source(from_file) == without_source(build_settings())


def test_quick_scenario_is_what_run_quick_does() -> None:
    quick = build_settings(Choices(quick=True))
    assert without_source(build_settings(scenario.load("quick").choices)) == without_source(quick)


def test_io_bound_goes_past_the_default_executor_size() -> None:
    run = build_settings(scenario.load("io-bound").choices)
    assert max(run.concurrency) > strategies.default_executor_workers()
    assert {w.name for w in run.workloads} == {"sleep", "socket"}


def test_cpu_bound_sweeps_concurrency_up_to_twice_the_cores() -> None:
    run = build_settings(scenario.load("cpu-bound").choices)
    cores = os.cpu_count() or 1
    assert run.concurrency == list(dict.fromkeys([1, cores, 2 * cores]))
    assert {w.name for w in run.workloads} == {"cpu", "numpy"}


def test_loops_scenario_covers_every_workload_on_every_loop() -> None:
    run = build_settings(scenario.load("loops").choices)
    assert set(run.loops) == {"asyncio", "uvloop"}
    assert {w.name for w in run.workloads} == set(workloads.names())


def test_a_list_parameter_sweeps_one_workload_per_value() -> None:
    run = settings_of('[[workloads]]\nname = "sleep"\nduration_ms = [1, 10, 100]\n')
    assert [w.params["duration_ms"] for w in run.workloads] == [1.0, 10.0, 100.0]


def test_two_swept_parameters_give_their_product() -> None:
    run = settings_of('[[workloads]]\nname = "socket"\ndelay_ms = [1, 5]\nreply_bytes = [64, 4096]\n')
    assert len(run.workloads) == 4
    assert {(w.params["delay_ms"], w.params["reply_bytes"]) for w in run.workloads} == {
        (1.0, 64), (1.0, 4096), (5.0, 64), (5.0, 4096)
    }


@pytest.mark.workers
def test_user_function_lists_are_arguments_not_sweeps() -> None:
    run = settings_of(
        '[[workloads]]\nname = "tests.helpers:noop"\nargs = [1, 2]\nkwargs = { a = [3] }\n'
    )
    assert len(run.workloads) == 1
    assert run.workloads[0].params["args"] == [1, 2]
    assert run.workloads[0].params["kwargs"] == {"a": [3]}


def test_pool_sizes_sweep_only_the_strategies_that_own_a_pool() -> None:
    run = settings_of(
        'strategies = ["direct", "to-thread", "process-pool"]\nloops = ["asyncio"]\n'
        'concurrency = [4]\nmax_workers = ["default", 16]\n[[workloads]]\nname = "sleep"\n'
    )
    assert run.max_workers == [None, 16]
    pairs = [(c.strategy, c.max_workers) for c in cells(run)]
    assert pairs == [("direct", None), ("to-thread", None), ("to-thread", 16),
                     ("process-pool", None), ("process-pool", 16)]


def test_scalars_are_accepted_where_lists_are_expected() -> None:
    run = settings_of('strategies = "to-thread"\nloops = "asyncio"\nconcurrency = 4\n')
    assert (run.strategies, run.loops, run.concurrency) == (["to-thread"], ["asyncio"], [4])


def test_command_line_choices_override_the_file() -> None:
    base = parse('strategies = ["direct"]\nconcurrency = [1, 8]\nduration_s = 2.0\n').choices
    merged = build_settings(settings.merge(base, Choices(concurrency=[3], quick=True)))
    assert merged.strategies == ["direct"]
    assert merged.concurrency == [3]
    # --quick sizes the windows itself: the file's fixed window gives way, unless the command line fixes one.
    assert merged.duration_s is None
    assert merged.effort == QUICK
    fixed = build_settings(settings.merge(base, Choices(quick=True, duration_s=0.3)))
    assert fixed.duration_s == 0.3


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("bogus = 1\n", ["bogus: unknown key", "concurrency"]),
        ('[[workloads]]\nname = "sleep"\nbogus = 1\n',
         ["workloads[0].bogus", "no parameter 'bogus'", "duration_ms"]),
        ('concurrency = "many"\n', ["concurrency:", "expected a number", "'many'"]),
        ("concurrency = [1, 2.5]\n", ["concurrency[1]:", "expected"]),
        ('duration_s = "long"\n', ["duration_s:", "expected float"]),
        ('[[workloads]]\nname = "sleep"\nduration_ms = "x"\n',
         ["workloads[0].duration_ms", "must be float"]),
        ('[[workloads]]\nname = "slep"\n', ["workloads[0].name", "unknown workload 'slep'", "'sleep'"]),
        ('strategies = ["to_thread"]\n', ["strategies:", "did you mean 'to-thread'"]),
        ('loops = ["trio"]\n', ["loops:", "unknown loop 'trio'"]),
        ('[[workloads]]\nname = "sleep"\nduration_ms = []\n', ["workloads[0].duration_ms", "empty"]),
        ("concurrency = []\n", ["concurrency:", "empty"]),
        ("workloads = []\n", ["workloads:", "empty"]),
        ('[[workloads]]\nduration_ms = 1\n', ["workloads[0].name", "missing"]),
        ('strategies = ["to-thread"\nloops = 3\n', ["invalid TOML", "line 2"]),
        ("duration_s = -1\n", ["duration_s:", "more than zero"]),
        ("rounds = 0\n", ["rounds:", "whole number from 1 to 100", "got 0"]),
        ("precision_pct = 0\n", ["precision_pct:", "above 0 and at most 100"]),
        ("time_budget_s = -3\n", ["time_budget_s:", "more than zero"]),
        ("seed = -1\n", ["seed:", "whole number from 0"]),
        ("utilisation = 3\n", ["utilisation:", "expected bool"]),
        ('[[workloads]]\nname = "sleep"\nduration_ms = 1979-05-27\n', ["duration_ms", "date"]),
        # A user function is checked in a child process (its import runs user code).
        pytest.param('[[workloads]]\nname = "tests.helpers:noop"\nsetup_scope = "global"\n',
                     ["setup_scope", "thread, process"], marks=pytest.mark.workers),
        pytest.param('[[workloads]]\nname = "tests.helpers:noop"\nsetup = "nosuchmod_q:make"\n',
                     ["setup", "no module named 'nosuchmod_q'"], marks=pytest.mark.workers),
        pytest.param('[[workloads]]\nname = "tests.helpers:noop"\nserver = { port = 80 }\n',
                     ["server", "no setting 'port'"], marks=pytest.mark.workers),
    ],
)
def test_invalid_scenarios_name_the_key_and_what_was_expected(text: str, fragments: list[str]) -> None:
    with pytest.raises(UsageError) as caught:
        parse(text)
    message = str(caught.value)
    assert message.startswith("s.toml: ")
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("bogus = 1\n", "bogus: unknown key"),
        ('duration_s = 1.0\nstrategies = ["to-thread"\nloops = 3\n', "line 3"),
        ('concurrency = "x"\n', "concurrency:"),
        ('[[workloads]]\nname = "nope"\n', "unknown workload 'nope'"),
        ('strategies = ["nope"]\n', "unknown strategy 'nope'"),
        ('loops = ["nope"]\n', "unknown loop 'nope'"),
        ('[[workloads]]\nname = "sleep"\nduration_ms = []\n', "empty"),
    ],
)
def test_cli_reports_a_bad_scenario_in_one_line_with_exit_2(
    tmp_path: Path, text: str, fragment: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    done = offbench_here("run", str(path))
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"offbench: error: {path}: ")
    assert fragment in lines[0]
    assert not done.stdout


def test_cli_names_the_shipped_scenarios_when_one_is_missing() -> None:
    done = offbench_here("run", "no-such-scenario")
    assert done.returncode == 2
    assert "no such scenario file" in done.stderr
    assert "quick" in done.stderr


def test_dry_run_shows_the_merged_matrix_without_running() -> None:
    done = offbench_here("run", "io-bound", "-s", "to-thread", "-c", "2", "--quick", "--dry-run")
    assert done.returncode == 0, done.stderr
    expected = len(build_settings(scenario.load("io-bound").choices).workloads)
    assert done.stdout.startswith(f"{expected} cells from io-bound")
    assert "to-thread" in done.stdout
    assert "direct" not in done.stdout
    assert "at least 0.05 s, after a warm-up until each task's first call" in done.stdout  # --quick


def test_list_shows_every_registered_name_and_shipped_scenario() -> None:
    done = offbench_here("list", "--json")
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    assert [w["name"] for w in listed["workloads"]] == [*workloads.names(), "module:function"]
    assert [s["name"] for s in listed["strategies"]] == strategies.names()
    assert [entry["name"] for entry in listed["loops"]] == loops.names()
    eager = next(entry for entry in listed["loops"] if entry["name"] == "asyncio-eager")
    assert eager["default"] is False
    assert eager["available"] is (sys.version_info >= (3, 12))
    assert [s["name"] for s in listed["scenarios"]] == list(scenario.shipped())
    assert all(entry["summary"] for section in listed.values() for entry in section)
    text = offbench_here("list")
    assert text.returncode == 0
    for name in [*workloads.names(), *strategies.names(), *scenario.shipped()]:
        assert name in text.stdout
