"""Workloads: fixed units of blocking work, registered by name.

A workload is one small object. Adding one means writing its module and listing it in
``_BUILTIN`` below; nothing else in offbench names workloads.

The callable a workload returns from :meth:`Workload.make_call` must be picklable
(a module-level function, or a ``functools.partial`` of one), because the
``process-pool`` strategy ships it to other processes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import ClassVar

from offbench.errors import UsageError, unknown_name
from offbench.model.params import Params, ParamValue


class Workload(ABC):
    """One kind of blocking work, with documented default parameters."""

    name: str
    summary: str
    defaults: ClassVar[Mapping[str, ParamValue]] = {}
    files_per_call: ClassVar[int] = 0
    """Descriptors a call in flight holds open (a socket), for the open-files check up front."""

    def resolve_params(self, overrides: Mapping[str, ParamValue]) -> Params:
        """Return the defaults updated with ``overrides``, refusing unknown or mistyped keys."""
        params = dict(self.defaults)
        for key, value in overrides.items():
            if key not in self.defaults:
                raise UsageError(
                    f"workload {self.name!r} has no parameter {key!r}"
                    f" (known: {', '.join(sorted(self.defaults)) or 'none'})",
                    key=key,
                )
            expected = type(self.defaults[key])
            if expected is float and type(value) is int:
                value = float(value)
            if type(value) is not expected:
                raise UsageError(
                    f"workload {self.name!r} parameter {key!r} must be {expected.__name__},"
                    f" got {value!r}",
                    key=key,
                )
            params[key] = value
        return params

    def preload(self) -> bool:
        """Import in the runner, once, what every cell's worker would otherwise import again.

        Workers are forked from the runner, so they start with it loaded. Only what
        leaves the runner single-threaded may be loaded here; return whether anything
        was. The default loads nothing.
        """
        return False

    def prepare(self, params: Mapping[str, ParamValue]) -> Params:
        """Ready this process to run the workload (imports, pinning); return facts to record.

        Called once in the cell's worker process before the event loop starts, and once
        in every process of a process pool. Never called on the loop during measurement.
        """
        return {}

    @abstractmethod
    def make_call(
        self, params: Mapping[str, ParamValue], resources: Mapping[str, ParamValue]
    ) -> Callable[[], object]:
        """Return a picklable zero-argument callable that performs one unit of work."""

    @contextmanager
    def fixture(self, params: Mapping[str, ParamValue]) -> Iterator[Params]:
        """Run what the workload needs outside the worker for one cell; yield its ``resources``.

        The runner enters this in the parent process around each cell (the socket
        workload starts its loopback server here). The default needs nothing.
        """
        yield {}


def _builtin() -> dict[str, Workload]:
    from offbench.workloads.cpu import CpuWorkload
    from offbench.workloads.numpy_matmul import NumpyWorkload
    from offbench.workloads.sleep import SleepWorkload
    from offbench.workloads.socket_io import SocketWorkload

    _BUILTIN: tuple[Workload, ...] = (
        SleepWorkload(),
        SocketWorkload(),
        CpuWorkload(),
        NumpyWorkload(),
    )
    return {w.name: w for w in _BUILTIN}


REGISTRY: dict[str, Workload] = _builtin()


def names() -> list[str]:
    """Return the names of the built-in workloads, in their canonical order."""
    return list(REGISTRY)


def get(name: str) -> Workload:
    """Return the workload called ``name``; ``module:function`` names a user callable."""
    if ":" in name:
        from offbench.workloads.user import UserFunction

        return UserFunction.from_target(name)
    try:
        return REGISTRY[name]
    except KeyError:
        raise UsageError(unknown_name("workload", name, names())) from None
