"""Run the offbench command line in a child process, as a user or CI would."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from unittest import mock

from offbench import cli

ROOT = Path(__file__).resolve().parent.parent

MadeOnce = Callable[[str], AbstractContextManager[tuple[Path, bool]]]
"""The ``made_once`` fixture's type (conftest.py): ``with made_once(name) as (folder, to_make)``."""

STOCK_STRATEGIES = ("direct", "executor-per-call", "default-executor", "to-thread", "process-pool")
"""The built-in strategies the session's ``stock`` fixture checks on both loops (conftest.py)."""

SMALL_RUN = ("run", "-w", "sleep", "-s", "direct", "-s", "to-thread", "-l", "asyncio", "-c", "1", "-c", "8",
             "--quick", "--rounds", "3", "--no-pool-costs", "--no-semantics")
"""A run small enough to repeat: a 10 ms sleep on the loop and through to-thread (5 cells, one sized).

Three units a cell, always: with two, a comparison's interval has one degree of freedom each
side (t = 12.7), and a loaded host once made a threefold slowdown 'not significant'."""


def offbench(*args: str, cwd: Path | None = ROOT) -> subprocess.CompletedProcess[str]:
    """Run ``python -m offbench ARGS`` from the repository root, without the caller's COLUMNS.

    Piped output is then 160 columns wide, so no line the tests look for wraps.
    """
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    return subprocess.run(
        [sys.executable, "-m", "offbench", *args],
        capture_output=True, text=True, timeout=600, cwd=cwd, env=env,
    )


def start_offbench(*args: str) -> subprocess.Popen[str]:
    """Start ``python -m offbench ARGS`` in the background, to signal it midway; pipes for its output.

    It gets SIGINT's default disposition (a shell may start tests with SIGINT ignored),
    and no COLUMNS, as :func:`offbench` does.
    """
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    return subprocess.Popen(
        [sys.executable, "-m", "offbench", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, cwd=ROOT, env=env, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


PROCESS_WIDE = ("install_stop_signals", "adopt_orphans", "sweep_stale_scratch", "raise_open_files_limit")
"""What ``cli.main`` sets up for the whole process: left out when it runs in a test's."""


def offbench_here(*args: str, cwd: Path | None = ROOT) -> subprocess.CompletedProcess[str]:
    """Run the offbench command line in this process, as :func:`offbench` would in a child.

    For what needs no worker (refusals, ``show``, ``compare``, ``report``, ``list``): a
    child costs a second of imports. ``main``'s process-wide set-up (signal handlers, the
    child subreaper, the sweep of old scratch folders, the open-files limit) is left out,
    and ``sys.path``, the signal handlers and the working directory are put back after.
    """
    out, err = io.BytesIO(), io.BytesIO()
    stdout = io.TextIOWrapper(out, encoding="utf-8", write_through=True)
    stderr = io.TextIOWrapper(err, encoding="utf-8", write_through=True)
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    path, here = list(sys.path), os.getcwd()
    code = 0
    with contextlib.ExitStack() as undo:
        undo.enter_context(mock.patch.dict(os.environ, {"COLUMNS": ""}))
        os.environ.pop("COLUMNS")
        for name in PROCESS_WIDE:
            undo.enter_context(mock.patch.object(cli, name, return_value=None))
        undo.enter_context(contextlib.redirect_stdout(stdout))
        undo.enter_context(contextlib.redirect_stderr(stderr))
        try:
            if cwd is not None:
                os.chdir(cwd)
            cli.main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        finally:
            os.chdir(here)
            sys.path[:] = path
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
    return subprocess.CompletedProcess(
        ["offbench", *args], code, out.getvalue().decode("utf-8", "replace"),
        err.getvalue().decode("utf-8", "replace"),
    )
