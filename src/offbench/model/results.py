"""Result types and their one JSON serialisation (``schema_version`` 3).

Results are immutable values, made once by the worker (one :class:`CellResult` per
cell) or the runner (the :class:`RunResult` around them). :func:`encode` and
:func:`decode` are the only way to and from JSON; decoding validates every field,
so a malformed file is reported with the JSON path of the problem.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import msgspec

from offbench.errors import UsageError
from offbench.model import histogram
from offbench.model.cells import CellIdentity, CellSpec
from offbench.model.params import Params
from offbench.model.semantics import StrategySemantics
from offbench.model.settings import RunSettings

SCHEMA_VERSION = 4
"""2: cells carry ``samples`` (the window cut into parts). 3: cells carry ``lag_histogram``.
4: the window is ``duration_s`` everywhere (it was ``window_s`` in the settings and cells).

Files of versions 2 and 3 are still read, upgraded on the way in (:data:`UPGRADES`; the
charts of version 2 are drawn from the stored percentiles); files of version 1 are refused.
"""
READABLE_VERSIONS = (2, 3, 4)


def _duration_named_once(document: dict[str, Any]) -> None:
    """Version 3 → 4: ``settings.window_s`` is ``settings.duration_s``."""
    run_settings = document.get("settings")
    if isinstance(run_settings, dict) and "window_s" in run_settings:
        run_settings["duration_s"] = run_settings.pop("window_s")


UPGRADES: dict[int, Callable[[dict[str, Any]], None]] = {2: _duration_named_once, 3: _duration_named_once}
"""How a file of an older readable version is brought to this one, applied to its JSON document."""

Status = Literal["ok", "error", "timeout"]
Failure = Literal["error", "timeout"]


def identity(cell: CellIdentity) -> dict[str, Any]:
    """Return the naming fields of ``cell`` (a spec, result or breach), to start another from."""
    return {name: getattr(cell, name) for name in CellIdentity.__struct_fields__}


class Quantiles(msgspec.Struct, frozen=True, kw_only=True):
    """Median and 99th percentile of one part of a call, milliseconds."""

    p50: float
    p99: float


class Breakdown(msgspec.Struct, frozen=True, kw_only=True):
    """Where an offloaded call's time went (:mod:`offbench.measure.breakdown`), milliseconds.

    ``queue_wait``: submitted on the loop → started on a worker (waiting for a free
    thread or process, pickling and sending included). ``run``: the function itself.
    ``hop_back``: finished on the worker → the awaiting task resumed on the loop
    (sending the result back, waking the loop, the loop getting to the task).
    """

    queue_wait: Quantiles
    run: Quantiles
    hop_back: Quantiles


class Durations(msgspec.Struct, frozen=True, kw_only=True):
    """Median, 99th percentile and maximum of a set of durations (calls, callbacks), milliseconds."""

    p50: float
    p99: float
    max: float


Coverage = Literal["every callback", "scheduled callbacks"]

TOLERANCE_MS = 1.0
"""A checked lag agrees when callbacks cover all of it but this much, plus :data:`DISPATCH_US` a callback."""
DISPATCH_US = 2.0
"""The loop's own time between two callbacks, outside both (measured: :mod:`offbench.measure.utilisation`)."""


class LoopUtilisation(msgspec.Struct, frozen=True, kw_only=True):
    """How busy the loop thread was running callbacks in the window (:mod:`offbench.measure.utilisation`).

    The equivalent of Node's event-loop utilisation, measured by timing each callback
    the loop runs, and checked against the probe: every probe wake-up late by at least
    ``check_ms`` should coincide with callbacks that kept the loop busy for about as long.
    """

    busy: float
    """Share of the window (0 to 1) the loop thread spent inside callbacks."""
    callbacks: int
    """Callbacks that ran in the window."""
    callback_ms: Durations | None
    """How long single callbacks ran; ``None`` when none ran."""
    coverage: Coverage
    """What was timed: ``every callback`` (asyncio), or only callbacks scheduled through
    the loop's public methods (uvloop runs its own transports' callbacks out of sight)."""
    check_ms: float
    """Probe wake-ups at least this late were checked against the callbacks."""
    stalls_checked: int
    """Probe wake-ups at least ``check_ms`` late."""
    stalls_agreeing: int
    """Of those, the ones whose lag the callbacks account for within the tolerance."""
    worst_gap_ms: float | None
    """The largest difference between a checked lag and the callback time that covered it."""


class LoopLag(msgspec.Struct, frozen=True, kw_only=True):
    """How late the event loop woke the probe, milliseconds, corrected for coordinated omission."""

    p50: float
    p90: float
    p99: float
    p999: float
    max: float
    mean: float


