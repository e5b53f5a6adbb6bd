"""``sleep``: blocking I/O stood in for by ``time.sleep``, which releases the GIL."""

import functools
import time
from collections.abc import Callable, Mapping
from typing import ClassVar

from offbench.model.params import ParamValue, number
from offbench.workloads import Workload


def pause(seconds: float) -> None:
    """Block in ``time.sleep``: a Python frame of its own, so a stall's evidence names this file."""
    time.sleep(seconds)


class SleepWorkload(Workload):
    """``time.sleep(duration_ms / 1000)``: the purest blocking wait, no CPU, GIL released."""

    name = "sleep"
    summary = "time.sleep(duration_ms): blocking wait that releases the GIL"
    defaults: ClassVar[Mapping[str, ParamValue]] = {"duration_ms": 10.0}

    def make_call(
        self, params: Mapping[str, ParamValue], resources: Mapping[str, ParamValue]
    ) -> Callable[[], object]:
        """Return :func:`pause` bound to the configured duration."""
        return functools.partial(pause, number(params, "duration_ms") / 1000.0)
