"""Export a run as a pyperf ``BenchmarkSuite``, built with pyperf's own API.

One benchmark per measured cell, named ``workload/strategy/loop/c=N``. Its values are
the mean op latency (seconds) of each part of the cell's window, so
``python -m pyperf stats``, ``hist`` and ``compare_to`` work on offbench results, and
teams that already track pyperf files can add these to the same history.
"""

from __future__ import annotations

import io

import pyperf

from offbench.formatting import load_label, strategy_label, workload_label
from offbench.model.results import CellResult, RunResult


def benchmark_name(result: CellResult) -> str:
    """Return the pyperf name of a cell: ``sleep (duration_ms=10.0)/to-thread/uvloop/c=8``.

    Under ``--python`` the interpreter follows the loop: ``cpu/direct/asyncio/3.13.0/c=1``.
    """
    python = f"/{result.python}" if result.python else ""
    return (
        f"{workload_label(result.workload, result.params)}/"
        f"{strategy_label(result.strategy, result.max_workers)}/{result.loop}{python}/"
        f"{load_label(result.concurrency, result.rate)}"
    )


def suite(run: RunResult) -> pyperf.BenchmarkSuite | None:
    """Return one pyperf benchmark per cell with op latencies; ``None`` when no cell has any."""
    benchmarks = [
        pyperf.Benchmark([pyperf.Run(values, metadata=_metadata(run, r), collect_metadata=False)])
        for r in run.results
        if (values := op_latencies_s(r))
    ]
    return pyperf.BenchmarkSuite(benchmarks) if benchmarks else None


def dumps(run: RunResult) -> bytes | None:
    """Return the pyperf JSON of ``run`` (what ``pyperf`` itself writes), or ``None`` if empty."""
    found = suite(run)
    if found is None:
        return None
    out = io.StringIO()
    found.dump(out, compact=False)
    return out.getvalue().encode()


def op_latencies_s(result: CellResult) -> list[float]:
    """Return the mean op latency of each unit (worker process) that completed a call, in seconds.

    Units are independent runs, as pyperf's worker processes are: one value each.
    """
    if not result.ok:
        return []
    return [u.op_latency_mean_ms / 1000 for u in result.units
            if u.op_latency_mean_ms is not None and u.op_latency_mean_ms > 0]


def _metadata(run: RunResult, r: CellResult) -> dict[str, str | int | float]:
    machine = run.machine
    python = next((p for p in run.settings.pythons if p.label == r.python), None)
    metadata: dict[str, str | int | float] = {
        "name": benchmark_name(r),
        "unit": "second",
        "description": "offbench cell: mean op latency of each unit (a worker process, one per round)",
        "date": run.created,
        "python_version": python.version if python else machine.python_version,
        "python_implementation": (python.implementation if python else machine.python_implementation).lower(),
        "platform": machine.platform,
        "cpu_model_name": machine.cpu_model,
        "cpu_count": machine.cpu_count,
        "offbench_version": run.offbench_version,
        "offbench_workload": r.workload,
        "offbench_strategy": r.strategy,
        "offbench_loop": r.loop,
        "offbench_loop_version": r.loop_version or "unknown",
        "offbench_concurrency": r.concurrency,
        "offbench_ops": r.ops,
        "offbench_throughput_ops_s": r.throughput_ops_s,
    }
    if r.max_workers is not None:
        metadata["offbench_max_workers"] = r.max_workers
    if r.rate is not None:
        metadata["offbench_rate_ops_s"] = r.rate
    if r.loop_lag_ms is not None:
        metadata["offbench_lag_p99_ms"] = r.loop_lag_ms.p99
    if r.breakdown_ms is not None:
        for part in ("queue_wait", "run", "hop_back"):
            quantiles = getattr(r.breakdown_ms, part)
            metadata[f"offbench_{part}_p50_ms"] = quantiles.p50
            metadata[f"offbench_{part}_p99_ms"] = quantiles.p99
    if r.loop_utilisation is not None:
        metadata["offbench_loop_busy"] = r.loop_utilisation.busy
    return metadata
