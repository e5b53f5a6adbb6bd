"""One guardian per offbench process, and what it still guarantees; process trees found without a scan.

A child costs its parent one fork: the guardian that cleans up after a SIGKILLed
offbench is started once, with the first child, and told of each child over its pipe
(``src/offbench/processes/guardian.py``). These tests hold what that must not lose:
a SIGKILL of the parent still leaves no child, no member of a child's process group and
no folder, whether the guardian was forked or spawned, and even when the guardian itself
was killed and replaced meanwhile.

Each parent is a process of its own (``python -c``), so that its guardian's life is the
test's to watch. Times are physics: a SIGKILL acts before the call returns and a
guardian wakes on its pipe's end; ``GONE_WITHIN_S`` is the bound ``docs/faults.md``
gives, tens of times what it takes here.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from offbench.processes import procfs
from tests.run_cli import ROOT

pytestmark = [
    pytest.mark.workers,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and prctl are Linux's"),
]

GONE_WITHIN_S = 1.0


def hold_a_group_member(payload: bytes, report_fd: int) -> None:
    """A child's main: start a member of its own process group, say both pids, then sleep."""
    member = subprocess.Popen(["sleep", "60"])
    os.write(report_fd, b"%d %d\n" % (os.getpid(), member.pid))
    time.sleep(60)


PARENT = """
import os, sys, threading, time
from offbench.processes import guardian, start_child
from tests.test_processes import hold_a_group_member

if "threads" in sys.argv:  # a thread: this process may not fork, so its guardian is spawned
    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
forks = 0
fork = os.fork
def counted():
    global forks
    forks += 1
    return fork()
os.fork = counted

def child():
    read_end, write_end = os.pipe()
    started = start_child(hold_a_group_member, b"", write_end)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as said:
        pid, member = map(int, said.readline().split())
    return started, pid, member

children = [child() for _ in range(int(sys.argv[1]))]
first_guardian = guardian._guardian.pid
if "kill-guardian" in sys.argv:  # it is replaced at the next word, and told every child still running
    os.kill(first_guardian, 9)
    def gone():
        try:
            return open(f"/proc/{first_guardian}/stat").read().rsplit(")", 1)[1].split()[0] == "Z"
        except OSError:
            return True
    while not gone():
        time.sleep(0.01)
    children.append(child())
print(guardian._guardian.pid, first_guardian, forks)
print(" ".join(f"{pid} {member} {c.scratch}" for c, pid, member in children), flush=True)
if "die" in sys.argv:
    os.kill(os.getpid(), 9)
for c, _, _ in children:
    c.close()
"""


def parent(*args: str) -> subprocess.Popen[str]:
    """Start a parent that runs children through ``start_child`` (see :data:`PARENT`)."""
    return subprocess.Popen([sys.executable, "-c", PARENT, *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def said(process: subprocess.Popen[str]) -> tuple[int, int, int, list[tuple[int, int, str]]]:
    """Read what the parent said: its guardian (now and first), its forks, and each child."""
    assert process.stdout is not None
    guardian_line, children_line = process.stdout.readline(), process.stdout.readline()
    assert children_line, process.communicate(timeout=30)[1]
    guardian, first, forks = guardian_line.split()
    fields = children_line.split()
    children = [(int(fields[i]), int(fields[i + 1]), fields[i + 2]) for i in range(0, len(fields), 3)]
    return int(guardian), int(first), int(forks), children


def running(pid: int) -> bool:
    """Return whether ``pid`` runs (a zombie does not; one that is this process's child is reaped)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def all_gone(pids: list[int], folders: list[str], within: float) -> tuple[list[int], list[str]]:
    """Wait up to ``within`` seconds for ``pids`` to end and ``folders`` to go; return what is left."""
    deadline = time.monotonic() + within
    while True:
        left = [pid for pid in pids if running(pid)], [f for f in folders if os.path.lexists(f)]
        if left == ([], []) or time.monotonic() > deadline:
            return left
        time.sleep(0.01)


def test_one_guardian_serves_every_child_and_leaves_with_its_process() -> None:
    process = parent("3")
    guardian, first, forks, children = said(process)
    assert guardian == first
    # Three children and one intermediate, which forks the guardian away and leaves.
    assert forks == 3 + 1
    assert guardian not in {p.pid for p in psutil.Process(process.pid).children()}
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    # An orderly exit waits until its guardian is gone: not even for a moment does it outlive it.
    assert not running(guardian)
    assert all_gone([p for pid, member, _ in children for p in (pid, member)],
                    [folder for _, _, folder in children], 0.0) == ([], [])


@pytest.mark.parametrize("how", ["forked", "threads"])
def test_a_sigkilled_parent_leaves_no_child_group_member_or_folder(how: str) -> None:
    process = parent("2", "die", how)
    guardian, _, _, children = said(process)
    process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL
    pids = [p for pid, member, _ in children for p in (pid, member)]
    assert all_gone([*pids, guardian], [folder for _, _, folder in children], GONE_WITHIN_S) == ([], [])


def test_a_killed_guardian_is_replaced_and_told_every_child_still_running() -> None:
    process = parent("2", "kill-guardian", "die")
    guardian, first, _, children = said(process)
    assert guardian != first
    assert len(children) == 3
    process.communicate(timeout=30)
    pids = [p for pid, member, _ in children for p in (pid, member)]
    assert all_gone([*pids, guardian], [folder for _, _, folder in children], GONE_WITHIN_S) == ([], [])


def test_a_tree_is_found_by_its_children_files_as_by_a_scan_of_every_process() -> None:
    # A child with a child of its own and a grandchild in a session of its own (a daemon's shape).
    code = ("import os, subprocess, sys, time\n"
            "subprocess.Popen(['sleep', '60'])\n"
            "subprocess.Popen(['sleep', '60'], start_new_session=True)\n"
            "print('ready', flush=True)\ntime.sleep(60)\n")
    with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) as top:
        try:
            assert top.stdout is not None
            assert top.stdout.readline() == "ready\n"
            walked = sorted(p.pid for p in procfs.descendants(top.pid))
            scanned = sorted(p.pid for p in procfs._descendants_by_scan(top.pid))
            assert len(walked) == 2
            assert walked == scanned == sorted(p.pid for p in psutil.Process(top.pid).children(True))
        finally:
            killed = procfs.kill_tree(top.pid, keep_root=False)
            top.wait(timeout=10)
    assert all_gone([p.pid for p in killed], [], GONE_WITHIN_S) == ([], [])
