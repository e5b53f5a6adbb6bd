"""The validated settings of a run, and the defaults every run starts from.

:mod:`offbench.plan.settings` turns what the user said into one :class:`RunSettings`;
results files carry it, so a saved run says how it was measured.
"""

from __future__ import annotations

import msgspec

from offbench.model.params import Params

DEFAULT_DURATION_S = 1.0
DEFAULT_WARMUP_S = 0.2
QUICK_DURATION_S = 0.2
QUICK_WARMUP_S = 0.04
DEFAULT_CONCURRENCY = (1, 8)
DEFAULT_PROBE_INTERVAL_MS = 1.0
DEFAULT_STALL_THRESHOLD_MS = 10.0
DEFAULT_EVIDENCE_THRESHOLD_MS = 20.0
DEFAULT_LAG_BUDGET_MS = 10.0
DEFAULT_SAMPLES = 10
DEFAULT_PROCESSES = 2


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
    max_workers: list[int | None] = msgspec.field(default_factory=lambda: [None])
    """Executor sizes to sweep for the strategies that own a pool; ``None`` = the library default."""
    duration_s: float
    warmup_s: float
    probe_interval_ms: float = DEFAULT_PROBE_INTERVAL_MS
    stall_threshold_ms: float = DEFAULT_STALL_THRESHOLD_MS
    evidence_threshold_ms: float = DEFAULT_EVIDENCE_THRESHOLD_MS
    """Stalls longer than this get the loop thread's stack sampled (stall evidence); 0: off."""
    cell_timeout_s: float
    lag_budget_ms: float = DEFAULT_LAG_BUDGET_MS
    samples: int = DEFAULT_SAMPLES
    """Equal consecutive parts the window is cut into, each summarised alone: the spread."""
    processes: int = 1
    """Worker processes per cell, one after the other, sharing the window's parts."""
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
