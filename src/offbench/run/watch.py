"""``offbench watch``: run a Python program unchanged, with every event loop it starts measured.

This is the parent's side; the program's is :mod:`offbench.measure.watched`. It runs the
program and reads its report into a :class:`~offbench.model.watched.WatchResult`; the
text shown of it is :func:`offbench.render.watch.render`'s. The program is started as
written (``python app.py ARGS``, or any command that runs Python), with offbench's
start-up hook first on ``PYTHONPATH`` and the hook's options in ``OFFBENCH_WATCH``; the
hook takes both out again before the program's code runs. The program keeps offbench's
stdin, stdout and stderr, so its output comes through as it would without offbench;
offbench writes only after it, to stderr (and to ``-o FILE``).

Signals. The program stays in offbench's process group, as a command run by a shell
would be: Ctrl-C at the terminal reaches it directly, once. offbench does not pass
SIGINT on (it came to the whole group; a second one would make ``asyncio.run`` raise
``KeyboardInterrupt`` in the middle of the cleanup the first one started), and waits
for the program to finish, as ``time`` does. SIGTERM and SIGHUP sent to offbench are
passed on to the program. However the program ends (normally, by an exception, by a
signal) offbench then reports, removes its temporary folder (where the report was
written), and exits with the program's exit code (128 + N if a signal N killed it); with
``--lag-budget``, with 1 instead of 0 if a loop's lag went over the budget.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import msgspec

from offbench import __version__, outputs
from offbench.errors import UsageError
from offbench.measure import watched
from offbench.model.watched import (
    EXIT_OVER_BUDGET,
    STATISTICS,
    LoopFigures,
    ProgramReport,
    WatchResult,
)
from offbench.model.watched import statistic as lag_statistic

HOOK_DIR = Path(__file__).resolve().parent.parent / "measure" / "hook"
"""The folder holding the start-up hook (``sitecustomize.py``) and nothing else."""
DEFAULT_EVIDENCE_MS = 10.0
"""Stalls longer than this get their stack sampled when there is no budget (else: beyond the budget)."""
FORWARDED = (signal.SIGTERM, signal.SIGHUP)


@dataclass(frozen=True)
class WatchSettings:
    """What the user asked of ``offbench watch``, checked."""

    command: list[str]
    lag_budget_ms: float | None = None
    statistic: str = "p99"
    output: Path | None = None
    interval_ms: float = 1.0

    @property
    def evidence_ms(self) -> float:
        """Stalls longer than this get the loop thread's stack sampled: the budget, or 10 ms."""
        return self.lag_budget_ms if self.lag_budget_ms is not None else DEFAULT_EVIDENCE_MS


def settings(
    command: list[str], lag_budget_ms: float | None, statistic: str, output: str | None
) -> WatchSettings:
    """Return the checked settings, or raise a one-line ``UsageError``."""
    if not command:
        raise UsageError("watch needs a program to run: offbench watch [OPTIONS] -- python app.py ARGS")
    if lag_budget_ms is not None and not 0 < lag_budget_ms < float("inf"):
        raise UsageError(f"--lag-budget must be a number of milliseconds above 0, got {lag_budget_ms:g}")
    if statistic not in STATISTICS:
        raise UsageError(f"--lag-stat must be one of {', '.join(STATISTICS)}, got {statistic!r}")
    path = None
    if output is not None:
        if output == "-":
            raise UsageError("-o - is not possible: stdout is the program's; give a file name")
        path = Path(output)
        outputs.check_writable(path)
    return WatchSettings(command=list(command), lag_budget_ms=lag_budget_ms, statistic=statistic, output=path)


