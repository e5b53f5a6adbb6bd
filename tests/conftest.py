"""Shared fixtures: every test must leave no child process and no extra thread behind."""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import hypothesis
import psutil
import pytest

from offbench.model.semantics import StrategySemantics
from tests.run_cli import SMALL_RUN, STOCK_STRATEGIES, MadeOnce, offbench

# Hypothesis fails an example slower than 200 ms by default: a timing assertion, which this
# suite keeps out of its tests (speed lives in benchmarks/). On a slow day of this shared host
# (2026-12-02: loops 1.9× slower than the day before) a histogram example took 334 ms.
hypothesis.settings.register_profile("offbench", deadline=None)
hypothesis.settings.load_profile("offbench")


def pytest_configure(config: pytest.Config) -> None:
    """Give the test session a temporary directory of its own, inherited by every child it starts.

    The leak check compares that directory before and after each test: other programs
    on the machine writing to the system's ``/tmp`` meanwhile cannot fail a test. Under
    xdist each worker makes its own beside the controller's, not inside it: a Unix socket's
    path (the forkserver's, Chromium's) must stay under 108 bytes.
    """
    root = os.environ.setdefault(_ROOT_ENV, tempfile.gettempdir())
    worker = "PYTEST_XDIST_WORKER" in os.environ
    # xdist's workers share the controller's cache: the semantics findings one worker's run
    # measured, another's reads.
    cache = os.environ["OFFBENCH_CACHE"] if worker else tempfile.mkdtemp(prefix="offbench-tests-cache-",
                                                                           dir=root)
    private = tempfile.mkdtemp(prefix="offbench-tests-", dir=root)
    config.stash[_PRIVATE_TMP] = (private, os.environ.get("TMPDIR"), cache, os.environ.get("OFFBENCH_CACHE"))
    if not worker:
        # The lock the xdist workers share, made once by the controller (or the only process).
        os.environ[_LOCK_ENV] = os.path.join(private, "cpus.lock")
        Path(os.environ[_LOCK_ENV]).touch()
        (Path(private) / "shared").mkdir()
    os.environ["TMPDIR"] = private
    tempfile.tempdir = private
    # offbench's cache (semantics findings, venvs) of the session's own: a test never reads
    # what an earlier session or the user's own runs left there.
    os.environ["OFFBENCH_CACHE"] = cache
    if not worker:
        _cache_bytecode_beside(root, config)
        _build_the_font_cache()


def _cache_bytecode_beside(root: str, config: pytest.Config) -> None:
    """Where ``PYTHONDONTWRITEBYTECODE`` is set, keep the session's bytecode in a folder of its own.

    Otherwise every process the suite starts (hundreds: each CLI call, each spawned worker)
    compiles offbench from source again, about 0.15 s each here. The folder lives beside the
    session's temporary directory and goes with it: nothing is written into the tree, as the
    setting asked.
    """
    if not os.environ.get("PYTHONDONTWRITEBYTECODE") or os.environ.get("PYTHONPYCACHEPREFIX"):
        return
    folder = tempfile.mkdtemp(prefix="offbench-tests-pycache-", dir=root)
    config.stash[_BYTECODE] = (folder, os.environ.pop("PYTHONDONTWRITEBYTECODE"))
    os.environ["PYTHONPYCACHEPREFIX"] = folder
    sys.pycache_prefix, sys.dont_write_bytecode = folder, False


def _build_the_font_cache() -> None:
    """Have matplotlib build its font cache now, in a child, if it is installed.

    It builds it on first import by running fontconfig's ``fc-list`` where that is installed
    (chromium brings it): a chart test would then start a process in the fast tier on a fresh
    machine, or not, by the order tests ran. In a child, not here: importing matplotlib loads
    numpy, whose BLAS threads would make forking this process unsafe and every cell a test
    measures here would be spawned instead.
    """
    if importlib.util.find_spec("matplotlib") is not None:
        subprocess.run([sys.executable, "-c", "import matplotlib.font_manager"], check=False,
                       capture_output=True, timeout=120)


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
    if "PYTEST_XDIST_WORKER" not in os.environ:
        shutil.rmtree(cache, ignore_errors=True)
        if _BYTECODE in config.stash:
            folder, setting = config.stash[_BYTECODE]
            os.environ.pop("PYTHONPYCACHEPREFIX", None)
            os.environ["PYTHONDONTWRITEBYTECODE"] = setting
            sys.pycache_prefix, sys.dont_write_bytecode = None, True
            shutil.rmtree(folder, ignore_errors=True)
        os.environ.pop(_ROOT_ENV, None)
        os.environ.pop(_LOCK_ENV, None)


_PRIVATE_TMP = pytest.StashKey[tuple[str, str | None, str, str | None]]()
_BYTECODE = pytest.StashKey[tuple[str, str]]()
_ROOT_ENV = "OFFBENCH_TESTS_TMP_ROOT"
_LOCK_ENV = "OFFBENCH_TESTS_CPU_LOCK"

ALONE_FIXTURES = {"stock": "stock", "quick_run": "quick"}
"""Session measurements whose figures tests read, and their shared folders: a test asking for
one that is not made yet runs with no other test beside it, since it will measure it; once
made, reading it needs no CPU and the test runs beside another. (The stock check's parallelism
experiments need both CPUs; the quick run's verdicts are read: a process pool must outrun the
loop on pure-Python work. The small runs are sleeps, whose throughput another test beside them
does not move.)"""


