"""What offbench can run: workloads, strategies, loops and shipped scenarios (``offbench list``).

Collected from the registries, never listed by hand, so a new workload or strategy
shows up here the moment it is registered.
"""

from __future__ import annotations

import msgspec

from offbench import loops, strategies, workloads
from offbench.model.catalog import Catalog, Entry
from offbench.plan import scenario
from offbench.workloads.user import UserFunction


def collect() -> Catalog:
    """Return the catalog of this installation."""
    return Catalog(
        workloads=[
            Entry(name=w.name, summary=w.summary, params=dict(w.defaults))
            for w in workloads.REGISTRY.values()
        ]
        + [
            Entry(
                name="module:function",
                summary=UserFunction.summary,
                params=dict(UserFunction.defaults),
            )
        ],
        strategies=[
            Entry(
                name=cls.name,
                summary=cls.unavailable_reason() or cls.summary,
                runs_on=cls.runs_on,
                available=cls.unavailable_reason() is None,
                default=cls.default,
            )
            for cls in strategies.REGISTRY.values()
        ],
        loops=[
            Entry(
                name=backend.name,
                summary=backend.unavailable_reason() or backend.summary,
                available=backend.unavailable_reason() is None,
                default=backend.default,
            )
            for backend in (loops.get(name) for name in loops.names())
        ],
        scenarios=[
            Entry(name=name, summary=scenario.describe(name)) for name in scenario.shipped()
        ],
    )


def encode(catalog: Catalog) -> bytes:
    """Serialise the catalog as indented JSON, newline-terminated."""
    return msgspec.json.format(msgspec.json.encode(catalog), indent=2) + b"\n"
