"""Event-loop backends, registered by name: stock ``asyncio`` and ``uvloop``.

A backend only names a loop factory for ``asyncio.Runner(loop_factory=...)``; the loop
itself is created inside the cell's worker process, never in the parent.
"""

from __future__ import annotations

import asyncio
import importlib
import platform
from collections.abc import Callable
from dataclasses import dataclass

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

    def unavailable_reason(self) -> str | None:
        """Return why this loop cannot run here, or ``None`` if it can."""
        try:
            importlib.import_module(self.module)
        except ImportError as exc:
            return f"loop {self.name!r} is not available here: {exc}"
        return None

    def factory(self) -> LoopFactory:
        """Return the callable that creates a new loop of this kind."""
        factory: LoopFactory = getattr(importlib.import_module(self.module), self.factory_name)
        return factory

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


REGISTRY: dict[str, LoopBackend] = {
    backend.name: backend
    for backend in (
        LoopBackend("asyncio", "the standard library's event loop", "asyncio", "new_event_loop", None),
        LoopBackend("uvloop", "libuv-based drop-in loop", "uvloop", "new_event_loop", "uvloop"),
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
