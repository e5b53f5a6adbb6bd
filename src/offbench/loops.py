"""Event-loop backends, registered by name: stock ``asyncio``, ``uvloop``, ``asyncio-eager``.

A backend only names a loop factory for ``asyncio.Runner(loop_factory=...)``; the loop
itself is created inside the cell's worker process, never in the parent.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import os
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from offbench.errors import UsageError, unknown_name

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


@dataclass(frozen=True)
class LoopBackend:
    """One event-loop implementation: how to make it and how to name its version."""

    name: str
    summary: str
    module: str
    factory_name: str
    distribution: str | None
    default: bool = True
    """False for a loop measured only when named."""
    needs_python: tuple[int, int] | None = None
    """The oldest Python that has what this loop needs."""

    def unavailable_reason(self, python: tuple[int, ...] | None = None) -> str | None:
        """Return why this loop cannot run here, or ``None`` if it can.

        ``python`` asks about another interpreter of that version instead (``--python``):
        only the version is checked, since its venv has offbench's dependencies.
        """
        version = python or sys.version_info[:2]
        if self.needs_python and version < self.needs_python:
            wanted = ".".join(map(str, self.needs_python))
            this = ".".join(map(str, python)) if python else platform.python_version()
            return (
                f"loop {self.name!r} is not available here: it needs Python {wanted}+, "
                f"this is {this}"
            )
        if python:
            return None
        try:
            self._import()
        except UsageError as exc:
            return str(exc)
        return None

    def factory(self) -> LoopFactory:
        """Return the callable that creates a new loop of this kind (``UsageError`` if it cannot)."""
        factory: LoopFactory = getattr(self._import(), self.factory_name)
        return factory

    def _import(self) -> ModuleType:
        """Import the loop's module, never a file of the working directory that shadows it.

        ``module:function`` workloads put the working directory on ``sys.path``, where a
        project file named like a dependency (``uvloop.py``) would be imported instead;
        it is found without being run, and refused in one line. A module that fails to
        import, however it fails, is one line too.
        """
        reason = f"loop {self.name!r} is not available here"
        if self.distribution is not None:
            shadow = shadowing_file(self.module)
            if shadow is not None:
                raise UsageError(
                    f"{reason}: {shadow} in the working directory shadows the installed "
                    f"{self.module} (rename it, or run offbench from another directory)"
                )
        try:
            return importlib.import_module(self.module)
        except ImportError as exc:
            raise UsageError(f"{reason}: {exc}") from None
        except Exception as exc:
            raise UsageError(f"{reason}: importing {self.module} failed: {type(exc).__name__}: {exc}"
                             ) from None

    def version(self) -> str:
        """Return the implementation's version, e.g. ``uvloop 0.21.0`` or ``asyncio 3.11.7``."""
        if self.distribution is None:
            return f"{self.name} {platform.python_version()}"
        # Imported here: importlib.metadata costs ~35 ms, paid by every pool's forkserver.
        from importlib import metadata

        try:
            return f"{self.name} {metadata.version(self.distribution)}"
        except metadata.PackageNotFoundError:
            return f"{self.name} (not installed)"


def shadowing_file(module: str) -> str | None:
    """Return the file of the working directory that ``import module`` would load, if any.

    Found with ``importlib.util.find_spec``, which locates a module without running it.
    """
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not os.path.isabs(spec.origin):
        return None
    origin = Path(spec.origin)
    top = origin.parent.parent if spec.submodule_search_locations is not None else origin.parent
    try:
        here = top.resolve() == Path.cwd().resolve()
    except OSError:
        return None
    return f"./{origin.relative_to(top)}" if here else None


def new_eager_loop() -> asyncio.AbstractEventLoop:
    """Return a stock asyncio loop whose tasks start eagerly (``asyncio.eager_task_factory``).

    A task whose coroutine finishes without suspending then never visits the loop's queue.
    """
    loop = asyncio.new_event_loop()
    loop.set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined,unused-ignore]
    return loop


REGISTRY: dict[str, LoopBackend] = {
    backend.name: backend
    for backend in (
        LoopBackend("asyncio", "the standard library's event loop", "asyncio", "new_event_loop", None),
        LoopBackend("uvloop", "libuv-based drop-in loop", "uvloop", "new_event_loop", "uvloop"),
        LoopBackend(
            "asyncio-eager",
            "stock asyncio with asyncio.eager_task_factory (tasks start at once, 3.12+)",
            "offbench.loops",
            "new_eager_loop",
            None,
            default=False,
            needs_python=(3, 12),
        ),
    )
}


def names() -> list[str]:
    """Return the registered loop names in canonical order."""
    return list(REGISTRY)


def get(name: str) -> LoopBackend:
    """Return the backend called ``name``, or raise ``UsageError`` naming the choices."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise UsageError(unknown_name("loop", name, names())) from None
