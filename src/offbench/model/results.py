"""Result types and their one JSON serialisation (``schema_version`` 5).

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
from offbench.model.rates import Capacity, RateFigures, RateVerdict
from offbench.model.semantics import StrategySemantics
from offbench.model.settings import RunSettings
from offbench.outputs import read_regular

SCHEMA_VERSION = 5
"""2: cells carry ``samples`` (the window cut into parts). 3: cells carry ``lag_histogram``.
4: the window is ``duration_s`` everywhere (it was ``window_s`` in the settings and cells).
5: cells are measured by units, one worker process per round (``units``, ``spread``,
``stopped``, ``normalised_ops_s``, ``host_sensitivity``); runs carry ``rounds`` and ``host``;
``samples`` and ``processes`` are gone.

Files of versions 2 to 4 are still read, upgraded on the way in (:data:`UPGRADES`; the
charts of version 2 are drawn from the stored percentiles; cells of versions before 5 have
no units, so no interval: ``compare`` says so instead of guessing); version 1 is refused.
"""
READABLE_VERSIONS = (2, 3, 4, 5)


def _duration_named_once(document: dict[str, Any]) -> None:
    """Version 3 → 4: ``settings.window_s`` is ``settings.duration_s``."""
    run_settings = document.get("settings")
    if isinstance(run_settings, dict) and "window_s" in run_settings:
        run_settings["duration_s"] = run_settings.pop("window_s")


def _unitless(document: dict[str, Any]) -> None:
    """Version 4 → 5: nothing to rename; the cells' unit fields take their defaults (none measured)."""


UPGRADES: dict[int, Callable[[dict[str, Any]], None]] = {
    2: _duration_named_once, 3: _duration_named_once, 4: _unitless,
}
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


class Unit(msgspec.Struct, frozen=True, kw_only=True):
    """One worker process's measurement of a cell: the independent sample every interval is made of.

    A cell is measured by several units, one per round, so each sees the host at another
    moment (:mod:`offbench.run.runner`); the spread of the units, not of slices of one
    window, is what ``±``, the verdict and ``offbench compare`` read.
    """

    round: int
    """The round it ran in (0 is the first); cells of one round ran within seconds of each other."""
    started_s: float
    """When its worker started, seconds from the run's start."""
    duration_s: float
    """Its measured window."""
    ops: int
    """Calls that completed in the window."""
    throughput_ops_s: float
    """Calls per second in the window, each counted by the share of its duration inside it."""
    op_latency_mean_ms: float | None
    """Mean submit-to-result time of its calls; ``None`` if none completed."""
    lag_p99_ms: float | None
    """Its own loop lag p99 (the cell's is that of all units' ticks pooled)."""
    ticks: int
    """Probe ticks it recorded (coordinated-omission corrected)."""
    lag_histogram: str | None
    """Its corrected lags, encoded as the cell's are (:mod:`offbench.model.histogram`)."""
    reference_ms: float | None
    """The host's speed as it started: a fixed pure-Python loop, timed in the worker before its warm-up."""
    wakeup_us: float | None
    """How long a thread took to wake on an event set from another, before its warm-up: the scheduler."""
    cpu_s: float | None
    """CPU time its processes (the worker and its pool's) used during the window."""
    other_cpu: float | None
    """Share of the machine's CPUs that other programs used while it ran (0 to 1; Linux)."""
    host_factor: float | None = None
    """How slow the host was around it, against the run's median: the median, over the units nearest
    in time, of each reference over its interpreter's median (1.1 = 10 % slower). Set by the runner."""
    sustained: bool | None = None
    """A rate cell's unit: whether its latency did not grow through the window; ``None`` otherwise."""
    latency_p99_ms: float | None = None
    """A rate cell's unit: the p99 of its calls' latency from their intended start."""


class Spread(msgspec.Struct, frozen=True, kw_only=True):
    """How well a cell's throughput is known: the units' mean with its 95 % interval."""

    low: float | None
    """Lower end of the 95 % t-interval of the mean over units, ops/s (``null`` with one unit: unbounded)."""
    high: float | None
    """Upper end of that interval, ops/s (``null`` with one unit)."""
    cv: float
    """Coefficient of variation of the units' throughput."""
    units: int


