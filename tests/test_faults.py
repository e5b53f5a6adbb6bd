"""Nothing overwritten, nothing orphaned: offbench killed, and user code that misbehaves (issue 20).

CI runs these as root, where they matter most: a rename over ``-o /dev/null`` would replace
the machine's ``/dev/null``. No test here points offbench at a real device or system path:
device nodes are stand-ins made with ``os.mknod`` in ``tmp_path`` (same major/minor as
``/dev/null`` and ``/dev/full``, so writing to them is harmless), FIFOs come from
``os.mkfifo``.

Times are physics, not tuning: a SIGKILL takes effect before the signal call returns,
``PR_SET_PDEATHSIG`` fires as the parent exits, and a guardian wakes on its pipe's EOF;
"within a second" is the issue's own bound for all of it, tens of times what it takes
here (``docs/faults.md``).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from offbench import outputs, processes
from offbench.errors import UsageError
from offbench.model import results
from offbench.model.cells import CellSpec
from offbench.model.settings import WorkloadSpec
from offbench.plan.settings import Choices, build_settings
from offbench.processes import frames, scratch
from offbench.run import runner
from offbench.workloads import user
from tests.run_cli import ROOT, offbench

AS_ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="device nodes need root (CI runs as root)")
LINUX = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and prctl are Linux's")
GONE_WITHIN_S = 1.0
"""The issue's bound for processes, sockets and folders to be gone after offbench dies."""


def cell(workload: str, strategy: str = "direct", duration_s: float = 0.2) -> CellSpec:
    return CellSpec(
        workload=workload, params={}, strategy=strategy, loop="asyncio", concurrency=1,
        duration_s=duration_s, warmup_s=0.05, probe_interval_ms=1.0, stall_threshold_ms=10.0,
    )


# --- user functions that misbehave (imported by name in the workers) ------------------------------

_done_once = False


def _first_call() -> bool:
    global _done_once
    first, _done_once = not _done_once, True
    return first


def fork_and_hold() -> None:
    """Fork, once per process, a child that sleeps for a minute holding every inherited file."""
    if _first_call() and os.fork() == 0:
        time.sleep(60)
        os._exit(0)
    time.sleep(0.001)


def fork_and_return() -> None:
    """Fork once per process, and return in both: the copy runs on in offbench's harness."""
    if _first_call():
        os.fork()
    time.sleep(0.001)