class _CpuLock:
    """A readers-writer lock over the xdist workers: a test marked ``alone`` runs with no other beside it.

    Every other test holds it shared, so tests run two at a time (``-n 2``), which the suite's
    margins allow: they hold with another program keeping one core busy. A few physics need
    both CPUs to themselves (two processes outrunning the GIL, the parallelism experiments, a
    run whose verdict is read): they hold it exclusive. ``flock`` on one file; a second file
    is the turnstile that keeps a waiting exclusive test from being starved by shared ones.
    Without xdist there is one test at a time and nothing to lock.
    """

    def __init__(self, path: str) -> None:
        self._room = os.open(path, os.O_RDWR)
        self._turnstile = os.open(path + ".turnstile", os.O_RDWR | os.O_CREAT, 0o600)

    @contextlib.contextmanager
    def held(self, alone: bool) -> Iterator[None]:
        fcntl.flock(self._turnstile, fcntl.LOCK_EX)
        try:
            fcntl.flock(self._room, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        finally:
            if not alone:
                fcntl.flock(self._turnstile, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(self._room, fcntl.LOCK_UN)
            if alone:
                fcntl.flock(self._turnstile, fcntl.LOCK_UN)


_cpu_lock: _CpuLock | None = None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Run a test under the CPU lock when xdist runs tests side by side; its fixtures' set-up too."""
    global _cpu_lock
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return (yield)
    if _cpu_lock is None:
        _cpu_lock = _CpuLock(os.environ[_LOCK_ENV])
    unmade = [name for fixture, name in ALONE_FIXTURES.items()
              if fixture in getattr(item, "fixturenames", ()) and not (_shared(name) / "done").exists()]
    alone = item.get_closest_marker("alone") is not None or bool(unmade)
    with _cpu_lock.held(alone):
        return (yield)


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


def _shared(name: str) -> Path:
    """Return the folder where the xdist workers keep a session run of ``name``, made once.

    The first worker to ask measures it, under a lock; the others wait and read its files.
    The folder lives in the controller's temporary directory, which it removes at the end.
    """
    folder = Path(os.environ[_LOCK_ENV]).parent / "shared" / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextlib.contextmanager
def _made_once(folder: Path) -> Iterator[bool]:
    """Hold ``folder``'s lock; yield whether its run is still to make (then mark it made)."""
    with open(folder / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = folder / "done"
        yield not done.exists()
        done.touch()


@pytest.fixture(scope="session")
def made_once() -> MadeOnce:
    """``with made_once(name) as (folder, to_make)``: make something once for the whole test run.

    A module or session fixture is made once per xdist worker, and the suite spreads one
    file's tests over both workers (``--dist worksteal``): what is costly to make is made in
    a folder both share instead. The first worker to ask makes it (``to_make`` is true)
    while the other waits on the folder's lock; then both read its files.
    """

    @contextlib.contextmanager
    def made(name: str) -> Iterator[tuple[Path, bool]]:
        folder = _shared(name)
        with _made_once(folder) as to_make:
            yield folder, to_make

    return made


@pytest.fixture(scope="session")
def stock(made_once: MadeOnce) -> dict[tuple[str, str], StrategySemantics]:
    """Every built-in strategy checked on both loops, once for the session: ``(strategy, loop)`` → findings.

    About 10 s, kept in the session's semantics cache: :func:`quick_run` asks for it first, so
    its run reads them as a user's second run does, and every xdist worker reads them there.
    """
    from offbench.semantics.check import check

    with made_once(ALONE_FIXTURES["stock"]):  # the other worker reads the cache it writes
        found = check(list(STOCK_STRATEGIES), ["asyncio", "uvloop"], cached=True)
    return {(s.strategy, s.loop): s for s in found}


@pytest.fixture(scope="session")
def quick_run(stock: dict[tuple[str, str], StrategySemantics], made_once: MadeOnce) -> Path:
    """Run the whole default matrix with ``--quick`` once per test session; return its results file.

    Its terminal output is saved beside it (``.txt``) and its exit code must be 0. The tests
    that need a real run of everything share this one instead of measuring their own (across
    xdist's workers too), measured with no other test beside it (:data:`ALONE_FIXTURES`).
    """
    with made_once(ALONE_FIXTURES["quick_run"]) as (folder, to_make):
        path = folder / "quick.json"
        if to_make:
            done = offbench("run", "--quick", "-o", str(path))
            assert done.returncode == 0, done.stderr[-2000:]
            path.with_suffix(".txt").write_text(done.stdout)
    assert path.exists(), "an earlier test's quick run failed"
    return path


@pytest.fixture(scope="session")
def small_runs(made_once: MadeOnce) -> tuple[Path, Path]:
    """Run :data:`SMALL_RUN` twice, one after the other: two runs of identical code to compare."""
    with made_once("small") as (folder, to_make):
        paths = (folder / "first.json", folder / "second.json")
        if to_make:
            for path in paths:
                done = offbench(*SMALL_RUN, "-o", str(path))
                assert done.returncode == 0, done.stderr[-2000:]
    assert all(p.exists() for p in paths), "an earlier test's small runs failed"
    return paths
