"""Property tests: no scenario file and no command line makes offbench raise anything but a usage error."""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offbench import cli
from offbench.errors import UsageError
from offbench.plan import scenario
from offbench.plan.settings import build_settings
from tests.run_cli import PROCESS_WIDE

KEYS = [
    "description", "strategies", "loops", "concurrency", "max_workers", "duration_s", "warmup_s",
    "probe_interval_ms", "stall_threshold_ms", "cell_timeout_s", "lag_budget_ms", "samples",
    "processes", "bogus",
]
WORKLOAD_KEYS = ["name", "duration_ms", "iterations", "size", "delay_ms", "args", "kwargs",
                 "setup", "setup_scope", "server", "bogus"]
NAMES = ["sleep", "socket", "cpu", "numpy", "to-thread", "direct", "process-pool", "asyncio",
         "uvloop", "cores", "default", "tests.helpers:noop", "nosuchmod:fn", "x:", ""]

scalars = st.one_of(
    st.integers(min_value=-10**6, max_value=10**6),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6),
    st.booleans(),
    st.sampled_from(NAMES),
    st.text(max_size=8),
)
values = st.one_of(scalars, st.lists(scalars, max_size=4))


def toml_value(value: object) -> str:
    """Write a scalar or a list as TOML (JSON's syntax for these is TOML's)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)


@st.composite
def scenario_files(draw: st.DrawFn) -> str:
    """A TOML file of offbench's keys (and a stray one) with values of any type."""
    top = draw(st.dictionaries(st.sampled_from(KEYS), values, max_size=6))
    tables = draw(st.lists(st.dictionaries(st.sampled_from(WORKLOAD_KEYS), values, max_size=4),
                           max_size=3))
    lines = [f"{key} = {toml_value(value)}" for key, value in top.items()]
    for table in tables:
        lines.append("[[workloads]]")
        lines.extend(f"{key} = {toml_value(value)}" for key, value in table.items())
    return "\n".join(lines) + "\n"


def refusal(action: Callable[[], object]) -> str | None:
    """Run ``action``; return the message of the ``UsageError`` it raised, if any (others propagate)."""
    try:
        action()
    except UsageError as exc:
        return str(exc)
    return None


@pytest.mark.workers  # a scenario naming a module:function that exists is checked by importing it in a child
@settings(max_examples=300, deadline=None)
@given(scenario_files())
def test_any_scenario_is_accepted_or_refused_in_one_line(text: str) -> None:
    message = refusal(lambda: build_settings(scenario.parse(text.encode(), "s.toml").choices))
    if message is not None:
        assert message.startswith("s.toml: ")
        assert "\n" not in message


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_as_a_scenario_are_accepted_or_refused(data: bytes) -> None:
    message = refusal(lambda: scenario.parse(data, "s.toml"))
    if message is not None:
        assert message.startswith("s.toml")
        assert "\n" not in message


OPTIONS = ["-w", "-s", "-l", "-c", "--max-workers", "-d", "--warmup", "--lag-budget", "--rounds",
           "--precision", "--time-budget", "--seed", "--probe-interval", "--stall-threshold",
           "--cell-timeout", "--setup"]
words = st.one_of(st.sampled_from(NAMES), st.integers(-5, 5000).map(str),
                  st.floats(allow_nan=True, allow_infinity=True).map(str), st.text(max_size=6))


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    """``offbench run`` with options and values of any kind, ending in --dry-run."""
    pairs = draw(st.lists(st.tuples(st.sampled_from(OPTIONS), words), max_size=5))
    args = [part for pair in pairs for part in pair]
    if draw(st.booleans()):
        args.append(draw(words))
    return ["run", *args, "--dry-run"]


@pytest.mark.workers
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(argv=command_lines())
def test_any_command_line_runs_or_is_refused_in_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    with contextlib.ExitStack() as undo:
        for name in PROCESS_WIDE:  # what main sets up for a whole process, not this test's
            undo.enter_context(mock.patch.object(cli, name, return_value=None))
        with pytest.raises(SystemExit) as ended:
            cli.main(argv)
    err = capsys.readouterr().err
    assert ended.value.code in (0, 2), (argv, err)
    assert "Traceback" not in err
    if ended.value.code == 2:
        assert len(err.strip().splitlines()) == 1, (argv, err)