def _leave_sessions(pids_file: str) -> None:
    """Leave a sleeper in a session of its own and a daemon (fork, setsid, fork); note their pids."""
    read_end, write_end = os.pipe()
    if os.fork() == 0:
        os.setsid()
        os.write(write_end, b"%d\n" % os.getpid())
        time.sleep(60)
        os._exit(0)
    middle = os.fork()
    if middle == 0:
        os.setsid()
        if os.fork() == 0:
            os.write(write_end, b"%d\n" % os.getpid())
            time.sleep(60)
            os._exit(0)
        os._exit(0)
    # As a daemon's starter does: wait for the middle process, so that exactly two are left
    # (on a busy host it was once still exiting when the worker died, and counted as a third).
    os.waitpid(middle, 0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as ready, open(pids_file, "ab") as noted:
        noted.write(ready.readline() + ready.readline())  # both are in their sessions now


def leave_sessions() -> None:
    """Once per process, :func:`_leave_sessions`; then a millisecond of work per call."""
    if _first_call():
        _leave_sessions(os.environ["OFFBENCH_TEST_PIDS"])
    time.sleep(0.001)


def leave_sessions_and_hang() -> None:
    """:func:`_leave_sessions`, then never return."""
    _leave_sessions(os.environ["OFFBENCH_TEST_PIDS"])
    time.sleep(3600)


def leave_sessions_and_die() -> None:
    """:func:`_leave_sessions`, then end the worker at once, without a report."""
    _leave_sessions(os.environ["OFFBENCH_TEST_PIDS"])
    os._exit(3)


def mark_and_hang() -> None:
    """Note this process's pid in $OFFBENCH_TEST_MARK, then never return."""
    with open(os.environ["OFFBENCH_TEST_MARK"], "a") as mark:
        mark.write(f"{os.getpid()}\n")
    time.sleep(3600)


# --- helpers --------------------------------------------------------------------------------------


def gone(pids: list[int], within: float) -> list[int]:
    """Wait up to ``within`` seconds for ``pids`` to end; return those still running.

    A zombie counts as gone (it holds nothing); one that is this process's child (this
    process may have adopted it, see :func:`offbench.processes.adopt_orphans`) is reaped.
    """
    deadline = time.monotonic() + within
    while True:
        running = []
        for pid in pids:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    running.append(pid)
            except psutil.NoSuchProcess:
                pass
        if not running or time.monotonic() > deadline:
            return running
        time.sleep(0.01)


def scratch_of(pid: int) -> list[str]:
    """Return the children's folders of offbench process ``pid`` in the temporary directory."""
    folder = tempfile.gettempdir()
    return [name for name in os.listdir(folder) if name.startswith(processes.SCRATCH_PREFIX)
            and (processes.scratch_owner(os.path.join(folder, name)) or (0,))[0] == pid]


def start(*args: str, cwd: Path = ROOT) -> subprocess.Popen[str]:
    """Start ``python -m offbench ARGS`` with pipes, as a CI job would, to kill it midway."""
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    return subprocess.Popen(
        [sys.executable, "-m", "offbench", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True, cwd=cwd, env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for_stderr(process: subprocess.Popen[str], text: str, timeout: float) -> str:
    """Read ``process``'s stderr until ``text`` shows (or it ends, or ``timeout``); return what was read."""
    assert process.stderr is not None
    fd = process.stderr.fileno()
    seen = b""
    deadline = time.monotonic() + timeout
    while text.encode() not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            seen += chunk
    return seen.decode()


def wait_for(condition: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.05)


def finish(process: subprocess.Popen[str]) -> None:
    """Reap ``process`` and close its pipe (it was killed)."""
    process.wait(timeout=30)
    if process.stderr is not None:
        process.stderr.close()


def listening_ports(pids: list[int]) -> set[int]:
    ports = set()
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            ports |= {c.laddr.port for c in psutil.Process(pid).net_connections(kind="tcp")
                      if c.status == psutil.CONN_LISTEN}
    return ports


def still_listening(ports: set[int]) -> set[int]:
    return {c.laddr.port for c in psutil.net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr.port in ports}


@pytest.fixture
def mark(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The file :func:`mark_and_hang` notes its pid in (inherited by offbench and its workers)."""
    path = tmp_path / "mark"
    monkeypatch.setenv("OFFBENCH_TEST_MARK", str(path))
    return path


# --- 1. output paths ------------------------------------------------------------------------------


def device(folder: Path, name: str, minor: int) -> Path:
    """A character device node like /dev/null (minor 3) or /dev/full (minor 7), in ``folder``."""
    node = folder / name
    os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, minor))
    return node


def is_device(path: Path, minor: int) -> bool:
    info = os.lstat(path)
    return stat.S_ISCHR(info.st_mode) and info.st_rdev == os.makedev(1, minor)


@AS_ROOT
def test_a_device_node_is_written_to_never_replaced(tmp_path: Path) -> None:
    null, full = device(tmp_path, "null", 3), device(tmp_path, "full", 7)
    outputs.check_writable(null)
    outputs.write_atomic(null, b"{}\n")
    assert is_device(null, 3)
    written = outputs.Outputs(json=str(full))
    written.write("json", lambda: b"{}\n")
    assert written.failed  # /dev/full: "No space left on device", said in one line, exit 1
    assert is_device(full, 7)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full", "null"]  # no temporary file left


@pytest.mark.workers
@AS_ROOT
def test_offbench_writes_to_a_device_node_and_through_a_symlink_leaving_both(tmp_path: Path) -> None:
    null = device(tmp_path, "null", 3)
    (tmp_path / "link").symlink_to("real.json")
    for target in (null, tmp_path / "link"):
        done = offbench("check", "-s", "direct", "-l", "asyncio", "-o", str(target))
        assert done.returncode == 0, done.stderr
    assert is_device(null, 3)
    assert (tmp_path / "link").is_symlink()
    assert os.readlink(tmp_path / "link") == "real.json"
    assert b'"semantics"' in (tmp_path / "real.json").read_bytes()


def test_a_symlink_stays_and_the_file_it_names_is_replaced_keeping_its_mode(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_bytes(b"old")
    real.chmod(0o600)
    link = tmp_path / "link.json"
    link.symlink_to(real)
    outputs.write_atomic(link, b"new")
    assert link.is_symlink()
    assert real.read_bytes() == b"new"
    assert stat.S_IMODE(real.stat().st_mode) == 0o600
    dangling = tmp_path / "dangling.json"
    dangling.symlink_to(tmp_path / "made.json")
    outputs.check_writable(dangling)
    outputs.write_atomic(dangling, b"made")
    assert dangling.is_symlink()
    assert (tmp_path / "made.json").read_bytes() == b"made"


def test_a_fifo_is_written_to_directly(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    outputs.check_writable(fifo)
    outputs.write_atomic(fifo, b"{}\n")
    reader.join(10)
    assert received == [b"{}\n"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_a_file_named_through_proc_is_written_in_place(tmp_path: Path) -> None:
    # /dev/stdout redirected to a file: renaming over /proc/self/fd/N would miss the file.
    path = tmp_path / "out.json"
    with open(path, "wb") as held:
        before = os.fstat(held.fileno()).st_ino
        outputs.write_atomic(Path(f"/proc/self/fd/{held.fileno()}"), b"{}\n")
    assert path.read_bytes() == b"{}\n"
    assert path.stat().st_ino == before


@pytest.mark.workers
@AS_ROOT
def test_what_offbench_never_writes_is_refused_before_anything_runs(tmp_path: Path) -> None:
    block = tmp_path / "block"
    os.mknod(block, stat.S_IFBLK | 0o600, os.makedev(240, 123))  # a local-use number: no driver
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(tmp_path / "sock"))
        for path, said in ((block, "is a block device"), (tmp_path / "sock", "is a socket"),
                           (tmp_path, "is a directory")):
            with pytest.raises(UsageError, match=said):
                outputs.check_writable(path)
    done = offbench("run", "-w", "sleep", "-s", "direct", "-l", "asyncio", "-o", str(block))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"offbench: error: {block}: is a block device: offbench writes only regular files, "
        "character devices (/dev/null) and FIFOs"]


# --- 2. signals from the first instant ------------------------------------------------------------


@pytest.mark.workers
def test_sigterm_during_the_import_check_exits_143_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"spins_on_import_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text("while True:\n    pass\n\ndef fn():\n    pass\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    run = start("run", "-w", f"{name}:fn", "-s", "direct", "-l", "asyncio")
    # The import check says so on the terminal once it has taken a second.
    said = wait_for_stderr(run, f"importing {name!r} for {name}:fn", timeout=30)
    assert f"offbench: importing {name!r} for {name}:fn" in said
    family = [p.pid for p in psutil.Process(run.pid).children(recursive=True)]
    assert family, "the check's child should be running"
    run.send_signal(signal.SIGTERM)
    finish(run)
    assert run.returncode == 143
    assert gone(family, GONE_WITHIN_S) == []
    assert scratch_of(run.pid) == []


# --- 3. no orphans when offbench is SIGKILLed -----------------------------------------------------

HUNG = f"{__name__}:mark_and_hang"


@pytest.mark.workers
@LINUX
@pytest.mark.parametrize("args", [
    pytest.param(["run", "-w", HUNG, "-s", "direct", "-l", "asyncio", "-c", "1", "-d", "30"],
                 id="hung-cell"),
    pytest.param(["run", "-w", HUNG, "-s", "process-pool", "--max-workers", "1", "-l", "asyncio", "-c", "1",
                  "-d", "30"], id="process-pool-cell"),
    pytest.param(["check", "-s", "direct", "-l", "asyncio", "-w", HUNG], id="check-child"),
])
def test_sigkill_of_offbench_with_user_code_hung_leaves_no_process_or_folder(
    args: list[str], mark: Path
) -> None:
    run = start(*args)
    wait_for(lambda: mark.exists() or run.poll() is not None, timeout=60)
    assert mark.exists(), wait_for_stderr(run, "never", timeout=0.5)
    family = [p.pid for p in psutil.Process(run.pid).children(recursive=True)]
    assert scratch_of(run.pid)
    run.kill()
    finish(run)
    assert gone(family, GONE_WITHIN_S) == []
    wait_for(lambda: not scratch_of(run.pid), GONE_WITHIN_S)  # the guardians remove them
    assert scratch_of(run.pid) == []


@pytest.mark.workers
@LINUX
def test_sigkill_of_offbench_during_a_socket_cell_leaves_no_server_listening() -> None:
    run = start("run", "-w", "socket", "-s", "direct", "-l", "asyncio", "-c", "1", "-d", "30")
    ports: set[int] = set()

    def listening() -> bool:
        family = [p.pid for p in psutil.Process(run.pid).children(recursive=True)]
        ports.update(listening_ports(family))
        return bool(ports) or run.poll() is not None

    wait_for(listening, timeout=60)
    assert ports, wait_for_stderr(run, "never", timeout=0.5)
    time.sleep(0.5)  # the cell's worker is up and calling the server
    family = [p.pid for p in psutil.Process(run.pid).children(recursive=True)]
    run.kill()
    finish(run)
    assert gone(family, GONE_WITHIN_S) == []
    assert still_listening(ports) == set()
    wait_for(lambda: not scratch_of(run.pid), GONE_WITHIN_S)
    assert scratch_of(run.pid) == []


def test_folders_whose_offbench_is_gone_are_swept_and_no_others(tmp_path: Path) -> None:
    start_ticks, namespace = scratch.identity()
    me = os.getpid()
    owners = {
        "dead": f"{me} {start_ticks + 1} {namespace}",  # this pid, another process: the owner is gone
        "alive": f"{me} {start_ticks} {namespace}",
        "elsewhere": f"{me} {start_ticks + 1} {namespace + 1}",  # another pid namespace: unknowable
        "unsaid": None,  # being made, or made by an older offbench
    }
    for name, owner in owners.items():
        folder = tmp_path / f"{processes.SCRATCH_PREFIX}{name}"
        (folder / "pymp-x").mkdir(parents=True)
        if owner is not None:
            (folder / processes.OWNER_FILE).write_text(owner)
    removed = processes.sweep_stale_scratch(str(tmp_path))
    assert removed == [str(tmp_path / f"{processes.SCRATCH_PREFIX}dead")]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{processes.SCRATCH_PREFIX}{name}" for name in owners if name != "dead")


# --- 4. reports framed; descendants found, killed and counted -------------------------------------


@pytest.mark.workers
def test_a_function_that_forks_is_measured_not_timed_out() -> None:
    began = time.monotonic()
    held = runner.run_cell(cell(f"{__name__}:fork_and_hold"), timeout_s=10)
    assert held.ok, held.error
    # Its fork held the report socket for a minute; the cell waited for the worker, not for EOF.
    assert time.monotonic() - began < 5
    returned = runner.run_cell(cell(f"{__name__}:fork_and_return"), timeout_s=10)
    assert returned.ok, returned.error


@pytest.mark.workers
@LINUX
def test_descendants_in_sessions_of_their_own_are_killed_and_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pids_file = tmp_path / "pids"
    monkeypatch.setenv("OFFBENCH_TEST_PIDS", str(pids_file))
    result = runner.run_cell(cell(f"{__name__}:leave_sessions"), timeout_s=20)
    assert result.ok, result.error
    left = [int(line) for line in pids_file.read_text().split()]
    assert len(left) == 2
    assert result.details["left_running"] == 2
    assert gone(left, GONE_WITHIN_S) == []


@pytest.mark.workers
@LINUX
def test_a_hung_cell_that_left_a_session_behind_times_out_and_it_is_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pids_file = tmp_path / "pids"
    monkeypatch.setenv("OFFBENCH_TEST_PIDS", str(pids_file))
    result = runner.run_cell(cell(f"{__name__}:leave_sessions_and_hang"), timeout_s=2)
    assert result.status == "timeout"
    assert result.details["left_running"] == 2
    assert gone([int(line) for line in pids_file.read_text().split()], GONE_WITHIN_S) == []


@pytest.mark.workers
@LINUX
def test_what_a_dead_worker_left_in_sessions_of_their_own_is_killed_by_offbench_which_adopted_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As the CLI does (a subreaper): in a process of its own, not to make this test process one.
    pids_file = tmp_path / "pids"
    monkeypatch.setenv("OFFBENCH_TEST_PIDS", str(pids_file))
    code = (
        "from offbench import processes\nfrom offbench.run import runner\n"
        "from tests.test_faults import cell\n"
        "assert processes.adopt_orphans()\n"
        f"result = runner.run_cell(cell('{__name__}:leave_sessions_and_die'), timeout_s=20)\n"
        "print(result.status, result.details.get('left_running'), result.error)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.stdout.split()[:2] == ["error", "2"], done.stdout + done.stderr
    assert "code 3" in done.stdout
    assert gone([int(line) for line in pids_file.read_text().split()], GONE_WITHIN_S) == []


def test_frames_are_read_until_the_child_exits_and_unframed_reports_still_count() -> None:
    read = frames.Frames()
    read.feed(frames.frame(b"P", b"importing 'x'") + frames.frame(b"R", b"{}")[:5])
    assert read.phase == "importing 'x'"
    assert read.report is None
    assert read.result() == b""
    raw = frames.Frames()
    raw.feed(b"[1, 2]")
    assert raw.raw
    assert raw.result() == b"[1, 2]"


# --- 5. what offbench reads -----------------------------------------------------------------------


def one_line(done: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("offbench: error: ")
    for text in expected:
        assert text in lines[0]


@pytest.mark.workers
def test_deeply_nested_results_are_one_line_in_show_compare_and_report(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_bytes(b'{"a":' * 100_000 + b"1" + b"}" * 100_000)
    for args in (["show", str(deep)], ["compare", str(deep), str(deep)], ["report", str(deep)]):
        one_line(offbench(*args), f"{deep}: not an offbench results file: nested too deeply")


@pytest.mark.workers
def test_a_deeply_nested_scenario_is_one_line(tmp_path: Path) -> None:
    deep = tmp_path / "deep.toml"
    deep.write_text("concurrency = " + "[" * 100_000 + "]" * 100_000 + "\n")
    one_line(offbench("run", str(deep), "--dry-run"), f"{deep}: invalid TOML: nested too deeply")


@pytest.mark.workers
def test_only_regular_files_are_read(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "offbench", "show", "/dev/zero"], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)
    one_line(done, "/dev/zero: a character device, not an offbench results file")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    done = subprocess.run([sys.executable, "-m", "offbench", "show", str(fifo)], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)
    one_line(done, f"{fifo}: a FIFO, not an offbench results file")
    one_line(offbench("run", str(fifo), "--dry-run"), f"{fifo}: a FIFO, not a scenario file")


def test_files_larger_than_the_limit_are_refused_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (2 << 20))
    monkeypatch.setattr(results, "MAX_FILE_BYTES", 1 << 20)
    with pytest.raises(UsageError, match=r"big.json: larger than 1 MiB, not an offbench results file$"):
        results.load(big)
    with pytest.raises(UsageError, match=r"larger than 1000 bytes, not a scenario file$"):
        outputs.read_regular(big, 1000, "a scenario file")


@pytest.mark.workers
def test_a_project_file_named_like_a_loop_is_neither_run_nor_a_traceback(tmp_path: Path) -> None:
    ran = tmp_path / "shadow-ran"
    (tmp_path / "uvloop.py").write_text(f"open({str(ran)!r}, 'w').close()\nraise RuntimeError('mine')\n")
    plain = offbench("run", "-w", "sleep", "-s", "direct", "-l", "asyncio", "--dry-run", cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert "Traceback" not in plain.stderr
    asked = offbench("run", "-w", "sleep", "-s", "direct", "-l", "uvloop", "--dry-run", cwd=tmp_path)
    one_line(asked, "./uvloop.py in the working directory shadows the installed uvloop")
    assert not ran.exists()


# --- 6. slow imports are visible ------------------------------------------------------------------


@pytest.fixture
def hangs_on_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = f"hangs_on_import_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text("import time\ntime.sleep(3600)\n\ndef fn():\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    # And for a child that is spawned, not forked (forking is unsafe once a test in this process
    # has imported numpy, whose BLAS threads are running).
    paths = [str(tmp_path), os.environ.get("PYTHONPATH")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))
    monkeypatch.setattr(user, "VERIFY_TIMEOUT_S", 0.5)
    yield name
    sys.modules.pop(name, None)


@pytest.mark.workers
def test_a_cell_whose_import_hangs_says_so(hangs_on_import: str, capsys: pytest.CaptureFixture[str]) -> None:
    target = f"{hangs_on_import}:fn"
    # What `offbench run` does before measuring: the import check warns, and measuring goes on.
    build_settings(Choices(workloads=[WorkloadSpec(name=target)], strategies=["direct"], loops=["asyncio"],
                           concurrency=[1], semantics=False, pool_costs=False))
    assert f"importing {hangs_on_import!r} for {target} did not finish" in capsys.readouterr().err
    result = runner.run_cell(cell(target), timeout_s=2)
    assert result.status == "timeout"
    assert result.error == (f"no result within 2 s; worker killed while importing {hangs_on_import!r} "
                            f"(for {target})")