def watch(chosen: WatchSettings) -> WatchResult:
    """Run the program with the hook, wait for it to end, and return what it reported."""
    folder = tempfile.mkdtemp(prefix="offbench-watch-")
    try:
        report = os.path.join(folder, "report.json")
        began = time.perf_counter()
        returncode = _run(chosen.command, _environment(chosen, report))
        elapsed = time.perf_counter() - began
        program, state = _read(report)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    over = [f"{f.thread} / {f.loop}" for f in program.loops if _over(f, chosen)]
    killed = _signal_name(-returncode) if returncode < 0 else None
    if killed and state == "missing":
        program = ProgramReport(error=(
            f"the program was killed by {killed} before it reported (it reports at its exit, and every "
            f"{watched.SNAPSHOT_S:g} s while an event loop runs)"))
    return WatchResult(
        offbench_version=__version__, command=chosen.command,
        exit_code=128 - returncode if returncode < 0 else returncode, killed_by=killed,
        elapsed_s=elapsed, lag_budget_ms=chosen.lag_budget_ms, statistic=chosen.statistic,
        over_budget=over, report=state, error=program.error, loops=program.loops,
    )


def exit_code(result: WatchResult) -> int:
    """Return the program's exit code, or 1 if it was 0 and a loop went over the budget."""
    return EXIT_OVER_BUDGET if result.exit_code == 0 and result.over_budget else result.exit_code


def _environment(chosen: WatchSettings, report: str) -> dict[str, str]:
    """Return the program's environment: the user's, with the hook first on ``PYTHONPATH`` and its options."""
    env = dict(os.environ)
    own = env.get("PYTHONPATH")
    options = watched.WatchOptions(report=report, interval_ms=chosen.interval_ms,
                                   evidence_ms=chosen.evidence_ms, pythonpath=own)
    env["PYTHONPATH"] = os.pathsep.join([str(HOOK_DIR), *([own] if own else [])])
    env[watched.ENV] = options.to_env()
    return env


def _run(command: list[str], env: dict[str, str]) -> int:
    """Start the program, pass SIGTERM and SIGHUP on to it, wait for it; return its return code."""
    with _passing_signals() as target:
        try:
            process = subprocess.Popen(command, env=env)
        except OSError as exc:
            raise UsageError(f"cannot run {shlex.join(command[:1])}: {exc.strerror or exc}") from None
        target.append(process)
        return process.wait()


@contextlib.contextmanager
def _passing_signals() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Ignore SIGINT (the program gets it from the terminal) and pass SIGTERM and SIGHUP on, for the block.

    Handlers, not ``SIG_IGN``: a started program inherits ignored signals, but not handlers.
    """
    target: list[subprocess.Popen[bytes]] = []

    def forward(signum: int, frame: FrameType | None) -> None:
        for process in target:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signum)

    def ignore(signum: int, frame: FrameType | None) -> None:
        pass

    previous = {signal.SIGINT: signal.signal(signal.SIGINT, ignore)}
    previous.update({signum: signal.signal(signum, forward) for signum in FORWARDED})
    try:
        yield target
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _read(path: str) -> tuple[ProgramReport, str]:
    """Return the program's report and whether it is final; an empty one with the reason if there is none."""
    try:
        with open(path, "rb") as source:
            data = source.read()
    except FileNotFoundError:
        return ProgramReport(error=(
            "the program wrote no report: it ran no Python that loaded offbench's start-up hook "
            "(python -I and -E ignore PYTHONPATH), or was killed before its first loop ended")), "missing"
    try:
        report = msgspec.json.decode(data, type=ProgramReport)
    except msgspec.DecodeError as exc:
        return ProgramReport(error=f"the program's report is unreadable: {exc}"), "missing"
    return report, "final" if report.final else "snapshot"


def _over(figures: LoopFigures, chosen: WatchSettings) -> bool:
    if chosen.lag_budget_ms is None or figures.lag_ms is None:
        return False
    return lag_statistic(figures.lag_ms, chosen.statistic) > chosen.lag_budget_ms


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def write(result: WatchResult, path: Path) -> None:
    """Write ``result`` as JSON to ``path``, atomically."""
    outputs.write_atomic(path, msgspec.json.format(msgspec.json.encode(result), indent=2) + b"\n")