Stop = Literal["precise", "over budget", "most units", "time budget", "fixed", "interrupted", "failed"]
"""Why a cell got no more units: its figures were known well enough, its loop lag p99 was clearly
over the lag budget (out of the verdict however fast), it had ``max_units``, the ``--time-budget``
ran out, ``--rounds`` fixed the count, Ctrl-C, or a unit failed."""


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
    late_s: float = 0.0
    """Time the loop could not answer within ``stall_threshold_ms``: a stall of L adds L − threshold.

    Unlike ``stalled_s`` (the stalls' whole length, counted only past the threshold),
    it grows smoothly with the stalls: 9.9 and 10.1 ms stalls over a 10 ms threshold add
    0 and 0.1 ms, not 0 and 10.1 ms."""
    availability: float | None = None
    """Share of the window an event arriving at a random moment would be answered within the
    stall threshold: ``1 − late_s / elapsed_s``."""
    units: list[Unit] = []
    """The worker processes that measured the cell, one per round, in the order they ran."""
    spread: Spread | None = None
    """The throughput's interval over the units; ``None`` for a failed cell."""
    normalised_ops_s: float | None = None
    """Throughput at the run's median host speed: the mean of its units' throughputs, each multiplied
    by its ``host_factor`` to the power ``host_sensitivity`` × the share of its window its processes
    spent on a CPU (:mod:`offbench.judge.precision`)."""
    host_sensitivity: float | None = None
    """How much of the host's speed shows in this workload's throughput, 0 to 1, estimated from the
    run's units of every cell of the workload (a pure-Python call about 1, a sleep or C code that
    does not follow the reference about 0); 0 unless the run's units show it beyond noise."""
    first_call_ms: float | None = None
    """The first call of the cell's first unit, which often pays a lazy set-up (imports, a connection)."""
    stopped: Stop = "fixed"
    """Why the cell got no more units."""
    startup_s: float = 0.0
    loop_version: str = ""
    details: Params = {}
    worker_pid: int | None = None
    """The first of the cell's worker processes."""
    worker_start: str = ""
    wall_s: float = 0.0
    stall_evidence: list[StallEvidence] = []
    """The longest stalls beyond ``evidence_threshold_ms`` (longest first) and the code behind each."""
    loop_utilisation: LoopUtilisation | None = None
    """How busy callbacks kept the loop, checked against the probe; ``None`` in older files."""
    open_loop: RateFigures | None = None
    """A rate cell's figures (offered and achieved rate, latency from intended start, backlog);
    ``None`` for a concurrency cell. ``op_latency_ms`` then holds the same corrected latencies."""

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


Judgement = Literal[
    "winner", "partial", "tie", "semantics", "failed", "blocked", "gil", "startup", "shipping", "lag",
    "capped", "slower",
]
"""How a verdict judged a candidate. ``winner``: the recommendation; ``partial``: the choice at some
loops or concurrencies only; ``tie``: as fast within noise, another preferred for what it does to the
program; ``semantics``: as fast or faster, but creates a worker per call; ``failed``: a cell did not
measure; over the lag budget: ``blocked`` (the call ran on the loop, or the loop ran late most of the
time), ``gil`` (threads do not speed the work up and the loop starves), ``startup`` (the loop stalled
starting a thread or process per call), ``lag``; slower beyond noise: ``capped`` (at its pool's size),
``startup``, ``shipping`` (pickling and IPC to a process), ``slower``."""


class Candidate(msgspec.Struct, frozen=True, kw_only=True):
    """One strategy (at one executor size) as a verdict judged it, with the one-line why."""

    strategy: str
    max_workers: int | None = None
    judgement: Judgement
    reason: str
    qualified: bool
    """Every cell ok and loop lag p99 within the budget in all of them (near it where nothing was within)."""
    score: float | None
    """Geometric mean, over (loop, concurrency), of its throughput relative to the fastest cell there."""
    worst_lag_p99_ms: float | None


ConfidenceWord = Literal["clear", "likely", "tie", "alone"]
"""``clear``: faster than every other candidate beyond noise, in every round; ``likely``: faster, but
not beyond noise in every round or without units to tell; ``tie``: as fast as others within noise,
chosen for what it does to the program; ``alone``: the only candidate within the budget (a worker-per-call
strategy aside, which is never recommended beside one that reuses its workers)."""
Method = Literal["paired by round", "welch", "fixed 5 %"]
"""How two candidates' throughputs were compared: the mean of per-round log ratios (same rounds),
Welch's interval on the units' logs (too few shared rounds), a fixed tolerance (fewer than two units:
old files, ``--rounds 1``)."""


class Confidence(msgspec.Struct, frozen=True, kw_only=True):
    """How clear the verdict's choice was where it was decided: margin against noise, rounds agreeing."""

    word: ConfidenceWord
    loop: str
    concurrency: int
    """Where it was decided: the headline's loop and (highest) concurrency."""
    against: str | None
    """The candidate it was compared with: the fastest other one in the tie, else the runner-up."""
    margin_pct: float | None
    """How much faster than ``against``, %; 0 for a tie; ``None`` when alone."""
    low_pct: float | None
    """Lower end of the 95 % interval of the throughput ratio to ``against``, % (None: no interval)."""
    high_pct: float | None
    method: Method | None
    rounds: int
    """Rounds in which the choice was measured there."""
    rounds_agreeing: int
    """Of those, rounds in which no candidate outside the tie was faster than the choice."""


