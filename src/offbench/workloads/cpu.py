"""``cpu``: a pure-Python loop that holds the GIL for its whole duration."""

import functools
from collections.abc import Callable, Mapping
from typing import ClassVar

from offbench.model.params import ParamValue, whole
from offbench.workloads import Workload


def spin(iterations: int) -> int:
    """Run a pure-Python arithmetic loop of ``iterations`` steps; never releases the GIL."""
    total = 0
    for i in range(iterations):
        total += i * i
    return total


class CpuWorkload(Workload):
    """A fixed count of interpreter steps: threads cannot run it in parallel, processes can."""

    name = "cpu"
    summary = "pure-Python loop (holds the GIL), about 10 ms per op on a laptop-class CPU"
    defaults: ClassVar[Mapping[str, ParamValue]] = {"iterations": 100_000}

    def make_call(
        self, params: Mapping[str, ParamValue], resources: Mapping[str, ParamValue]
    ) -> Callable[[], object]:
        """Return :func:`spin` bound to the configured iteration count."""
        return functools.partial(spin, whole(params, "iterations"))
