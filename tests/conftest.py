"""Shared fixtures: every test must leave no child process and no extra thread behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.run_cli import SMALL_RUN, offbench


def pytest_configure(config: pytest.Config) -> None:
    """Give the test session a temporary directory of its own, inherited by every child it starts.

    The leak check compares that directory before and after each test: other programs
    on the machine writing to the system's ``/tmp`` meanwhile cannot fail a test.
    """
    cache = tempfile.mkdtemp(prefix="offbench-tests-cache-")
    private = tempfile.mkdtemp(prefix="offbench-tests-")
    config.stash[_PRIVATE_TMP] = (private, os.environ.get("TMPDIR"), cache, os.environ.get("OFFBENCH_CACHE"))
    os.environ["TMPDIR"] = private
    tempfile.tempdir = private
    # offbench's cache (semantics findings, venvs) of the session's own: a test never reads
    # what an earlier session or the user's own runs left there.
    os.environ["OFFBENCH_CACHE"] = cache


def pytest_unconfigure(config: pytest.Config) -> None:
    """Put the system's temporary directory back and remove the session's own."""
    private, previous, cache, previous_cache = config.stash[_PRIVATE_TMP]
    for name, value in (("TMPDIR", previous), ("OFFBENCH_CACHE", previous_cache)):
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    tempfile.tempdir = None
    shutil.rmtree(private, ignore_errors=True)
    shutil.rmtree(cache, ignore_errors=True)


_PRIVATE_TMP = pytest.StashKey[tuple[str, str | None, str, str | None]]()


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
def fast_tier_starts_no_process(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse to start a process in a test not marked ``workers``: the fast tier must stay in-process.

    A test that needs a worker, a check child or the CLI says so with ``pytest.mark.workers``
    (or a module's ``pytestmark``); ``pytest -m 'not workers'`` then runs in well under a minute.
    """
    if request.node.get_closest_marker("workers") is not None:
        return

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"{request.node.nodeid} starts a process: mark it pytest.mark.workers")

    monkeypatch.setattr(os, "fork", refuse)
    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)


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
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run the whole default matrix with ``--quick`` once per test session; return its results file.

    Its terminal output is saved beside it (``.txt``) and its exit code must be 0. The tests
    that need a real run of everything share this one instead of measuring their own.
    """
    path = tmp_path_factory.mktemp("quick") / "quick.json"
    done = offbench("run", "--quick", "-o", str(path))
    assert done.returncode == 0, done.stderr[-2000:]
    path.with_suffix(".txt").write_text(done.stdout)
    return path


@pytest.fixture(scope="session")
def small_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Run :data:`SMALL_RUN` twice, one after the other: two runs of identical code to compare."""
    folder = tmp_path_factory.mktemp("small")
    paths = []
    for name in ("first", "second"):
        path = folder / f"{name}.json"
        done = offbench(*SMALL_RUN, "-o", str(path))
        assert done.returncode == 0, done.stderr[-2000:]
        paths.append(path)
    return paths[0], paths[1]
