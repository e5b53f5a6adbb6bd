"""Your own function end to end: examples/, setup factories, and what fails as an error cell."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.workers

ROOT = Path(__file__).resolve().parent.parent
SHORT = ["-l", "asyncio", "-d", "0.2", "--warmup", "0.05"]
ONE = [*SHORT, "--rounds", "1"]
"""One unit a cell: these tests ask whether an example works, not how precisely it measures."""


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any], str]:
    """Run ``offbench run ARGS -o -`` from the repository root; return exit code, JSON, stderr."""
    full_env = {k: v for k, v in os.environ.items() if k != "COLUMNS"} | (env or {})
    done = subprocess.run(
        [sys.executable, "-m", "offbench", "run", *args, "-o", "-"],
        capture_output=True, text=True, timeout=300, cwd=ROOT, env=full_env,
    )
    return done.returncode, json.loads(done.stdout) if done.stdout else {}, done.stderr


def by_strategy(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["strategy"]: r for r in data["results"]}


def test_documented_sqlite_command_works_from_the_repository_root() -> None:
    code, data, err = run("-w", "examples.sqlite_query:query", "-s", "to-thread", "-s", "process-pool",
                          "-c", "2", *ONE)
    assert code == 0, err
    assert all(r["status"] == "ok" and r["ops"] > 0 for r in data["results"])


def test_sqlite_scenario_with_a_per_thread_connection(tmp_path: Path) -> None:
    code, data, err = run("examples/sqlite.toml", "-s", "to-thread", "-s", "process-pool", "-c", "2",
                          *ONE)
    assert code == 0, err
    results = by_strategy(data)
    assert set(results) == {"to-thread", "process-pool"}
    assert all(r["ops"] > 0 for r in results.values())
    assert float(results["to-thread"]["details"]["setup_s"]) >= 0


def test_http_example_waits_for_the_loopback_server() -> None:
    code, data, err = run("examples/http.toml", "-s", "to-thread", "-c", "1", "-c", "4", *ONE)
    assert code == 0, err
    for result in data["results"]:
        assert result["status"] == "ok"
        assert result["ops"] > 0
        # The server answers after 5 ms: no call can be quicker.
        assert result["op_latency_ms"]["p50"] >= 5.0


def test_unpicklable_result_fails_only_the_process_pool_cell() -> None:
    code, data, err = run("-w", "tests.user_functions:generator", "-s", "to-thread",
                          "-s", "process-pool", "-c", "1", *ONE)
    assert code == 1, err
    results = by_strategy(data)
    assert results["to-thread"]["status"] == "ok"
    assert results["process-pool"]["status"] == "error"
    assert "pickle" in results["process-pool"]["error"].lower()


def test_a_module_that_fails_to_import_is_an_error_cell_and_the_run_goes_on() -> None:
    code, data, err = run("-w", "tests.broken_module:call", "-w", "sleep", "-s", "to-thread",
                          "-c", "1", *ONE)
    assert code == 1, err
    status = {r["workload"]: r for r in data["results"]}
    assert status["tests.broken_module:call"]["status"] == "error"
    assert "RuntimeError: broken on import" in status["tests.broken_module:call"]["error"]
    assert status["sleep"]["status"] == "ok"


def setup_calls(log: Path) -> list[tuple[str, str]]:
    return [tuple(line.split()) for line in log.read_text().splitlines()]  # type: ignore[misc]


def test_thread_scoped_setup_runs_once_per_thread(tmp_path: Path) -> None:
    log = tmp_path / "setup.log"
    code, data, err = run("-w", "tests.user_functions:use_token",
                          "--setup", "tests.user_functions:make_token", "-s", "to-thread",
                          "--max-workers", "2", "-c", "4", "--rounds", "2", *SHORT,
                          env={"OFFBENCH_TEST_SETUP_LOG": str(log)})
    assert code == 0, err
    assert data["results"][0]["ops"] > 4
    calls = setup_calls(log)
    assert len(set(calls)) == len(calls)
    per_worker = Counter(pid for pid, _ in calls)
    # Each of the cell's 2 units (worker processes): its main thread (before the loop starts) and
    # at most the pool's 2 threads.
    assert len(per_worker) == 2
    assert all(2 <= n <= 3 for n in per_worker.values()), per_worker


def test_process_scoped_setup_runs_once_per_process(tmp_path: Path) -> None:
    log = tmp_path / "setup.log"
    scenario = tmp_path / "s.toml"
    scenario.write_text(
        'strategies = ["to-thread", "process-pool"]\nconcurrency = [4]\nmax_workers = [2]\n'
        "rounds = 2\n"
        '[[workloads]]\nname = "tests.user_functions:use_token"\n'
        'setup = "tests.user_functions:make_token"\nsetup_scope = "process"\n'
    )
    code, _, err = run(str(scenario), *SHORT, env={"OFFBENCH_TEST_SETUP_LOG": str(log)})
    assert code == 0, err
    pids = [pid for pid, _ in setup_calls(log)]
    assert len(pids) == len(set(pids))
    # Per strategy, two cell workers one after the other; process-pool's each start 2 more.
    assert len(pids) == 2 * 2 + 2 * 2
