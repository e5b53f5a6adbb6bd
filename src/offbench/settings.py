"""Validated run settings, and the matrix of cells they expand to.

Everything the CLI (and later, scenario files) accepts ends up in one
:class:`RunSettings`; every check of user input happens in :func:`build_settings`,
before anything runs. A :class:`CellSpec` is what one worker process needs to
measure one cell, and travels to it as JSON.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeVar

import msgspec

from offbench import loops, strategies, workloads
from offbench.errors import UsageError
from offbench.workloads import Params

DEFAULT_WINDOW_S = 1.0
DEFAULT_WARMUP_S = 0.2
QUICK_WINDOW_S = 0.2
QUICK_WARMUP_S = 0.04
DEFAULT_CONCURRENCY = (1, 8)
DEFAULT_PROBE_INTERVAL_MS = 1.0
DEFAULT_STALL_THRESHOLD_MS = 10.0
MAX_CONCURRENCY = 4096

T = TypeVar("T")


class WorkloadSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A workload by name with its full parameter set (defaults filled in)."""

    name: str
    params: Params = {}


class RunSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The whole, validated description of a run: what to measure and for how long."""

    workloads: list[WorkloadSpec]
    strategies: list[str]
    loops: list[str]
    concurrency: list[int]
    window_s: float
    warmup_s: float
    probe_interval_ms: float = DEFAULT_PROBE_INTERVAL_MS
    stall_threshold_ms: float = DEFAULT_STALL_THRESHOLD_MS
    cell_timeout_s: float
    quick: bool = False


class CellSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One cell of the matrix: everything its worker process needs, nothing more."""

    workload: str
    params: Params
    strategy: str
    loop: str
    concurrency: int
    window_s: float
    warmup_s: float
    probe_interval_ms: float
    stall_threshold_ms: float
    resources: Params = {}


def default_cell_timeout(window_s: float, warmup_s: float) -> float:
    """Return the per-cell timeout: generous start-up room plus three times the cell's length."""
    return 15.0 + 3.0 * (window_s + warmup_s)


def build_settings(
    *,
    workload_names: Sequence[str] = (),
    strategy_names: Sequence[str] = (),
    loop_names: Sequence[str] = (),
    concurrency: Sequence[int] = (),
    window_s: float | None = None,
    warmup_s: float | None = None,
    quick: bool = False,
    probe_interval_ms: float = DEFAULT_PROBE_INTERVAL_MS,
    stall_threshold_ms: float = DEFAULT_STALL_THRESHOLD_MS,
    cell_timeout_s: float | None = None,
) -> RunSettings:
    """Validate user choices and fill in defaults; raise ``UsageError`` with a one-line reason.

    Empty sequences mean "the default": every workload, strategy and loop, and
    concurrency 1 and 8. Duplicates are dropped, order is kept.
    """
    chosen_workloads = [workloads.get(n) for n in _unique(workload_names or workloads.names())]
    chosen_strategies = _unique(strategy_names or strategies.names())
    for name in chosen_strategies:
        strategies.get(name)
    chosen_loops = _unique(loop_names or loops.names())
    for name in chosen_loops:
        reason = loops.get(name).unavailable_reason()
        if reason:
            raise UsageError(reason)
    levels = _unique(concurrency or DEFAULT_CONCURRENCY)
    for level in levels:
        if not 1 <= level <= MAX_CONCURRENCY:
            raise UsageError(f"concurrency must be between 1 and {MAX_CONCURRENCY}, got {level}")
    window = window_s if window_s is not None else (QUICK_WINDOW_S if quick else DEFAULT_WINDOW_S)
    warmup = warmup_s if warmup_s is not None else (QUICK_WARMUP_S if quick else DEFAULT_WARMUP_S)
    _positive("duration", window)
    _positive("warm-up", warmup, allow_zero=True)
    _positive("probe interval", probe_interval_ms)
    _positive("stall threshold", stall_threshold_ms)
    timeout = cell_timeout_s if cell_timeout_s is not None else default_cell_timeout(window, warmup)
    _positive("cell timeout", timeout)
    return RunSettings(
        workloads=[WorkloadSpec(name=w.name, params=w.resolve_params({})) for w in chosen_workloads],
        strategies=chosen_strategies,
        loops=chosen_loops,
        concurrency=levels,
        window_s=window,
        warmup_s=warmup,
        probe_interval_ms=probe_interval_ms,
        stall_threshold_ms=stall_threshold_ms,
        cell_timeout_s=timeout,
        quick=quick,
    )


def cells(settings: RunSettings) -> list[CellSpec]:
    """Expand settings into cells: workload × strategy × loop × concurrency, in that order."""
    return [
        CellSpec(
            workload=w.name,
            params=w.params,
            strategy=strategy,
            loop=loop,
            concurrency=level,
            window_s=settings.window_s,
            warmup_s=settings.warmup_s,
            probe_interval_ms=settings.probe_interval_ms,
            stall_threshold_ms=settings.stall_threshold_ms,
        )
        for w in settings.workloads
        for strategy in settings.strategies
        for loop in settings.loops
        for level in settings.concurrency
    ]


def _unique(items: Sequence[T]) -> list[T]:
    return list(dict.fromkeys(items))


def _positive(what: str, value: float, allow_zero: bool = False) -> None:
    ok = math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        bound = "zero or more" if allow_zero else "more than zero"
        raise UsageError(f"{what} must be {bound}, got {value}")