class Verdict(msgspec.Struct, frozen=True, kw_only=True):
    """Which strategy to use for one workload, decided from the measurements alone."""

    workload: str
    params: Params
    python: str = ""
    """The interpreter whose cells were judged (a verdict compares strategies under one)."""
    lag_budget_ms: float
    winner: Candidate | None
    text: str
    """The headline, one line that stands alone: what to use, its figures, the fix, the tie."""
    candidates: list[Candidate]
    warnings: list[str] = []
    """What the winner does to the program's semantics that the caller should know (``semantics``)."""
    tied: list[str] = []
    """Labels of the candidates as good as the winner wherever it was chosen, the winner first."""
    details: list[str] = []
    """Sentences to print under the headline: per loop or concurrency, the margins, the fix and its cost."""
    fix: str | None = None
    """The line of code that sizes the winner's pool, when the verdict recommends a size."""
    confidence: Confidence | None = None
    """How clear the choice was; ``None`` when nothing was chosen."""


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


class Round(msgspec.Struct, frozen=True, kw_only=True):
    """One round: every cell still measuring got one unit, in a random order."""

    index: int
    started_s: float
    """Seconds from the run's start."""
    wall_s: float
    cells: list[int]
    """The cells it measured, as indexes into the run's ``results``, in the order they ran."""
    reference_ms: float | None
    """Median of its units' speed references: the host's speed during the round."""
    other_cpu: float | None
    """Mean share of the machine's CPUs other programs took during its units (Linux)."""


BUSY_SHARE = 0.25
"""Other programs taking more than this share of the machine's CPUs during a unit make it "busy"."""


class Host(msgspec.Struct, frozen=True, kw_only=True):
    """How steady the machine was while the run measured: its speed reference and other programs' CPU."""

    reference_ms: float
    """Median of every unit's speed reference (a fixed pure-Python loop)."""
    drift_pct: float
    """How much the host's speed moved between rounds: the CV of the rounds' references, in %."""
    scatter_pct: float
    """How much it moved from one unit to the next: the CV of all units' references, in %."""
    other_cpu_mean: float | None
    """Mean share of the machine's CPUs other programs took during the units (Linux; else ``None``)."""
    other_cpu_max: float | None
    busy_units: int
    """Units during which other programs took more than :data:`BUSY_SHARE` of the CPUs."""
    busy_cells: int
    """Cells with at least one such unit: their figures carry that load."""


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
    rounds: list[Round] = []
    """The rounds the cells were measured in, in order; empty in older files."""
    host: Host | None = None
    """How steady the machine was; ``None`` in older files and runs without a unit."""
    rate_verdicts: list[RateVerdict] = []
    """Per workload, at each offered rate, the strategies that met the SLO within the lag budget."""
    capacity: list[Capacity] = []
    """Each strategy's highest rate within the SLO and the lag budget (``--rate auto``); else empty."""


def encode(run: RunResult) -> bytes:
    """Serialise a run to indented JSON, newline-terminated."""
    return msgspec.json.format(msgspec.json.encode(run), indent=2) + b"\n"


def decode(data: bytes, source: str = "<data>") -> RunResult:
    """Parse and validate a results file; raise ``UsageError`` naming ``source`` and the problem."""
    try:
        header = msgspec.json.decode(data, type=dict[str, object])
    except msgspec.DecodeError as exc:
        raise UsageError(f"{source}: not an offbench results file: {exc}") from None
    except RecursionError:  # msgspec's own depth limit (about 1000 levels): not a DecodeError
        raise UsageError(f"{source}: not an offbench results file: nested too deeply") from None
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
    except RecursionError:
        raise UsageError(f"{source}: malformed results: nested too deeply") from None
    for index, cell in enumerate(run.results):
        try:
            if cell.lag_histogram is not None:
                histogram.check(cell.lag_histogram)
        except histogram.HistogramError as exc:
            raise UsageError(f"{source}: malformed results: {exc} - at `$.results[{index}].lag_histogram`"
                             ) from None
    return run


MAX_FILE_BYTES = 256 << 20
"""The largest results file read: a run of hundreds of cells writes a few MiB."""


def load(path: Path) -> RunResult:
    """Read and validate a results file.

    Only a regular file (``/dev/zero`` would read without end) of at most :data:`MAX_FILE_BYTES`.
    """
    return decode(read_regular(path, MAX_FILE_BYTES, "an offbench results file"), str(path))
