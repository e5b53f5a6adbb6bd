"""``offbench watch`` and the attachment under it: a real program's loops measured, the program untouched.

Timing margins come from physics: a ``time.sleep(0.05)`` on the loop is a 50 ms stall,
and the probe tick that falls due just after the sleep began waits for all of it but
one probe interval (1 ms); 45 ms leaves the rest for where the tick fell and for
``time.sleep``'s own granularity. A loop that is not blocked answers within a few ms on
this 2-core shared machine (PITFALLS.md, "Noise"): budgets that must hold are 100 ms or more.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offbench import stats
from offbench.measure import attach
from offbench.measure.totals import LagCounts, Totals, measure_hint
from offbench.model.watched import LoopFigures
from tests.run_cli import ROOT, offbench

EXAMPLE = ROOT / "examples" / "blocking_server.py"
SLEEP_LINE = next(n for n, line in enumerate(EXAMPLE.read_text().splitlines(), 1)
                  if line.strip() == "time.sleep(QUERY_S)")
"""The line of the example that blocks its loop (in ``slow_query``)."""
STALL_FLOOR_MS = 45.0
"""Lag of a tick held up by a 50 ms sleep, at least (see the module's doc)."""


def _start_watch(*args: str) -> subprocess.Popen[str]:
    """Start ``offbench watch ARGS`` in a session of its own (a terminal's foreground job), with pipes."""
    return subprocess.Popen(
        [sys.executable, "-m", "offbench", "watch", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, cwd=ROOT, env={k: v for k, v in os.environ.items() if k != "COLUMNS"},
        start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _port(process: subprocess.Popen[str]) -> tuple[str, int]:
    assert process.stdout is not None
    line = process.stdout.readline()
    found = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+)\n", line)
    assert found, f"the server did not start: {line!r}"
    return line, int(found.group(1))


def _get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
        return str(answer.read().decode())


def _slow_query_site(report: dict[str, object]) -> dict[str, object]:
    loops = report["loops"]
    assert isinstance(loops, list)
    assert len(loops) == 1, loops
    sites = [s for s in loops[0]["sites"] if s["function"] == "slow_query"]
    assert sites, f"no stall named slow_query: {loops[0]['sites']}"
    return dict(sites[0])


@pytest.mark.workers
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_watch_names_the_blocking_handler_while_requests_drive_the_example(loop: str, tmp_path: Path) -> None:
    output = tmp_path / "report.json"
    flags = ["--uvloop"] if loop == "uvloop" else []
    watcher = _start_watch("--lag-budget", "10", "-o", str(output), "--",
                           sys.executable, "examples/blocking_server.py", "--port", "0", *flags)
    try:
        listening, port = _port(watcher)
        for _ in range(3):
            assert _get(port, "/slow") == "42 rows\n"
            assert _get(port, "/fast") == "42 rows\n"
        assert _get(port, "/quit") == "bye\n"
        out, err = watcher.communicate(timeout=60)
    finally:
        watcher.kill()
        watcher.wait()
    # The program's output comes through as it wrote it, and offbench's report after it, on stderr.
    assert listening + out == listening
    assert f"blocking_server.py:{SLEEP_LINE} (slow_query)" in err, err
    assert "in time.sleep(QUERY_S), called from" in err
    assert "offbench run -w examples.blocking_server:slow_query" in err
    # The program exited 0; three 50 ms stalls break a 10 ms budget on p99, so offbench says 1.
    assert watcher.returncode == 1, err
    report = json.loads(output.read_text())
    assert report["exit_code"] == 0
    assert report["report"] == "final"
    assert report["over_budget"] == [f"MainThread / {loop}"]
    assert report["loops"][0]["loop"] == loop
    site = _slow_query_site(report)
    assert site["measure"] == "offbench run -w examples.blocking_server:slow_query"
    # Three /slow requests, three 50 ms stalls (one may go unsampled on a loaded machine: the
    # watchdog thread must get a CPU within the stall); the /fast ones block nothing.
    assert 2 <= site["stalls"] <= 3, site
    assert site["worst_ms"] >= STALL_FLOOR_MS
    assert site["total_ms"] >= site["stalls"] * STALL_FLOOR_MS
    assert report["loops"][0]["lag_ms"]["max"] >= STALL_FLOOR_MS


PROGRAM = """\
import asyncio, os, subprocess, sys, time

async def main():
    time.sleep(0.03)
    await asyncio.sleep(0)
    if sys.argv[1] == "raise":
        raise RuntimeError("the program failed")

print("argv", sys.argv[1:], "PYTHONPATH", os.environ.get("PYTHONPATH"))
print("hook on sys.path:", any(p.rstrip("/").endswith("hook") for p in sys.path))
print("their sitecustomize ran:", "mine" in sys.modules)
print("OFFBENCH_WATCH" in os.environ, file=sys.stderr)
child = subprocess.run([sys.executable, "-c", "import os, sys; print('child PYTHONPATH', "
                        "os.environ.get('PYTHONPATH'), 'mine' in sys.modules)"],
                       capture_output=True, text=True)
print(child.stdout, end="")
asyncio.run(main())
print("done")
sys.exit(int(sys.argv[2]))
"""


def _program(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """Write the program, and a folder of the user's own on PYTHONPATH with a ``sitecustomize`` of theirs."""
    program = tmp_path / "app.py"
    program.write_text(PROGRAM)
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "sitecustomize.py").write_text("import sys\nsys.modules['mine'] = sys\n")
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    env["PYTHONPATH"] = str(lib)
    return program, env


@pytest.mark.workers
@pytest.mark.parametrize(("how", "code"), [("return", "3"), ("raise", "0")])
def test_the_programs_output_exit_code_and_environment_come_through_unchanged(
    tmp_path: Path, how: str, code: str
) -> None:
    program, env = _program(tmp_path)
    command = [sys.executable, str(program), how, code]
    plain = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    watched = subprocess.run([sys.executable, "-m", "offbench", "watch", "--", *command], capture_output=True,
                             text=True, env=env, cwd=tmp_path, timeout=60)
    assert plain.returncode == (3 if how == "return" else 1), plain.stderr
    assert watched.returncode == plain.returncode
    assert watched.stdout == plain.stdout
    # Their own sitecustomize still runs; PYTHONPATH and sys.path are theirs, and so are the
    # environment and start-up of the processes the program starts.
    assert "their sitecustomize ran: True" in plain.stdout
    assert f"PYTHONPATH {env['PYTHONPATH']}" in plain.stdout
    assert "hook on sys.path: False" in plain.stdout
    assert f"child PYTHONPATH {env['PYTHONPATH']} True" in plain.stdout
    # Its stderr (a traceback, when it raised) comes first, whole; offbench's report follows.
    assert watched.stderr.startswith(plain.stderr)
    report = watched.stderr[len(plain.stderr):]
    assert report.startswith("offbench watch: "), report
    assert re.search(r"app\.py:4 \(main\): once", report), report  # its 30 ms sleep, beyond 10 ms


@pytest.mark.workers
def test_ctrl_c_reaches_the_program_once_and_the_report_still_comes(tmp_path: Path) -> None:
    output = tmp_path / "report.json"
    watcher = _start_watch("-o", str(output), "--", sys.executable, "examples/blocking_server.py",
                           "--port", "0")
    try:
        _, port = _port(watcher)
        _get(port, "/slow")
        os.killpg(watcher.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole foreground group
        _, err = watcher.communicate(timeout=60)
    finally:
        watcher.kill()
        watcher.wait()
    # The example catches KeyboardInterrupt (one, from asyncio.run's own handler) and exits 130.
    assert watcher.returncode == 130, err
    assert err.startswith("interrupted\n"), err
    assert "Traceback" not in err
    assert f"blocking_server.py:{SLEEP_LINE} (slow_query)" in err
    report = json.loads(output.read_text())
    assert report["exit_code"] == 130
    assert report["report"] == "final"
    assert _slow_query_site(report)["worst_ms"] >= STALL_FLOOR_MS


@pytest.mark.workers
def test_sigterm_to_offbench_is_passed_on_to_the_program(tmp_path: Path) -> None:
    watcher = _start_watch("--", sys.executable, "examples/blocking_server.py", "--port", "0")
    try:
        _port(watcher)
        watcher.send_signal(signal.SIGTERM)  # offbench alone: it passes it on
        _, err = watcher.communicate(timeout=60)
    finally:
        watcher.kill()
        watcher.wait()
    # The example does not handle SIGTERM: it dies of it at once, without running its exit hooks.
    assert watcher.returncode == 128 + signal.SIGTERM, err
    assert "killed by SIGTERM" in err
    assert "before it reported" in err


@pytest.mark.workers
def test_a_program_that_runs_no_loop_imports_nothing_more(tmp_path: Path) -> None:
    done = offbench("watch", "--", sys.executable, "-c", "import sys; print('asyncio' in sys.modules)")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "False\n"
    assert "the program ran no event loop" in done.stderr


@pytest.mark.workers
def test_a_python_that_ignores_pythonpath_is_said_to() -> None:
    code = "import asyncio; asyncio.run(asyncio.sleep(0))"
    done = offbench("watch", "--", sys.executable, "-I", "-c", code)
    assert done.returncode == 0
    assert "wrote no report" in done.stderr
    assert "python -I" in done.stderr


@pytest.mark.workers
@pytest.mark.parametrize(("args", "message"), [
    ([], "watch needs a program to run"),
    (["--lag-stat", "p42", "--", "python"], "--lag-stat must be one of p50, p90, p99, p999, max"),
    (["--lag-budget", "0", "--", "python"], "--lag-budget must be a number of milliseconds above 0"),
    (["-o", "-", "--", "python"], "-o - is not possible"),
    (["--", "no-such-program-offbench"], "cannot run no-such-program-offbench"),
])
def test_usage_errors_are_one_line(args: list[str], message: str) -> None:
    done = offbench("watch", *args)
    assert done.returncode == 2
    assert done.stderr.startswith(f"offbench: error: {message}"), done.stderr
    assert done.stderr.count("\n") == 1


# The attachment itself, in this process.


async def _blocked_loop(sleep_s: float, run_s: float) -> tuple[LoopFigures, int, int]:
    """Attach to the running loop, block it once with ``time.sleep(sleep_s)``, run ``run_s`` in all."""
    loop = asyncio.get_running_loop()
    before = len(asyncio.all_tasks())
    totals = Totals(loop="asyncio", thread="MainThread", evidence_ms=10.0)
    attachment = attach.Attachment(loop, totals, attach.Options(fold_s=0.05))
    attachment.start()
    during = len(asyncio.all_tasks())
    try:
        await asyncio.sleep(0.01)
        time.sleep(sleep_s)  # the line the evidence must name
        await asyncio.sleep(run_s)
    finally:
        attachment.stop()
    return totals.figures(), before, during


def test_an_attachment_names_the_line_and_is_invisible_to_the_program() -> None:
    figures, before, during = asyncio.run(_blocked_loop(0.05, 0.3))
    assert during == before, "the probe must not be a task: programs gather and count their tasks"
    assert figures.runs == 1
    assert figures.ticks >= 200  # 0.36 s of 1 ms ticks, the stall's back-filled
    assert figures.lag_ms is not None
    assert figures.lag_ms.max >= STALL_FLOOR_MS
    [site] = [s for s in figures.sites if s.function == "_blocked_loop"]
    assert site.stalls == 1
    assert site.worst_ms >= STALL_FLOOR_MS
    assert site.code == "time.sleep(sleep_s)  # the line the evidence must name"
    assert site.file.endswith("test_watch.py")
    assert site.measure.startswith("move `time.sleep(sleep_s)")  # a coroutine: wrap the call first
    assert figures.busy is not None
    assert figures.busy >= 0.1  # 50 ms of 360 ms, at least


def test_the_watchdogs_own_start_is_not_the_programs_stall(monkeypatch: pytest.MonkeyPatch) -> None:
    # Thread.start() waits until the new thread runs: on a busy host that took 57 ms once, and the
    # plugin told a test it had blocked its loop "in Thread.start". Here every start waits 50 ms.
    start = threading.Thread.start

    def slow_start(thread: threading.Thread) -> None:
        time.sleep(0.05)  # as a host that keeps the new thread off every CPU would
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", slow_start)
    figures, _, _ = asyncio.run(_blocked_loop(0.0, 0.1))  # an attachment over a loop blocked by nothing
    assert figures.lag_ms is not None
    # An idle loop answers within a few ms here (see the module's doc); counted, the start would be 49.
    assert figures.lag_ms.max < STALL_FLOOR_MS, figures


SLOW_STARTS = """\
import asyncio, threading, time

start = threading.Thread.start

def slow_start(thread):
    time.sleep(0.05)  # as a host that keeps the new thread off every CPU would
    start(thread)

threading.Thread.start = slow_start

async def main():
    await asyncio.sleep(0.2)

asyncio.run(main())
"""


@pytest.mark.workers
def test_the_hooks_own_thread_starts_are_not_the_programs_stall(tmp_path: Path) -> None:
    # offbench watch starts a snapshot thread and a watchdog per loop: each Thread.start() waits
    # until the new thread runs, 15 ms and more on a busy host, and the report once blamed the
    # program's first stall on it (busy-core series, 2026-12-02). Here every start waits 50 ms.
    program = tmp_path / "slow_starts.py"
    program.write_text(SLOW_STARTS)
    output = tmp_path / "report.json"
    done = offbench("watch", "-o", str(output), "--", sys.executable, str(program))
    assert done.returncode == 0, done.stderr
    [loop] = json.loads(output.read_text())["loops"]
    # An idle loop answers within a few ms here (see the module's doc); counted, a start would be 49.
    assert loop["lag_ms"]["max"] < STALL_FLOOR_MS, loop
    assert loop["sites"] == [], loop["sites"]


def test_folding_keeps_memory_bounded_and_loses_no_tick() -> None:
    async def run() -> tuple[LoopFigures, int, float, float]:
        loop = asyncio.get_running_loop()
        totals = Totals(loop="asyncio", thread="MainThread", evidence_ms=10.0)
        attachment = attach.Attachment(loop, totals, attach.Options(fold_s=0.05))
        began = time.perf_counter()
        attachment.start()
        armed = time.perf_counter()  # the probe is armed inside start(), after the watchdog's thread began
        await asyncio.sleep(0.5)
        assert attachment.recorder is not None
        held = len(attachment.recorder.samples)  # ticks not folded yet: one fold period's, about 50
        before_stop = time.perf_counter()
        attachment.stop()
        return totals.figures(), held, (before_stop - armed) * 1000, (time.perf_counter() - began) * 1000

    figures, held, least_ms, most_ms = asyncio.run(run())
    assert held <= 250  # unfolded, all 500 would be held; a late fold (a busy machine) holds more than 50
    # One tick per millisecond from a millisecond after the probe is armed, folded or not, every one
    # counted: as many as whole milliseconds between arming and stop, whatever the machine did.
    assert least_ms - 2 <= figures.ticks <= most_ms


@given(st.lists(st.integers(min_value=0, max_value=10**10), min_size=1, max_size=300))
def test_lag_counts_agree_with_exact_percentiles(lags_ns: list[int]) -> None:
    counts = LagCounts()
    counts.add(lags_ns)
    summary = counts.summary()
    assert summary is not None
    exact = sorted(ns / 1e6 for ns in lags_ns)
    for q, value in ((50, summary.p50), (90, summary.p90), (99, summary.p99), (99.9, summary.p999)):
        # A bucket keeps 10 significant bits of whole µs: each value is off by less than 2⁻⁹ of
        # itself and 1 µs, and a percentile interpolated between two is off by as much as the larger.
        assert abs(value - stats.percentile(exact, q)) <= exact[-1] * 2**-9 + 1e-3
    assert summary.max == exact[-1]


def test_the_hook_folder_holds_the_hook_alone() -> None:
    hook = ROOT / "src" / "offbench" / "measure" / "hook"
    assert sorted(p.name for p in hook.iterdir() if p.suffix == ".py") == ["sitecustomize.py"]


def test_a_stall_in_a_module_level_function_gets_the_command(tmp_path: Path) -> None:
    module = tmp_path / "blocky.py"
    module.write_text(textwrap.dedent("""\
        import time

        def query():
            time.sleep(0.001)

        def query_with(arg):
            time.sleep(arg)

        class Db:
            def query(self):
                time.sleep(0.001)
    """))
    sys.path.insert(0, str(tmp_path))
    try:
        import blocky  # type: ignore[import-not-found]

        file = str(module)
        assert measure_hint(file, "query", "time.sleep(0.001)") == "offbench run -w blocky:query"
        assert "no arguments" in measure_hint(file, "query_with", "time.sleep(arg)")
        assert "no arguments" in measure_hint(file, "Db.query", "time.sleep(0.001)")
        assert "module-level function of blocky" in measure_hint(file, "f.<locals>.g", "x()")
        assert blocky.query() is None
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("blocky", None)
