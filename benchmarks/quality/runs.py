"""Running offbench as a user does (the command, timed from start to exit), and one-off children.

Every ``offbench run`` and ``offbench compare`` the script starts goes through :func:`offbench`:
its results file, its comparison and its terminal output are kept in the run folder the
report names. Experiments that need code of their own in a fresh process (injected stalls,
an idle loop, a bare loop) run through :func:`child`, offbench's own child machinery.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from offbench.model.cells import CellSpec
from offbench.model.results import CellResult, RunResult, load
from offbench.model.settings import DEFAULT_STALL_THRESHOLD_MS
from offbench.processes import report_and_exit, run_child
from offbench.run import runner

HERE = Path(__file__).resolve().parent
BENCHMARKS = HERE.parent
NOOP = "offbench.semantics.callees:noop"
"""A function that does nothing, importable in every worker: only the machinery is timed."""
INTERVAL_MS = 1.0
STALL_THRESHOLD_MS = DEFAULT_STALL_THRESHOLD_MS

PARENT_BOOT = "import sys; sys.path.append(sys.argv.pop(1)); from offbench.entry import main; main()"
"""Start offbench with one more folder at the *end* of its own ``sys.path`` only (not inherited by
workers spawned under ``--python``, whose environments must find their own modules first)."""


@dataclass
class Timed:
    """One ``offbench`` command as a user runs it: its arguments, wall time, exit code and outputs."""

    name: str
    args: list[str]
    wall_s: float
    code: int
    path: Path | None = None
    """Its results file (``-o``), when it wrote one."""

    @property
    def result(self) -> RunResult:
        """Return its results file, read and validated by offbench."""
        if self.path is None:
            raise ValueError(f"{self.name} wrote no results file")
        return load_run(self.path)


def load_run(path: Path) -> RunResult:
    """Read a results file with offbench's reader (a one-unit cell's unbounded spread is ``null``)."""
    return load(path)


def offbench(
    args: Sequence[str],
    folder: Path,
    name: str,
    *,
    env: Mapping[str, str] | None = None,
    extra_path: Path | None = None,
    results: bool = True,
    codes: Sequence[int] = (0,),
) -> Timed:
    """Run ``offbench ARGS`` in ``folder`` (results to ``folder/NAME.json``), timed from start to exit.

    ``extra_path`` is appended to the parent's ``sys.path`` only (:data:`PARENT_BOOT`). Its
    terminal output goes to ``NAME.txt``. An exit code outside ``codes`` raises, with its tail.
    """
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{name}.json"
    command = list(args) + (["-o", str(out)] if results else [])
    start = (
        [sys.executable, "-c", PARENT_BOOT, str(extra_path)]
        if extra_path is not None
        else [sys.executable, "-m", "offbench"]
    )
    log = folder / f"{name}.txt"
    began = time.monotonic()
    with open(log, "wb") as output:
        done = subprocess.run(
            [*start, *command],
            cwd=folder,
            env={**os.environ, **(env or {})},
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    wall = time.monotonic() - began
    if done.returncode not in codes:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"offbench {' '.join(command)} exited {done.returncode}:\n{tail}")
    return Timed(name, command, wall, done.returncode, out if results and out.exists() else None)


def child(main: Callable[[bytes, int], None], payload: msgspec.Struct, timeout_s: float = 120.0) -> Any:
    """Run ``main`` in a forked child (offbench's own child machinery); return its JSON report."""
    outcome = run_child(main, msgspec.json.encode(payload), timeout_s, method="fork")
    if not outcome.report:
        raise RuntimeError(f"experiment child failed: {outcome.exit_summary()}\n{outcome.output}")
    return json.loads(outcome.report)


def report(report_fd: int, value: object) -> None:
    """Send ``value`` as JSON on ``report_fd`` and leave the child at once."""
    report_and_exit(report_fd, msgspec.json.encode(value))


def cell(workload: str, strategy: str, loop: str = "asyncio", **changes: Any) -> CellSpec:
    """Return a cell with a fixed window (0.2 s, 0.05 s warm-up), probe every 1 ms, at concurrency 1."""
    spec = CellSpec(
        workload=workload,
        params={},
        strategy=strategy,
        loop=loop,
        concurrency=1,
        duration_s=0.2,
        warmup_s=0.05,
        probe_interval_ms=INTERVAL_MS,
        stall_threshold_ms=STALL_THRESHOLD_MS,
    )
    return msgspec.structs.replace(spec, **changes)


def probe_off(spec: CellSpec) -> CellSpec:
    """Return ``spec`` with the probe ticking only as its (fixed) window starts and ends."""
    window_ms = 1000 * (spec.duration_s or 0.2)
    return msgspec.structs.replace(spec, probe_interval_ms=0.999 * window_ms)


def measured(spec: CellSpec, units: int = 1) -> CellResult:
    """Measure one cell alone through offbench's runner (``units`` worker processes); fail loudly."""
    result = runner.run_cell(spec, timeout_s=60.0, units=units)
    if not result.ok:
        raise RuntimeError(f"{spec.workload}/{spec.strategy}: {result.status}: {result.error}")
    return result
