"""The matrix: the cells a run's settings expand to, and how a cell's window is shared out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import msgspec

from offbench import strategies
from offbench.formatting import format_bytes, workload_label
from offbench.model.cells import CellSpec
from offbench.model.settings import RunSettings

T = TypeVar("T")


def cells(settings: RunSettings) -> list[CellSpec]:
    """Expand settings into cells: workload × strategy × executor size × loop × interpreter × concurrency.

    Strategies without a pool of their own (``direct``, ``executor-per-call``) run once,
    whatever executor sizes are swept.
    """
    return [
        CellSpec(
            workload=w.name,
            params=w.params,
            strategy=strategy,
            loop=loop,
            concurrency=level,
            max_workers=size,
            duration_s=settings.duration_s,
            warmup_s=settings.warmup_s,
            probe_interval_ms=settings.probe_interval_ms,
            stall_threshold_ms=settings.stall_threshold_ms,
            evidence_threshold_ms=settings.evidence_threshold_ms,
            samples=settings.samples,
            processes=settings.processes,
            utilisation=settings.utilisation,
            payload_bytes=settings.payload_bytes,
            dask_scheduler=settings.dask_scheduler if strategy == "dask" else None,
            python=python,
        )
        for w in settings.workloads
        for strategy in settings.strategies
        for size in _unique(
            settings.max_workers if strategies.get(strategy).sized else [None]
        )
        for loop in settings.loops
        for python in [i.label for i in settings.pythons] or [""]
        for level in settings.concurrency
    ]


def process_shares(cell: CellSpec) -> list[CellSpec]:
    """Split a cell into what each of its worker processes measures: a run of whole parts.

    The parts keep their length (``duration_s / samples``) and are dealt out as evenly as
    they go, so 10 parts over 3 processes measure 4, 3 and 3 parts' worth.
    """
    part_s = cell.duration_s / cell.samples
    base, extra = divmod(cell.samples, cell.processes)
    counts = [base + (index < extra) for index in range(cell.processes)]
    return [
        msgspec.structs.replace(cell, duration_s=part_s * count, samples=count, processes=1)
        for count in counts
    ]


def default_cell_timeout(duration_s: float, warmup_s: float) -> float:
    """Return the per-cell timeout: generous start-up room plus three times the cell's length."""
    return 15.0 + 3.0 * (duration_s + warmup_s)


def _unique(items: Sequence[T]) -> list[T]:
    return list(dict.fromkeys(items))


CELL_OVERHEAD_S = 0.12
"""Rough cost of a cell beyond its warm-up and window (worker start, imports), for estimates."""


def outline(settings: RunSettings) -> tuple[str, list[tuple[str, str]]]:
    """Return what a run of ``settings`` would measure: a headline with the estimate, and named lines."""
    matrix = cells(settings)
    per_cell = settings.processes * (settings.warmup_s + CELL_OVERHEAD_S) + settings.duration_s
    source = f" from {settings.scenario}" if settings.scenario else ""
    headline = f"{len(matrix)} cells{source}, about {len(matrix) * per_cell:.0f} s"
    sizes = ", ".join("default" if n is None else str(n) for n in settings.max_workers)
    lines = [
        ("workloads", ", ".join(workload_label(w.name, w.params) for w in settings.workloads)),
        ("strategies", ", ".join(settings.strategies)),
        ("loops", ", ".join(settings.loops)),
        *([("pythons", ", ".join(f"{p.title} ({p.given})" for p in settings.pythons))]
          if settings.pythons else []),
        ("concurrency", ", ".join(map(str, settings.concurrency))),
        ("pool sizes", sizes),
        ("window", f"{settings.duration_s:g} s after {settings.warmup_s:g} s warm-up, "
                   f"cell timeout {settings.cell_timeout_s:g} s"),
        ("probe", f"every {settings.probe_interval_ms:g} ms; stall above "
                  f"{settings.stall_threshold_ms:g} ms; lag budget {settings.lag_budget_ms:g} ms"),
        *([("payload", f"{format_bytes(settings.payload_bytes)} shipped with every call")]
          if settings.payload_bytes else []),
        *([("fail if", "; ".join(settings.fail_if))] if settings.fail_if else []),
    ]
    return headline, lines
