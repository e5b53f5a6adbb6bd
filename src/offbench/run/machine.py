"""Facts about the machine and interpreter, recorded with every run."""

from __future__ import annotations

import contextlib
import os
import platform
import sys
from importlib import metadata

import msgspec

from offbench.measure import probe
from offbench.model.results import Machine
from offbench.processes import run_child
from offbench.strategies import default_executor_workers

BlasInfo = list[dict[str, str | int | None]]


def describe() -> Machine:
    """Collect the machine metadata; BLAS facts come from a short child process."""
    return Machine(
        python_version=platform.python_version(),
        python_implementation=platform.python_implementation(),
        platform=platform.platform(),
        cpu_model=cpu_model(),
        cpu_count=os.cpu_count() or 1,
        uvloop_version=_version("uvloop"),
        numpy_version=_version("numpy"),
        blas=blas_info(),
        gil_switch_interval_s=sys.getswitchinterval(),
        default_executor_workers=default_executor_workers(),
        probe_ticks=probe.default_source(),
    )


def cpu_model() -> str:
    """Return the CPU's model name (``/proc/cpuinfo`` on Linux, ``platform`` elsewhere)."""
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or platform.machine() or "unknown"


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def blas_info(timeout: float = 30.0) -> BlasInfo:
    """Return NumPy's BLAS libraries and thread counts, as ``threadpoolctl`` sees them.

    NumPy is imported in a child process, never here: BLAS starts threads at import,
    and the parent must stay single-threaded to fork clean cell workers.
    """
    outcome = run_child(_blas_child, b"", timeout)
    if outcome.timed_out or not outcome.report:
        return []
    return msgspec.json.decode(outcome.report, type=BlasInfo)


def _blas_child(payload: bytes, report_fd: int) -> None:
    info: BlasInfo = []
    with contextlib.suppress(ImportError):
        import numpy  # noqa: F401
        from threadpoolctl import threadpool_info

        keys = ("user_api", "internal_api", "version", "num_threads", "threading_layer")
        info = [{k: entry.get(k) for k in keys} for entry in threadpool_info()]
    with open(report_fd, "wb") as report:
        report.write(msgspec.json.encode(info))