class Samples(msgspec.Struct, frozen=True, kw_only=True):
    """The measured window cut into equal consecutive parts, each summarised alone.

    The parts give each figure a spread (``±`` in the tables) and are what
    ``offbench compare`` tests for a significant change. A part's throughput counts
    each call by the share of its duration inside the part; its op latency is the mean
    of the calls that completed in it (``None`` if none did).
    """

    part_s: float
    throughput_ops_s: list[float]
    lag_p99_ms: list[float | None]
    op_latency_mean_ms: list[float | None]


class Frame(msgspec.Struct, frozen=True, kw_only=True):
    """One frame of the loop thread's stack, as sampled during a stall (:mod:`offbench.measure.watchdog`)."""

    file: str
    """Relative to the ``sys.path`` entry it came from (``offbench/workloads/sleep.py``), else as found."""
    line: int
    function: str
    code: str = ""
    """The source line, stripped ("" when unavailable): names the C function it calls."""


class StallEvidence(msgspec.Struct, frozen=True, kw_only=True):
    """What the loop thread was running during one stall beyond ``evidence_threshold_ms``."""

    duration_ms: float
    """The probe's lag for the tick the stall delayed (as in the lag columns)."""
    frames: list[Frame]
    """Innermost first, from the user's code down; the harness calling it is trimmed."""
    callbacks: int | None = None
    """Timed callbacks that ran while the tick waited; None: not timed."""
    longest_callback_ms: float | None = None
    """The longest of them, whole: well under ``duration_ms``, the stall was several calls in a row."""


class CellResult(CellIdentity, frozen=True, kw_only=True):
    """What one cell measured (or why it could not)."""

    status: Status
    error: str | None = None
    traceback: str | None = None
    ops: int = 0
    elapsed_s: float = 0.0
    throughput_ops_s: float = 0.0
    op_latency_ms: Durations | None = None
    """Submit-to-result time of the calls."""
    breakdown_ms: Breakdown | None = None
    """Queue wait, run and hop back of the calls; ``None`` for ``direct`` (nothing is
    offloaded), for a remote Dask scheduler (its clocks are not ours), and in older files."""
    loop_lag_ms: LoopLag | None = None
    lag_histogram: str | None = None
    """Every corrected lag, as an encoded HdrHistogram in microseconds (:mod:`offbench.model.histogram`)."""
    lag_samples: int = 0
    lag_samples_raw: int = 0
    stalled_s: float = 0.0
    blocked_s: float = 0.0
    availability: float | None = None
    samples: Samples | None = None
    startup_s: float = 0.0
    loop_version: str = ""
    details: Params = {}
    worker_pid: int | None = None
    """The first of the cell's worker processes."""
    processes: int = 1
    """How many worker processes measured the cell, one after the other, each a share of the window."""
    worker_start: str = ""
    wall_s: float = 0.0
    stall_evidence: list[StallEvidence] = []
    """The longest stalls beyond ``evidence_threshold_ms`` (longest first) and the code behind each."""
    loop_utilisation: LoopUtilisation | None = None
    """How busy callbacks kept the loop, checked against the probe; ``None`` in older files."""

    @property
    def ok(self) -> bool:
        """True when the cell measured normally."""
        return self.status == "ok"


def failed_cell(
    cell: CellSpec,
    status: Failure,
    error: str,
    *,
    traceback: str | None = None,
    loop_version: str = "",
    details: Params | None = None,
    worker_pid: int | None = None,
) -> CellResult:
    """Return the result of a cell that could not be measured, and why."""
    return CellResult(
        **identity(cell),
        status=status,
        error=error,
        traceback=traceback,
        loop_version=loop_version,
        details=details or {},
        worker_pid=worker_pid,
    )


class Machine(msgspec.Struct, frozen=True, kw_only=True):
    """The machine and interpreter the run measured."""

    python_version: str
    python_implementation: str
    platform: str
    cpu_model: str
    cpu_count: int
    uvloop_version: str | None
    numpy_version: str | None
    blas: list[dict[str, str | int | None]]
    gil_switch_interval_s: float
    default_executor_workers: int
    probe_ticks: str = ""
    """What woke the probe: ``timerfd`` or ``loop-timers``; "" in old files."""


Judgement = Literal["winner", "failed", "blocked", "gil", "lag", "capped", "slower"]


class Candidate(msgspec.Struct, frozen=True, kw_only=True):
    """One strategy (at one executor size) as a verdict judged it, with the one-line why."""

    strategy: str
    max_workers: int | None = None
    judgement: Judgement
    reason: str
    qualified: bool
    """Every cell ok and loop lag p99 within the budget in all of them."""
    score: float | None
    """Mean, over (loop, concurrency), of throughput relative to the best strategy there."""
    worst_lag_p99_ms: float | None


