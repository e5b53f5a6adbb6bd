"""The validated settings of a run, and the defaults every run starts from.

:mod:`offbench.plan.settings` turns what the user said into one :class:`RunSettings`;
results files carry it, so a saved run says how it was measured.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from offbench.model.params import Params

DEFAULT_CONCURRENCY = (1, 8)
DEFAULT_PROBE_INTERVAL_MS = 1.0
DEFAULT_STALL_THRESHOLD_MS = 10.0
DEFAULT_EVIDENCE_THRESHOLD_MS = 20.0
DEFAULT_LAG_BUDGET_MS = 10.0
DEFAULT_SLO_MS = 50.0
"""The latency p99 a rate cell's calls must stay under (``--slo``)."""

Arrivals = Literal["fixed", "poisson"]
"""How a rate cell's calls are spaced: one every 1/rate, or as a Poisson process of that rate."""
RATE_CALLS = 200
"""Calls a rate cell's window holds at least, when its cap allows: enough for a p99 (and a p99.9 pooled)."""
RATE_WINDOW_CAP = 20
"""A rate cell's window is at most this many times the effort's least window (2 s; 1 s with --quick)."""
RATE_WINDOW_CALLS = 5
"""A rate cell's window spans at least this many of its calls' warm-up latency: room to see it grow."""


class Effort(msgspec.Struct, frozen=True, kw_only=True):
    """How hard a run measures each cell: the rules that size its windows and end it.

    A cell is measured in *units*, one worker process each, one per round (see
    :mod:`offbench.run.runner`); units are the independent samples every interval is
    made of. The first unit calibrates: its warm-up times the call, and its window is
    sized so each of the cell's tasks completes ``calls_per_task`` calls, the unit at
    least ``calls_per_unit`` in all (a slow function at c=1), and never shorter than
    ``min_window_s``. The cell then gets units until its throughput is
    known to ±``precision_pct`` (95 % confidence, from the units) and its lag p99 to
    ``ticks`` probe ticks (or clear of the lag budget by half or double), after at least
    ``min_units`` and at most ``max_units``.
    """

    min_window_s: float
    """The shortest window a unit measures."""
    calls_per_task: int
    """Calls each concurrent task completes in a unit's window, at least (the window grows for slow calls)."""
    calls_per_unit: int = 1
    """Calls a unit's window holds at least, all tasks together: fewer make a throughput of rounding."""
    min_units: int
    """Units every cell gets: fewer give no interval worth the name."""
    max_units: int
    """Units a cell gets at most, precise or not."""
    precision_pct: float
    """Half-width of the throughput's 95 % interval, in % of it, at which a cell stops."""
    ticks: int
    """Probe ticks (pooled over units) a cell's lag p99 needs, unless it is far from the lag budget."""


EFFORT = Effort(min_window_s=0.1, calls_per_task=3, calls_per_unit=5, min_units=3, max_units=5,
                precision_pct=10.0, ticks=1000)
"""The default run's effort."""
QUICK = Effort(min_window_s=0.05, calls_per_task=2, calls_per_unit=5, min_units=2, max_units=3,
               precision_pct=15.0, ticks=300)
"""``--quick``: shorter windows, fewer units, a looser precision (and one loop unless ``-l`` says)."""


def rate_window_s(effort: Effort, rate: float, call_ms: float | None = None) -> float:
    """Return a rate cell's window: :data:`RATE_CALLS` calls, :data:`RATE_WINDOW_CALLS` latencies, capped.

    A p99 needs about a hundred calls, and a backlog that grows needs a few call times to
    show it; a slow rate is capped at :data:`RATE_WINDOW_CAP` × ``effort.min_window_s``
    (its p99 is then near its maximum), never under ``effort.min_window_s``.
    """
    wanted = max(RATE_CALLS / rate, RATE_WINDOW_CALLS * (call_ms or 0.0) / 1000)
    return max(effort.min_window_s, min(wanted, RATE_WINDOW_CAP * effort.min_window_s))


class WorkloadSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A workload by name with parameters: overrides when chosen, all of them once validated."""

    name: str
    params: Params = {}


class Interpreter(msgspec.Struct, frozen=True, kw_only=True):
    """One interpreter cells run under: how the user named it, what it is, what runs the workers."""

    label: str
    """How tables, keys and exports name it: ``3.12.1``, ``3.13.0t`` (free-threaded build)."""
    given: str
    """What the user typed: ``python3.12``, a path, or ``self``."""
    executable: str
    """What workers are spawned with: the cached venv's python (``sys.executable`` for ``self``)."""
    version: str
    implementation: str
    free_threaded: bool = False
    """A free-threaded build (``Py_GIL_DISABLED``, ``python3.13t``)."""
    gil_enabled: bool = True
    """``sys._is_gil_enabled()`` with offbench's worker modules imported (True before 3.13)."""
    environment: bool = False
    """A virtual environment of the user's, run with its own packages (``--python NAME=ENV/bin/python``):
    offbench's worker and what it needs are added after them, never installed into it."""
    overlay: list[str] = []
    """For an ``environment``: the folder put first on ``sys.path`` (offbench alone), then the one added
    after the environment's own (offbench's dependencies); empty otherwise."""

    @property
    def title(self) -> str:
        """Return the label with the GIL state where it matters: ``3.13.0t GIL off``."""
        if not self.gil_enabled:
            return f"{self.label} GIL off"
        return f"{self.label} GIL on" if self.free_threaded else self.label


class RunSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The whole, validated description of a run: what to measure and for how long."""

    workloads: list[WorkloadSpec]
    strategies: list[str]
    loops: list[str]
    concurrency: list[int]
    """Closed-loop levels; empty when only rate cells were asked for (``--rate`` without ``-c``)."""
    rate: list[float] = []
    """Offered rates of the rate cells (``--rate``, calls/s): each is a cell per strategy, loop and pool."""
    rate_auto: bool = False
    """``--rate auto``: search each strategy's highest rate within the SLO and the lag budget."""
    arrivals: Arrivals = "fixed"
    """How rate cells space their calls."""
    max_in_flight: int | None = None
    """Bound on a rate cell's calls in flight; calls due at the bound are refused. ``None``: unbounded."""
    slo_ms: float = DEFAULT_SLO_MS
    """The latency p99 a rate cell must stay under to count as meeting the load (rate verdict, capacity)."""
    max_workers: list[int | None] = msgspec.field(default_factory=lambda: [None])
    """Executor sizes to sweep for the strategies that own a pool; ``None`` = the library default."""
    sized_pools: bool = True
    """Also measure ``to-thread`` with a default executor sized to the highest concurrency, where that
    exceeds the default size: the fix the verdict names when the default pool caps throughput."""
    duration_s: float | None = None
    """Every unit's window, fixed (``--duration``); ``None``: sized per cell from its first unit."""
    warmup_s: float | None = None
    """Every unit's warm-up, fixed; ``None``: until each task's first call has returned."""
    effort: Effort = EFFORT
    """The rules that size windows and end cells (:class:`Effort`)."""
    rounds: int | None = None
    """Units per cell, fixed (``--rounds``); ``None``: as many as the cell's precision needs."""
    time_budget_s: float | None = None
    """Seconds the measuring may take in all (``--time-budget``); ``None``: no limit."""
    seed: int = 0
    """Seeds the random order of cells within each round, so a run's order can be repeated."""
    probe_interval_ms: float = DEFAULT_PROBE_INTERVAL_MS
    stall_threshold_ms: float = DEFAULT_STALL_THRESHOLD_MS
    evidence_threshold_ms: float = DEFAULT_EVIDENCE_THRESHOLD_MS
    """Stalls longer than this get the loop thread's stack sampled (stall evidence); 0: off."""
    cell_timeout_s: float | None = None
    """Seconds a unit's worker may take before it is killed; ``None``: from the cell's calibration."""
    lag_budget_ms: float = DEFAULT_LAG_BUDGET_MS
    semantics: bool = False
    """Run ``offbench check``'s experiments for the run's strategies and loops, for the verdict."""
    pool_costs: bool = False
    """Cost the run's process pools: start-up by start method, per call (:mod:`offbench.run.poolcost`)."""
    utilisation: bool = True
    """Time every callback the loop runs, for loop utilisation (:mod:`offbench.measure.utilisation`)."""
    payload_bytes: int = 0
    """Bytes of argument shipped with every call (``--payload-bytes``); pickled per call by process pools."""
    dask_scheduler: str | None = None
    """The scheduler the ``dask`` strategy connects to (``tcp://HOST:PORT``); ``None`` = a local cluster."""
    quick: bool = False
    scenario: str | None = None
    """Where the settings came from: a scenario file's path or a shipped scenario's name."""
    pythons: list[Interpreter] = []
    """Interpreters the cells run under (``--python``), each an axis value; empty = the running one."""
    fail_if: list[str] = []
    """Gates (``--fail-if``, :mod:`offbench.judge.gates`) judged on the results; each chooses some cell."""
