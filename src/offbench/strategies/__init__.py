"""Offload strategies: the ways asyncio code can call a blocking function.

Each strategy is one small class registered by name with :func:`register`, in a module
of this package: :mod:`~offbench.strategies.stdlib` holds the five the standard library
offers; the others need an optional library or a newer Python and say so through
:meth:`Strategy.unavailable_reason`. The worker calls :meth:`Strategy.start` before the
measured window (its cost is reported as start-up, not hidden in throughput),
:meth:`Strategy.call` once per operation from each concurrent task, and
:meth:`Strategy.stop` at the end.
"""

from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, ClassVar, Literal, TypeVar

from offbench.errors import UsageError, unknown_name
from offbench.model.params import Params

if TYPE_CHECKING:
    from offbench.model.cells import CellSpec

Call = Callable[[], object]


def default_executor_workers() -> int:
    """Return the real size of the default executor: ``min(32, cpus + 4)`` on CPython 3.11+.

    Both asyncio and uvloop build their default executor as a plain
    ``ThreadPoolExecutor()``, so a fresh one (which starts no thread) reports the same size.
    """
    with ThreadPoolExecutor() as probe:
        return int(probe._max_workers)


class Strategy(ABC):
    """How one call of the blocking function is made from a coroutine."""

    name: ClassVar[str]
    summary: ClassVar[str]
    runs_on: ClassVar[Literal["loop", "thread", "process"]]
    """Where the blocking function runs: what the verdict reasons about (GIL, pool sizes)."""
    sized: ClassVar[bool] = False
    """True when the strategy calls through one pool whose size ``max_workers`` sets."""
    pool_owner: ClassVar[str] = "the pool's"
    """Whose size caps concurrent calls when ``max_workers`` is not given (the verdict says it)."""
    shared_pool: ClassVar[bool] = False
    """True when the calls go through a pool other strategies reach too (the loop's default
    executor): strategies on one shared pool, at one size, differ only in what they do
    around a call, and the verdict does not split them on noise (:mod:`offbench.judge.ranking`)."""
    default: ClassVar[bool] = True
    """True when ``run`` and ``check`` measure it unless told which strategies to take."""
    same_clock: bool = True
    """True when the function runs on this machine, so ``perf_counter_ns`` stamped where it
    runs compares with the loop's (``CLOCK_MONOTONIC`` on Linux): the worker then splits each
    call into queue wait, run and hop back (:mod:`offbench.measure.breakdown`)."""

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Return why this strategy cannot run here (a missing library, an old Python), or ``None``."""
        return None

    def __init__(self, max_workers: int | None = None) -> None:
        self.fn: Call = _not_started
        self.max_workers = max_workers

    @classmethod
    def from_cell(cls, cell: CellSpec) -> Strategy:
        """Return an unstarted instance set up as ``cell`` says: the one place a cell makes one.

        The default takes the pool size; a strategy that reads more of the cell (the
        Dask scheduler's address) overrides this.
        """
        return cls(max_workers=cell.max_workers)

    async def start(self, fn: Call, prepare: Call) -> Params:
        """Get ready to call ``fn`` (``prepare`` readies a process); return facts to record."""
        self.fn = fn
        return {}

    def bind(self, fn: Call) -> None:
        """Make later calls run ``fn``: one started strategy can then serve several functions."""
        self.fn = fn

    @abstractmethod
    async def call(self) -> object:
        """Run ``fn`` once and return its result, however this strategy does it."""

    async def stop(self) -> None:  # noqa: B027 - most strategies hold nothing to release
        """Release what :meth:`start` acquired."""


def _not_started() -> object:
    raise RuntimeError("strategy used before start()")


REGISTRY: dict[str, type[Strategy]] = {}
S = TypeVar("S", bound=type[Strategy])


def register(cls: S) -> S:
    """Class decorator: make the strategy available under its ``name``."""
    REGISTRY[cls.name] = cls
    return cls


def names() -> list[str]:
    """Return the registered strategy names in canonical order."""
    return list(REGISTRY)


def missing_package(module: str, name: str | None = None) -> str | None:
    """Return why an optional strategy cannot run when ``module`` is not installed, else ``None``."""
    if importlib.util.find_spec(module) is None:
        return f"needs {name or module} (pip install 'offbench[strategies]')"
    return None


def default_names() -> list[str]:
    """Return the strategies measured when none are named: the default ones that can run here."""
    return [name for name, cls in REGISTRY.items() if cls.default and cls.unavailable_reason() is None]


def require_available(name: str) -> type[Strategy]:
    """Return the strategy called ``name``; raise ``UsageError`` if unknown or unable to run here."""
    cls = get(name)
    reason = cls.unavailable_reason()
    if reason:
        raise UsageError(f"strategy {name!r} is not available here: {reason}")
    return cls


def get(name: str) -> type[Strategy]:
    """Return the strategy class called ``name``, or raise ``UsageError`` naming the choices."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise UsageError(unknown_name("strategy", name, names())) from None


# Registration happens on import; the order here is the order of tables and listings.
# isort: off
from offbench.strategies import stdlib  # noqa: E402, F401
from offbench.strategies import anyio_thread  # noqa: E402, F401
from offbench.strategies import bounded  # noqa: E402, F401
from offbench.strategies import loky_pool  # noqa: E402, F401
from offbench.strategies import interpreters  # noqa: E402, F401
from offbench.strategies import dask_cluster  # noqa: E402, F401