class Verdict(msgspec.Struct, frozen=True, kw_only=True):
    """Which strategy to use for one workload, decided from the measurements alone."""

    workload: str
    params: Params
    python: str = ""
    """The interpreter whose cells were judged (a verdict compares strategies under one)."""
    lag_budget_ms: float
    winner: Candidate | None
    text: str
    candidates: list[Candidate]
    warnings: list[str] = []
    """What the winner does to the program's semantics that the caller should know (``semantics``)."""


class GateBreach(CellIdentity, frozen=True, kw_only=True):
    """One cell that broke a ``--fail-if`` gate, and its value (``None`` when it has none)."""

    value: float | None
    reason: str = ""
    """Why there is no value: ``no value``, or the cell's failure (``error``, ``timeout``)."""


class GateResult(msgspec.Struct, frozen=True, kw_only=True):
    """One ``--fail-if`` gate as judged on a run's cells (:mod:`offbench.judge.gates`)."""

    gate: str
    """The gate as written: ``loop_lag_ms.p99 > 5 where strategy=direct``."""
    cells: int
    """How many cells its filter chose: those it was judged on."""
    broken_by: list[GateBreach] = []


class CallCost(msgspec.Struct, frozen=True, kw_only=True):
    """Round trip of a call through a warm pool that does nothing but receive its argument."""

    payload_bytes: int
    """Size of the ``bytes`` argument shipped with each call (0: a no-op)."""
    round_trip_ms: Quantiles
    """Submitted on the caller's side → result back, one call at a time."""
    pickle_ms: float
    """Median time to pickle and unpickle the argument in one process: the part that is not IPC."""


class PoolCost(msgspec.Struct, frozen=True, kw_only=True):
    """What a process pool costs on this machine, started one way (:mod:`offbench.run.poolcost`)."""

    pool: str
    """The executor measured: ``ProcessPoolExecutor`` (the ``process-pool`` strategy) or ``loky``."""
    start_method: str
    """How its processes start: ``fork``, ``forkserver``, ``spawn`` (or loky's own)."""
    python: str = ""
    """The interpreter (``--python`` label; empty for the running one)."""
    workers: int
    startup_s: float
    """Creating the pool until every worker process has started and answered a call."""
    calls: list[CallCost]
    """The no-op first, then the payload of ``--payload-bytes``."""
    error: str | None = None
    """Why this pool could not be measured (the other fields are then zero)."""


class RunResult(msgspec.Struct, frozen=True, kw_only=True):
    """A whole run: where, when, with which settings, and every cell's result."""

    schema_version: int = SCHEMA_VERSION
    offbench_version: str
    created: str
    complete: bool
    wall_s: float
    machine: Machine
    settings: RunSettings
    results: list[CellResult]
    verdicts: list[Verdict] = []
    semantics: list[StrategySemantics] = []
    """What each strategy does to a program's semantics on each loop (``offbench check``)."""
    gates: list[GateResult] = []
    """Each ``--fail-if`` gate and the cells that broke it; empty without gates."""
    pool_costs: list[PoolCost] = []
    """Start-up and per-call cost of the run's process pools by start method; empty without one."""


def encode(run: RunResult) -> bytes:
    """Serialise a run to indented JSON, newline-terminated."""
    return msgspec.json.format(msgspec.json.encode(run), indent=2) + b"\n"


def decode(data: bytes, source: str = "<data>") -> RunResult:
    """Parse and validate a results file; raise ``UsageError`` naming ``source`` and the problem."""
    try:
        header = msgspec.json.decode(data, type=dict[str, object])
    except msgspec.DecodeError as exc:
        raise UsageError(f"{source}: not an offbench results file: {exc}") from None
    version = header.get("schema_version")
    if version not in READABLE_VERSIONS:
        readable = " or ".join(map(str, READABLE_VERSIONS))
        raise UsageError(f"{source}: schema_version {version!r} is not supported (expected {readable})")
    try:
        if version == SCHEMA_VERSION:
            run = msgspec.json.decode(data, type=RunResult)
        else:
            document = msgspec.json.decode(data, type=dict[str, Any])
            UPGRADES[int(str(version))](document)
            document["schema_version"] = SCHEMA_VERSION
            run = msgspec.convert(document, RunResult)
    except msgspec.ValidationError as exc:
        raise UsageError(f"{source}: malformed results: {exc}") from None
    for index, cell in enumerate(run.results):
        try:
            if cell.lag_histogram is not None:
                histogram.check(cell.lag_histogram)
        except histogram.HistogramError as exc:
            raise UsageError(f"{source}: malformed results: {exc} - at `$.results[{index}].lag_histogram`"
                             ) from None
    return run


def load(path: Path) -> RunResult:
    """Read and validate a results file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return decode(data, str(path))
