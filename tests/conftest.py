"""Shared fixtures: every test must leave no child process and no extra thread behind."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.run_cli import offbench


def pytest_configure(config: pytest.Config) -> None:
    """Give the test session a temporary directory of its own, inherited by every child it starts.

    The leak check compares that directory before and after each test: other programs
    on the machine writing to the system's ``/tmp`` meanwhile cannot fail a test.
    """
    private = tempfile.mkdtemp(prefix="offbench-tests-")
    config.stash[_PRIVATE_TMP] = (private, os.environ.get("TMPDIR"))
    os.environ["TMPDIR"] = private
    tempfile.tempdir = private


def pytest_unconfigure(config: pytest.Config) -> None:
    """Put the system's temporary directory back and remove the session's own."""
    private, previous = config.stash[_PRIVATE_TMP]
    if previous is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = previous
    tempfile.tempdir = None
    shutil.rmtree(private, ignore_errors=True)


_PRIVATE_TMP = pytest.StashKey[tuple[str, str | None]]()


def _sockets(me: psutil.Process) -> set[int]:
    return {c.fd for c in me.net_connections(kind="all") if c.fd != -1}


def _files(me: psutil.Process) -> set[str]:
    # matplotlib keeps each font it has drawn with open for the life of the process (its cache).
    return {f.path for f in me.open_files() if "/matplotlib/mpl-data/fonts/" not in f.path}


def _temporary() -> set[str]:
    """Entries of the temporary directory, but pytest's own (tmp_path lives there)."""
    folder = Path(tempfile.gettempdir())
    return {p.name for p in folder.iterdir() if not p.name.startswith("pytest-of-")}


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Fail a test that leaves a child process, a non-daemon thread, a socket, a file or a temp file.

    Compared before and after the test: this process's children (recursively), threads,
    open sockets and open files, and the entries of the temporary directory.
    """
    me = psutil.Process()
    children_before = {p.pid for p in me.children(recursive=True)}
    threads_before = set(threading.enumerate())
    sockets_before, files_before, temporary_before = _sockets(me), _files(me), _temporary()
    yield
    deadline = time.monotonic() + 3.0
    while True:
        children = [p for p in me.children(recursive=True) if p.pid not in children_before]
        children = [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        threads = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
        if (not children and not threads) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not children, f"test left child processes: {[p.cmdline() for p in children]}"
    assert not threads, f"test left threads: {threads}"
    assert not _sockets(me) - sockets_before, f"test left sockets open: {_sockets(me) - sockets_before}"
    assert not _files(me) - files_before, f"test left files open: {_files(me) - files_before}"
    left = _temporary() - temporary_before
    assert not left, f"test left temporary files: {sorted(left)}"


@pytest.fixture(scope="session")
def quick_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Run the whole default matrix with ``--quick`` twice; return the two results files.

    Each run's terminal output is saved beside its file (``.txt``) and its exit code must
    be 0. The slow tests share these two runs instead of measuring their own.
    """
    folder = tmp_path_factory.mktemp("quick")
    paths = []
    for name in ("first", "second"):
        path = folder / f"{name}.json"
        done = offbench("run", "--quick", "-o", str(path))
        assert done.returncode == 0, done.stderr[-2000:]
        path.with_suffix(".txt").write_text(done.stdout)
        paths.append(path)
    return paths[0], paths[1]
