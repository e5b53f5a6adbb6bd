"""The command line as a user meets it: real processes, exit codes, stdout discipline."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from offbench import __version__
from offbench.model import results
from tests.run_cli import offbench, offbench_here, start_offbench

pytestmark = pytest.mark.workers

SMALL = ["-w", "sleep", "-s", "to-thread", "-l", "asyncio", "-c", "1", "-d", "0.1",
         "--warmup", "0.02", "--rounds", "1"]


def test_version() -> None:
    done = offbench("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"offbench {__version__}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "-w", "slep"], "unknown workload 'slep'"),
        (["run", "-s", "to_thread"], "did you mean 'to-thread'"),
        (["run", "-l", "trio"], "unknown loop 'trio'"),
        (["run", "-c", "0"], "concurrency must be between 1"),
        (["run", "-d", "-1"], "duration must be more than zero"),
        (["run", "-c", "many"], "--concurrency"),
        (["run", "-w", "nosuchmodule_xyz:fn"], "no module named 'nosuchmodule_xyz'"),
        (["run", "-w", "a:b:c"], "module:function"),
        (["run", "-w", "tests.helpers:not_callable"], "int object is not callable"),
        (["run", "-w", "tests.helpers:nope"], "module 'tests.helpers' has no attribute 'nope'"),
        (["run", "-o", "/proc/out.json"], "not writable"),
        (["run", "-o", "/nonexistent-dir/out.json"], "does not exist"),
        (["run", "--bogus"], "bogus"),
        (["run", "--lag-budget", "0"], "lag budget must be more than zero"),
        (["run", "--max-workers", "0"], "max_workers must be between 1"),
        (["run", "-w", "sleep", "--setup", "tests.helpers:noop"], "--setup needs a -w module:function"),
        (["run", "-w", "tests.helpers:noop", "--setup", "nosuchmod_q:make"],
         "no module named 'nosuchmod_q'"),
        (["run", "no-such-scenario"], "no such scenario file"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    done = offbench_here(*args)  # in this process: a refusal starts no worker
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("offbench: error: ")
    assert message in lines[0]
    assert "Traceback" not in done.stderr


def test_json_to_stdout_is_the_only_stdout(tmp_path: Path) -> None:
    done = offbench("run", *SMALL, "-o", "-")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["schema_version"] == results.SCHEMA_VERSION
    assert data["complete"] is True
    assert [r["status"] for r in data["results"]] == ["ok"]
    assert "to-thread" in done.stderr  # the table went to stderr


def test_piped_output_has_no_control_codes() -> None:
    done = offbench("run", *SMALL)
    assert done.returncode == 0, done.stderr
    assert "to-thread" in done.stdout
    assert "\x1b" not in done.stdout
    assert "\x1b" not in done.stderr


def test_no_color_at_a_terminal_means_no_escape_codes() -> None:
    import pty

    env = {**os.environ, "NO_COLOR": "1"}
    controller, terminal = pty.openpty()
    done = subprocess.run(
        [sys.executable, "-m", "offbench", "run", *SMALL],
        stdout=terminal, stderr=terminal, env=env, timeout=120,
    )
    os.close(terminal)
    output = b""
    try:
        while chunk := os.read(controller, 65536):
            output += chunk
    except OSError:
        pass
    os.close(controller)
    assert done.returncode == 0
    assert b"to-thread" in output
    assert b"\x1b" not in output


def test_failed_cells_give_exit_1_and_still_write_json(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    root = Path(__file__).resolve().parent.parent
    done = offbench("run", "-w", "tests.helpers:boom", "-w", "sleep", "-s", "direct", "-l",
                    "asyncio", "-c", "1", "-d", "0.1", "--warmup", "0", "-o", str(out), cwd=root)
    assert done.returncode == 1, done.stderr
    statuses = [r["status"] for r in json.loads(out.read_text())["results"]]
    assert statuses == ["error", "ok"]
    assert "ValueError: boom" in done.stdout


@pytest.mark.workers
def test_quick_run_measures_the_whole_default_matrix(quick_run: Path) -> None:
    out = quick_run
    stdout = out.with_suffix(".txt").read_text()
    data = json.loads(out.read_text())
    combos = {(r["workload"], r["strategy"], r["loop"]) for r in data["results"] if r["max_workers"] is None}
    # --quick measures the first installed loop only (asyncio): 4 workloads × 5 strategies.
    assert data["settings"]["loops"] == ["asyncio"]
    assert len(combos) == 4 * 5
    # The default executor has min(32, CPUs + 4) threads: fewer than 8 on a machine of 3 or fewer
    # CPUs, where to-thread is also measured with 8 threads at c=8 (4 workloads, one loop).
    sized = [r for r in data["results"] if r["max_workers"] is not None]
    assert len(data["results"]) == 2 * 20 + len(sized)
    if data["machine"]["default_executor_workers"] < 8:
        assert {(r["strategy"], r["max_workers"], r["concurrency"]) for r in sized} == {("to-thread", 8, 8)}
        assert len(sized) == 4
    assert all(len(r["units"]) >= 2 for r in data["results"])
    assert {r["concurrency"] for r in data["results"]} == {1, 8}
    assert all(r["status"] == "ok" for r in data["results"])
    assert data["machine"]["default_executor_workers"] >= 1
    for table in ("sleep", "socket", "cpu", "numpy"):
        assert table in stdout
    winners = {v["workload"]: (v["winner"] or {}).get("strategy") for v in data["verdicts"]}
    assert set(winners) == {"sleep", "socket", "cpu", "numpy"}
    # Waiting work at c=8 is offloaded to a reused pool, never to a thread made per call (which
    # the rules pick only where it alone meets the budget: QUALITY.md §7, 10 of 10 quick runs).
    # Whether the pool sized to 8 beats the default 6 threads beyond --quick's noise is not
    # asserted: it did in 9 of 10 quick runs there, and in 5 of 5 default runs.
    assert winners["sleep"] in {"default-executor", "to-thread"}
    assert winners["socket"] in {"default-executor", "to-thread", "process-pool"}
    if (os.cpu_count() or 1) >= 2:
        assert winners["cpu"] == "process-pool"
    assert "Verdict" in stdout
    # The headline names it, alone or in a per-concurrency plan ("use direct up to c=1, then
    # process-pool"), which a CI run of 383a0df gave.
    cpu_text = next(v["text"] for v in data["verdicts"] if v["workload"] == "cpu")
    assert cpu_text.startswith("use "), cpu_text
    assert "process-pool" in cpu_text, cpu_text
    # The semantics of every strategy on every loop, and the winner's caveats in the verdict.
    pairs = {(s["strategy"], s["loop"]) for s in data["semantics"]}
    assert pairs == {(s, loop) for s in data["settings"]["strategies"] for loop in data["settings"]["loops"]}
    assert all(s["error"] is None and len(s["findings"]) == 11 for s in data["semantics"])
    cpu = next(v for v in data["verdicts"] if v["workload"] == "cpu")
    if cpu["winner"]["strategy"] == "process-pool":
        assert any("pickled copies" in w for w in cpu["warnings"]), cpu["warnings"]
    for verdict in data["verdicts"]:
        assert all(w.startswith(f"{verdict['winner']['strategy']}: ") for w in verdict["warnings"])
    assert "⚠" in stdout


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stopped_run_keeps_what_it_measured(tmp_path: Path, signum: int, code: int) -> None:
    out = tmp_path / "out.json"
    process = start_offbench("run", "-w", "sleep", "-c", "1", "-c", "2", "-d", "0.1", "--rounds", "3",
                             "--warmup", "0", "--no-semantics", "--no-pool-costs", "-o", str(out))
    assert process.stderr is not None
    first = process.stderr.readline()
    assert first.startswith("round 1:"), first
    assert process.stderr.readline().startswith("round 2:")  # every cell has a unit
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    data = json.loads(out.read_text())
    assert data["complete"] is False, (first, stderr[-3000:])
    assert data["results"]
    assert all(1 <= len(r["units"]) < 3 for r in data["results"]), "stopped in the second round"
    assert {r["stopped"] for r in data["results"]} == {"interrupted"}
    pids = {r["worker_pid"] for r in data["results"] if r["worker_pid"]}
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)


def test_a_second_ctrl_c_stops_at_once_and_leaves_no_process(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    process = start_offbench("run", "-w", "sleep", "-s", "process-pool", "-l", "asyncio", "-c", "2",
                             "-d", "2", "--warmup", "0", "--no-semantics", "--no-pool-costs", "-o", str(out))
    assert process.stderr is not None
    assert process.stderr.readline().startswith("round 1:")  # the first unit starts its worker and pool
    time.sleep(0.6)
    descendants = psutil.Process(process.pid).children(recursive=True)
    assert descendants, "the second cell's worker should be running"
    process.send_signal(signal.SIGINT)
    process.send_signal(signal.SIGINT)
    began = time.monotonic()
    process.communicate(timeout=30)
    assert process.returncode == 130
    assert time.monotonic() - began < 5
    alive = [p for p in descendants if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, [p.cmdline() for p in alive]


def test_uvloop_missing_is_refused_when_asked_for_and_skipped_otherwise(tmp_path: Path) -> None:
    # A module that shadows uvloop and fails to import, as on a platform without uvloop.
    (tmp_path / "uvloop.py").write_text("raise ImportError('uvloop does not support Windows')\n")
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    env["PYTHONPATH"] = str(tmp_path)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "offbench", *args], capture_output=True,
                              text=True, env=env, timeout=60)

    asked = run("run", "-l", "uvloop", "--dry-run")
    assert asked.returncode == 2
    (line,) = asked.stderr.strip().splitlines()
    assert "loop 'uvloop' is not available here: uvloop does not support Windows" in line
    default = run("run", "--dry-run")
    assert default.returncode == 0, default.stderr
    assert "loops       asyncio\n" in default.stdout


def test_stopping_a_socket_cell_stops_its_server_too(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    process = start_offbench("run", "-w", "socket", "-s", "to-thread", "-l", "asyncio", "-c", "2",
                             "-d", "2", "--warmup", "0", "--no-semantics", "-o", str(out))
    assert process.stderr is not None
    assert process.stderr.readline().startswith("round 1:")  # the server starts, then the first unit
    time.sleep(0.5)
    descendants = psutil.Process(process.pid).children(recursive=True)
    assert len(descendants) >= 2, "the server and the worker should be running"
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=30)
    assert process.returncode == 143
    assert json.loads(out.read_text())["complete"] is False
    alive = [p for p in descendants if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, [p.cmdline() for p in alive]
