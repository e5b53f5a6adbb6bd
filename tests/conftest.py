"""Shared fixtures: every test must leave no child process and no extra thread behind."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.run_cli import offbench


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Fail a test that leaves a child process or a non-daemon thread running."""
    me = psutil.Process()
    children_before = {p.pid for p in me.children(recursive=True)}
    threads_before = set(threading.enumerate())
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
